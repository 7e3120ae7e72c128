"""lab/ is nbgrader's release of solutions/, and never stale."""

from __future__ import annotations

import shutil

import pytest
from conftest import LAB, rai_lab_command

from rai_lab import release

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """lab/ as nbgrader generates it now from solutions/."""
    folder = tmp_path_factory.mktemp("fresh-lab")
    release.release(folder)
    return folder


def test_lab_is_not_stale(fresh):
    """Does regenerating lab/ from solutions/ with nbgrader give exactly the committed files?"""
    assert release.differences(fresh, LAB) == []
    assert len(list(fresh.rglob("*.ipynb"))) == 2


def test_a_changed_notebook_is_noticed(fresh, tmp_path):
    """And would the check notice a difference, or a missing notebook?"""
    edited = tmp_path / "lab"
    shutil.copytree(fresh, edited)
    target = edited / "responsible-ai-en" / "responsible_ai.ipynb"
    target.write_text(target.read_text().replace("Describe a nurse.", "Describe a pilot."))
    (edited / "responsible-ai-fr" / "responsible_ai.ipynb").unlink()
    assert release.differences(fresh, edited) == [
        "responsible-ai-en/responsible_ai.ipynb",
        "responsible-ai-fr/responsible_ai.ipynb",
    ]


def test_release_check_command():
    """`rai-lab release --check`, as CI or an author runs it."""
    done = rai_lab_command("release", "--check")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_a_batch_copies_the_course_prepared_once_per_machine(tmp_path, monkeypatch):
    """Does a new course tree copy the machine's prepared course (nbgrader's generate_assignment run once), while a
    course tree that holds a gradebook (earlier grades, manual scores) is prepared again in place?"""
    import nbformat

    from rai_lab.grading.instructor.course import CourseTree

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = {**release.tool_env(), "RAI_LAB_LANG": "en"}
    prepared = release.prepared_course("responsible-ai-en", env)
    released = nbformat.read(prepared / "release" / "responsible-ai-en" / "responsible_ai.ipynb", 4)
    committed = nbformat.read(LAB / "responsible-ai-en" / "responsible_ai.ipynb", 4)
    assert [c.source for c in released.cells] == [c.source for c in committed.cells]

    prepared_again = []
    monkeypatch.setattr(release, "prepare_course", lambda course, *args: prepared_again.append(course))
    assert release.prepared_course("responsible-ai-en", env) == prepared and prepared_again == []
    course = tmp_path / "work" / "course"
    course.mkdir(parents=True)
    CourseTree(course, "responsible-ai-en", "en").prepare(env)
    assert (course / "gradebook.db").is_file() and (course / "release" / "responsible-ai-en").is_dir()
    assert prepared_again == [] and oct(course.stat().st_mode & 0o777) == "0o755"
    CourseTree(course, "responsible-ai-en", "en").prepare(env)  # it has a gradebook now: nbgrader runs on it
    assert prepared_again == [course]
    # Another language is another course, prepared anew (by the stand-in above, which makes no gradebook: so the
    # course is prepared again at the next call, never taken from a folder without one).
    french = release.prepared_course("responsible-ai-en", {**env, "RAI_LAB_LANG": "fr"})
    assert french != prepared and len(prepared_again) == 2
    release.prepared_course("responsible-ai-en", {**env, "RAI_LAB_LANG": "fr"})
    assert len(prepared_again) == 3
