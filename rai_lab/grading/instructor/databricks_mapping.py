"""A Databricks export's cells mapped back onto the released notebook, so that nbgrader grades it as a JupyterLab one.

The anchors survive every export format because they are the cells' own text:
- each cell the learner may edit (the steps to fill, the kit's parameters, the going-further setup and comparison)
  starts with a marker line, `# rai-lab step: <grade_id> (gardez cette ligne / keep this line)`, written in
  solutions/ and so in lab/ and databricks/;
- a check cell starts with `# Vérification notée / graded check: <grade_id>` (or `bonus check:`);
- the other locked cells (the kit's) are matched by their text, or by their first line when the learner edited them,
  and Databricks' own install cells (`%pip install ...`, `dbutils.library.restartPython()`) stand for the lab's.

The notebook built is the release's, cell for cell: its Markdown, its locked and check cells (the instructor's,
whatever the export holds: nbgrader restores an edited locked cell the same way), and in each step cell the
learner's code under the release's metadata and cell id. A code cell of the learner's without an anchor is kept, in
its place after the anchored cell it followed, like a cell a JupyterLab learner adds. A step whose marker is gone, or
whose cell holds another step's marker too (merged), keeps the release's unfilled cell, and the learner is told
which step and why; every step that maps keeps its points.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import nbformat

from rai_lab.cells import is_check
from rai_lab.databricks import PIP_INSTALL, RESTART
from rai_lab.databricks_checks import SETUP
from rai_lab.grading.instructor.databricks_formats import Cell, Unreadable, read_export, read_jupyter
from rai_lab.messages import say
from rai_lab.paths import lab_notebook

STEP = re.compile(r"^[ \t]*#[ \t]*rai-lab step:[ \t]*([a-z]+(?:_[a-z]+)+)\b", re.M)
CHECK = re.compile(r"^[ \t]*#.*\b(?:graded|bonus) check:[ \t]*([a-z]+(?:_[a-z]+)+)\b")
# Databricks' forms of the lab's install cell (rai_lab/databricks.py writes them in databricks/).
DATABRICKS_FORMS = {PIP_INSTALL: "kit_databricks", RESTART: "kit_databricks"}
DROP = "-"  # a cell of the Databricks notebooks only (the one that loads rai_lab_checks): not graded, not the learner's
DATABRICKS_ONLY = {SETUP}


@dataclass
class Problem:
    """A step that could not be mapped: `why` is "missing" (no marker), "merged" (its marker in `into`'s cell) or
    "twice" (its marker in several cells: the first was taken)."""

    grade_id: str
    why: str
    into: str = ""


@dataclass
class Mapped:
    """The released notebook with the learner's cells in it, and what the learner is told about the mapping."""

    notebook: nbformat.NotebookNode
    problems: list[Problem] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # kit cells put back (missing or edited in the export)
    added: int = 0  # the learner's own cells kept
    mapped: list[str] = field(default_factory=list)  # the steps found


def _grade_id(cell) -> str | None:
    return (cell.get("metadata") or {}).get("nbgrader", {}).get("grade_id")


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def step_of(cell) -> str | None:
    """The grade_id a release cell's marker line names (its first line), or None."""
    found = STEP.match(_first_line(cell.source)) if cell.cell_type == "code" else None
    return found.group(1) if found else None


def anchors(release) -> tuple[dict[str, bool], dict[str, str], dict[str, str], set[str]]:
    """The release's anchors: the steps (grade_id: is an answer to fill), the locked cells' texts and first lines
    (text: grade_id), and the check cells."""
    steps, texts, firsts, checks = {}, {}, {}, set()
    for cell in release.cells:
        grade_id = _grade_id(cell)
        if cell.cell_type != "code" or not grade_id:
            continue
        if is_check(cell):
            checks.add(grade_id)
        elif step_of(cell) == grade_id:
            steps[grade_id] = bool(cell.metadata["nbgrader"].get("solution"))
        elif cell.metadata["nbgrader"].get("locked"):
            texts[_norm(cell.source)] = grade_id
            firsts[_first_line(cell.source)] = grade_id
    texts.update({_norm(form): grade_id for form, grade_id in DATABRICKS_FORMS.items()})
    texts.update({_norm(text): DROP for text in DATABRICKS_ONLY})
    return steps, texts, firsts, checks


def map_cells(cells: list[Cell], release) -> Mapped:
    """The released notebook `release` (not changed) with an export's `cells` mapped into it."""
    steps, texts, firsts, checks = anchors(release)
    code = [cell for cell in cells if cell.kind == "code"]
    anchor: list[str | None] = [None] * len(code)
    learner_steps: dict[str, str] = {}
    problems: dict[str, Problem] = {}
    edited: set[str] = set()
    for index, cell in enumerate(code):
        marked = list(dict.fromkeys(m for m in STEP.findall(cell.source) if m in steps))
        check = CHECK.match(_first_line(cell.source))
        if marked:
            first, *others = marked
            if first in learner_steps:  # a copy of a step's cell: the first is the step, this one the learner's own
                problems.setdefault(first, Problem(first, "twice"))
                continue
            learner_steps[first] = cell.source
            anchor[index] = first
            for other in others:
                problems[other] = Problem(other, "merged", into=first)
        elif check and check.group(1) in checks:
            anchor[index] = check.group(1)
        elif _norm(cell.source) in texts:
            anchor[index] = texts[_norm(cell.source)]
    for step in learner_steps:  # a step merged into another's cell, yet also in a cell of its own: it maps
        if step in problems and problems[step].why == "merged":
            del problems[step]
    found = set(anchor)
    for index, cell in enumerate(code):  # a kit cell the learner edited: found by its first line, put back
        grade_id = firsts.get(_first_line(cell.source))
        if anchor[index] is None and grade_id and grade_id not in found:
            anchor[index] = grade_id
            found.add(grade_id)
            edited.add(grade_id)
    # The learner's own cells, after the anchored cell they follow in the export (None: before any).
    following: dict[str | None, list[str]] = {}
    current = None
    for index, cell in enumerate(code):
        if anchor[index] is None:
            following.setdefault(current, []).append(cell.source)
        elif anchor[index] != DROP:
            current = anchor[index]
    nb = copy.deepcopy(release)
    out = []
    added = 0

    def add_own(after: str | None) -> None:
        nonlocal added
        for source in following.pop(after, []):
            added += 1
            out.append(nbformat.v4.new_code_cell(source, id=f"databricks-cell-{added}"))

    restored = []
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if cell.cell_type == "code" and None in following:
            add_own(None)
        if grade_id in steps:
            if grade_id in learner_steps:
                cell.source = learner_steps[grade_id]
            elif not steps[grade_id]:
                restored.append(grade_id)  # the kit's parameters or going-further code: the release's
            elif grade_id not in problems:
                problems[grade_id] = Problem(grade_id, "missing")
        elif grade_id and grade_id not in checks and cell.cell_type == "code" and (grade_id not in found or grade_id in edited):
            restored.append(grade_id)
        out.append(cell)
        if grade_id:
            add_own(grade_id)
    for after in list(following):  # anchors the release does not order (none today): at the end, in order
        add_own(after)
    nb.cells = out
    ordered = [_grade_id(c) for c in release.cells]
    return Mapped(notebook=nb, problems=sorted(problems.values(), key=lambda p: ordered.index(p.grade_id)),
                  restored=restored, added=added, mapped=[s for s in steps if s in learner_steps])


FORMAT_NAMES = {"jupyter": "JUPYTER (.ipynb)", "source": "SOURCE (.py)", "dbc": "DBC (.dbc)", "html": "HTML (.html)"}


def release_notebook(lang: str):
    """The released notebook of `lang` (lab/), the shape every export is mapped onto."""
    return nbformat.read(lab_notebook(lang), as_version=4)


def from_export(raw: bytes, name: str, lang: str, nb: dict | None = None) -> tuple[Mapped, str]:
    """An exported file (or its already parsed .ipynb `nb`) mapped onto the release of `lang`: (Mapped, format).
    Unreadable when it cannot be read, or when no step of the lab is in it."""
    if nb is not None:
        kind, cells = "jupyter", read_jupyter(nb)
    else:
        kind, cells = read_export(raw, name)
    mapped = map_cells(cells, release_notebook(lang))
    if not mapped.mapped:
        raise Unreadable("no_step", name=name)
    return mapped, kind


def notes(mapped: Mapped, kind: str, lang: str) -> list[str]:
    """What the learner is told about the mapping of their export, in their language."""
    said = [say("databricks.read", lang, format=FORMAT_NAMES[kind])]
    for problem in mapped.problems:
        into = say(f"steps.{problem.into}", lang) if problem.into else ""
        said.append(say(f"databricks.step_{problem.why}", lang, step=say(f"steps.{problem.grade_id}", lang),
                        grade_id=problem.grade_id, into=into))
    if mapped.restored:
        said.append(say("databricks.restored", lang, cells=", ".join(mapped.restored)))
    return said


def refusal(err: Unreadable, lang: str, name: str) -> str:
    """Why the export `name` was not read, in the learner's language."""
    return say(f"databricks.{err.key}", lang, **{"name": name, **err.values})


SUBMITTED = {"jupyterlab": "JupyterLab (.ipynb)", **{f"databricks-{kind}": f"Databricks {name}" for kind, name in FORMAT_NAMES.items()},
             "": "not read"}


def count_formats(formats) -> str:
    """`rai-lab grade`'s summary of what the learners handed in (intake's Submission.format), one count per format."""
    counts = {label: 0 for label in SUBMITTED.values()}
    for kind in formats:
        counts[SUBMITTED.get(kind, "not read")] += 1
    return ", ".join(f"{label} {count}" for label, count in counts.items() if count)
