"""Build the sample class under tests/submissions/: one submission per case the grader must handle.

Run it when the lab changes (`.venv/bin/python tests/make_submissions.py`); tests/grading/test_grading.py
holds each sample's exact expected score. Learners' own cassettes are recorded live from the
rai-lab stand-in through the kit's live path, so they say so in their provenance.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rai_lab import runner  # noqa: E402
from rai_lab.azure.cassette import player  # noqa: E402
from rai_lab.azure.cassette.calls import answers  # noqa: E402
from rai_lab.azure.cassette.files import load_safely  # noqa: E402
from conftest import LOADED, NEUTRAL, SYSTEM_PROMPT  # noqa: E402 - tests/ is this script's folder

OUT = ROOT / "tests" / "submissions"
FAKE_KEY = "0123456789abcdef0123456789abcdef"  # shaped like a classic Azure key; not a real one

ENV_OK = '''import os

os.environ["AZURE_OPENAI_API_KEY"] = "any-value-in-replay-mode"
os.environ["AZURE_OPENAI_ENDPOINT"] = "https://my-resource.openai.azure.com/"
os.environ["AZURE_OPENAI_API_VERSION"] = "2023-03-15-preview"'''


GENERATE_OK = f'''system_prompt = "{SYSTEM_PROMPT}"

neutral_answers=[]
loaded_answers=[]

for row in neutral_input:
    completion = client.chat.completions.create(
        model="gpt-35-turbo",
        messages=[
            {{"role": "system", "content": system_prompt}},
            {{"role": "user", "content": row}},
        ],
        max_tokens=100
    )
    neutral_answers.append(completion.choices[0].message.content)

for row in loaded_input:
    completion = client.chat.completions.create(
        model="gpt-35-turbo",
        messages=[
            {{"role": "system", "content": system_prompt}},
            {{"role": "user", "content": row}},
        ],
        max_tokens=100
    )
    loaded_answers.append(completion.choices[0].message.content)'''

DATAFRAMES_OK = '''from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()

neutral_df = spark.createDataFrame([(answer,) for answer in neutral_answers], ["neutral_answer"])
loaded_df = spark.createDataFrame([(answer,) for answer in loaded_answers], ["loaded_answer"])

display(neutral_df)
display(loaded_df)'''

LOOPS_REVERSED = GENERATE_OK.split("for row in neutral_input:")[0] + (
    "for row in loaded_input:" + GENERATE_OK.split("for row in loaded_input:")[1]
    + "\n\nfor row in neutral_input:" + GENERATE_OK.split("for row in neutral_input:")[1].split("for row in loaded_input:")[0].rstrip()
)


def _solution_cell(grade_id: str) -> str:
    """A going-further cell as the solution writes it (the learner copies the code the notebook shows)."""
    nb = nbformat.read(ROOT / "solutions" / "responsible-ai-fr" / "responsible_ai.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


SAMPLING_OK = _solution_cell("gf_sampling")
REPRESENTATION_OK = _solution_cell("gf_representation")


def released(lang: str = "fr"):
    return nbformat.read(ROOT / "lab" / f"responsible-ai-{lang}" / "responsible_ai.ipynb", as_version=4)


def filled(lang: str = "fr", env: str = ENV_OK, generate: str = GENERATE_OK, frames: str = DATAFRAMES_OK,
           sampling: str | None = SAMPLING_OK, representation: str | None = REPRESENTATION_OK):
    """The released notebook with its cells filled; the going-further ones stay stubs when None."""
    nb = released(lang)
    sources = {"env_vars": env, "generate_answers": generate, "build_dataframes": frames,
               "gf_sampling": sampling, "gf_representation": representation}
    for cell in nb.cells:
        source = sources.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if source is not None:
            cell.source = source
    return nb


def exercise_only(**cells):
    """A learner who did the exercise and skipped the optional going-further part."""
    return filled(sampling=None, representation=None, **cells)


def write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def own_cassette(path: Path, calls: list[dict]) -> None:
    """Record the given chat calls live from a stand-in, as a learner's live run would."""
    with runner.standin_endpoint() as (endpoint, key):
        client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version="2023-03-15-preview")
        with player.use("live", path, fresh=True):
            for call in calls:
                client.chat.completions.create(**call)


