"""The notebooks hold the exercise's own words, in its order, and mark every addition as the kit's.

The reference texts are stored under tests/data/exercise/ (see tests/data/README.md for their
source, commit and licence): the French edition the lab follows, and upstream's English file at the
commit that edition translates. Markdown is compared unit by unit (a heading, a paragraph line, a
list item, a quoted line, a whole code block), verbatim, typography included (the French edition's
non-breaking spaces, its curly apostrophes). Two things Markdown does not show are left out of the
comparison: blank lines, and the number written before a list item (Markdown renumbers "1. 1. 1."
as "1. 2. 3.", and a list the notebook splits over cells must carry its numbers itself).

Text of the kit's own is marked where a reader sees it:
- a quote opening with **rai-lab** ("> **rai-lab** : ..."), up to the end of that quote;
- a section whose first words after its heading are such a quote (the going-further part).
"""

from __future__ import annotations

import re
import textwrap

import nbformat
import pytest
from conftest import ROOT, SOLUTIONS

EXERCISE = ROOT / "tests" / "data" / "exercise"
LANGS = {"fr": "responsible-ai-fr", "en": "responsible-ai-en"}
KIT_NOTE = re.compile(r"^>\s*\*\*rai-lab")
LIST_NUMBER = re.compile(r"^(\s*)\d+\.\s+")


def units(lines: list[str]) -> list[tuple[str, str]]:
    """The Markdown `lines` as comparable units: ("code", block) or ("text", line)."""
    found: list[tuple[str, str]] = []
    block: list[str] | None = None
    for line in lines:
        if line.lstrip().startswith("```"):
            if block is None:
                block = []
            else:
                found.append(("code", textwrap.dedent("\n".join(block)).strip("\n")))
                block = None
            continue
        if block is not None:
            block.append(line)
        elif line.strip():
            found.append(("text", LIST_NUMBER.sub(r"\1#. ", line.rstrip())))
    assert block is None, "a code block is not closed"
    return found


def exercise_units(lang: str) -> list[tuple[str, str]]:
    text = (EXERCISE / f"AI-06-Responsible-AI.{lang}.md").read_text(encoding="utf-8")
    front, body = re.match(r"^---\n.*?\n---\n(.*)$", text, re.S).group(0, 1)
    assert front
    return units(body.splitlines())


def notebook_lines(lang: str) -> list[tuple[str, bool]]:
    """Every Markdown line of the French or English notebook, in order, with whether it is the kit's."""
    nb = nbformat.read(SOLUTIONS / LANGS[lang] / "responsible_ai.ipynb", as_version=4)
    lines = [line for cell in nb.cells if cell.cell_type == "markdown" for line in cell.source.splitlines() + [""]]
    marked: list[tuple[str, bool]] = []
    in_note = in_section = False
    for index, line in enumerate(lines):
        if line.startswith("## ") or line.startswith("# "):
            following = next((later for later in lines[index + 1:] if later.strip()), "")
            in_section = bool(KIT_NOTE.match(following))
        if KIT_NOTE.match(line):
            in_note = True
        elif not line.startswith(">"):
            in_note = False
        marked.append((line, in_note or in_section))
    return marked


@pytest.mark.parametrize("lang", LANGS)
def test_the_notebook_holds_the_exercise_verbatim_and_in_order(lang):
    """Every heading, paragraph, prompt and code block of the exercise, and nothing unmarked besides."""
    ours = units([line for line, kit in notebook_lines(lang) if not kit])
    theirs = exercise_units(lang)
    for position, (mine, exercise) in enumerate(zip(ours, theirs)):
        assert mine == exercise, f"unit {position}: the notebook differs from the exercise"
    assert len(ours) == len(theirs), (ours[len(theirs):], theirs[len(ours):])


@pytest.mark.parametrize("lang", LANGS)
def test_the_kit_adds_text_and_says_so(lang):
    """The comparison above has something to skip: the kit's notes exist, and all are marked."""
    kit = [line for line, is_kit in notebook_lines(lang) if is_kit and line.strip()]
    assert sum(bool(KIT_NOTE.match(line)) for line in kit) >= 8
    going_further = "## Aller plus loin" if lang == "fr" else "## Going further"
    assert any(line.startswith(going_further) for line in kit)


def test_the_french_edition_keeps_its_typography():
    """53 non-breaking spaces in the French edition: all of them reach the notebook."""
    exercise = (EXERCISE / "AI-06-Responsible-AI.fr.md").read_text(encoding="utf-8")
    notebook = "\n".join(line for line, kit in notebook_lines("fr") if not kit)
    assert exercise.count("\u00a0") == 53
    assert notebook.count("\u00a0") == exercise.count("\u00a0")


def test_the_units_catch_a_changed_word():
    """The comparison is not blind: one changed word, one dropped line, one moved step all show."""
    theirs = exercise_units("fr")
    lines = [line for line, kit in notebook_lines("fr") if not kit]
    changed = [line.replace("également", "aussi").replace("Conseil", "Astuce") for line in lines]
    assert units(changed) != theirs
    dropped = [line for line in lines if "plusieurs conseils et notifications" not in line]
    assert units(dropped) != theirs
    assert units(lines[::-1]) != theirs
