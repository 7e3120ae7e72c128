"""A batch's time limits, scaled from the reference run: the course's own solution, graded like a learner.

The solution is timed once per course and machine. A notebook's limit is 10 times its whole run, a
cell's 5 times its slowest cell (a cold server's first query), with floors; --timeout and
--cell-timeout override them. The timing is kept in the work folder's state and in the machine's
cache, so the next batch of the same course, in any work folder, starts grading at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import rai_lab
from rai_lab import paths
from rai_lab.errors import RaiLabError
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.rubric import rubric
from rai_lab.grading.instructor.workers import last_error

if TYPE_CHECKING:
    from rai_lab.grading.instructor.course import CourseTree
    from rai_lab.grading.instructor.workers import Worker

REFERENCE = "_rai_lab_reference"  # the solution, graded first to time the course (never a learner: ids have no leading _)
LIMIT_FACTOR = 10  # the notebook's time limit is this many times the reference run's
CELL_LIMIT_FACTOR = 5  # a cell's, this many times the reference's slowest cell (a cold server's first query)
MIN_CELL_LIMIT, MIN_NOTEBOOK_LIMIT = 10.0, 30.0  # seconds, whatever the reference took


class TimeLimits:
    """A batch's time limits (`used`: {"cell", "notebook", "reference"}), from --timeout and --cell-timeout (None:
    scaled from the reference run), timed on the course tree `tree` of `assignment`; `cache_key` names how the batch
    runs the course (what changes its timing), `logs` is the batch's log folder."""

    def __init__(self, tree: CourseTree, logs: Path, *, timeout: float | None, cell_timeout: float | None,
                 regrade: bool, cache_key: list):
        self.tree, self.logs = tree, logs
        self.timeout, self.cell_timeout, self.regrade, self.cache_key = timeout, cell_timeout, regrade, cache_key
        self.used: dict = {}

    def reference_limits(self, worker: Worker, previous: dict, digest: str) -> dict:
        """Time the solution notebook once per course and machine; the limits scale from it (5x its slowest cell,
        10x its whole, with floors), unless --cell-timeout / --timeout say otherwise.

        It is graded like a learner (sandbox, replay, checks) and must score every point: a course whose
        own solution fails its checks is refused before any learner is graded. Its timing is kept in the work
        folder's state (`previous`, for the course whose digest is `digest`) and in the machine's cache (keyed by
        the course, the kit's code and how the batch runs it), so another class of the same course does not time it
        again; --regrade times it again.
        """
        known = previous.get("reference") or {}
        if known.get("course") == digest:  # `previous` is empty with --regrade
            reference = known
        else:
            cached = self.cache_path()
            reference = None if self.regrade else _read_reference(cached)
            if reference is None:
                reference = self._time_reference(worker)
                cached.parent.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(f".{os.getpid()}.tmp")
                partial.write_text(json.dumps(reference, indent=1), encoding="utf-8")
                partial.replace(cached)
            reference = {**reference, "course": digest}
        return self.set_from(reference)

    def _time_reference(self, worker: Worker) -> dict:
        sub = intake.Submission(learner=REFERENCE, source="(solution)",
                                notebook=paths.SOLUTIONS / self.tree.assignment / paths.NOTEBOOK)
        job = {"learner": REFERENCE, **self.tree.stage(sub), "cell_limit": 180, "notebook_limit": 600}
        returncode, answer = worker.grade(job, 900)
        scores = self.tree.scores(REFERENCE) or {}
        graded = self.tree.folder("autograded", REFERENCE) / paths.NOTEBOOK
        if graded.exists():  # kept for the instructor: what the reference run did
            shutil.copy(graded, self.logs / "reference.ipynb")
        self.tree.forget_learner(REFERENCE)
        total = sum(item["points"] for item in rubric().values())
        if returncode != 0 or sum(scores.values()) != total:
            failed = {name: v.get("message") for name, v in (answer.get("verdicts") or {}).items() if not v.get("passed")}
            raise RaiLabError(f"the course's own solution does not pass its checks ({sum(scores.values()):g}/{total}): "
                              f"{failed or answer.get('stopped') or last_error(answer.get('log', ''))} "
                              f"(see {self.logs / 'reference.ipynb'} and worker-0.log)")
        cells = {k: float(v) for k, v in (answer.get("cells") or {}).items()} or {"?": 1.0}
        return {"slowest_cell_s": max(cells.values()), "total_s": sum(cells.values()), "cells_s": cells}

    def cache_path(self) -> Path:
        """Where this machine keeps the reference timing of this course, as this batch runs it."""
        assignment = self.tree.assignment
        digest = hashlib.sha256(json.dumps([assignment, *self.cache_key, sys.version, os.cpu_count()]).encode())
        package = Path(rai_lab.__file__).resolve().parent
        for path in (paths.SOLUTIONS / assignment / paths.NOTEBOOK, paths.GRADERS / "rubric.toml",
                     paths.GRADERS / "checks.py", *sorted(package.rglob("*.py")), *sorted(paths.I18N.glob("*.toml"))):
            digest.update(path.name.encode() + path.read_bytes())
        return paths.cache_dir() / "reference" / f"{assignment}-{digest.hexdigest()[:20]}.json"

    def set_from(self, reference: dict) -> dict:
        """The limits of a reference timing (unless --cell-timeout / --timeout set them); the reference."""
        self.used = {
            "reference": reference,
            "cell": self.cell_timeout or math.ceil(max(MIN_CELL_LIMIT, CELL_LIMIT_FACTOR * reference["slowest_cell_s"])),
            "notebook": self.timeout or math.ceil(max(MIN_NOTEBOOK_LIMIT, LIMIT_FACTOR * reference["total_s"])),
        }
        return reference


def _read_reference(path: Path) -> dict | None:
    """A cached reference timing, or None if there is none (or it is unreadable)."""
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
        return reference if float(reference["slowest_cell_s"]) >= 0 and float(reference["total_s"]) >= 0 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