def lab_calls(system: bool = True, max_tokens: int = 100) -> list[dict]:
    prompts = NEUTRAL + LOADED
    head = [{"role": "system", "content": SYSTEM_PROMPT}] if system else []
    return [{"model": "gpt-35-turbo", "messages": [*head, {"role": "user", "content": p}], "max_tokens": max_tokens}
            for p in prompts]


def reference_answers(deployment: str = "gpt-35-turbo") -> tuple[list[str], list[str]]:
    """The lab's answers as the reference cassette replays them: (neutral, loaded), in the prompts' order."""
    data = load_safely(ROOT / "cassettes" / "responsible-ai" / f"{deployment}.yaml")
    found: dict[str, str] = {}
    for interaction in data["interactions"]:
        request = json.loads(interaction["request"]["body"])
        messages = request.get("messages") or []
        if request.get("n") is None and [m["content"] for m in messages if m["role"] == "system"] == [SYSTEM_PROMPT]:
            found.setdefault(messages[-1]["content"], answers(interaction["response"])[0])
    return [found[p] for p in NEUTRAL], [found[p] for p in LOADED]


def sampled_calls() -> list[dict]:
    """The going-further calls the notebook makes (its setup cell's samples, temperature and prompts)."""
    setup = nbformat.read(ROOT / "solutions" / "responsible-ai-fr" / "responsible_ai.ipynb", as_version=4)
    code = next(c.source for c in setup.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "gf_setup")
    namespace = {"system_prompt": SYSTEM_PROMPT}
    exec("samples =" + code.split("samples =", 1)[1], namespace)  # noqa: S102 - our own cell, from its parameters on
    calls = []
    for system in (SYSTEM_PROMPT, namespace["mitigation_prompt"]):
        for prompt in NEUTRAL + LOADED + namespace["mirrored_input"]:
            calls.append({"model": "gpt-35-turbo", "messages": [{"role": "system", "content": system},
                                                                {"role": "user", "content": prompt}],
                          "max_tokens": 100, "n": namespace["samples"], "temperature": namespace["temperature"]})
    return calls


