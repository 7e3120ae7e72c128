"""nbgrader's course tree for one assignment: where each learner's notebooks live, the gradebook, the cache's digest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
from dataclasses import asdict, fields
from pathlib import Path

from rai_lab import paths, release
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.rubric import Outcome, reason, split_points


class CourseTree:
    """The course tree of a Grader: `self.course`, `self.assignment`, `self.work` (set by the Grader)."""

    STEPS = ("submitted", "autograded", "feedback")

    def folder(self, step: str, learner: str) -> Path:
        """nbgrader's one rule (CourseDirectory.format_path): <course>/<step>/<learner>/<assignment>."""
        return self.course / step / learner / self.assignment

    # -- the course tree -------------------------------------------------------------------------
    def prepare(self) -> None:
        release.prepare_course(self.course, self.assignment, self._env())
        # Several workers write grades: WAL lets readers and one writer at a time work without errors.
        with sqlite3.connect(self.course / "gradebook.db") as db:
            db.execute("PRAGMA journal_mode=WAL")

    def _stage(self, sub: intake.Submission) -> dict:
        """Put the submission in nbgrader's submitted/ folder; where its own cassette is, for the replay service."""
        submitted = self.folder("submitted", sub.learner)
        shutil.rmtree(submitted, ignore_errors=True)
        submitted.mkdir(parents=True)
        shutil.copy(sub.notebook, submitted / paths.NOTEBOOK)
        if sub.cassette:
            shutil.copy(sub.cassette, submitted / "cassette.yaml")
        shutil.rmtree(self.folder("autograded", sub.learner).parent, ignore_errors=True)
        shutil.rmtree(self.folder("feedback", sub.learner).parent, ignore_errors=True)
        return {"cassette": str(submitted / "cassette.yaml") if sub.cassette else ""}

    def _scores(self, learner: str) -> dict[str, float] | None:
        from nbgrader.api import Gradebook, MissingEntry

        autograded = self.folder("autograded", learner) / paths.NOTEBOOK
        if not autograded.exists():
            return None
        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                notebook = gb.find_submission_notebook(paths.NOTEBOOK[:-6], self.assignment, learner)
            except MissingEntry:
                return None
            return {grade.name: float(grade.score) for grade in notebook.grades if grade.max_score}

    def _with_manual_scores(self, outcome: Outcome) -> Outcome:
        """A kept grade with the scores an instructor set by hand in the formgrader (`rai-lab formgrader`)."""
        from nbgrader.api import Gradebook, MissingEntry

        if outcome.status != "graded" or not (self.course / "gradebook.db").exists():
            return outcome
        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                notebook = gb.find_submission_notebook(paths.NOTEBOOK[:-6], self.assignment, outcome.learner)
            except MissingEntry:
                return outcome
            manual = {grade.name: float(grade.manual_score) for grade in notebook.grades
                      if grade.max_score and grade.manual_score is not None}
        if manual:
            outcome.checks.update(manual)
            outcome.score, outcome.bonus = split_points(outcome.checks)
            outcome.notes = [n for n in outcome.notes if not n.startswith(reason("manual", self.lang, checks="")[:20])]
            outcome.notes.append(reason("manual", self.lang, checks=", ".join(
                f"{name} {score:g}" for name, score in sorted(manual.items()))))
        return outcome

    def _forget_learner(self, learner: str) -> None:
        """A learner out of the course tree and the gradebook (the reference run is nobody's grade)."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                gb.remove_student(learner)
            except MissingEntry:
                pass
        for folder in self.STEPS:
            shutil.rmtree(self.folder(folder, learner).parent, ignore_errors=True)

    def _forget_removed(self, present: set[str]) -> None:
        for folder in self.STEPS:
            root = self.course / folder
            if root.is_dir():
                for learner_dir in root.iterdir():
                    if learner_dir.name not in present:
                        shutil.rmtree(learner_dir, ignore_errors=True)

    def _course_digest(self) -> str:
        """What a kept grade depends on besides the submission: the source notebook, rubric, checks and limits."""
        digest = hashlib.sha256()
        for path in (paths.SOLUTIONS / self.assignment / paths.NOTEBOOK, paths.GRADERS / "rubric.toml",
                     paths.GRADERS / "checks.py"):
            digest.update(path.read_bytes())
        digest.update(json.dumps([self.timeout, self.cell_timeout, self.spark, self.illustrations]).encode())
        return digest.hexdigest()

    def _load_state(self) -> dict:
        """The last run's outcomes (by learner) and reference timing, if the course has not changed since."""
        try:
            state = json.loads(self.state_path.read_text())
            if state["course"] != self._course_digest():
                return {}
            known = {f.name for f in fields(Outcome)}
            outcomes = {item["learner"]: {k: v for k, v in item.items() if k in known} for item in state["outcomes"]}
            return {"outcomes": outcomes, "reference": state.get("reference") or {}}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def _save_state(self, outcomes: list[Outcome]) -> None:
        """The whole batch's outcomes, at the end of a run (manual scores included)."""
        with self._state_lock:
            self._write_state([asdict(o) for o in outcomes])

    # Each learner's grade is saved as soon as it is final, so that a batch stopped halfway keeps the grades it made
    # and the next run grades only the rest; the grading threads save, one at a time.
    _state_lock = threading.Lock()

    def _begin_state(self, outcomes: dict[str, Outcome]) -> None:
        """What this run's saves start from: the grades it keeps (and the unreadable submissions), nothing older."""
        self._state_now = {learner: asdict(outcome) for learner, outcome in outcomes.items()}
        self.saved_now: list[str] = []  # the learners graded and saved by this run

    def _keep_outcome(self, outcome: Outcome) -> None:
        """A learner's final grade, saved at once. Never once the batch is stopping (`self.stopping`, or a signal
        received): a learner whose grading the stop interrupted must be graded again, not kept."""
        from rai_lab.grading.instructor import stop

        with self._state_lock:
            if getattr(self, "stopping", False) or stop.requested() is not None:
                return
            self._state_now[outcome.learner] = asdict(outcome)
            self._write_state(list(self._state_now.values()))
            self.saved_now.append(outcome.learner)

    def _write_state(self, outcomes: list[dict]) -> None:
        """state.json, replaced whole (a temporary file, then a rename): a stop never leaves half of it."""
        state = {"course": self._course_digest(), "reference": self.limits_used.get("reference"), "outcomes": outcomes}
        partial = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(partial, self.state_path)


def default_work_dir(assignment: str, out_dir: Path) -> Path:
    base = paths.cache_dir() / "grading"
    tag = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:12]
    return base / f"{assignment}-{tag}"
