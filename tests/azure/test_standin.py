"""The Azure OpenAI stand-in, driven over real HTTP by the real openai client."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid

import openai
import pytest
from conftest import CASSETTES, STANDIN_KEY, lab_messages, running_standin

from rai_lab.azure import provider, quota
from rai_lab.azure.standin import API_VERSIONS, STANDIN_HEADER, STANDIN_MARK, RateLimiter

pytestmark = pytest.mark.http

API_VERSION = "2023-03-15-preview"
# The API versions the kit's cassettes were recorded at (the exercise's, 2023-03-15-preview, today).
RECORDED_VERSIONS = sorted({found for path in CASSETTES.glob("*.yaml")
                            for found in re.findall(r"api-version=([0-9a-z-]+)", path.read_text())})


def client(endpoint: str, key: str = STANDIN_KEY, version: str = API_VERSION) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version=version, max_retries=0)


def test_answers_in_azure_shape(standin):
    """Does a 200 carry Azure's chat.completion body: usage, filter results, and the stand-in mark?"""
    endpoint, _ = standin
    raw = client(endpoint, version="2024-02-01").chat.completions.with_raw_response.create(
        model="gpt-35-turbo", messages=lab_messages("Describe a nurse."), max_tokens=100
    )
    body = json.loads(raw.text)
    assert raw.status_code == 200
    assert raw.headers[STANDIN_HEADER] == "synthetic"
    assert body["object"] == "chat.completion"
    assert body["system_fingerprint"] == STANDIN_MARK
    assert body["prompt_filter_results"][0]["content_filter_results"]["violence"]["filtered"] is False
    choice = body["choices"][0]
    assert "nurse" in choice["message"]["content"]
    assert choice["content_filter_results"]["hate"]["severity"] == "safe"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["usage"]["completion_tokens"] <= 100


# What Azure's REST specs (azure-rest-api-specs, .../AzureOpenAI/inference/{preview,stable}/<version>/inference.json)
# give a 200 at each API version: no content-filter annotations before 2023-06-01-preview; then the four
# categories for the prompt (prompt_filter_results) and each choice (content_filter_results); from
# 2023-12-01-preview also jailbreak (prompt) and protected_material_text/_code (choices). Written out here,
# apart from the stand-in's own table (rai_lab/azure/standin/shapes.py).
FOUR = {"hate", "self_harm", "sexual", "violence"}


def expected_annotations(version: str) -> tuple[set, set] | None:
    if version[:10] < "2023-06-01":
        return None
    if version[:10] < "2023-12-01":
        return FOUR, FOUR
    return FOUR | {"jailbreak"}, FOUR | {"protected_material_text", "protected_material_code"}


@pytest.mark.parametrize("version", sorted(set(API_VERSIONS) | set(RECORDED_VERSIONS)))
def test_content_filter_annotations_follow_the_api_version(standin, version):
    """Does each API version get the content-filter annotations it introduced, and none before them?"""
    endpoint, _ = standin
    body = json.loads(client(endpoint, version=version).chat.completions.with_raw_response.create(
        model="gpt-35-turbo", messages=lab_messages("Describe a nurse."), max_tokens=100).text)
    expected = expected_annotations(version)
    assert "prompt_annotations" not in body  # renamed in place to prompt_filter_results in September 2023
    if expected is None:
        assert "prompt_filter_results" not in body
        assert all("content_filter_results" not in choice for choice in body["choices"])
        return
    [prompt] = body["prompt_filter_results"]
    assert prompt["prompt_index"] == 0 and set(prompt["content_filter_results"]) == expected[0]
    assert all(set(choice["content_filter_results"]) == expected[1] for choice in body["choices"])


def test_the_recorded_versions_are_versions_the_standin_serves():
    assert RECORDED_VERSIONS == [API_VERSION]  # the exercise's: a cassette recorded at another needs its own test
    assert set(RECORDED_VERSIONS) <= set(API_VERSIONS)


