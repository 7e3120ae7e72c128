"""Learners who did the lab in Databricks, graded like learners in JupyterLab: one real `rai-lab grade` batch.

Per export format (JUPYTER .ipynb, SOURCE .py, DBC, HTML) a correct, a partial and an unfilled learner, two zips of
exports, a learner whose step marker was edited away and an HTML page that holds no notebook; beside them the
JupyterLab learners with the same answers. Each Databricks learner's row must be the JupyterLab learner's: the same
points for every check, the same score, bonus and status.
"""

from __future__ import annotations

import csv
import io
import tomllib
import zipfile

import nbformat
import pytest
from conftest import LAB, ROOT, rai_lab_command

import databricks_exports as exports
import make_submissions as subs

pytestmark = [pytest.mark.notebook, pytest.mark.spark]

CHECKS = list(tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"])
EXERCISE = {"env_vars": subs.ENV_OK, "generate_answers": subs.GENERATE_OK, "build_dataframes": subs.DATAFRAMES_OK}
ANSWERS = {
    "correct": {**EXERCISE, "gf_sampling": subs.SAMPLING_OK, "gf_representation": subs.REPRESENTATION_OK},
    # the exercise with a wrong API version, and no going further: 14 / 15, bonus 0
    "partial": {**EXERCISE, "env_vars": subs.ENV_OK.replace('"2023-03-15-preview"', '"latest"')},
    "unfilled": {},
}
EXPECTED = {"correct": (15, 4), "partial": (14, 0), "unfilled": (0, 0)}  # the JupyterLab rows' (score, bonus)
FORMATS = ["jupyter", "source", "dbc", "html"]
# What each Databricks learner had imported into the workspace: lab/'s .ipynb, or databricks/'s source file.
IMPORTED = {"jupyter": "ipynb", "source": "source", "dbc": "source", "html": "ipynb"}
# learner: the JupyterLab learner whose row it must equal
SAME_AS = {f"{kind}-{case}": f"lab-{case}" for kind in FORMATS for case in ANSWERS}
SAME_AS.update({"zip-of-source": "lab-correct", "zip-of-dbc": "lab-partial", "marker-gone": "lab-correct",
                "secret-scope": "lab-correct"})
FORMAT_OF = {**{f"{kind}-{case}": kind for kind in FORMATS for case in ANSWERS}, "zip-of-source": "source",
             "zip-of-dbc": "dbc", "marker-gone": "source", "secret-scope": "source"}
# The key read as the kit advises a learner who pasted theirs: from a Databricks secret scope, or with getpass.
SECRET_SCOPE = subs.ENV_OK.replace('"any-value-in-replay-mode"', 'dbutils.secrets.get(scope="azure-openai", key="api-key")')
GETPASS = subs.ENV_OK.replace('"any-value-in-replay-mode"', '__import__("getpass").getpass("Clé Azure OpenAI : ")')


def release():
    return nbformat.read(LAB / "responsible-ai-fr" / "responsible_ai.ipynb", as_version=4)


def build_class(folder) -> None:
    nb = release()
    for case, answers in ANSWERS.items():
        (folder / f"lab-{case}.ipynb").write_text(nbformat.writes(exports.jupyterlab(nb, answers)), encoding="utf-8")
        for kind in FORMATS:
            suffix, raw = exports.export(exports.workspace(nb, answers, IMPORTED[kind]), kind)
            (folder / f"{kind}-{case}{suffix}").write_bytes(raw)
    for name, kind, case in (("zip-of-source", "source", "correct"), ("zip-of-dbc", "dbc", "partial")):
        suffix, raw = exports.export(exports.workspace(nb, ANSWERS[case]), kind)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"{name}/responsible_ai{suffix}", raw)
        (folder / f"{name}.zip").write_bytes(buffer.getvalue())
    # The DataFrames step's marker line deleted: the step maps to the unfilled cell, the learner's code is kept as a
    # cell of theirs right after the answers' step, so it still runs before the checks: the same row as lab-correct.
    cells = [(k, s.split("\n", 1)[1] if s.startswith("# rai-lab step: build_dataframes") else s, t)
             for k, s, t in exports.workspace(nb, ANSWERS["correct"])]
    (folder / "marker-gone.py").write_bytes(exports.as_source(cells))
    secret_scope = {**ANSWERS["correct"], "env_vars": SECRET_SCOPE}
    (folder / "secret-scope.py").write_bytes(exports.export(exports.workspace(nb, secret_scope, "source"), "source")[1])
    getpass = {**ANSWERS["correct"], "env_vars": GETPASS}
    (folder / "lab-getpass.ipynb").write_text(nbformat.writes(exports.jupyterlab(nb, getpass)), encoding="utf-8")
    (folder / "saved-page.html").write_text("<html><body><h1>responsible_ai</h1><pre>import os</pre></body></html>")


