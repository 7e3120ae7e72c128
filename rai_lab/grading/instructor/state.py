"""The grades a work folder keeps (state.json): each learner's outcome, saved as soon as it is final, and the
reference timing; the next run keeps a grade while the submission and the course (`course_digest`) are the same."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, fields
from pathlib import Path

from rai_lab.grading.instructor import stop
from rai_lab.grading.instructor.rubric import Outcome


class KeptGrades:
    """state.json at `path`, for the course whose digest is `digest`.

    Each learner's grade is saved as soon as it is final, so that a batch stopped halfway keeps the grades it made
    and the next run grades only the rest; the grading threads save, one at a time. Once `stopping` is set (or a
    signal received), nothing more is saved: a learner whose grading the stop interrupted must be graded again."""

    def __init__(self, path: Path, digest: str, stopping: threading.Event):
        self.path, self.digest, self.stopping = path, digest, stopping
        self.reference: dict | None = None  # the reference timing, saved with the grades
        self.lock = threading.Lock()
        self.now: dict[str, dict] = {}
        self.saved_now: list[str] = []  # the learners graded and saved by this run

    def load(self) -> dict:
        """The last run's outcomes (by learner) and reference timing, if the course has not changed since."""
        try:
            state = json.loads(self.path.read_text())
            if state["course"] != self.digest:
                return {}
            known = {f.name for f in fields(Outcome)}
            outcomes = {item["learner"]: {k: v for k, v in item.items() if k in known} for item in state["outcomes"]}
            return {"outcomes": outcomes, "reference": state.get("reference") or {}}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def begin(self, outcomes: dict[str, Outcome]) -> None:
        """What this run's saves start from: the grades it keeps (and the unreadable submissions), nothing older."""
        self.now = {learner: asdict(outcome) for learner, outcome in outcomes.items()}
        self.saved_now = []

    def keep(self, outcome: Outcome) -> None:
        """A learner's final grade, saved at once, unless the batch is stopping."""
        with self.lock:
            if self.stopping.is_set() or stop.requested() is not None:
                return
            self.now[outcome.learner] = asdict(outcome)
            self._write(list(self.now.values()))
            self.saved_now.append(outcome.learner)

    def save(self, outcomes: list[Outcome]) -> None:
        """The whole batch's outcomes, at the end of a run (manual scores included)."""
        with self.lock:
            self._write([asdict(o) for o in outcomes])

    def _write(self, outcomes: list[dict]) -> None:
        """state.json, replaced whole (a temporary file, then a rename): a stop never leaves half of it."""
        state = {"course": self.digest, "reference": self.reference, "outcomes": outcomes}
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(partial, self.path)