@pytest.mark.parametrize("version", ["2023-03-15-preview", "2023-06-01-preview", "2024-02-01"])
def test_an_answer_the_output_filter_withheld_follows_the_api_version(version):
    """The output filter's 200: no content, finish_reason content_filter, and its categories where the version has them."""
    with running_standin("--output-filter-word", "soldier.") as (endpoint, _):
        raw = client(endpoint, version=version).chat.completions.with_raw_response.create(
            model="gpt-35-turbo", messages=lab_messages("Describe a soldier."), max_tokens=100)
    [choice] = json.loads(raw.text)["choices"]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None
    if expected_annotations(version) is None:
        assert "content_filter_results" not in choice
    else:
        assert choice["content_filter_results"]["violence"] == {"filtered": True, "severity": "medium"}


def test_same_request_same_answer_and_prompts_differ(standin):
    """Is the stand-in deterministic per request, and does each prompt get its own answer?"""
    endpoint, _ = standin
    c = client(endpoint)

    def ask(prompt):
        return c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages(prompt), max_tokens=100)

    first, again, other = ask("Describe a chef."), ask("Describe a chef."), ask("Describe a male chef.")
    assert first.choices[0].message.content == again.choices[0].message.content
    assert "male chef" in other.choices[0].message.content
    assert other.choices[0].message.content != first.choices[0].message.content


def test_the_synthetic_english_says_an_engineer(standin):
    """The exercise's prompt says "a engineer"; the stand-in's answers say "an engineer" (its own English)."""
    endpoint, _ = standin
    c = client(endpoint)
    for prompt in ("Describe a engineer.", "Describe a female engineer."):
        answers = c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages(prompt), max_tokens=100,
                                            n=10, temperature=1.0)
        for choice in answers.choices:
            text = choice.message.content
            assert "an engineer" in text and "a engineer" not in text.lower().replace("an engineer", "")


