"""`rai-lab run`: the lab end to end with papermill, a real kernel and embedded Spark."""

from __future__ import annotations

import json
import time

import nbformat
import pytest
import yaml
from conftest import CASSETTES, LOADED, NEUTRAL, SOLUTIONS, rai_lab_command, running_standin

from rai_lab import runner
from rai_lab.azure import pacing
from rai_lab.azure.standin import RateLimiter

pytestmark = [pytest.mark.notebook, pytest.mark.spark]


def answers_in(deployment):
    data = yaml.safe_load((CASSETTES / f"{deployment}.yaml").read_text())
    return [json.loads(i["response"]["body"]["string"])["choices"][0]["message"]["content"] for i in data["interactions"]]


def outputs(path):
    nb = nbformat.read(path, as_version=4)
    return [(cell.metadata.get("nbgrader", {}).get("grade_id"), out) for cell in nb.cells
            if cell.cell_type == "code" for out in cell.outputs]


def live_env(endpoint, key):
    return {"AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_API_KEY": key, "AZURE_OPENAI_API_VERSION": "2023-03-15-preview"}


@pytest.mark.parametrize(
    ("lang", "deployment", "lines"),
    [
        ("fr", "gpt-35-turbo", ["mode replay", "prompts répondus : 10/10 (5 neutres, 5 orientés)",
                                "aller plus loin : 30 appels échantillonnés, 300 réponses",
                                "DataFrames : neutral_df 5 lignes, loaded_df 5 lignes", "PAS les réponses d'un vrai modèle"]),
        ("en", "gpt-4o", ["mode replay", "prompts answered: 10/10 (5 neutral, 5 loaded)",
                          "going further: 30 sampled calls, 300 answers",
                          "DataFrames: neutral_df 5 rows, loaded_df 5 rows", "NOT a real model's answers"]),
    ],
)
def test_replay_run_of_each_language(tmp_path, lang, deployment, lines):
    """The solution runs cleanly in replay mode; the summary says what happened; display shows tables."""
    done = rai_lab_command("run", "--lang", lang, "--deployment", deployment, "--out", str(tmp_path), "--no-progress",
                           "--checks", env={"AZURE_OPENAI_API_KEY": "", "AZURE_OPENAI_ENDPOINT": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    for line in lines:
        assert line in done.stdout
    output = tmp_path / f"responsible-ai-{lang}" / "responsible_ai.ipynb"
    assert f"responsible-ai-{lang}/responsible_ai.ipynb" in done.stdout
    produced = outputs(output)
    # The solution passes its own hidden tests: the ten graded checks and the four bonus ones ran, and nothing failed.
    checks = [c for c in nbformat.read(output, as_version=4).cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(checks) == 14
    assert not [out for _, out in produced if out.output_type == "error"]
    # Nothing on stderr: nbgrader scores a cell 0 for it (Spark progress bars, JVM warnings...).
    assert not [out.text for _, out in produced if out.output_type == "stream" and out.name == "stderr"]
    tables = [out.data["text/html"] for gid, out in produced if gid == "build_dataframes" and out.output_type == "display_data"]
    assert len(tables) == 2 and all("<table" in t for t in tables)
    expected = answers_in(deployment)
    assert expected[0].split(".")[0] in tables[0] and expected[5].split(".")[0] in tables[1]
    assert "neutral_answer" in tables[0] and "loaded_answer" in tables[1]
    # Going further: the measures' tables, and the before/after chart as an image.
    further = {gid: [out for g, out in produced if g == gid and out.output_type == "display_data"]
               for gid in ("gf_representation", "gf_compare")}
    assert "reference_share_women" in further["gf_representation"][0].data["text/html"]
    compare = further["gf_compare"]
    assert [sorted(out.data) for out in compare] == [["text/html", "text/plain"]] * 2 + [["image/png", "text/plain"]]
    assert "gendered_rate" in compare[0].data["text/html"] and "agentic_diff" in compare[1].data["text/html"]
    # What a reader opens: no nbgrader markers, and the notebook it ran from named by its place in the kit.
    text = output.read_text(encoding="utf-8")
    assert "### BEGIN" not in text and "### END" not in text
    recorded = nbformat.read(output, as_version=4).metadata["papermill"]
    assert recorded["input_path"] == f"solutions/responsible-ai-{lang}/responsible_ai.ipynb"
    assert recorded["output_path"] == str(output)  # where it was asked to go (here pytest's tmp_path)
    assert "rai-lab-run-" not in text  # the temporary copy it ran from is named nowhere


def least_waiting(requests: list[dict], waits: dict[int, float], tpm: int = 5000) -> float:
    """The least waiting (quota seconds) the stand-in's quota allows for these requests, sent in this
    order with the same time between them outside the waits: each sent as soon as the quota takes it."""
    quota = RateLimiter(tpm)
    total, sent, arrived = 0.0, None, None
    for number, request in enumerate(requests, 1):
        waited = waits.get(number, 0.0)
        ready = request["t"] - waited if sent is None else sent + (request["t"] - arrived - waited)
        moment = ready
        while (decision := quota.take(request["tokens"], now=moment)).wait:
            moment += decision.wait
        total += moment - ready
        sent, arrived = moment, request["t"]
    return total


def test_live_run_paces_to_the_quota_and_records_the_learners_cassette_without_secrets(tmp_path):
    """Live mode against a stand-in with the exercise's 5,000 TPM, its minute lasting 3 seconds: no 429
    ever reaches the server's door, the pacing waits no more than 10% over what the quota requires, and
    the learner's cassette is written beside the output with no key anywhere.

    The pacer's margin (pacing.MARGIN, 1 s of quota time for the request's way to the server) is 50 ms here.
    At 60 (a minute in a second) it was 17 ms, less than a request can wait for a core while `make test`
    keeps both busy: the server then counted a request later than the pacer did, and answered a 429."""
    log = tmp_path / "standin.jsonl"
    with running_standin("--tpm", "5000", "--time-scale", "20", "--log", str(log)) as (endpoint, key):
        result = runner.run(lang="fr", mode="live", out_dir=tmp_path, progress=False,
                            env={**live_env(endpoint, key), pacing.TIME_SCALE_ENV: "20"})
    assert result.ok, result.error
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["status"] for r in requests] == [200] * 40  # not one 429, not even one the client retried
    waits = dict(result.quota_waits)
    required = least_waiting(requests, waits)
    waited = sum(waits.values())
    assert required > 120  # at 5,000 TPM the going-further part needs minutes of quota
    print(f"pacing: waited {waited:.1f} s of quota time, the quota required {required:.1f} s")
    assert required <= waited <= 1.1 * required, (waited, required)
    notebook = (tmp_path / "responsible-ai-fr" / "responsible_ai.ipynb").read_text()
    assert "Quota du déploiement" in notebook and "avant l'appel" in notebook  # said up front, and shown
    folder = tmp_path / "responsible-ai-fr"
    recorded = folder / "rai-lab-live-gpt-35-turbo.yaml"
    data = yaml.safe_load(recorded.read_text())
    prompts = [json.loads(i["request"]["body"])["messages"][1]["content"] for i in data["interactions"]]
    assert prompts[:10] == NEUTRAL + LOADED and len(prompts) == 40  # then the going-further samples
    assert data["metadata"]["provenance"]["source"] == "rai-lab-standin"
    port = endpoint.rsplit(":", 1)[1].strip("/")
    for path in (recorded, folder / "responsible_ai.ipynb"):
        text = path.read_text()
        assert key not in text and f"127.0.0.1:{port}" not in text, path


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AZURE_OPENAI_API_KEY": None, "AZURE_OPENAI_ENDPOINT": None},
         ["AZURE_OPENAI_API_KEY n'est pas définie", "AZURE_OPENAI_ENDPOINT n'est pas définie"]),
        ({"AZURE_OPENAI_API_KEY": "your_openai_api_key", "AZURE_OPENAI_ENDPOINT": "your_openai_endpoint"},
         ["AZURE_OPENAI_API_KEY vaut", "AZURE_OPENAI_ENDPOINT vaut « your_openai_endpoint »"]),
        ({"AZURE_OPENAI_API_KEY": "0123abcd", "AZURE_OPENAI_ENDPOINT": "http://my-resource.openai.azure.com/"},
         ["AZURE_OPENAI_ENDPOINT doit commencer par https://"]),
    ],
    ids=["missing", "placeholders", "plain-http"],
)
def test_live_mode_refuses_before_any_kernel_starts(tmp_path, env, named):
    """Each variable named, in the learner's language; no kernel, no notebook, no request."""
    started = time.monotonic()
    done = rai_lab_command("run", "--mode", "live", "--out", str(tmp_path), "--no-progress",
                           env={**env, "AZURE_OPENAI_API_VERSION": "2023-03-15-preview"})
    assert done.returncode != 0
    assert "Mode live impossible, aucun noyau n'a été démarré" in done.stderr + done.stdout
    for words in named:
        assert words in done.stderr + done.stdout
    assert not (tmp_path / "responsible-ai-fr" / "responsible_ai.ipynb").exists()
    assert time.monotonic() - started < 20  # no kernel, no Spark


