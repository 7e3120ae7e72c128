"""The check cells (rai_lab/cells.py) and a check's verdict (rai_lab.evidence.judge), each decided in one place
for the learner's kernel, `rai-lab check`, `rai-lab run`, the Databricks export and the grader."""

from __future__ import annotations

import nbformat
import pytest
from conftest import LAB, SOLUTIONS

from rai_lab import evidence, paths
from rai_lab.cells import is_check, rubric

checks = evidence.load_checks()


def cell(kind: str, **nbgrader) -> nbformat.NotebookNode:
    made = nbformat.v4.new_code_cell("x = 1") if kind == "code" else nbformat.v4.new_markdown_cell("text")
    if nbgrader:
        made.metadata["nbgrader"] = {"grade_id": "a_check", "points": 1, **nbgrader}
    return made


# One row per kind of cell nbgrader's create-assignment toolbar makes (and a few it never does).
@pytest.mark.parametrize("given, expected", [
    (cell("code", grade=True, solution=False, locked=True), True),  # "Autograder tests": a check cell
    (cell("code", grade=True), True),  # `solution` absent counts as false
    (cell("code", grade=True, solution=True), False),  # "Manually graded answer" (code)
    (cell("code", grade=False, solution=True), False),  # "Autograded answer": the learner's to fill
    (cell("code", grade=False, solution=False, locked=True), False),  # "Read-only"
    (cell("code"), False),  # no nbgrader metadata
    (cell("markdown", grade=True, solution=True), False),  # "Manually graded answer" (markdown)
    (cell("markdown", grade=True, solution=False), False),  # not code: never a check (nbgrader never makes one)
    (cell("markdown", task=True, grade=False, solution=False), False),  # "Manually graded task"
    ({"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "solution": False}}, "source": ""}, True),  # a dict
    ({"cell_type": "code", "metadata": {"nbgrader": None}, "source": ""}, False),
    ({"cell_type": "code", "source": ""}, False),  # no metadata at all
])
def test_which_cells_are_checks(given, expected):
    """Is a cell a check cell exactly when it is code with nbgrader's `grade: true` and `solution: false`?"""
    assert is_check(given) is expected


@pytest.mark.parametrize("folder", [SOLUTIONS, LAB], ids=["solutions", "lab"])
@pytest.mark.parametrize("lang", paths.LANGS)
def test_the_notebooks_check_cells_are_the_rubrics_checks(folder, lang):
    """Are the check cells of each notebook the rubric's checks, in its order, with its points?"""
    nb = nbformat.read(folder / paths.ASSIGNMENTS[lang] / paths.NOTEBOOK, as_version=4)
    found = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells if is_check(c)}
    assert list(found) == list(rubric())
    assert found == {name: item["points"] for name, item in rubric().items()}


def test_the_rubric_is_read_once():
    """Is graders/rubric.toml read once a process, by the one reader the grader re-exports?"""
    import importlib

    assert rubric() is rubric()
    assert importlib.import_module("rai_lab.grading.instructor.rubric").rubric is rubric


def _fails(message):
    def check(ev, ctx):
        raise checks.CheckFailed(message)
    return check


def _raises(error):
    def check(ev, ctx):
        raise error
    return check


# One row per way a check can end: the same verdict in the learner's kernel and in the grader.
@pytest.mark.parametrize("check, expected", [
    (lambda ev, ctx: None, {"passed": True, "message": ""}),
    (_fails("neutral_answers is not defined"), {"passed": False, "message": "neutral_answers is not defined"}),
    (_fails("x" * 400), {"passed": False, "message": "x" * 400}),  # the check's own message is never cut
    (_raises(TypeError("'NoneType' object is not iterable")),
     {"passed": False, "message": "TypeError: 'NoneType' object is not iterable"}),
    (_raises(AssertionError("bare")), {"passed": False, "message": "AssertionError: bare"}),  # not a CheckFailed
    (_raises(ValueError("v" * 400)), {"passed": False, "message": "ValueError: " + "v" * 300}),
], ids=["passed", "failed", "failed-long", "odd-value", "bare-assert", "odd-value-long"])
def test_a_checks_end_becomes_its_verdict(monkeypatch, check, expected):
    """Does a check that passes, fails or raises become the same verdict, never a crash?"""
    monkeypatch.setitem(checks.CHECKS, "a_check", check)
    assert evidence.judge("a_check", {"env": {}, "vars": {}}, {"lang": "en"}) == expected


def test_a_snapshot_that_cannot_be_taken_is_a_verdict_too(monkeypatch):
    """In the learner's kernel the snapshot is taken for the check: does a value that fails to be read fail the
    check with its error, rather than the cell?"""
    monkeypatch.setitem(checks.CHECKS, "a_check", lambda ev, ctx: None)

    def snapshot():
        raise RuntimeError("unreadable")

    assert evidence.judge("a_check", snapshot, {"lang": "en"}) == {"passed": False, "message": "RuntimeError: unreadable"}
    assert evidence.judge("a_check", lambda: {"env": {}, "vars": {}}, {"lang": "en"}) == {"passed": True, "message": ""}