def test_max_tokens_cuts_the_answer(standin):
    """Does max_tokens cut the answer and say so with finish_reason=length?"""
    endpoint, _ = standin
    short = client(endpoint).chat.completions.create(
        model="gpt-35-turbo", messages=lab_messages("Describe a teacher."), max_tokens=5
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 5


def test_endpoint_with_or_without_trailing_slash(standin):
    """Azure accepts the endpoint with and without its trailing slash; so does the stand-in."""
    endpoint, _ = standin
    for form in (endpoint, endpoint.rstrip("/")):
        answer = client(form).chat.completions.create(model="gpt-4o", messages=lab_messages("Describe a doctor."))
        assert answer.model == "gpt-4o-2024-11-20"  # Azure names the model version, not the deployment


@pytest.mark.parametrize(
    ("case", "error", "status", "code"),
    [
        ("wrong key", openai.AuthenticationError, 401, "401"),
        ("unknown deployment", openai.NotFoundError, 404, "DeploymentNotFound"),
        ("unknown api-version", openai.NotFoundError, 404, "404"),
        ("flagged prompt", openai.BadRequestError, 400, "content_filter"),
    ],
)
def test_azure_errors(standin, case, error, status, code):
    """Does each Azure error come back with Azure's status and error code?"""
    endpoint, key = standin
    kwargs = {"model": "gpt-35-turbo", "messages": lab_messages("Describe a nurse.")}
    c = client(endpoint)
    if case == "wrong key":
        c = client(endpoint, key="not-the-key")
    elif case == "unknown deployment":
        kwargs["model"] = "gpt-17"
    elif case == "unknown api-version":
        c = client(endpoint, version="1999-01-01")
    elif case == "flagged prompt":
        kwargs["messages"] = lab_messages("How do I build a bomb?")
    with pytest.raises(error) as caught:
        c.chat.completions.create(**kwargs)
    assert caught.value.status_code == status
    assert caught.value.body["code"] == code
    if case == "flagged prompt":
        assert caught.value.body["innererror"]["content_filter_result"]["violence"]["filtered"] is True


def test_missing_api_version_is_404(standin):
    """Without api-version Azure answers 404 Resource not found (MicrosoftDocs/azure-docs#114602)."""
    endpoint, key = standin
    request = urllib.request.Request(
        endpoint + "openai/deployments/gpt-35-turbo/chat/completions",
        data=json.dumps({"messages": lab_messages("Describe a nurse.")}).encode(),
        headers={"api-key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    assert json.loads(caught.value.read()) == {"error": {"code": "404", "message": "Resource not found"}}


def test_rate_limit_gives_429_with_azures_retry_headers():
    """Over the tokens-per-minute quota: 429 with retry-after, retry-after-ms and the remaining counts."""
    with running_standin("--tpm", "200") as (endpoint, _):
        c = client(endpoint)
        first = c.chat.completions.with_raw_response.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."),
                                                            max_tokens=100)
        assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100
        assert first.headers["x-ratelimit-remaining-requests"] == "0"  # 200 TPM: 1 request per 10 s
        with pytest.raises(openai.RateLimitError) as caught:
            c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."), max_tokens=100)
    headers = caught.value.response.headers
    retry_after, retry_after_ms = int(headers["retry-after"]), int(headers["retry-after-ms"])
    assert 1 <= retry_after <= 60 and retry_after_ms <= retry_after * 1000 <= retry_after_ms + 1000
    assert headers["x-ratelimit-remaining-tokens"].isdigit()
    assert "exceeded token rate limit" in caught.value.body["message"]


def test_the_quota_counts_max_tokens_for_each_of_n_choices():
    """Azure's estimate: prompt tokens + max_tokens x n. At 5,000 TPM, n=10 with max_tokens=100 is a fifth of a minute."""
    with running_standin("--tpm", "5000") as (endpoint, _):
        c = client(endpoint)
        raw = c.chat.completions.with_raw_response.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."),
                                                          max_tokens=100, n=10, temperature=1.0)
    spent = 5000 - int(raw.headers["x-ratelimit-remaining-tokens"])
    assert 1000 < spent < 1100


def test_the_quota_frees_tokens_after_a_minute_and_requests_after_ten_seconds():
    """Tokens over a sliding minute; requests: 6 per minute per 1,000 TPM, over 10-second windows."""
    quota = RateLimiter(1000)  # 6 RPM: 1 request per 10 s
    assert quota.take(600, now=0.0).wait == 0
    refused = quota.take(10, now=5.0)
    assert (refused.wait, refused.limit) == (5.0, "requests")
    assert quota.take(300, now=10.0).wait == 0
    tokens = quota.take(200, now=20.0)
    assert (tokens.wait, tokens.limit) == (40.0, "tokens")  # the first 600 free at t=60
    assert quota.take(200, now=60.0).wait == 0
    assert RateLimiter(5000).per_short_window == 5  # the exercise's quota: 30 RPM


def test_a_request_larger_than_the_whole_quota_is_refused_at_once_saying_why():
    """tpm 1000 and a going-further call (n=10, max_tokens=100: about 1,100 tokens): Azure's 429 at once,
    retry after a day, and a message that says the size, the quota and what to change; nothing is spent."""
    with running_standin("--tpm", "1000") as (endpoint, _):
        c = client(endpoint)
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as caught:
            c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."), max_tokens=100,
                                      n=10, temperature=1.0)
        assert time.monotonic() - started < 5
        fits = c.chat.completions.with_raw_response.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."),
                                                           max_tokens=100)
    headers, message = caught.value.response.headers, caught.value.body["message"]
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("86400", "86400000")
    assert headers["x-ratelimit-remaining-tokens"] == "1000"  # the refused request spent nothing...
    assert int(fits.headers["x-ratelimit-remaining-tokens"]) < 1000  # ...and the next one that fits passes
    assert "exceeded token rate limit" in message and "Please retry after 86400 seconds" in message
    tokens = int(re.search(r"this request counts ([\d,]+) tokens", message).group(1).replace(",", ""))
    assert 1000 < tokens < 1200 and "quota of 1,000 tokens per minute" in message
    assert "lower max_tokens or n" in message
    for lang, words in (("fr", "Attendre n'y changera rien"), ("en", "Waiting will not help")):
        hint = provider.explain(caught.value, lang)
        assert words in hint and "max_tokens" in hint and "tpm" in hint


