"""The authored and released notebooks follow the exercise, in both languages, and are saved clean."""

from __future__ import annotations

import re
import subprocess

import nbformat
import pytest
from conftest import LAB, LOADED, NEUTRAL, ROOT, SOLUTIONS, SYSTEM_PROMPT

LANGS = {"fr": "responsible-ai-fr", "en": "responsible-ai-en"}
HEADINGS = {
    "fr": [
        "IA responsable avec des grands modèles de langage utilisant Azure Databricks et Azure OpenAI",
        "Avant de commencer",
        "Provisionner une ressource Azure OpenAI",
        "Déployer le modèle nécessaire",
        "Provisionner un espace de travail Azure Databricks",
        "Créer un cluster",
        "Installer les bibliothèques nécessaires",
        "Créer une nouvelle instance Notebook",
        "Implémenter des pratiques d’IA responsable",
        "Aller plus loin\u00a0: mesurer le biais, l’atténuer, mesurer à nouveau",
        "Nettoyage",
    ],
    "en": [
        "Responsible AI with Large Language Models using Azure Databricks and Azure OpenAI",
        "Before you start",
        "Provision an Azure OpenAI resource",
        "Deploy the required model",
        "Provision an Azure Databricks workspace",
        "Create a cluster",
        "Install required libraries",
        "Create a new notebook",
        "Implement Responsible AI Practices",
        "Going further: measure the bias, mitigate it, measure again",
        "Clean up",
    ],
}
# The seed's settings a learner must find beside the exercise.
SETTINGS = {
    "fr": ["USA Est 2", "Centre-Nord des États-Unis", "Suède Centre", "Suisse Ouest", "Standard S0",
           "5\u00a0000", "Standard_D4ds_v5", "nœud unique", "*20*\u00a0**minutes d’inactivité**", "openai==1.42.0",
           "2023-03-15-preview", "13.3 LTS", "Spark\u00a0> **3.4***", "*Premium* ou *Évaluation*"],
    "en": ["East US 2", "North Central US", "Sweden Central", "Switzerland West", "Standard S0",
           "5K", "Standard_D4ds_v5", "Single Node", "*20* **minutes of inactivity**", "openai==1.42.0",
           "2023-03-15-preview", "13.3 LTS", "Spark > **3.4***", "*Premium* or *Trial*"],
}
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info", "rai_lab"}  # rai_lab: {"lang": ...}
ALLOWED_CELL_METADATA = {"nbgrader", "tags", "deletable", "editable"}
TO_FILL = ["env_vars", "generate_answers", "build_dataframes", "gf_sampling", "gf_representation"]


def read(folder, lang):
    return nbformat.read(folder / LANGS[lang] / "responsible_ai.ipynb", as_version=4)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.mark.parametrize("folder", [SOLUTIONS, LAB], ids=["solutions", "lab"])
def test_french_and_english_share_their_code_cells(folder):
    """Are the code cells of the two languages the same cells, word for word?"""
    fr, en = read(folder, "fr"), read(folder, "en")
    # The released stubs are the only difference, on purpose: they speak the learner's language.
    fr_code = [c.source.replace("# VOTRE CODE ICI", "# YOUR CODE HERE") for c in code_cells(fr)]
    assert fr_code == [c.source for c in code_cells(en)] != []
    assert [grade_id(c) for c in code_cells(fr)] == [grade_id(c) for c in code_cells(en)]


@pytest.mark.parametrize("lang", LANGS)
def test_markdown_follows_the_exercise_sections_in_order(lang):
    """Can a learner hold the notebook beside the exercise: its headings, in its order?"""
    nb = read(SOLUTIONS, lang)
    headings = [
        re.sub(r"^#+\s*", "", line)
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if re.match(r"^#{1,2} ", line)
    ]
    assert headings == HEADINGS[lang]


@pytest.mark.parametrize("lang", LANGS)
def test_markdown_keeps_the_exercise_settings(lang):
    text = "\n".join(cell.source for cell in read(SOLUTIONS, lang).cells if cell.cell_type == "markdown")
    missing = [setting for setting in SETTINGS[lang] if setting not in text]
    assert missing == []


def test_code_is_the_exercises_code():
    """The seed's prompts verbatim, its system prompt, max_tokens=100, its DataFrame code."""
    cells = {grade_id(c): c.source for c in code_cells(read(SOLUTIONS, "fr"))}
    namespace: dict = {}
    exec(cells["sample_inputs"], namespace)  # noqa: S102 - our own committed cell
    assert namespace["neutral_input"] == NEUTRAL
    assert namespace["loaded_input"] == LOADED
    generate = cells["generate_answers"]
    assert f'system_prompt = "{SYSTEM_PROMPT}"' in generate
    assert generate.count("client.chat.completions.create(") == 2
    assert generate.count("max_tokens=100") == 2
    assert "neutral_answers.append(completion.choices[0].message.content)" in generate
    frames = cells["build_dataframes"]
    assert "spark = SparkSession.builder.getOrCreate()" in frames
    assert 'spark.createDataFrame([(answer,) for answer in neutral_answers], ["neutral_answer"])' in frames
    assert 'spark.createDataFrame([(answer,) for answer in loaded_answers], ["loaded_answer"])' in frames
    assert "display(neutral_df)" in frames and "display(loaded_df)" in frames
    assert "client = AzureOpenAI(" in cells["create_client"]
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION"):
        assert f'os.environ["{name}"]' in cells["env_vars"]


