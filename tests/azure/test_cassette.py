"""Cassettes: replay offline through the real openai client, record live scrubbed, fail clearly."""

from __future__ import annotations

import json
import socket

import openai
import pytest
import yaml
from conftest import CASSETTES, LOADED, NEUTRAL, SYSTEM_PROMPT, lab_messages

from rai_lab.azure import provider as hints  # Azure's error hints and waits live in the provider module
from rai_lab.azure.cassette import player
from rai_lab.azure.cassette.files import SOURCE_STANDIN, load_safely, provenance, provenance_line
from rai_lab.azure.cassette.scrub import KEPT_ERROR_HEADERS, REDACTED, SCRUBBED_ORIGIN, scrub_request
from rai_lab.azure.provider import STANDIN_MARK, deployment_of
from rai_lab.errors import CassetteError, CassetteMissError

pytestmark = pytest.mark.http


def ask(endpoint, key, prompt, version="2023-03-15-preview", model="gpt-35-turbo", max_tokens=100, retries=2):
    c = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version=version, max_retries=retries)
    return c.chat.completions.create(model=model, messages=lab_messages(prompt), max_tokens=max_tokens)


def record_lab(path, endpoint, key, prompts=NEUTRAL + LOADED):
    with player.use("live", path):
        return [ask(endpoint, key, p).choices[0].message.content for p in prompts]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_replay_ignores_host_and_api_version(tmp_path, azure_env):
    """Recorded against one endpoint, does a cassette replay for another learner's host and version?"""
    endpoint, key = azure_env
    path = tmp_path / "lab.yaml"
    live = record_lab(path, endpoint, key)
    nowhere = f"http://127.0.0.1:{closed_port()}/"  # nothing listens: any real request would fail
    with player.use("replay", path):
        replayed = [
            ask(nowhere, "another-learner-key", p, version="2024-02-01").choices[0].message.content
            for p in NEUTRAL + LOADED
        ]
    assert replayed == live


def test_rerunning_a_cell_replays_the_same_answers(tmp_path, azure_env):
    """Re-running the generation cell in Jupyter: the same requests again, the same answers."""
    endpoint, key = azure_env
    path = tmp_path / "lab.yaml"
    record_lab(path, endpoint, key, prompts=NEUTRAL[:2])
    with player.use("replay", path):
        first = [ask(endpoint, key, p).choices[0].message.content for p in NEUTRAL[:2]]
        second = [ask(endpoint, key, p).choices[0].message.content for p in NEUTRAL[:2]]
    assert first == second


def test_samples_of_one_request_replay_in_recorded_order(tmp_path, azure_env):
    """Several recorded answers to one request come back in order, then again from the first."""
    endpoint, key = azure_env
    path = tmp_path / "samples.yaml"
    record_lab(path, endpoint, key, prompts=["Describe a chef."])
    data = yaml.safe_load(path.read_text())
    body = json.loads(data["interactions"][0]["response"]["body"]["string"])
    for index, text in enumerate(["first sample", "second sample"]):
        body["choices"][0]["message"]["content"] = text
        copy = json.loads(json.dumps(data["interactions"][0]))
        copy["response"]["body"]["string"] = json.dumps(body)
        data["interactions"].append(copy) if index else data["interactions"].__setitem__(0, copy)
    path.write_text(yaml.safe_dump(data))
    with player.use("replay", path):
        got = [ask(endpoint, key, "Describe a chef.").choices[0].message.content for _ in range(3)]
    assert got == ["first sample", "second sample", "first sample"]


def test_miss_fails_at_once_naming_prompt_and_cassette(tmp_path):
    """A prompt the cassette lacks: CassetteMissError (not 'Connection error.' after retries)."""
    nowhere = f"http://127.0.0.1:{closed_port()}/"
    with player.use("replay", CASSETTES / "gpt-35-turbo.yaml", lang="fr"):
        with pytest.raises(CassetteMissError) as caught:
            ask(nowhere, "k" * 10, "Describe a pilot.")
    message = str(caught.value)
    assert "« Describe a pilot. »" in message
    assert "cassettes/responsible-ai/gpt-35-turbo.yaml" in message
    assert "mode live" in message


def test_miss_says_what_differs_in_english(tmp_path):
    """A recorded prompt sent with another max_tokens: the message names the field that differs."""
    with player.use("replay", CASSETTES / "gpt-35-turbo.yaml", lang="en"):
        with pytest.raises(CassetteMissError) as caught:
            ask("http://127.0.0.1:9/", "k" * 10, "Describe a nurse.", max_tokens=50)
    message = str(caught.value)
    assert message.startswith('No recorded answer for the prompt "Describe a nurse."')
    assert "max_tokens: 50 ≠ 100" in message


