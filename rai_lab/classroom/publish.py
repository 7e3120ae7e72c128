"""The instructor's side of a grading, run as the instructor's account (never root in their home): the class handed
over as a tar stream, and the grading's results put in place from the hand-off folder the grader prepared.

    python -m rai_lab.classroom.publish pack SUBMITTED          # tar of nbgrader's submitted/ on stdout
    python -m rai_lab.classroom.publish place HANDOFF COURSE FORMGRADER GRADES ASSIGNMENT
"""

from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

KEPT = (".ipynb", ".yaml", ".txt")  # the notebook, a live cassette, nbgrader's timestamp.txt and submission_secret.txt


def pack(submitted: Path) -> None:
    """Each learner's latest submission (submitted/<learner>/<assignment>/), regular files only, as a tar on stdout."""
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
        for item in sorted(submitted.rglob("*")) if submitted.is_dir() else []:
            if item.is_file() and not item.is_symlink() and item.suffix in KEPT:
                tar.add(item, arcname=str(item.relative_to(submitted)), recursive=False)


def place(handoff: Path, course: Path, formgrader: Path, grades: Path, assignment: str) -> None:
    """Feedback pages where nbgrader release_feedback takes them (feedback/<learner>/<assignment>/, beside the
    submission's timestamp.txt and submission_secret.txt); the formgrader's copy of the graded class; the grades."""
    for pages in sorted((handoff / "feedback").iterdir()):
        learner = pages.name
        target = course / "feedback" / learner / assignment
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in ("timestamp.txt", "submission_secret.txt"):
            source = course / "submitted" / learner / assignment / name
            if source.is_file() and not source.is_symlink():
                shutil.copyfile(source, target / name)
        for page in pages.glob("*.html"):
            shutil.copyfile(page, target / page.name)
    shutil.rmtree(formgrader, ignore_errors=True)
    shutil.copytree(handoff / "course", formgrader)
    grades.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(handoff / "grades.csv", grades)


if __name__ == "__main__":
    if sys.argv[1] == "pack":
        pack(Path(sys.argv[2]))
    else:
        place(*(Path(arg) for arg in sys.argv[2:6]), sys.argv[6])
