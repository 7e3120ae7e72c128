"""nbgrader's exchange, the instructor's course folders (course id = assignment id: responsible-ai-fr,
responsible-ai-en), the course released into the exchange, and each role's Jupyter settings."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from rai_lab import paths, release
from rai_lab.classroom.roster import Classroom
from rai_lab.errors import RaiLabError

KIT_JUPYTER = paths.ROOT / "jupyter"
# Which of nbgrader's server and JupyterLab extensions each role has.
SERVER_EXTENSIONS = {
    "learner": {"assignment_list": True, "validate_assignment": True, "formgrader": False, "course_list": False},
    "instructor": {"assignment_list": False, "validate_assignment": False, "formgrader": True, "course_list": False},
}
LAB_DISABLED = {
    "learner": ["formgrader", "create-assignment", "course-list"],
    "instructor": ["assignment-list", "validate-assignment", "create-assignment", "course-list"],
}


CLASSROOM_VENV = paths.ROOT / ".venv-classroom"


def reachable(path: Path) -> bool:
    """Can every account run or read `path` (each folder above it searchable by others)?"""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & 0o001 for p in real.parents) and bool(os.stat(real).st_mode & 0o004)


def user_bin() -> Path:
    """The bin/ of a Python environment with the kit that every account can run: this one, or else .venv-classroom
    (Debian's python3.11; `make classroom-deps` builds it), for an interpreter under a private folder (pyenv in /root)."""
    here = Path(sys.executable).parent
    if reachable(Path(sys.executable)):
        return here
    theirs = CLASSROOM_VENV / "bin"
    if not (CLASSROOM_VENV / ".installed").exists() or not reachable(theirs / "python"):
        raise RaiLabError(f"the learners' accounts cannot run this Python ({os.path.realpath(sys.executable)}: a folder "
                          f"above it is private) and {CLASSROOM_VENV} is not built: run `make classroom-deps`")
    return theirs


def as_user(user: str) -> dict:
    """subprocess.run's arguments that run a command as `user`, in their home, with their own environment."""
    entry = pwd.getpwnam(user)
    env = {**release.tool_env(), "HOME": entry.pw_dir, "USER": user, "LOGNAME": user,
           "PATH": os.pathsep.join([str(user_bin()), "/usr/local/bin", "/usr/bin", "/bin"])}
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "JUPYTER_DATA_DIR", "VIRTUAL_ENV"):
        env.pop(name, None)
    env.pop("JUPYTER_CONFIG_DIR", None)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": env, "cwd": entry.pw_dir}


def chown_tree(top: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(top):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def make_exchange(classroom: Classroom) -> None:
    """The exchange root as nbgrader documents it: world-writable with the sticky bit. nbgrader makes the rest
    (per course: outbound 755, inbound 2733 so nobody lists another's submission, feedback 711)."""
    classroom.exchange.mkdir(parents=True, exist_ok=True)
    for parent in reversed(classroom.exchange.parents):  # every user must reach it
        if parent.is_dir() and parent != Path("/") and not os.stat(parent).st_mode & 0o001:
            raise RaiLabError(f"the exchange {classroom.exchange} is not reachable by the learners: {parent} is not "
                              f"searchable by others (chmod o+x {parent}, or choose another --state)")
    os.chown(classroom.exchange, 0, 0)
    os.chmod(classroom.exchange, 0o1777)


def nbgrader_config(classroom: Classroom, course_id: str | None, root: Path | None = None) -> str:
    lines = ['"""nbgrader in the classroom (written by rai-lab classroom: do not edit; it is rewritten)."""',
             "c = get_config()  # noqa: F821",
             f"c.Exchange.root = {str(classroom.exchange)!r}",
             "c.Execute.timeout = 180  # embedded Spark takes 10-20 s to start on 2 cores"]
    if course_id:
        lines.append(f"c.CourseDirectory.course_id = {course_id!r}")
    if root:
        lines.append(f"c.CourseDirectory.root = {str(root)!r}")
    return "\n".join(lines) + "\n"


def role_config(classroom: Classroom, role: str, lang: str) -> Path:
    """<state>/jupyter/<role>-<lang>: JUPYTER_CONFIG_DIR of a user's JupyterLab (learner of one language's course,
    or the instructor, whose formgrader shows that language's graded class)."""
    folder = classroom.state / "jupyter" / f"{role}-{lang}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "labconfig").mkdir(parents=True)
    shutil.copytree(KIT_JUPYTER / role / "lab-settings", folder / "lab-settings")
    server = {"ServerApp": {"jpserver_extensions": {f"nbgrader.server_extensions.{name}": on
                                                    for name, on in SERVER_EXTENSIONS[role].items()}},
              "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n")
    page = {"disabledExtensions": {f"@jupyter/nbgrader:{name}": True for name in LAB_DISABLED[role]}}
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2) + "\n")
    assignment = paths.ASSIGNMENTS[lang]
    if role == "learner":
        text = nbgrader_config(classroom, assignment)
    else:
        text = nbgrader_config(classroom, assignment, formgrader_course(classroom, assignment))
    (folder / "nbgrader_config.py").write_text(text)
    # jupyter_core migrates an old ~/.ipython once per config folder and notes it here; this one is read-only to users.
    (folder / "migrated").write_text("rai-lab classroom\n")
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return folder


