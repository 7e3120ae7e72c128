"""The classroom's grading: nbgrader collects the latest submission of each learner from the exchange, the kit's
sealed grader (`rai-lab grade`) grades them, and each learner's feedback goes back through the exchange where the
Assignment List fetches it (nbgrader release_feedback). Late submissions follow nbgrader's rule: a submission's
timestamp after the assignment's due date is late, by that much (no penalty: nbgrader's default); the feedback,
the classroom's grades and the formgrader say so."""

from __future__ import annotations

import csv
import html
import io
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from nbgrader.utils import parse_utc

from rai_lab import paths
from rai_lab.classroom import course
from rai_lab.classroom.roster import Classroom
from rai_lab.errors import RaiLabError
from rai_lab.messages import say

RUNNING: list[subprocess.Popen] = []  # the `rai-lab grade` under way: a stopping service stops it (SIGTERM) first
KEPT = (".ipynb", ".yaml")  # what `rai-lab grade` reads of a learner's folder: the notebook, a live cassette


def work_dir(classroom: Classroom, assignment: str) -> Path:
    """The grading's own folders (root only): the staged class, the grader's work tree and its output."""
    return classroom.state / "grading" / assignment


def lateness(timestamp: str | None, due: str | None) -> float:
    """Seconds late by nbgrader's rule (the submission's timestamp after the due date), 0 when on time or no due date."""
    if not timestamp or not due:
        return 0.0
    return max(0.0, (parse_utc(timestamp) - parse_utc(due)).total_seconds())


