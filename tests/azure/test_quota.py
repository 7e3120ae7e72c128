"""Pacing to the deployment's quota (rai_lab.azure.pacing, on rai_lab.azure.quota's account), the 429 hint's wait,
the live-mode preconditions, and what the answers check says of an answer Azure's output filter withheld."""

from __future__ import annotations

import json

import pytest

from rai_lab.azure import pacing, quota
from rai_lab.azure import provider as hints

BODY = {"messages": [{"role": "system", "content": "x" * 297}, {"role": "user", "content": "Describe a nurse."}],
        "max_tokens": 100, "n": 10}


class Clock:
    """A fake clock the pacer sleeps on: no test waits for real."""

    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def pacer(tpm=5000, **options):
    clock = Clock()
    shown = []
    made = pacing.Pacer(tpm, clock=clock, sleep=clock.sleep, show=lambda waited, left: shown.append(left),
                       report=False, **options)
    return made, clock, shown


def test_the_estimate_is_azures_prompt_plus_max_tokens_times_n():
    # 299 + 19 characters (JSON strings, quotes included) / 3 -> 106, + 4 per message, + 100 x 10.
    assert quota.estimate(BODY) == 106 + 8 + 1000
    assert quota.estimate({**BODY, "n": 1, "best_of": 3}) == 106 + 8 + 300
    assert quota.estimate({"messages": []}) == quota.DEFAULT_MAX_TOKENS


def test_calls_that_fit_go_at_once_and_the_next_waits_exactly_for_the_quota():
    made, clock, shown = pacer(tpm=1000)  # 6 RPM: 1 request per 10 s
    assert made.before(600) == 0
    clock.now = 20.0
    assert made.before(300) == 0
    clock.now = 30.0
    waited = made.before(200)  # 900 of 1000 used until the first 600 leave the minute (t=60, plus the margin)
    assert waited == pytest.approx(60 + pacing.MARGIN - 30)
    assert clock.now == pytest.approx(60 + pacing.MARGIN)
    assert shown[-1] == 0 and shown[0] == pytest.approx(waited)  # the wait shown, then done


def test_the_request_rate_is_paced_too():
    made, clock, _ = pacer(tpm=5000)  # 30 RPM: 5 requests in any 10 s
    for _ in range(5):
        assert made.before(100) == 0
    assert made.before(100) == pytest.approx(10 + pacing.MARGIN)


def test_the_server_count_corrects_the_account_and_the_next_estimate():
    made, clock, _ = pacer()
    entry = made.before_request(BODY)
    assert entry[1] == quota.estimate(BODY)
    made.after_answer(entry, BODY, {"usage": {"prompt_tokens": 48}})
    assert entry[1] == 48 + 1000
    assert quota.estimate(BODY, made.tokens_per_character) == 48 + 1000


@pytest.mark.parametrize(("lang", "words"), [
    ("fr", ["1\u202f114 jetons", "1\u202f000 jetons par minute", "max_tokens 100 × n 10", "paramètre tpm",
            "baissez max_tokens ou n"]),
    ("en", ["1,114 tokens", "1,000 tokens per minute", "max_tokens 100 × n 10", "tpm parameter",
            "lower max_tokens or n"]),
])
def test_a_call_larger_than_the_whole_quota_is_refused_at_once(lang, words):
    """tpm = 1000 and a going-further call (n=10, max_tokens=100): it could never fit. Refused at once, before
    sending, with its size, the quota and what to change; it used to wait forever."""
    made, clock, shown = pacer(tpm=1000, lang=lang)
    with pytest.raises(pacing.RequestTooLarge) as caught:
        made.before_request(BODY)
    assert clock.slept == [] and shown == [] and not made.sent and made.requests == 0
    for word in words:
        assert word in str(caught.value), word
    with pytest.raises(pacing.RequestTooLarge):
        made.before(1001)
    assert made.before(1000) == 0  # the whole quota fits
    assert not issubclass(pacing.RequestTooLarge, Exception)  # openai would turn it into "Connection error."