def build() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    write(filled(), OUT / "solution.ipynb")
    write(released(), OUT / "unfilled.ipynb")
    write(exercise_only(), OUT / "exercise-only.ipynb")
    # going further, partly right
    write(filled(sampling=SAMPLING_OK.replace('sample_answers("mitigated", mitigation_prompt)\n', "")),
          OUT / "no-mitigation-run.ipynb")
    write(filled(representation=REPRESENTATION_OK.replace(
        'samples_df.where(F.col("prompt").isin(neutral_input))', "samples_df")), OUT / "representation-all-prompts.ipynb")
    # one check failed on its own
    write(filled(env=ENV_OK.replace('"any-value-in-replay-mode"', '"your_openai_api_key"')), OUT / "key-placeholder.ipynb")
    write(filled(env=ENV_OK.replace("https://my-resource", "http://my-resource")), OUT / "endpoint-http.ipynb")
    write(filled(env=ENV_OK.replace('"2023-03-15-preview"', '"latest"')), OUT / "api-version-latest.ipynb")
    write(filled(generate=LOOPS_REVERSED), OUT / "loaded-first.ipynb")
    write(filled(generate=GENERATE_OK.replace("for row in loaded_input:", "for row in loaded_input[:4]:")), OUT / "nine-calls.ipynb")
    write(filled(generate=GENERATE_OK.replace(".message.content)", ".message.content.upper())")), OUT / "answers-uppercased.ipynb")
    write(filled(frames=DATAFRAMES_OK.replace('["neutral_answer"]', '["answer"]')), OUT / "neutral-column-renamed.ipynb")
    write(filled(frames=DATAFRAMES_OK.replace(
        'loaded_df = spark.createDataFrame([(answer,) for answer in loaded_answers], ["loaded_answer"])',
        'import pandas as pd\nloaded_df = pd.DataFrame({"loaded_answer": loaded_answers})')), OUT / "loaded-pandas.ipynb")
    no_system = OUT / "no-system-prompt"
    write(exercise_only(generate=GENERATE_OK.replace('            {"role": "system", "content": system_prompt},\n', "")),
          no_system / "responsible_ai.ipynb")
    own_cassette(no_system / "rai-lab-live-gpt-35-turbo.yaml", lab_calls(system=False))
    short = OUT / "max-tokens-50"
    write(exercise_only(generate=GENERATE_OK.replace("max_tokens=100", "max_tokens=50")), short / "responsible_ai.ipynb")
    own_cassette(short / "rai-lab-live-gpt-35-turbo.yaml", lab_calls(max_tokens=50))
    # bad or hostile submissions
    (OUT / "invalid-json.ipynb").write_text('{"cells": [ this is not JSON\n', encoding="utf-8")
    write(filled(frames="while True:\n    pass"), OUT / "endless-loop.ipynb")
    write(filled(frames="import os\nos._exit(1)"), OUT / "kernel-crash.ipynb")
    write(filled(frames=DATAFRAMES_OK + '\nprint("x" * 5_000_000)'), OUT / "huge-output.ipynb")
    write(filled(generate='import urllib.request\nurllib.request.urlopen("https://example.com", timeout=5)\n' + GENERATE_OK),
          OUT / "tries-network.ipynb")
    write(filled(env=ENV_OK.replace('"any-value-in-replay-mode"', f'"{FAKE_KEY}"')), OUT / "pasted-key.ipynb")
    write(filled(frames=DATAFRAMES_OK + '\nimport os\nprint({k: v for k, v in os.environ.items() if "TOKEN" in k or k.startswith("AZURE")})'),
          OUT / "prints-environment.ipynb")
    nb = filled()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "calls_ten_made":
            cell.source += "\npass  # edited by the learner"
    write(nb, OUT / "edited-check-cell.ipynb")
    nb = filled()
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "loaded_df_built"]
    write(nb, OUT / "deleted-check-cell.ipynb")
    # the shapes a submission can come in
    folder = OUT / "with-own-cassette"
    write(filled(), folder / "responsible_ai.ipynb")
    own_cassette(folder / "rai-lab-live-gpt-35-turbo.yaml", lab_calls() + sampled_calls())
    text = (folder / "rai-lab-live-gpt-35-turbo.yaml").read_text()
    leaked = text.replace("      content-type:\n      - application/json\n    method: POST",
                          f"      content-type:\n      - application/json\n      api-key:\n      - {FAKE_KEY}\n    method: POST", 1)
    (folder / "rai-lab-live-gpt-35-turbo.yaml").write_text(leaked)
    unsafe = OUT / "unsafe-cassette"
    write(filled(), unsafe / "responsible_ai.ipynb")
    (unsafe / "cassette.yaml").write_text("interactions: !!python/object/apply:os.system ['touch /tmp/rai-lab-pwned']\nversion: 1\n")
    with zipfile.ZipFile(OUT / "zipped.zip", "w") as zf:
        zf.writestr("zipped/responsible_ai.ipynb", nbformat.writes(filled()))
    with zipfile.ZipFile(OUT / "path-traversal.zip", "w") as zf:
        zf.writestr("../../escaped.ipynb", nbformat.writes(filled()))
    english = ROOT / "tests" / "submissions-en"
    shutil.rmtree(english, ignore_errors=True)
    write(filled("en"), english / "solution.ipynb")
    write(filled("en", env=ENV_OK.replace('"2023-03-15-preview"', '"latest"')), english / "api-version-latest.ipynb")
    print(json.dumps(sorted(p.name for p in OUT.iterdir())))


if __name__ == "__main__":
    build()
