"""Every figure and word list the going-further part shows carries a source that says exactly that.

The cited lists are stored under tests/data/ with their own sources (tests/data/README.md): the
appendix of Gaucher, Friesen and Kay (2011) and HELM's gender word lists.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT, SOLUTIONS

from rai_lab import bias
from rai_lab.azure import standin

DATA = ROOT / "tests" / "data"
LANGS = {"fr": "responsible-ai-fr", "en": "responsible-ai-en"}


def sections(name: str) -> dict[str, list[str]]:
    """A data file of `[heading]` sections, one entry a line, `#` comments."""
    found: dict[str, list[str]] = {}
    current = None
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = found.setdefault(line.strip("[]"), [])
        else:
            current.append(line.strip())
    return found


def matches(word: str, stem: str) -> bool:
    return word.startswith(stem[:-1]) if stem.endswith("*") else word == stem


def markdown(lang: str) -> str:
    nb = nbformat.read(SOLUTIONS / LANGS[lang] / "responsible_ai.ipynb", as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


@pytest.mark.parametrize("listed, heading", [(bias.GAUCHER_AGENTIC, "masculine"), (bias.GAUCHER_COMMUNAL, "feminine")])
def test_each_adjective_is_in_the_list_it_cites(listed, heading):
    appendix = sections("gaucher2011_appendix.txt")[heading]
    for word, stem in listed.items():
        assert stem in appendix, f"{stem!r} is not in the paper's {heading} list"
        assert matches(word, stem), f"{word!r} does not match the stem {stem!r}"
    assert len(listed) == 12


def test_the_stand_in_plants_words_the_measure_counts():
    """The stand-in's stereotype adjectives are in the lists, so the planted stereotype is measurable."""
    assert set(standin.TRAITS["female"]) <= set(bias.COMMUNAL_WORDS)
    assert set(standin.TRAITS["male"]) <= set(bias.AGENTIC_WORDS)
    assert not set(standin.TRAITS["neutral"]) & set(bias.COMMUNAL_WORDS + bias.AGENTIC_WORDS)


def test_the_gender_terms_are_helms_with_the_stated_changes():
    helm = sections("helm_bias_word_lists.txt")
    assert list(bias.HELM_FEMALE_WORDS) == helm["female"] and list(bias.HELM_MALE_WORDS) == helm["male"]
    for group, terms, original in (("female", bias.FEMALE_TERMS, helm["female"]), ("male", bias.MALE_TERMS, helm["male"])):
        kept = [bias.HELM_REPLACED.get(w, w) for w in original]
        assert list(terms) == kept + list(bias.KIT_ADDED_TERMS[group])
        for word in bias.KIT_ADDED_TERMS[group]:
            assert word in bias.__doc__, f"the module's docstring does not name the added {word!r}"
    assert len(bias.FEMALE_TERMS) == len(bias.MALE_TERMS)  # equal sizes: the normalisation stays neutral
    assert not set(bias.FEMALE_TERMS) & set(bias.MALE_TERMS)
    for old, new in bias.HELM_REPLACED.items():
        assert old in bias.__doc__ and new in bias.__doc__


def test_each_reference_share_has_a_source_a_year_and_a_scope():
    assert set(bias.REFERENCE_SHARE_WOMEN) == set(standin.STEREOTYPED_SHARE_FEMALE)
    for profession, ref in bias.REFERENCE_SHARE_WOMEN.items():
        assert ref.share is None or 0 < ref.share < 1, profession
        assert ref.occupation and ref.publisher and ref.source, profession
        assert isinstance(ref.year, int) and 2000 <= ref.year <= 2026, profession
        assert str(ref.year) in ref.source, f"{profession}: the citation does not state the year {ref.year}"
        assert ref.scope == "United States" and ref.url.startswith("https://"), profession
        assert ref.label() == f"{ref.publisher}, {ref.scope}, {ref.year}"


@pytest.mark.parametrize("lang", LANGS)
def test_the_notebook_cites_each_figure_with_its_year_and_scope(lang):
    text = markdown(lang)
    for profession, ref in bias.REFERENCE_SHARE_WOMEN.items():
        percent = f"{round(ref.share * 100)}\u00a0%" if lang == "fr" else f"{round(ref.share * 100)}%"
        line = next((line for line in text.splitlines() if line.startswith("- ") and f"*{profession}* {percent}" in line
                     or f", *{profession}* {percent}" in line), None)
        assert line, f"{lang}: no source line for {profession} {percent}"
        assert ref.url in line and f"American Community Survey* {ref.year}" in line
        assert ("États-Unis" if lang == "fr" else "United States") in line
    assert "Bolukbasi" in text and "femen" in text and "Liang et al., 2022" in text


@pytest.mark.parametrize("lang", LANGS)
def test_the_notebooks_examples_are_in_the_lists(lang):
    """The italic examples after "agentic"/"communal" in the text are words the measure counts."""
    text = markdown(lang)
    examples = dict(re.findall(r"\*\*(agenti\w*|communa\w*)\*\* \(\*([^*]+)\*", text))
    assert len(examples) == 2, examples
    for label, words in examples.items():
        listed = bias.AGENTIC_WORDS if label.startswith("agenti") else bias.COMMUNAL_WORDS
        assert [w for w in words.split(", ") if w not in listed] == [], label