def late_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def collect(classroom: Classroom, assignment: str, target: Path) -> dict[str, Path]:
    """nbgrader collect (as the instructor: the latest submission of each learner), handed to root as a tar stream
    written by the instructor's account and unpacked by tarfile's `data` filter into `target` (root's own): root
    never follows a path in the instructor's home. learner -> their folder in `target`."""
    course.run_nbgrader(classroom, assignment, "collect", assignment, "--update")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    packed = subprocess.run([str(course.user_bin() / "python"), "-m", "rai_lab.classroom.publish", "pack",
                             str(classroom.course_dir(assignment) / "submitted")],
                            **course.as_user(classroom.instructor.user), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if packed.returncode != 0:
        raise RaiLabError(f"reading the collected submissions failed: {packed.stderr.decode()[-2000:]}")
    with tarfile.open(fileobj=io.BytesIO(packed.stdout), mode="r:") as tar:
        tar.extractall(target, filter="data")
    return {folder.parent.name: folder for folder in sorted(target.glob(f"*/{assignment}")) if folder.is_dir()}


def stage(found: dict[str, Path], target: Path) -> None:
    """The class as `rai-lab grade` reads it: <learner>/ with the notebook (and a live cassette)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for learner, folder in found.items():
        (target / learner).mkdir()
        for item in folder.iterdir():
            if item.suffix in KEPT and item.is_file() and not item.is_symlink():
                shutil.copyfile(item, target / learner / item.name, follow_symlinks=False)


def grade_class(classroom: Classroom, assignment: str, log=None) -> dict[str, dict]:
    """Collect, grade with the sealed grader, release the feedback. Per learner: their grades.csv row, plus
    `late_seconds`. Writes the classroom's grades to <instructor's home>/grades/<assignment>.csv."""
    if assignment not in paths.ASSIGNMENTS.values():
        raise RaiLabError(f"unknown assignment {assignment!r} (known: {', '.join(paths.ASSIGNMENTS.values())})")
    lang = next(lang for lang, name in paths.ASSIGNMENTS.items() if name == assignment)
    work = work_dir(classroom, assignment)
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(classroom.state / "grading", 0o700)
    found = collect(classroom, assignment, work / "collected")
    if not found:
        raise RaiLabError(f"no submission of {assignment} in the exchange yet")
    stage(found, work / "submitted")
    grader = subprocess.Popen([sys.executable, "-m", "rai_lab", "grade", str(work / "submitted"), "--assignment",
                               assignment, "--out", str(work / "out"), "--work", str(work / "work"), "--no-progress",
                               # no more workers (each with its Spark server) than learners
                               "--workers", str(max(1, min(os.cpu_count() or 1, len(found))))],
                              stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    RUNNING.append(grader)
    try:
        output, _ = grader.communicate()
    finally:
        RUNNING.remove(grader)
    if grader.returncode != 0:
        raise RaiLabError(f"rai-lab grade failed (exit {grader.returncode}): {(output or '')[-2000:]}")
    with open(work / "out" / "grades.csv", encoding="utf-8") as handle:
        rows = {row["learner"]: row for row in csv.DictReader(handle)}
    due = classroom.due.get(assignment)
    handoff = classroom.state / "handoff" / assignment
    shutil.rmtree(handoff, ignore_errors=True)
    (handoff / "feedback").mkdir(parents=True)
    for learner, folder in found.items():
        row = rows.get(learner)
        if row is None:
            continue
        timestamp = (folder / "timestamp.txt").read_text().strip() if (folder / "timestamp.txt").exists() else None
        row["timestamp"], row["late_seconds"] = timestamp or "", f"{lateness(timestamp, due):.0f}"
        feedback_pages(classroom, assignment, lang, work / "out" / "feedback" / learner, handoff / "feedback" / learner,
                       row)
    formgrader_copy(classroom, assignment, work / "work" / "course", handoff / "course", rows)
    write_grades(rows, handoff / "grades.csv")
    hand_over(classroom, handoff)
    placed = subprocess.run([str(course.user_bin() / "python"), "-m", "rai_lab.classroom.publish", "place", str(handoff),
                             str(classroom.course_dir(assignment)), str(course.formgrader_course(classroom, assignment)),
                             str(classroom.home / "grades" / f"{assignment}.csv"), assignment],
                            **course.as_user(classroom.instructor.user), capture_output=True, text=True)
    if placed.returncode != 0:
        raise RaiLabError(f"putting the feedback in place failed: {placed.stderr[-2000:]}")
    course.run_nbgrader(classroom, assignment, "release_feedback", assignment)
    return rows


def hand_over(classroom: Classroom, handoff: Path) -> None:
    """The hand-off folder readable by the instructor's group only (root keeps ownership)."""
    gid = pwd.getpwnam(classroom.instructor.user).pw_gid
    os.chmod(handoff.parent, 0o755)
    for root, dirs, files in os.walk(handoff):
        os.chown(root, 0, gid)
        os.chmod(root, 0o750)
        for name in files:
            os.chown(os.path.join(root, name), 0, gid)
            os.chmod(os.path.join(root, name), 0o640)


def feedback_pages(classroom: Classroom, assignment: str, lang: str, graded: Path, target: Path, row: dict) -> None:
    """A learner's feedback pages, with a banner when the submission was late."""
    target.mkdir(parents=True)
    for page in graded.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        late = float(row["late_seconds"])
        if late:
            banner = (f"<p class='rai-lab-late' style='border:2px solid #c00;padding:.5em'>"
                      f"{html.escape(say('classroom.late', lang, late=late_text(late), due=classroom.due[assignment]))}</p>")
            text = text.replace("<body>", "<body>" + banner, 1) if "<body>" in text else banner + text
        (target / page.name).write_text(text, encoding="utf-8")


def formgrader_copy(classroom: Classroom, assignment: str, graded_course: Path, target: Path,
                    rows: dict[str, dict]) -> None:
    """A copy of the grader's course tree for the instructor's formgrader, with the due date and each submission's
    timestamp in its gradebook (so the formgrader shows late submissions as nbgrader does)."""
    from nbgrader.api import Gradebook

    shutil.copytree(graded_course, target, symlinks=True,
                    ignore=shutil.ignore_patterns("nbgrader_config.py", "*.lock", "__pycache__"))
    (target / "nbgrader_config.py").write_text(course.nbgrader_config(
        classroom, assignment, course.formgrader_course(classroom, assignment)) + "c.Exchange.root = ''  # review only\n")
    with Gradebook(f"sqlite:///{target / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(assignment, duedate=classroom.due.get(assignment))
        for learner, row in rows.items():
            if row.get("timestamp"):
                try:
                    submission = gb.find_submission(assignment, learner)
                except Exception:  # noqa: BLE001 - nbgrader's MissingEntry: a learner the grader did not run
                    continue
                submission.timestamp = parse_utc(row["timestamp"])
                # The formgrader counts a submission as graded when submitted/'s timestamp is the gradebook's.
                for step in ("submitted", "autograded"):
                    if (target / step / learner / assignment).is_dir():
                        (target / step / learner / assignment / "timestamp.txt").write_text(row["timestamp"])
        gb.db.commit()


def write_grades(rows: dict[str, dict], target: Path) -> Path:
    fields = list(next(iter(rows.values())).keys()) if rows else ["learner"]
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows[name] for name in sorted(rows))
    return target