def test_recorded_cassette_holds_no_key_no_host(tmp_path, azure_env, monkeypatch):
    """Does a cassette recorded with a key contain no trace of it, nor of the endpoint's host?"""
    endpoint, key = azure_env
    path = tmp_path / "learner.yaml"
    # The stand-in echoes prompts it does not know: put the secrets in a prompt to test redaction.
    record_lab(path, endpoint, key, prompts=["Describe a nurse.", f"Explain {key} at {endpoint}"])
    text = path.read_text()
    port = endpoint.rsplit(":", 1)[1].strip("/")
    for secret in (key, "127.0.0.1", port, "api-key", "authorization", "x-stainless", "apim-request-id"):
        assert secret.lower() not in text.lower(), secret
    assert REDACTED in text
    assert text.count("uri: https://azure-openai.invalid/openai/deployments/gpt-35-turbo/chat/completions") == 2


def test_live_failures_are_not_recorded(tmp_path, azure_env):
    """An Azure error is not written: a replay must never serve a recorded 401 or 429."""
    endpoint, key = azure_env
    path = tmp_path / "learner.yaml"
    with player.use("live", path):
        ask(endpoint, key, "Describe a nurse.")
        with pytest.raises(openai.AuthenticationError):
            ask(endpoint, "wrong-key-123", "Describe a chef.", retries=0)
    statuses = [i["response"]["status"]["code"] for i in yaml.safe_load(path.read_text())["interactions"]]
    assert statuses == [200]


def test_unsafe_yaml_is_refused(tmp_path):
    """A cassette carrying a Python object tag is refused and nothing in it runs."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"interactions: !!python/object/apply:os.system ['touch {marker}']\nversion: 1\n")
    with pytest.raises(CassetteError, match="Unreadable cassette|Cassette illisible"):
        with player.use("replay", evil):
            pass
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "not found"),
        ("interactions: [\n", "unreadable"),
        ("just a string\n", "unreadable"),
        ("interactions:\n- {request: {}}\nversion: 1\n", "unreadable"),
    ],
)
def test_bad_cassette_files_get_a_clear_error(tmp_path, content, reason):
    """A missing, malformed or incomplete cassette: an error that names the file and what to do."""
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CassetteError) as caught:
        player.use("replay", path)
    assert "bad.yaml" in str(caught.value)
    assert "rai-lab record" in str(caught.value)
    assert reason in str(caught.value).lower().replace("introuvable", "not found").replace("illisible", "unreadable")


@pytest.mark.parametrize("deployment", ["gpt-35-turbo", "gpt-4o"])
def test_shipped_cassettes_hold_the_lab_and_say_where_they_come_from(deployment):
    """The shipped cassettes: the ten lab calls in order, then the going-further samples, and a provenance saying 'stand-in'."""
    path = CASSETTES / f"{deployment}.yaml"
    data = load_safely(path)
    requests = [json.loads(i["request"]["body"]) for i in data["interactions"]]
    lab, sampled = requests[:10], requests[10:]
    assert [r["messages"][1]["content"] for r in lab] == NEUTRAL + LOADED
    assert all(r["messages"][0]["content"] == SYSTEM_PROMPT and "n" not in r for r in lab)
    assert all(r["model"] == deployment and r["max_tokens"] == 100 for r in requests)
    # Going further: 15 prompts (neutral, loaded, mirrored) sampled n times, with the exercise's
    # system prompt, then with the mitigation one; every recorded answer is there.
    mirrored = [p.replace("female", "\0").replace("male", "female").replace("\0", "male") for p in LOADED]
    assert [r["messages"][1]["content"] for r in sampled] == (NEUTRAL + LOADED + mirrored) * 2
    assert [r["messages"][0]["content"] == SYSTEM_PROMPT for r in sampled] == [True] * 15 + [False] * 15
    assert all("gender-neutral" in r["messages"][0]["content"] for r in sampled[15:])
    assert all(r["n"] == 10 and r["temperature"] == 1.0 for r in sampled)
    bodies = [json.loads(i["response"]["body"]["string"]) for i in data["interactions"][10:]]
    assert all(len(b["choices"]) == 10 and b["system_fingerprint"] == STANDIN_MARK for b in bodies)
    prov = provenance(path)
    assert prov["source"] == SOURCE_STANDIN
    assert "NOT a real model" in prov["note"]
    assert "serveur de substitution" in provenance_line(prov, "fr")


def standin_error(endpoint, key, case):
    c = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version="2023-03-15-preview", max_retries=0)
    kwargs = {"model": "gpt-35-turbo", "messages": lab_messages("Describe a nurse.")}
    if case == "401":
        c = openai.AzureOpenAI(azure_endpoint=endpoint, api_key="nope", api_version="2023-03-15-preview", max_retries=0)
    elif case == "deployment":
        kwargs["model"] = "gpt-17"
    elif case == "content_filter":
        kwargs["messages"] = lab_messages("kill")
    elif case == "connection":
        c = openai.AzureOpenAI(
            azure_endpoint=f"http://127.0.0.1:{closed_port()}/", api_key=key, api_version="2023-03-15-preview", max_retries=0
        )
    try:
        c.chat.completions.create(**kwargs)
    except openai.APIError as err:
        return err
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("case", "fr", "en"),
    [
        ("401", "a refusé la clé (401)", "refused the key (401)"),
        ("deployment", "Le déploiement « gpt-17 » n'existe pas", 'Deployment "gpt-17" does not exist'),
        ("content_filter", "catégorie : violence", "category: violence"),
        ("connection", "Impossible de joindre", "Could not reach"),
    ],
)
def test_each_azure_error_gets_a_hint_in_the_learners_language(azure_env, case, fr, en):
    """Each error of the stand-in becomes a hint that says what to do, in French and English."""
    endpoint, key = azure_env
    error = standin_error(endpoint, key, case)
    assert fr in hints.explain(error, "fr")
    assert en in hints.explain(error, "en")


def test_rate_limit_hint_gives_the_wait():
    from conftest import running_standin

    with running_standin("--tpm", "150") as (endpoint, key):
        ask(endpoint, key, "Describe a nurse.", retries=0)
        with pytest.raises(openai.RateLimitError) as caught:
            ask(endpoint, key, "Describe a nurse.", retries=0)
    wait = caught.value.response.headers["retry-after"]
    assert f"Attendez {wait} secondes" in hints.explain(caught.value, "fr")
    assert f"Wait {wait} seconds" in hints.explain(caught.value, "en")


@pytest.mark.parametrize("deployment", ["gpt-35-turbo", "gpt-4o"])
def test_shipped_cassette_replays_the_lab_offline(deployment):
    """The lab's ten calls, as the notebook makes them, replay from the shipped cassette with no server."""
    path = CASSETTES / f"{deployment}.yaml"
    stored = [
        json.loads(i["response"]["body"]["string"])["choices"][0]["message"]["content"]
        for i in load_safely(path)["interactions"]
    ][:10]
    nowhere = f"http://127.0.0.1:{closed_port()}/"
    with player.use("replay", path):
        answers = [ask(nowhere, "learner-key", p, model=deployment).choices[0].message.content for p in NEUTRAL + LOADED]
    assert answers == stored