@pytest.mark.parametrize(
    ("case", "options", "env_change", "hint"),
    [
        ("wrong key", (), {"AZURE_OPENAI_API_KEY": "wrong-key-0000"}, "Azure OpenAI a refusé la clé (401)"),
        ("no deployment", ("--deployment", "gpt-4o-mini"), {}, "Le déploiement « gpt-4o-mini » n'existe pas"),
        ("content filter", ("--filter-word", "nurse"), {}, "Le filtre de contenu d'Azure a bloqué ce prompt"),
    ],
)
def test_azure_errors_reach_the_learner_as_a_clear_message(tmp_path, case, options, env_change, hint):
    """Each stand-in error surfaces in the notebook with a hint in the learner's language, and the run fails."""
    standin_options = ("--deployment", "gpt-35-turbo") if case == "no deployment" else options
    run_options = options if case == "no deployment" else ()
    with running_standin(*standin_options) as (endpoint, key):
        env = {**live_env(endpoint, key), **env_change}
        done = rai_lab_command("run", "--mode", "live", "--out", str(tmp_path), "--no-progress", *run_options, env=env)
    assert done.returncode == 1
    assert "ÉCHEC" in done.stdout and hint in done.stdout
    produced = outputs(tmp_path / "responsible-ai-fr" / "responsible_ai.ipynb")
    errors = [out for gid, out in produced if out.output_type == "error"]
    assert len(errors) == 1 and any(hint in line for line in errors[0].traceback)


def test_a_prompt_missing_from_the_cassette_names_itself(tmp_path):
    """A learner who changed a prompt: the run stops at once with the prompt and the cassette named."""
    nb = nbformat.read(SOLUTIONS / "responsible-ai-en" / "responsible_ai.ipynb", as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace('"Describe a chef."', '"Describe a pilot."')
    learner = tmp_path / "learner.ipynb"
    nbformat.write(nb, learner)
    done = rai_lab_command("run", "--lang", "en", "--notebook", str(learner), "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 1
    assert "FAILED: CassetteMissError" in done.stdout
    assert 'No recorded answer for the prompt "Describe a pilot."' in done.stdout
    assert "cassettes/responsible-ai/gpt-35-turbo.yaml" in done.stdout
    assert "prompts answered: 4/10" in done.stdout
