"""The release step: nbgrader generate_assignment turns solutions/ into the learner notebooks in lab/."""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from rai_lab import paths, tether
from rai_lab.errors import RaiLabError


# nbgrader's marker lines: they say where the solution and the hidden tests are, to nbgrader only.
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def without_markers(source: str) -> str:
    """A cell's source without nbgrader's marker lines (what they enclose stays)."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in MARKERS)


def tool_env() -> dict[str, str]:
    """The environment for nbgrader's subprocesses: this interpreter's bin/ first on PATH (nbgrader
    runs `alembic` by name, which is only found there when the virtualenv is not activated)."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}


def prepare_course(course: Path, assignment: str, env: dict[str, str]) -> Path:
    """nbgrader's course tree for `assignment` in the folder `course` (its gradebook.db there): the solutions as
    its source/ (replacing any), the kit's nbgrader_config.py, and generate_assignment run with `env` (which sets
    RAI_LAB_LANG). The released notebook's path; RaiLabError with nbgrader's output when it fails."""
    source = course / "source" / assignment
    shutil.rmtree(source, ignore_errors=True)
    source.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(paths.SOLUTIONS / assignment, source)
    shutil.copy(paths.GRADERS / "nbgrader_config.py", course / "nbgrader_config.py")
    # Tethered: nbgrader and the alembic it runs end with this process, even if it is killed (rai-lab grade
    # prepares its course while its workers start).
    done = tether.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
         f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}"],
        cwd=course, env=env,
    )
    released = course / "release" / assignment / paths.NOTEBOOK
    if done.returncode != 0 or not released.exists():
        raise RaiLabError(f"nbgrader generate_assignment failed for {assignment}:\n{done.stdout[-2000:]}")
    return released


def prepared_course(assignment: str, env: dict[str, str]) -> Path:
    """A course prepared once per machine (`prepare_course` in the machine's cache), for a batch to copy: nbgrader's
    generate_assignment costs about 10 s of CPU, which every batch paid, and the test suite about 30 times. Keyed by
    what generate_assignment reads: the solutions, the kit's nbgrader config, the stubs' catalogues, the language and
    nbgrader's version. Built in a folder of its own, then renamed into place: two batches may build it at once."""
    import hashlib

    import nbgrader

    digest = hashlib.sha256(f"{assignment} {env.get('RAI_LAB_LANG', 'fr')} {nbgrader.__version__}".encode())
    for path in (*sorted((paths.SOLUTIONS / assignment).rglob("*")), paths.GRADERS / "nbgrader_config.py",
                 *sorted(paths.I18N.glob("*.toml"))):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    cached = paths.cache_dir() / "courses" / f"{assignment}-{digest.hexdigest()[:20]}"
    if not (cached / "gradebook.db").exists():
        shutil.rmtree(cached, ignore_errors=True)  # a half-written copy (a full disk, a kill): built anew
        cached.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f"{cached.name}.", dir=cached.parent))
        building.chmod(0o755)  # a course tree's mode, as a batch's own mkdir makes it (copytree copies it over)
        try:
            prepare_course(building, assignment, env)
            building.rename(cached)  # atomic; another batch's copy may have landed first (then this one goes)
        except OSError:
            if not (cached / "gradebook.db").exists():
                raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return cached


def generate(lang: str, dest: Path) -> Path:
    """Run nbgrader generate_assignment for one language into `dest`; the released notebook's path."""
    assignment = paths.ASSIGNMENTS[lang]
    with tempfile.TemporaryDirectory(prefix="rai-lab-release-") as work:
        released = prepare_course(Path(work), assignment, {**tool_env(), "RAI_LAB_LANG": lang})
        target = dest / assignment / paths.NOTEBOOK
        target.parent.mkdir(parents=True, exist_ok=True)
        notebook = nbformat.read(released, as_version=4)
        target.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
    return target


def release(dest: Path | None = None) -> list[Path]:
    """Regenerate lab/ (or `dest`) for both languages."""
    dest = dest or paths.LAB
    return [generate(lang, dest) for lang in paths.ASSIGNMENTS]


def differences(fresh: Path, committed: Path) -> list[str]:
    """The notebooks under `fresh` that are missing or different under `committed`."""
    return sorted(
        str(path.relative_to(fresh))
        for path in fresh.rglob("*.ipynb")
        if not (committed / path.relative_to(fresh)).exists()
        or not filecmp.cmp(path, committed / path.relative_to(fresh), shallow=False)
    )


def stale(dest: Path | None = None) -> list[str]:
    """The released notebooks that differ from what `release` would write now."""
    with tempfile.TemporaryDirectory(prefix="rai-lab-check-") as work:
        release(Path(work))
        return differences(Path(work), dest or paths.LAB)