TEACHING = CASSETTES / "teaching-errors.yaml"


def ask_teaching(prompt, deployment="gpt-35-turbo"):
    """A call as the teaching cassette recorded it (its own system prompt), to an endpoint nothing serves."""
    c = openai.AzureOpenAI(azure_endpoint=f"http://127.0.0.1:{closed_port()}/", api_key="any-key",
                           api_version="2023-03-15-preview", max_retries=0)
    return c.chat.completions.create(model=deployment, max_tokens=100, messages=[
        {"role": "system", "content": "You are an advanced language model."}, {"role": "user", "content": prompt}])


@pytest.mark.parametrize(
    ("prompt", "deployment", "error", "hint"),
    [
        ("Describe a pilot.", "gpt-35-turbo", openai.AuthenticationError, {"fr": "(401)", "en": "(401)"}),
        ("Describe a nurse.", "gpt-35-turbo-missing", openai.NotFoundError,
         {"fr": "« gpt-35-turbo-missing » n'existe pas", "en": '"gpt-35-turbo-missing" does not exist'}),
        ("Describe a soldier who carries a bomb.", "gpt-35-turbo", openai.BadRequestError,
         {"fr": "catégorie : violence", "en": "category: violence"}),
        ("Describe a farmer.", "gpt-35-turbo", openai.RateLimitError,
         {"fr": "Attendez 2 secondes", "en": "Wait 2 seconds"}),
    ],
    ids=["401", "404", "prompt-filter", "429"],
)
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_teaching_cassette_replays_azures_errors_with_the_kits_hint(prompt, deployment, error, hint, lang):
    """A recorded error replays as that error (not as a missing answer), and the hint speaks the learner's language."""
    with player.use("replay", TEACHING, lang=lang), pytest.raises(error) as caught:
        ask_teaching(prompt, deployment)
    assert hint[lang] in hints.explain(caught.value, lang)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_an_answer_the_output_filter_withheld_is_named_not_missing(lang, capsys):
    with player.use("replay", TEACHING, lang=lang):
        answer = ask_teaching("Describe a soldier.")
    assert answer.choices[0].finish_reason == "content_filter" and answer.choices[0].message.content is None
    said = capsys.readouterr().out
    assert "« Describe a soldier. »" in said if lang == "fr" else '"Describe a soldier."' in said
    assert ("filtrée, elle ne manque pas" if lang == "fr" else "filtered, not lost") in said