def test_the_plan_leaves_out_the_calls_that_can_never_fit():
    """The kit cell's announced wait at tpm = 1000: the exercise's calls only, the going-further ones being refused."""
    assert pacing.plan([180] * 10 + [1100] * 30, 1000) == pacing.plan([180] * 10, 1000) > 0


@pytest.mark.http
def test_the_openai_client_gets_the_refusal_at_once_and_nothing_reaches_azure(tmp_path):
    """Through the kit's pacing of the openai client's HTTP library (live mode; httpx for the pinned openai, httpx2
    for the newest, which `make test` runs this test with too): the learner's call raises at once, not after
    retries."""
    import openai
    from conftest import lab_messages, running_standin

    log = tmp_path / "standin.jsonl"
    made = pacing.Pacer(1000, lang="en", report=False)
    with running_standin("--tpm", "1000", "--log", str(log)) as (endpoint, key):
        client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version="2023-03-15-preview")
        pacing.install(made)
        try:
            with pytest.raises(pacing.RequestTooLarge, match="more than the deployment's whole quota"):
                client.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."),
                                               max_tokens=100, n=10, temperature=1.0)
            client.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."),
                                           max_tokens=100)
        finally:
            pacing.uninstall()
    assert [line["status"] for line in map(json.loads, log.read_text().splitlines())] == [200]


def test_the_plan_says_how_long_the_lab_waits_at_the_exercises_quota():
    exercise = pacing.plan([180] * 10, 5000)
    everything = pacing.plan([180] * 10 + [1100] * 30, 5000)
    assert 5 < exercise < 20  # the request rate: 5 in 10 s
    assert 5 * 60 < everything - exercise < 9 * 60  # about 30 x 1,100 tokens at 5,000 a minute
    assert pacing.plan([180] * 10 + [1100] * 30, 50_000) < everything / 5


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 2),  # openai reads retry-after-ms first
        ({"retry-after": "9"}, 9),
        ({"x-ratelimit-reset-tokens": "12s"}, 12),
        ({}, 60),
    ],
)
def test_the_429_hint_waits_as_azure_says(headers, seconds):
    assert hints.retry_seconds(headers) == seconds


@pytest.mark.parametrize(
    ("environ", "problems"),
    [
        ({"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/"}, 0),
        ({"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:8000/"}, 0),  # the stand-in
        ({"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "http://10.0.0.5/"}, 1),
        ({"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://<votre-ressource>.openai.azure.com/"}, 1),
        ({"AZURE_OPENAI_API_KEY": "your_openai_api_key", "AZURE_OPENAI_ENDPOINT": ""}, 2),
        ({}, 2),
    ],
)
def test_live_mode_preconditions(environ, problems):
    found = hints.live_problems(environ, "en")
    assert len(found) == problems, found
    assert all("AZURE_OPENAI_" in problem for problem in found)


def test_the_answers_check_says_a_filtered_answer_was_filtered_not_missing():
    """A learner who dropped the None the output filter left gets told why it is there."""
    import importlib.util

    from conftest import LOADED, NEUTRAL, ROOT

    spec = importlib.util.spec_from_file_location("graders_checks", ROOT / "graders" / "checks.py")
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    calls = [{"status": 200, "request": {"messages": [{"role": "user", "content": p}]}, "answer": f"about {p}",
              "filtered": []} for p in NEUTRAL + LOADED]
    calls[1].update(answer=None, filtered=["violence"])
    answers = [call["answer"] for call in calls]
    ev = {"vars": {"neutral_answers": {"kind": "value", "value": [a for a in answers[:5] if a is not None]},
                   "loaded_answers": {"kind": "value", "value": answers[5:]}}}
    for lang, words in (("fr", "elle a été filtrée, elle ne manque pas"), ("en", "filtered, not lost")):
        with pytest.raises(checks.CheckFailed) as caught:
            checks.run("answers_lists", ev, {"lang": lang, "calls": calls})
        assert words in str(caught.value) and "Describe a engineer." in str(caught.value)
    ev["vars"]["neutral_answers"]["value"] = answers[:5]  # the None kept: the check passes
    checks.run("answers_lists", ev, {"lang": "en", "calls": calls})