def read_grades(out) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once, as an instructor would."""
    folder = tmp_path_factory.mktemp("class")
    build_class(folder)
    out = tmp_path_factory.mktemp("grades")
    done = rai_lab_command("grade", str(folder), "--assignment", "responsible-ai-fr", "--out", str(out),
                           "--work", str(tmp_path_factory.mktemp("work")), "--cell-timeout", "30", "--timeout", "400",
                           "--no-progress", timeout=2400)
    assert done.returncode == 0, done.stdout + done.stderr
    return read_grades(out), done.stdout


def checks_of(row: dict) -> dict[str, float]:
    return {name: float(row[name]) for name in CHECKS}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_the_jupyterlab_learners_get_their_grade(graded, case):
    """The rows the Databricks learners are compared with are the lab's real grades, not two zeros."""
    row = graded[0][f"lab-{case}"]
    assert (float(row["score"]), float(row["bonus"]), row["status"]) == (*EXPECTED[case], "graded")


@pytest.mark.parametrize("learner", sorted(SAME_AS))
def test_a_databricks_learner_is_graded_like_the_jupyterlab_learner(graded, learner):
    """Same points for every check, same score, bonus and status; the note says which export was read."""
    rows = graded[0]
    mine, theirs = rows[learner], rows[SAME_AS[learner]]
    assert mine["status"] == theirs["status"] == "graded"
    assert checks_of(mine) == checks_of(theirs) and len(checks_of(mine)) == 14
    assert (mine["score"], mine["bonus"]) == (theirs["score"], theirs["bonus"])
    label = {"jupyter": "JUPYTER (.ipynb)", "source": "SOURCE (.py)", "dbc": "DBC (.dbc)", "html": "HTML (.html)"}
    assert f"Remise lue comme un export Databricks ({label[FORMAT_OF[learner]]})" in mine["notes"]


def test_a_step_whose_marker_was_edited_away_is_named(graded):
    notes = graded[0]["marker-gone"]["notes"]
    assert "Étape « DataFrames Spark » (build_dataframes) introuvable dans votre export" in notes


def test_an_html_page_without_a_notebook_gets_a_row_and_the_reason(graded):
    row = graded[0]["saved-page"]
    assert (row["status"], float(row["score"])) == ("not run", 0)
    assert "saved-page.html ne contient pas de notebook lisible" in row["notes"] and "File > Export" in row["notes"]


def test_a_key_read_with_getpass_scores_as_a_key_typed_in(graded):
    """Graded, the kernel has no keyboard: getpass answers a stand-in secret (as dbutils.secrets.get does for the
    Databricks learner, secret-scope), so the key read as the kit advises scores like a key typed in."""
    rows = graded[0]
    assert checks_of(rows["lab-getpass"]) == checks_of(rows["lab-correct"])
    assert (rows["lab-getpass"]["score"], rows["lab-getpass"]["status"]) == ("15", "graded")


def test_the_summary_counts_the_learners_per_format(graded):
    _, stdout = graded
    assert ("formats: JupyterLab (.ipynb) 4, Databricks JUPYTER (.ipynb) 3, Databricks SOURCE (.py) 6, "
            "Databricks DBC (.dbc) 4, Databricks HTML (.html) 3, not read 1") in stdout
