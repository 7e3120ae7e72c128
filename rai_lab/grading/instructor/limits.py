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
    from rai_lab.grading.instructor.workers import Worker

REFERENCE = "_rai_lab_reference"  # the solution, graded first to time the course (never a learner: ids have no leading _)
LIMIT_FACTOR = 10  # the notebook's time limit is this many times the reference run's
CELL_LIMIT_FACTOR = 5  # a cell's, this many times the reference's slowest cell (a cold server's first query)
MIN_CELL_LIMIT, MIN_NOTEBOOK_LIMIT = 10.0, 30.0  # seconds, whatever the reference took


class ReferenceLimits:
    """The time limits of a Grader (`self.timeout`, `self.cell_timeout`, `self.regrade`, set by the Grader)."""

    def reference_limits(self, worker: "Worker", previous: dict) -> dict:
        """Time the solution notebook once per course and machine; the limits scale from it (5x its slowest cell,
        10x its whole, with floors), unless --cell-timeout / --timeout say otherwise.

        It is graded like a learner (sandbox, replay, checks) and must score every point: a course whose
        own solution fails its checks is refused before any learner is graded. Its timing is kept in the work
        folder's state and in the machine's cache (keyed by the course, the kit's code and how the batch runs
        it), so another class of the same course does not time it again; --regrade times it again.
        """
        known = previous.get("reference") or {}
        if known.get("course") == self._course_digest():  # `previous` is empty with --regrade
            reference = known
        else:
            cached = self._reference_cache()
            reference = None if self.regrade else _read_reference(cached)
            if reference is None:
                reference = self._time_reference(worker)
                cached.parent.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(f".{os.getpid()}.tmp")
                partial.write_text(json.dumps(reference, indent=1), encoding="utf-8")
                partial.replace(cached)
            reference = {**reference, "course": self._course_digest()}
        return self._set_limits(reference)

    def _time_reference(self, worker: "Worker") -> dict:
        sub = intake.Submission(learner=REFERENCE, source="(solution)",
                                notebook=paths.SOLUTIONS / self.assignment / paths.NOTEBOOK)
        job = {"learner": REFERENCE, "cassette": "", **self._stage(sub), "cell_limit": 180, "notebook_limit": 600}
        returncode, answer = worker.grade(job, 900)
        scores = self._scores(REFERENCE) or {}
        graded = self.folder("autograded", REFERENCE) / paths.NOTEBOOK
        if graded.exists():  # kept for the instructor: what the reference run did
            shutil.copy(graded, self.batch_logs / "reference.ipynb")
        self._forget_learner(REFERENCE)
        total = sum(item["points"] for item in rubric().values())
        if returncode != 0 or sum(scores.values()) != total:
            failed = {name: v.get("message") for name, v in (answer.get("verdicts") or {}).items() if not v.get("passed")}
            raise RaiLabError(f"the course's own solution does not pass its checks ({sum(scores.values()):g}/{total}): "
                              f"{failed or answer.get('stopped') or last_error(answer.get('log', ''))} "
                              f"(see {self.batch_logs / 'reference.ipynb'} and worker-0.log)")
        cells = {k: float(v) for k, v in (answer.get("cells") or {}).items()} or {"?": 1.0}
        return {"slowest_cell_s": max(cells.values()), "total_s": sum(cells.values()), "cells_s": cells}

    def _reference_cache(self) -> Path:
        """Where this machine keeps the reference timing of this course, as this batch runs it."""
        digest = hashlib.sha256(json.dumps([self.assignment, self.spark, self.illustrations, self.trusted,
                                            sys.version, os.cpu_count()]).encode())
        package = Path(rai_lab.__file__).resolve().parent
        for path in (paths.SOLUTIONS / self.assignment / paths.NOTEBOOK, paths.GRADERS / "rubric.toml",
                     paths.GRADERS / "checks.py", *sorted(package.rglob("*.py")), *sorted(paths.I18N.glob("*.toml"))):
            digest.update(path.name.encode() + path.read_bytes())
        return paths.cache_dir() / "reference" / f"{self.assignment}-{digest.hexdigest()[:20]}.json"

    def _set_limits(self, reference: dict) -> dict:
        self.limits_used = {
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
