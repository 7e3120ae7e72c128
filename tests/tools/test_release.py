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
