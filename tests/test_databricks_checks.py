"""The visible checks of the Databricks notebooks (databricks/rai_lab_checks.py), run here as a cluster would run them:
without the kit, the learner's code calling a real openai client (against the rai-lab stand-in)."""

from __future__ import annotations

import importlib.util
import sys

import openai
import pytest
from conftest import LOADED, NEUTRAL, ROOT
from openai.resources.chat.completions import Completions

import make_submissions as subs
from rai_lab import databricks, databricks_checks, evidence

pytestmark = pytest.mark.http

CHECKS = ["env_key_set", "env_endpoint_https", "env_api_version", "calls_ten_made", "calls_prompts_in_order",
          "calls_system_prompt", "calls_deployment_max_tokens", "answers_lists", "neutral_df_built",
          "bonus_samples_baseline"]


@pytest.fixture
def checks_module(monkeypatch):
    """databricks/rai_lab_checks.py, loaded from the file the bundle syncs; the openai patch it makes is undone."""
    monkeypatch.setattr(Completions, "create", Completions.create)
    spec = importlib.util.spec_from_file_location("rai_lab_checks_under_test", ROOT / "databricks" / "rai_lab_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "rai_lab" not in module.__dict__ and not any(
        line.startswith(("import rai_lab", "from rai_lab")) for line in (ROOT / "databricks" / "rai_lab_checks.py").read_text().splitlines())
    return module


def learner(azure_env, checks, code: str, monkeypatch) -> dict:
    """The learner's namespace after `code` ran with a client of the stand-in (the variables say a real resource)."""
    endpoint, key = azure_env
    checks.record_calls()
    checks.record_calls()  # a second run of the setup cell records nothing twice
    client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version="2023-03-15-preview")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://my-resource.openai.azure.com/")
    namespace = {"client": client, "neutral_input": NEUTRAL, "loaded_input": LOADED, "deployment": "gpt-35-turbo"}
    exec(code, namespace)  # noqa: S102 - the lab's own answer
    return namespace


def test_the_databricks_checks_say_what_the_kits_checks_say(azure_env, checks_module, capsys, monkeypatch):
    """✓ for what the learner did, ○ for a going-further step not started, ✗ with the grader's message (in French)
    for a DataFrame not built; every verdict is the kit's own (rai_lab.evidence.judge) on the same calls."""
    namespace = learner(azure_env, checks_module, subs.GENERATE_OK, monkeypatch)
    assert len(checks_module.CALLS) == 10
    said = {}
    for name in CHECKS:
        capsys.readouterr()
        passed = checks_module.check(name, namespace, "fr")
        said[name] = capsys.readouterr()
        context = {"lang": "fr", "deployment": "gpt-35-turbo", "calls": checks_module.CALLS}
        kit = evidence.judge(name, evidence.snapshot(evidence.load_checks().NEEDS.get(name, ()), namespace), context)
        if name == "bonus_samples_baseline":
            assert passed and said[name].out.startswith("○ bonus") and "pas encore commencé" in said[name].out
        else:
            assert passed == kit["passed"], (name, kit)
            assert kit["message"] in said[name].err
    assert all(said[name].out.startswith("✓ ") for name in CHECKS[:8])
    assert not said["neutral_df_built"].out and said["neutral_df_built"].err.startswith("✗ neutral_df")
    assert "neutral_df" in said["neutral_df_built"].err and "None" in said["neutral_df_built"].err


def test_a_wrong_answer_is_a_cross_in_the_learners_language(azure_env, checks_module, capsys, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "latest")
    namespace = learner(azure_env, checks_module, subs.LOOPS_REVERSED, monkeypatch)
    assert not checks_module.check("env_api_version", namespace, "en")
    assert not checks_module.check("calls_prompts_in_order", namespace, "en")
    err = capsys.readouterr().err
    assert "✗ AZURE_OPENAI_API_VERSION is shaped YYYY-MM-DD[-preview]" in err and "'latest'" in err
    assert "✗ the five neutral then the five loaded prompts, in order" in err


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_each_check_cell_of_the_databricks_notebook_calls_its_check_after_its_step(lang):
    """The Databricks notebook has lab/'s check cells where lab/ has them (their first line, then rai_lab_checks),
    and the cell that loads rai_lab_checks before any call is made."""
    from conftest import LAB
    import nbformat

    nb = nbformat.read(LAB / f"responsible-ai-{lang}" / "responsible_ai.ipynb", as_version=4)
    text = (ROOT / "databricks" / f"responsible-ai-{lang}" / "responsible_ai.py").read_text(encoding="utf-8")
    cells = [source for kind, source in databricks.from_source(text) if kind == "code"]
    checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]
    for cell in checks:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        expected = databricks_checks.check_cell(cell.source, grade_id, lang)
        assert expected in cells and expected.splitlines()[0] == cell.source.splitlines()[0]
    assert cells.index(databricks_checks.SETUP) < next(i for i, c in enumerate(cells) if "client = AzureOpenAI(" in c)
    # the module is the generated one, current (`rai-lab release` writes it)
    assert (ROOT / "databricks" / "rai_lab_checks.py").read_text(encoding="utf-8") == databricks_checks.module()


def test_the_setup_cell_says_what_to_do_when_the_module_is_not_beside_the_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "databricks" not in p])
    namespace: dict = {}
    exec(databricks_checks.SETUP, namespace)  # noqa: S102 - our own cell
    assert namespace["rai_lab_checks"] is None
    assert "import the whole databricks/ folder" in capsys.readouterr().out
    exec(databricks_checks.check_cell("# graded check: env_key_set (1 point)", "env_key_set", "en"), namespace)  # noqa: S102