@pytest.mark.parametrize("folder", [SOLUTIONS, LAB], ids=["solutions", "lab"])
def test_first_code_cell_holds_the_papermill_parameters(folder):
    """First the Databricks install cell (nothing elsewhere), then the parameters, then the kit."""
    for lang in LANGS:
        install, first, second = code_cells(read(folder, lang))[:3]
        assert grade_id(install) == "kit_databricks" and "DATABRICKS_RUNTIME_VERSION" in install.source
        assert first.metadata["tags"] == ["parameters"]
        assert {"mode", "deployment", "cassette", "tpm"} <= set(re.findall(r"^(\w+) =", first.source, re.M))
        assert 'mode = "replay"' in first.source and 'deployment = "gpt-35-turbo"' in first.source
        # Without rai_lab installed (Databricks) the kit cell must not fail.
        assert "except ImportError" in second.source and "rai_lab.start(" in second.source


def test_kit_cells_run_without_the_kit_installed(tmp_path):
    """In Databricks, where rai_lab is not installed, the install, parameter and kit cells run and do
    nothing but note the cluster's Azure OpenAI variables."""
    cells = code_cells(read(LAB, "fr"))[:3]
    script = tmp_path / "cells.py"
    script.write_text("import sys\nsys.modules['rai_lab'] = None\n" + "\n".join(c.source for c in cells)
                      + "\nassert rai_lab is None and mode == 'replay' and set(cluster_azure) == "
                        "{'AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT', 'AZURE_OPENAI_API_VERSION'}\n")
    done = subprocess.run(["python3", "-I", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def committed_notebooks():
    """The authored and released notebooks (tests/submissions holds learners' files, outputs and all)."""
    listed = subprocess.run(["git", "ls-files", "solutions/*.ipynb", "lab/*.ipynb"], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    # JupyterLab's checkpoints of a learner working in lab/ (make jupyter) are theirs, not the kit's.
    found = [str(p.relative_to(ROOT)) for folder in (SOLUTIONS, LAB) for p in folder.rglob("*.ipynb")
             if ".ipynb_checkpoints" not in p.parts]
    return sorted(set(listed) | set(found))


@pytest.mark.parametrize("path", committed_notebooks())
def test_notebooks_are_saved_clean(path):
    """No outputs, no execution counts, only allow-listed metadata."""
    nb = nbformat.read(ROOT / path, as_version=4)
    nbformat.validate(nb)
    assert set(nb.metadata) <= ALLOWED_NOTEBOOK_METADATA
    for cell in nb.cells:
        assert set(cell.metadata) <= ALLOWED_CELL_METADATA, cell.id
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


def test_there_are_notebooks_to_check():
    assert len(committed_notebooks()) == 4


@pytest.mark.parametrize(("lang", "stub"), [("fr", "# VOTRE CODE ICI"), ("en", "# YOUR CODE HERE")])
def test_released_notebook_shows_which_cells_to_fill(lang, stub):
    """The learner sees exactly the cells to fill (three, and two going further), with a stub in their language."""
    nb = read(LAB, lang)
    to_fill = [grade_id(c) for c in code_cells(nb) if stub in c.source]
    assert to_fill == TO_FILL
    assert all("raise NotImplementedError()" in c.source for c in code_cells(nb) if grade_id(c) in TO_FILL)
    text = nbformat.writes(nb)
    assert "BEGIN SOLUTION" not in text and "replay-mode-no-real-key" not in text
    # Every check is visible: a locked cell that runs the grader's check for its step (no hidden test left).
    assert "HIDDEN TESTS" not in text
    graded = {grade_id(c) for c in code_cells(nb) if c.metadata["nbgrader"].get("grade")}
    assert len(graded) == 14  # the exercise's ten checks and four bonus ones
    for cell in code_cells(nb):
        if grade_id(cell) in graded:
            assert f'checking.check("{grade_id(cell)}", globals())' in cell.source
    locked = {grade_id(c) for c in code_cells(nb) if c.metadata.get("editable") is False}
    assert locked == {"kit_databricks", "kit_start", "create_client", "sample_inputs"} | graded


@pytest.mark.parametrize("folder", [SOLUTIONS, LAB], ids=["solutions", "lab"])
def test_only_the_closing_illustration_is_skipped_when_grading(folder):
    """The tag grading skips (graders/nbgrader_config.py) marks one cell, after every check."""
    for lang in LANGS:
        cells = code_cells(read(folder, lang))
        tagged = [i for i, c in enumerate(cells) if "rai-lab-illustration" in c.metadata.get("tags", [])]
        assert [grade_id(cells[i]) for i in tagged] == ["gf_compare"]
        assert not any(c.metadata.get("nbgrader", {}).get("grade") for c in cells[tagged[0]:])


def test_grade_ids_name_what_they_are():
    for lang in LANGS:
        for cell in code_cells(read(SOLUTIONS, lang)):
            assert re.fullmatch(r"[a-z]+(_[a-z]+)+", grade_id(cell) or ""), grade_id(cell)