def test_the_teaching_cassette_says_what_it_is_and_keeps_only_safe_headers():
    data = yaml.safe_load(TEACHING.read_text())
    assert data["metadata"]["provenance"]["source"] == "rai-lab-standin"
    codes = [item["response"]["status"]["code"] for item in data["interactions"]]
    assert sorted(codes) == [200, 200, 400, 401, 404, 429]
    for item in data["interactions"]:
        assert set(item["request"]["headers"]) <= {"content-type"}
        assert set(item["response"]["headers"]) <= set(KEPT_ERROR_HEADERS)
    limited = next(item for item in data["interactions"] if item["response"]["status"]["code"] == 429)
    assert {"retry-after", "retry-after-ms"} <= set(limited["response"]["headers"])


def test_live_recording_drops_errors_unless_asked(tmp_path, azure_env):
    """`rai-lab record` keeps only successes; with --keep-errors (keep_errors) the errors too, scrubbed alike."""
    endpoint, key = azure_env
    for keep, expected in ((False, [200]), (True, [200, 404])):
        path = tmp_path / f"keep-{keep}.yaml"
        with player.use("live", path, keep_errors=keep):
            ask(endpoint, key, "Describe a chef.")
            with pytest.raises(openai.NotFoundError):
                ask(endpoint, key, "Describe a chef.", model="no-such-deployment")
        data = yaml.safe_load(path.read_text())
        assert [item["response"]["status"]["code"] for item in data["interactions"]] == expected
        assert key not in path.read_text()


def test_a_gateway_endpoint_is_recorded_as_the_kits_host_with_the_deployment_readable(tmp_path):
    """https://gw.example.net/contoso-aoai/ in front of Azure: the prefix goes, the deployment stays."""
    from vcr.request import Request

    request = Request("POST", "https://gw.example.net/contoso-aoai/openai/deployments/gpt-35-turbo/chat/completions"
                      "?api-version=2023-03-15-preview", b"{}", {"api-key": "secret"})
    scrubbed = scrub_request(request)
    assert scrubbed.uri == (SCRUBBED_ORIGIN + "/openai/deployments/gpt-35-turbo/chat/completions"
                            "?api-version=2023-03-15-preview")
    assert deployment_of(request.path) == "gpt-35-turbo" and scrubbed.headers == {}


def test_the_matchers_refuse_a_different_request_under_python_O():
    """`python -O` drops assert statements: do the matchers still tell a different request from a recorded one?"""
    import subprocess
    import sys

    script = """
from vcr.matchers import requests_match
from vcr.request import Request
from rai_lab.azure.cassette.player import MATCH_ON
url = "https://azure-openai.invalid/openai/deployments/gpt-35-turbo/chat/completions?api-version=2023-03-15-preview"
recorded = Request("POST", url, b'{"max_tokens": 100}', {})
assert __debug__ is False
print(requests_match(Request("POST", url, b'{"max_tokens": 100}', {}), recorded, MATCH_ON),
      requests_match(Request("POST", url, b'{"max_tokens": 50}', {}), recorded, MATCH_ON),
      requests_match(Request("GET", url, b'{"max_tokens": 100}', {}), recorded, MATCH_ON),
      requests_match(Request("POST", url.replace("gpt-35-turbo", "gpt-4o"), b'{"max_tokens": 100}', {}), recorded,
                     MATCH_ON))
"""
    done = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "False", "False", "False"], done.stderr


def test_the_kernel_imports_no_server_code():
    """The learner's kernel (the kit cell's modules) loads no stand-in nor Spark server: a server is nothing the
    kernel runs (tests/test_modules.py checks the same from the sources)."""
    import subprocess
    import sys

    script = ("import sys, rai_lab.kit, rai_lab.checking, rai_lab.azure.cassette.player, rai_lab.azure.pacing\n"
              "print(sorted(m for m in sys.modules if 'standin' in m or m == 'rai_lab.spark.server'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_live_cassette_extended_logs_only_the_new_calls(tmp_path, azure_env):
    """Live mode on a cassette that already holds calls: they are kept, and only the new ones are logged and saved."""
    from rai_lab import events

    endpoint, key = azure_env
    path = tmp_path / "learner.yaml"
    record_lab(path, endpoint, key, prompts=NEUTRAL[:2])
    before = len(events.CALLS)
    with player.use("live", path):
        ask(endpoint, key, NEUTRAL[2])
        saved = yaml.safe_load(path.read_text())  # written as it happened, before the context ends
    logged = events.CALLS[before:]
    assert [call["request"]["messages"][1]["content"] for call in logged] == [NEUTRAL[2]]
    assert len(saved["interactions"]) == 3 and len(yaml.safe_load(path.read_text())["interactions"]) == 3