def formgrader_course(classroom: Classroom, assignment: str) -> Path:
    """The copy of the sealed grader's course tree that the instructor's formgrader opens (refreshed at each grading)."""
    return classroom.home / "formgrader" / assignment


def run_nbgrader(classroom: Classroom, assignment: str, *args: str) -> str:
    """`nbgrader ARGS` as the instructor, in the course folder of `assignment`; its output, or RaiLabError."""
    course = classroom.course_dir(assignment)
    argv = [str(user_bin() / "python"), "-m", "nbgrader", *args, f"--CourseDirectory.course_id={assignment}", f"--CourseDirectory.root={course}",
            f"--Exchange.root={classroom.exchange}"]
    done = subprocess.run(argv, **{**as_user(classroom.instructor.user), "cwd": course},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RaiLabError(f"nbgrader {' '.join(args)} ({assignment}) failed:\n{done.stdout[-3000:]}")
    return done.stdout


def release_course(classroom: Classroom) -> list[str]:
    """Every language's assignment generated from solutions/ in the instructor's course folder, then released into
    the exchange by the instructor (nbgrader release_assignment). Already released: released again (--force)."""
    released = []
    for lang, assignment in paths.ASSIGNMENTS.items():
        course = classroom.course_dir(assignment)
        course.mkdir(parents=True, exist_ok=True)
        release.prepare_course(course, assignment, {**release.tool_env(), "RAI_LAB_LANG": lang})
        (course / "nbgrader_config.py").write_text(
            (paths.GRADERS / "nbgrader_config.py").read_text() + "\n" + nbgrader_config(classroom, assignment, course))
        chown_tree(classroom.home / "courses", classroom.instructor.user)
        run_nbgrader(classroom, assignment, "release_assignment", assignment, "--force")
        if classroom.due.get(assignment):
            set_due(classroom, assignment, classroom.due[assignment])
        released.append(assignment)
    return released


def set_due(classroom: Classroom, assignment: str, due: str) -> None:
    """The assignment's due date, in the instructor's gradebook (nbgrader's own record of it) and the classroom's."""
    run_nbgrader(classroom, assignment, "db", "assignment", "add", assignment, f"--duedate={due}")
    classroom.due[assignment] = due
    classroom.save()


def setup(classroom: Classroom) -> list[str]:
    make_exchange(classroom)
    for lang in paths.ASSIGNMENTS:
        role_config(classroom, "learner", lang)
        role_config(classroom, "instructor", lang)
    for assignment in paths.ASSIGNMENTS.values():
        folder = formgrader_course(classroom, assignment)
        folder.mkdir(parents=True, exist_ok=True)
    chown_tree(classroom.home / "formgrader", classroom.instructor.user)
    return release_course(classroom)
