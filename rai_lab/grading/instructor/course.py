"""nbgrader's course tree for one assignment: where each learner's notebooks live, the gradebook; what a kept grade
depends on (`course_digest`)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

from rai_lab import paths, release
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.rubric import Outcome, reason, split_points


class CourseTree:
    """nbgrader's course tree of one assignment in the folder `course`, and its gradebook."""

    STEPS = ("submitted", "autograded", "feedback")

    def __init__(self, course: Path, assignment: str, lang: str):
        self.course, self.assignment, self.lang = course, assignment, lang

    def folder(self, step: str, learner: str) -> Path:
        """nbgrader's one rule (CourseDirectory.format_path): <course>/<step>/<learner>/<assignment>."""
        return self.course / step / learner / self.assignment

    def prepare(self, env: dict[str, str]) -> None:
        """The course, prepared for grading with `env`, its gradebook in WAL mode: a new course tree is a copy of the
        machine's prepared course (release.prepared_course); one that has a gradebook (an earlier run's grades, an
        instructor's manual scores) is prepared again in place (release.prepare_course)."""
        if (self.course / "gradebook.db").exists():
            release.prepare_course(self.course, self.assignment, env)
        else:
            shutil.copytree(release.prepared_course(self.assignment, env), self.course, dirs_exist_ok=True)
        # Several workers write grades: WAL lets readers and one writer at a time work without errors.
        with sqlite3.connect(self.course / "gradebook.db") as db:
            db.execute("PRAGMA journal_mode=WAL")

    def stage(self, sub: intake.Submission) -> dict:
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

    def scores(self, learner: str) -> dict[str, float] | None:
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

    def with_manual_scores(self, outcome: Outcome) -> Outcome:
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

    def forget_learner(self, learner: str) -> None:
        """A learner out of the course tree and the gradebook (the reference run is nobody's grade)."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                gb.remove_student(learner)
            except MissingEntry:
                pass
        for folder in self.STEPS:
            shutil.rmtree(self.folder(folder, learner).parent, ignore_errors=True)

    def forget_removed(self, present: set[str]) -> None:
        for folder in self.STEPS:
            root = self.course / folder
            if root.is_dir():
                for learner_dir in root.iterdir():
                    if learner_dir.name not in present:
                        shutil.rmtree(learner_dir, ignore_errors=True)


def course_digest(assignment: str, options: list) -> str:
    """What a kept grade depends on besides the submission: the source notebook, rubric, checks, and the batch's
    `options` that change a grade (its time limits, how Spark runs, whether the illustrations run)."""
    digest = hashlib.sha256()
    for path in (paths.SOLUTIONS / assignment / paths.NOTEBOOK, paths.GRADERS / "rubric.toml",
                 paths.GRADERS / "checks.py"):
        digest.update(path.read_bytes())
    digest.update(json.dumps(options).encode())
    return digest.hexdigest()


def default_work_dir(assignment: str, out_dir: Path) -> Path:
    base = paths.cache_dir() / "grading"
    tag = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:12]
    return base / f"{assignment}-{tag}"