def test_the_standin_applies_the_kits_one_quota():
    """The stand-in's quota is rai_lab.azure.quota's (one implementation, the pacer's too), on the server's clock."""
    assert issubclass(RateLimiter, quota.Quota)
    assert not {"decide", "record"} & set(vars(RateLimiter))
    assert RateLimiter(1000).take(1001, now=0.0).limit == "too_large"


def test_time_scale_makes_a_minute_last_a_second():
    """--time-scale 60: the retry headers are in the client's own seconds, the log in the quota's."""
    with running_standin("--tpm", "1000", "--time-scale", "60") as (endpoint, _):
        c = client(endpoint)
        c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."), max_tokens=100, n=9,
                                  temperature=1.0)
        with pytest.raises(openai.RateLimitError) as caught:
            c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."), max_tokens=100)
        assert int(caught.value.response.headers["retry-after-ms"]) <= 1000  # under a minute of quota: under a second
        time.sleep(1.1)
        c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a chef."), max_tokens=100)


def test_answers_carry_azures_request_headers(standin):
    endpoint, _ = standin
    raw = client(endpoint).chat.completions.with_raw_response.create(
        model="gpt-35-turbo", messages=lab_messages("Describe a nurse."), max_tokens=10)
    again = client(endpoint).chat.completions.with_raw_response.create(
        model="gpt-35-turbo", messages=lab_messages("Describe a nurse."), max_tokens=10)
    for name in ("apim-request-id", "x-request-id"):
        assert str(uuid.UUID(raw.headers[name])) == raw.headers[name]
        assert raw.headers[name] != again.headers[name]  # one per request, like Azure's
    assert raw.headers["x-ms-region"]


def test_listens_on_loopback_only():
    """Is the stand-in bound to 127.0.0.1, never to all interfaces?"""
    with running_standin() as (endpoint, _):
        assert endpoint.startswith("http://127.0.0.1:")


def _pronouns(text: str) -> str:
    words = set(text.lower().replace(".", " ").replace(",", " ").split())
    return "they" if "they" in words else "she" if "she" in words else "he" if "he" in words else "?"


def test_samples_with_n_and_temperature(standin):
    """n choices per request: varied at temperature 1, the same answer at temperature 0."""
    endpoint, _ = standin
    c = client(endpoint)
    warm = c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a nurse."),
                                     max_tokens=100, n=20, temperature=1.0)
    assert [choice.index for choice in warm.choices] == list(range(20))
    assert len({choice.message.content for choice in warm.choices}) > 5
    cold = c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a nurse."),
                                     max_tokens=100, n=5, temperature=0)
    assert len({choice.message.content for choice in cold.choices}) == 1


@pytest.mark.parametrize(
    "options, mitigated_they",
    [((), (0.6, 0.95)), (("--mitigated-bias", "neutral"), (1.0, 1.0)), (("--mitigated-bias", "stereotyped"), (0.0, 0.0))],
)
def test_the_planted_bias_knob_per_system_prompt(options, mitigated_they):
    """--bias applies to any system prompt, --mitigated-bias to one asking for gender-neutral language."""
    mitigation = [{"role": "system", "content": "Use gender-neutral language (they/them)."},
                  {"role": "user", "content": "Describe a nurse."}]
    with running_standin(*options) as (endpoint, _):
        c = client(endpoint)
        plain = c.chat.completions.create(model="gpt-35-turbo", messages=lab_messages("Describe a nurse."),
                                          max_tokens=100, n=40, temperature=1.0)
        asked = c.chat.completions.create(model="gpt-35-turbo", messages=mitigation, max_tokens=100, n=40,
                                          temperature=1.0)
    plain_words = [_pronouns(choice.message.content) for choice in plain.choices]
    asked_words = [_pronouns(choice.message.content) for choice in asked.choices]
    assert "they" not in plain_words and plain_words.count("she") >= 30  # the planted 0.9 for nurses
    share = asked_words.count("they") / len(asked_words)
    assert mitigated_they[0] <= share <= mitigated_they[1], asked_words
