"""Intake follows no link and drops nothing (rai_lab/grading/instructor/intake.py): every entry of a class folder gets a row, a
symbolic link anywhere in a submission is refused unfollowed, and nothing outside the class folder is read.

Fast (`make test-quick`): no kernel, no Spark, no nbgrader run; each case builds its class under tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import threading
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import LAB
from rai_lab.grading.instructor import classfolder, intake

MARKER = "MARKER-OF-A-CLASSMATE-OUTSIDE-THE-CLASS-FOLDER"
RELEASED = nbformat.writes(nbformat.read(LAB / "responsible-ai-en" / "responsible_ai.ipynb", 4))


def classmate() -> str:
    """A classmate's notebook holding MARKER: it must never reach anything intake writes."""
    nb = nbformat.reads(RELEASED, 4)
    nb.cells.append(nbformat.v4.new_markdown_cell(MARKER))
    return nbformat.writes(nb)


def zipped(path: Path, *members: tuple[str | zipfile.ZipInfo, str]) -> None:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
        for name, data in members:
            archive.writestr(name, data)


def member(name: str, kind: int) -> zipfile.ZipInfo:
    """A zip member of a Unix file type (a symbolic link's data is its target's path)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o777) << 16
    return info


def bound_socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays


# Each case: how to build it (the class folder, a folder outside it), the learner id, graded or not, and words
# the reason must hold in French and in English (None when graded).
WHY_FR = "Le correcteur accepte un notebook .ipynb, un dossier"
WHY_EN = "The grader accepts a notebook .ipynb, a folder"
CASES = {
    "link to a classmate's notebook outside": (
        lambda c, o: os.symlink(o / "Alice.ipynb", c / "Bob.ipynb"),
        "Bob", False, "Bob.ipynb est un lien symbolique : le correcteur ne suit aucun lien",
        "Bob.ipynb is a symbolic link: the grader follows no link"),
    "relative link to a classmate in the class": (
        lambda c, o: (Path(c / "Alice.ipynb").write_text(RELEASED), os.symlink("Alice.ipynb", c / "Bob.ipynb")),
        "Bob", False, "Bob.ipynb est un lien symbolique", "Bob.ipynb is a symbolic link"),
    "link to a FIFO outside (following it would hang)": (
        lambda c, o: (os.mkfifo(o / "pipe"), os.symlink(o / "pipe", c / "Bob.ipynb")),
        "Bob", False, "Bob.ipynb est un lien symbolique", "Bob.ipynb is a symbolic link"),
    "link to a folder": (
        lambda c, o: os.symlink(o, c / "Bob", target_is_directory=True),
        "Bob", False, "Bob est un lien symbolique", "Bob is a symbolic link"),
    "dangling link": (
        lambda c, o: os.symlink(o / "nothing.ipynb", c / "Bob.ipynb"),
        "Bob", False, "Bob.ipynb est un lien symbolique", "Bob.ipynb is a symbolic link"),
    "folder whose notebook is a link": (
        lambda c, o: ((c / "Bob").mkdir(), os.symlink(o / "Alice.ipynb", c / "Bob" / "responsible_ai.ipynb")),
        "Bob", False, "Le dossier Bob contient un lien symbolique (responsible_ai.ipynb) : le correcteur ne suit aucun",
        "The folder Bob contains a symbolic link (responsible_ai.ipynb): the grader follows no link"),
    "folder whose sub-folder is a link": (
        lambda c, o: ((c / "Bob").mkdir(), os.symlink(o, c / "Bob" / "work", target_is_directory=True)),
        "Bob", False, "Le dossier Bob contient un lien symbolique (work)",
        "The folder Bob contains a symbolic link (work)"),
    "folder whose cassette is a link": (
        lambda c, o: ((c / "Bob").mkdir(), Path(c / "Bob" / "responsible_ai.ipynb").write_text(RELEASED),
                      os.symlink(o / "cassette.yaml", c / "Bob" / "cassette.yaml")),
        "Bob", False, "Le dossier Bob contient un lien symbolique (cassette.yaml)",
        "The folder Bob contains a symbolic link (cassette.yaml)"),
    "zip with a symlink member": (
        lambda c, o: zipped(c / "Bob.zip", (member("responsible_ai.ipynb", stat.S_IFLNK), str(o / "Alice.ipynb"))),
        "Bob", False,
        "L'archive Bob.zip est illisible ou dangereuse (le membre responsible_ai.ipynb est un lien symbolique)",
        "The archive Bob.zip is unreadable or unsafe (member responsible_ai.ipynb is a symbolic link)"),
    "zip with a symlink member that is not a notebook": (
        lambda c, o: zipped(c / "Bob.zip", ("responsible_ai.ipynb", RELEASED), (member("data", stat.S_IFLNK), "/etc")),
        "Bob", False, "(le membre data est un lien symbolique)", "(member data is a symbolic link)"),
    "zip with a FIFO member": (
        lambda c, o: zipped(c / "Bob.zip", (member("responsible_ai.ipynb", stat.S_IFIFO), "")),
        "Bob", False, "le membre responsible_ai.ipynb n'est ni un fichier ni un dossier",
        "member responsible_ai.ipynb is neither a file nor a folder"),
    "zip with ..": (
        lambda c, o: zipped(c / "Bob.zip", ("../../Bob.ipynb", RELEASED)),
        "Bob", False, "(le membre ../../Bob.ipynb a un chemin dangereux", "(member ../../Bob.ipynb has an unsafe path"),
    "zip with an absolute path": (
        lambda c, o: zipped(c / "Bob.zip", ("/tmp/Bob.ipynb", RELEASED)),
        "Bob", False, "a un chemin dangereux", "has an unsafe path"),
    "zip with one member twice": (
        lambda c, o: zipped(c / "Bob.zip", ("responsible_ai.ipynb", RELEASED), ("responsible_ai.ipynb", classmate())),
        "Bob", False, "(le membre responsible_ai.ipynb y figure deux fois)",
        "(member responsible_ai.ipynb is in it twice)"),
    "not a zip": (
        lambda c, o: Path(c / "Bob.zip").write_text("PK? no"),
        "Bob", False, "(ce n'est pas une archive zip lisible)", "(not a readable zip archive)"),
    ".py that is not a Databricks export": (
        lambda c, o: Path(c / "Bob.py").write_text("print('my answers')"),
        "Bob", False, "Bob.py n'est pas un export Databricks (sa première ligne n'est pas « # Databricks notebook source ») ; "
                      f"rien n'a été exécuté. {WHY_FR}",
        "Bob.py is not a Databricks export (its first line is not \"# Databricks notebook source\"); nothing was run. "
        f"{WHY_EN}"),
    ".txt": (
        lambda c, o: Path(c / "Bob.txt").write_text("my answers"),
        "Bob", False, "Bob.txt n'est pas un type de remise accepté", "Bob.txt is not a kind of submission"),
    ".html that holds no notebook": (
        lambda c, o: Path(c / "Bob.html").write_text("<p>my notebook, exported</p>"),
        "Bob", False, "Bob.html ne contient pas de notebook lisible", "Bob.html holds no readable notebook"),
    "no suffix": (
        lambda c, o: Path(c / "Bob").write_text(RELEASED),
        "Bob", False, "Bob n'est pas un type de remise accepté", "Bob is not a kind of submission the grader accepts"),
    "hidden file": (
        lambda c, o: Path(c / ".Bob.txt").write_text("notes"),
        "Bob", False, ".Bob.txt n'est pas un type de remise accepté", ".Bob.txt is not a kind of submission"),
    "empty folder": (
        lambda c, o: (c / "Bob").mkdir(),
        "Bob", False, "Le dossier Bob est vide", "The folder Bob is empty"),
    "folder of empty folders": (
        lambda c, o: (c / "Bob" / "a" / "b").mkdir(parents=True),
        "Bob", False, "Le dossier Bob est vide", "The folder Bob is empty"),
    "folder without a notebook": (
        lambda c, o: ((c / "Bob").mkdir(), Path(c / "Bob" / "answers.txt").write_text("42")),
        "Bob", False, "Aucun notebook trouvé dans la remise (Bob)", "No notebook found in the submission (Bob)"),
    "FIFO named like a notebook": (
        lambda c, o: os.mkfifo(c / "Bob.ipynb"),
        "Bob", False, "Bob.ipynb n'est ni un fichier ni un dossier (tube nommé) ; il n'a pas été ouvert",
        "Bob.ipynb is neither a file nor a folder (named pipe); it was not opened"),
    "socket": (
        lambda c, o: bound_socket(c / "Bob"),
        "Bob", False, "Bob n'est ni un fichier ni un dossier (socket)", "Bob is neither a file nor a folder (socket)"),
    "FIFO inside a folder": (
        lambda c, o: ((c / "Bob").mkdir(), os.mkfifo(c / "Bob" / "responsible_ai.ipynb")),
        "Bob", False,
        "Le dossier Bob contient responsible_ai.ipynb, qui n'est ni un fichier ni un dossier (tube nommé)",
        "The folder Bob contains responsible_ai.ipynb, which is neither a file nor a folder (named pipe)"),
    "valid notebook": (
        lambda c, o: Path(c / "Bob.ipynb").write_text(RELEASED),
        "Bob", True, None, None),
    "valid hidden notebook": (
        lambda c, o: Path(c / ".Bob.ipynb").write_text(RELEASED),
        "Bob", True, None, None),
    "valid folder": (
        lambda c, o: ((c / "Bob" / "work").mkdir(parents=True),
                      Path(c / "Bob" / "work" / "mine.ipynb").write_text(RELEASED)),
        "Bob", True, None, None),
    "valid zip": (
        lambda c, o: zipped(c / "Bob.zip", ("Bob/responsible_ai.ipynb", RELEASED),
                            ("__MACOSX/Bob/._responsible_ai.ipynb", "\0")),
        "Bob", True, None, None),
}


def collect(folder: Path, staging: Path, lang: str) -> list[intake.Submission]:
    """intake.collect, failing (not hanging) if it takes more than a minute: it must never open a FIFO."""
    done: list = []
    worker = threading.Thread(target=lambda: done.append(intake.collect(folder, staging, lang)), daemon=True)
    worker.start()
    worker.join(60)
    assert done, "intake.collect hung (did it open a FIFO?)"
    return done[0]


def staged_text(staging: Path) -> str:
    """Everything intake wrote, with no link among it."""
    texts = []
    for where, folders, files in os.walk(staging):
        for name in folders + files:
            assert not os.path.islink(os.path.join(where, name)), name
        texts += [Path(where, name).read_text(encoding="utf-8", errors="replace") for name in files]
    return "\n".join(texts)


@pytest.fixture
def class_and_outside(tmp_path):
    folder, outside = tmp_path / "class", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    (outside / "Alice.ipynb").write_text(classmate(), encoding="utf-8")
    (outside / "responsible_ai.ipynb").write_text(classmate(), encoding="utf-8")
    (outside / "cassette.yaml").write_text(f"interactions: []\nversion: 1\n# {MARKER}\n", encoding="utf-8")
    return folder, outside


@pytest.mark.parametrize("case", list(CASES))
def test_every_entry_gets_a_row_and_no_link_is_followed(tmp_path, class_and_outside, case):
    build, learner, graded, french, english = CASES[case]
    folder, outside = class_and_outside
    build(folder, outside)
    for lang, words in (("fr", french), ("en", english)):
        staging = tmp_path / f"staging-{lang}"
        rows = {sub.learner: sub for sub in collect(folder, staging, lang)}
        assert len(rows) == len(os.listdir(folder)), rows  # one row per entry
        sub = rows[learner]
        assert sub.digest
        if graded:
            assert sub.problem is None and sub.notebook and sub.notebook.is_relative_to(staging), sub.problem
        else:
            assert sub.notebook is None and sub.problem and words in sub.problem, (lang, sub.problem)
            assert str(tmp_path) not in sub.problem  # no path of the grader's machine in a learner's feedback
        assert MARKER not in staged_text(staging) + json.dumps([s.problem for s in rows.values()])
        assert not (staging / ".unzipped").exists() or not any((staging / ".unzipped").iterdir())


def test_a_whole_class_keeps_its_learners_ids_and_ignores_only_known_clutter(tmp_path):
    """Rows for what was never graded before (an export, a link, a hidden file) take their ids after the learners'
    submissions, in name order: "Élodie Dupont.ipynb" stays Élodie_Dupont whatever lands beside it."""
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "Élodie Dupont.ipynb").write_text(RELEASED, encoding="utf-8")
    (folder / "Élodie Dupont.html").write_text("<p>export</p>", encoding="utf-8")  # sorts before the notebook
    (folder / ".Élodie Dupont.ipynb").write_text(RELEASED, encoding="utf-8")  # hidden: sorts first
    os.symlink("Élodie Dupont.ipynb", folder / "Élodie Dupont.zip")
    (folder / "Marc").mkdir()
    (folder / "Marc" / "responsible_ai.ipynb").write_text(RELEASED, encoding="utf-8")
    (folder / "Marc" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "Marc" / ".ipynb_checkpoints").mkdir()
    (folder / "Marc" / ".ipynb_checkpoints" / "responsible_ai-checkpoint.ipynb").write_text("{broken")
    # Clutter of the operating system or Jupyter, by exact name: no row.
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / "__MACOSX").mkdir()
    (folder / "._Marc").write_bytes(classfolder.APPLEDOUBLE_MAGIC + b"\0\2\0\0Mac OS X")
    # Hidden, but not clutter (or clutter's name on a link): a row each.
    (folder / "._notes").write_text("not AppleDouble")
    os.symlink("/etc/passwd", folder / ".DS_Store.old")
    os.symlink("/etc", folder / "desktop.ini")
    rows = {sub.source: sub for sub in intake.collect(folder, tmp_path / "staging", "fr")}
    assert {source: sub.learner for source, sub in rows.items()} == {
        ".DS_Store.old": "DS_Store",
        "._notes": "notes",
        ".Élodie Dupont.ipynb": "Élodie_Dupont_2",
        "Marc": "Marc",
        "desktop.ini": "desktop",
        "Élodie Dupont.html": "Élodie_Dupont_2_2",
        "Élodie Dupont.ipynb": "Élodie_Dupont",
        "Élodie Dupont.zip": "Élodie_Dupont_2_2_2",
    }
    graded = {source for source, sub in rows.items() if sub.problem is None}
    assert graded == {"Élodie Dupont.ipynb", ".Élodie Dupont.ipynb", "Marc"}
    assert "lien symbolique" in rows["desktop.ini"].problem and "lien symbolique" in rows[".DS_Store.old"].problem
    assert "lien symbolique" in rows["Élodie Dupont.zip"].problem


def test_digests_keep_unchanged_grades_and_follow_refused_entries(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "Bob.ipynb").write_text(RELEASED, encoding="utf-8")
    os.symlink("elsewhere/one.ipynb", folder / "Carl.ipynb")
    (folder / "Dan.py").write_text("one", encoding="utf-8")
    first = {s.learner: s for s in intake.collect(folder, tmp_path / "one", "en")}
    again = {s.learner: s for s in intake.collect(folder, tmp_path / "two", "en")}
    assert {k: s.digest for k, s in first.items()} == {k: s.digest for k, s in again.items()}
    # A graded submission's digest is the one the grader's cache already holds: staged notebook, cassette, notes.
    bob = first["Bob"]
    sha = hashlib.sha256(bob.notebook.read_bytes() + b"-" + json.dumps([None, bob.notes]).encode())
    assert bob.digest == sha.hexdigest()
    # A refused entry's digest changes with the entry: the link's target text, the file's content.
    os.unlink(folder / "Carl.ipynb")
    os.symlink("elsewhere/two.ipynb", folder / "Carl.ipynb")
    (folder / "Dan.py").write_text("two, longer", encoding="utf-8")
    changed = {s.learner: s for s in intake.collect(folder, tmp_path / "three", "en")}
    assert changed["Bob"].digest == bob.digest
    assert changed["Carl"].digest != first["Carl"].digest and changed["Carl"].problem == first["Carl"].problem
    assert changed["Dan"].digest != first["Dan"].digest


def test_a_class_folder_given_through_a_link_is_read(tmp_path):
    """The instructor's own path may be a link; links inside it are the learners' and are refused."""
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "Bob.ipynb").write_text(RELEASED, encoding="utf-8")
    os.symlink(folder, tmp_path / "link-to-class", target_is_directory=True)
    [sub] = intake.collect(tmp_path / "link-to-class", tmp_path / "staging", "en")
    assert (sub.learner, sub.problem) == ("Bob", None)


def test_an_unreadable_cassette_is_refused_in_the_learners_language(tmp_path):
    folder = tmp_path / "class"
    (folder / "Bob").mkdir(parents=True)
    (folder / "Bob" / "responsible_ai.ipynb").write_text(RELEASED, encoding="utf-8")
    (folder / "Bob" / "cassette.yaml").write_text("interactions: !!python/object/apply:os.system ['true']\n")
    for lang, words in (("fr", "Votre cassette n'a pas été utilisée (cassette.yaml n'est pas une cassette lisible)"),
                        ("en", "Your cassette was not used (cassette.yaml is not a readable cassette)")):
        [sub] = intake.collect(folder, tmp_path / lang, lang)
        assert sub.problem is None and sub.cassette is None
        assert any(words in n for n in sub.notes), sub.notes
        assert not any(str(tmp_path) in n for n in sub.notes)
        assert not list((tmp_path / lang).rglob("*handed-in*"))
