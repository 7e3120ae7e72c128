"""Databricks exports (SOURCE, JUPYTER, DBC, HTML) read and mapped back onto the released notebook, without a kernel."""

from __future__ import annotations

import io
import json
import zipfile

import nbformat
import pytest
from conftest import LAB

import databricks_exports as exports
import make_submissions as subs
from rai_lab.cells import is_check
from rai_lab.grading.instructor import databricks_formats as formats
from rai_lab.grading.instructor import databricks_mapping as mapping

FORMATS = ["jupyter", "source", "dbc", "html"]
ANSWERS = {"env_vars": subs.ENV_OK, "generate_answers": subs.GENERATE_OK, "build_dataframes": subs.DATAFRAMES_OK,
           "gf_sampling": subs.SAMPLING_OK, "gf_representation": subs.REPRESENTATION_OK}


def release(lang: str = "fr"):
    return nbformat.read(LAB / f"responsible-ai-{lang}" / "responsible_ai.ipynb", as_version=4)


def mapped_from(cells, kind: str, lang: str = "fr") -> mapping.Mapped:
    suffix, raw = exports.export(cells, kind)
    return mapping.from_export(raw, "learner" + suffix, lang)[0]


def grade_ids(nb) -> list:
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("imported", ["source", "ipynb"])
def test_each_format_reads_back_the_cells_databricks_wrote(kind, imported):
    """Does each reader give back the workspace's cells, in order (DBC and HTML list them out of order)?"""
    cells = exports.workspace(release(), ANSWERS, imported)
    suffix, raw = exports.export(cells, kind)
    found, read = formats.read_export(raw, "x" + suffix)
    assert found == kind
    assert [(c.kind, c.source) for c in read] == [(kind_, source) for kind_, source, _ in cells]


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("imported", ["source", "ipynb"])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_an_export_maps_to_the_notebook_a_jupyterlab_learner_hands_in(kind, imported, lang):
    """The mapped export is, byte for byte, the JupyterLab learner's notebook with the same answers: the release's
    cells, ids, nbgrader metadata and check cells, the learner's code in each step."""
    cells = exports.workspace(release(lang), ANSWERS, imported)
    result = mapped_from(cells, kind, lang)
    assert nbformat.writes(result.notebook) == nbformat.writes(exports.jupyterlab(release(lang), ANSWERS))
    assert result.problems == [] and result.restored == [] and result.added == 0
    assert mapping.notes(result, kind, lang) == [mapping.say("databricks.read", lang, format=mapping.FORMAT_NAMES[kind])]


def test_titles_and_the_old_magic_spacing_of_a_source_export_are_read():
    """`# DBTITLE 1,...` lines are titles, not code; `# MAGIC ` with a trailing space on an empty line is read too."""
    cells = exports.workspace(release(), ANSWERS)
    titled = [(k, s, "Mes variables" if s.startswith("# rai-lab step: env_vars") else t) for k, s, t in cells]
    raw = exports.as_source(titled).replace(b"# MAGIC\n", b"# MAGIC \n")
    assert b"# DBTITLE 1,Mes variables\n# rai-lab step: env_vars" in raw
    read = formats.read_source(raw)
    assert [(c.kind, c.source) for c in read] == [(k, s) for k, s, _ in cells]


def test_an_unfilled_export_maps_to_the_release_itself():
    for kind in FORMATS:
        assert nbformat.writes(mapped_from(exports.workspace(release(), {}), kind).notebook) == nbformat.writes(release())


def test_a_dbc_of_a_folder_picks_the_labs_notebook():
    cells = exports.workspace(release(), ANSWERS)
    raw = exports.as_dbc(cells, folder="Users/learner@example.com/AI-06", others={"scratch": [("code", "print(1)", "")]})
    names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
    assert "Users/learner@example.com/AI-06/responsible_ai.python" in names and len(names) == 2
    result, kind = mapping.from_export(raw, "AI-06.dbc", "fr")
    assert kind == "dbc" and nbformat.writes(result.notebook) == nbformat.writes(exports.jupyterlab(release(), ANSWERS))


def test_a_jupyterlab_notebook_is_not_taken_for_an_export():
    assert not formats.is_databricks_notebook(json.loads(nbformat.writes(release())))
    assert formats.is_databricks_notebook(json.loads(exports.as_jupyter(exports.workspace(release(), {}))))


UNREADABLE = [
    ("plain.py", b"print('hello')\n", "not_source", "n'est pas un export Databricks", "is not a Databricks export"),
    ("saved.html", b"<html><body><p>responsible_ai</p></body></html>", "html_no_model",
     "ne contient pas de notebook lisible", "holds no readable notebook"),
    ("broken.html", b"<script>var __DATABRICKS_NOTEBOOK_MODEL = 'bm90IGpzb24=';</script>", "html_no_model",
     "ne contient pas de notebook lisible", "holds no readable notebook"),
    ("broken.dbc", b"PK\x03\x04 not a zip", "unreadable", "l'export Databricks (DBC) est illisible",
     "the Databricks export (DBC) is unreadable"),
    ("empty.dbc", b"PK\x05\x06" + b"\x00" * 18, "no_notebook",  # an empty zip archive
     "ne contient aucun notebook", "holds no notebook"),
    ("latin1.py", "# Databricks notebook source\nprint('é')\n".encode("latin-1"), "unreadable", "UTF-8", "UTF-8"),
    ("other.py", b"# Databricks notebook source\nprint(1)\n", "no_step", "aucune étape du labo", "no step of the lab"),
]


@pytest.mark.parametrize(("name", "raw", "key", "fr", "en"), UNREADABLE, ids=[row[0] for row in UNREADABLE])
def test_an_export_that_cannot_be_read_says_why_in_the_learners_language(name, raw, key, fr, en):
    with pytest.raises(formats.Unreadable) as caught:
        mapping.from_export(raw, name, "fr")
    assert caught.value.key == key
    assert fr in mapping.refusal(caught.value, "fr", name) and en in mapping.refusal(caught.value, "en", name)
    assert mapping.refusal(caught.value, "fr", name).startswith(name)
    assert "File > Export" in mapping.refusal(caught.value, "en", name) or key == "no_step"


def _code(nb) -> list[tuple[str | None, str]]:
    return [(c.metadata.get("nbgrader", {}).get("grade_id"), c.source) for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("kind", FORMATS)
def test_a_marker_edited_away_names_the_step_and_keeps_the_other_steps(kind):
    """The step whose marker is gone keeps the release's stub (with a reason naming it, in French and English); the
    learner's cell without a marker is kept after the anchored cell it followed; every other step maps."""
    cells = exports.workspace(release(), ANSWERS)
    cells = [(k, s.split("\n", 1)[1] if s.startswith("# rai-lab step: build_dataframes") else s, t) for k, s, t in cells]
    result = mapped_from(cells, kind)
    assert [(p.grade_id, p.why) for p in result.problems] == [("build_dataframes", "missing")]
    assert set(result.mapped) >= {"env_vars", "generate_answers", "gf_sampling", "gf_representation"}
    code = _code(result.notebook)
    stub = next(s for g, s in _code(release()) if g == "build_dataframes")
    at = code.index(("build_dataframes", stub))
    # the learner's unmarked cell followed the answers' last check cell in the export: it comes right after it
    own = code.index((None, subs.DATAFRAMES_OK))
    assert code[own - 1][0] == "answers_lists" and own < at
    said = mapping.notes(result, kind, "fr")
    assert any("Étape « DataFrames Spark » (build_dataframes) introuvable" in n for n in said)
    assert any('Step "Spark DataFrames" (build_dataframes) not found' in n for n in mapping.notes(result, kind, "en"))


def test_cells_merged_name_the_step_merged_away():
    cells = exports.workspace(release(), ANSWERS)
    merged = []
    for k, s, t in cells:
        if s.startswith("# rai-lab step: generate_answers"):
            s = s + "\n\n" + exports.MARKER.format("build_dataframes") + "\n" + subs.DATAFRAMES_OK
        elif s.startswith("# rai-lab step: build_dataframes"):
            continue
        merged.append((k, s, t))
    result = mapped_from(merged, "source")
    assert [(p.grade_id, p.why, p.into) for p in result.problems] == [("build_dataframes", "merged", "generate_answers")]
    assert "generate_answers" in result.mapped and "build_dataframes" not in result.mapped
    text = " ".join(mapping.notes(result, "source", "fr"))
    assert "Étape « DataFrames Spark » (build_dataframes) fusionnée dans la cellule de l'étape « réponses du modèle »" in text


def test_a_split_cell_keeps_both_halves_before_the_steps_checks():
    """Split in two (the second half without the marker): both run, in order, before the step's check cells."""
    cells = exports.workspace(release(), ANSWERS, "ipynb")
    first, second = subs.GENERATE_OK.split("for row in loaded_input:")
    split = []
    for k, s, t in cells:
        if s.startswith("# rai-lab step: generate_answers"):
            split += [(k, exports.MARKER.format("generate_answers") + "\n" + first, t), (k, "for row in loaded_input:" + second, t)]
        else:
            split.append((k, s, t))
    result = mapped_from(split, "jupyter")
    assert result.problems == [] and result.added == 1
    code = _code(result.notebook)
    at = [g for g, _ in code].index("generate_answers")
    assert code[at + 1] == (None, "for row in loaded_input:" + second) and code[at + 2][0] == "calls_ten_made"


def test_a_copied_step_cell_is_graded_once():
    cells = exports.workspace(release(), ANSWERS)
    env = next(c for c in cells if c[1].startswith("# rai-lab step: env_vars"))
    doubled = [c for pair in ((c, env) if c is env else (c,) for c in cells) for c in pair]
    result = mapped_from(doubled, "html")
    assert [(p.grade_id, p.why) for p in result.problems] == [("env_vars", "twice")] and result.added == 1


def test_kit_cells_edited_or_deleted_in_databricks_are_put_back():
    """Databricks locks nothing: an edited kit cell is replaced by the release's (as nbgrader restores an edited locked
    cell), a deleted one put back, and the learner is told which."""
    cells = exports.workspace(release(), ANSWERS)
    changed = []
    for k, s, t in cells:
        if s.startswith("from openai import AzureOpenAI"):
            s = s.replace("api_key=os.environ", "api_key=os.environ  # mine\n    ")
        if s.startswith("neutral_input = ["):
            continue
        changed.append((k, s, t))
    result = mapped_from(changed, "dbc")
    assert result.restored == ["create_client", "sample_inputs"] and result.problems == []
    assert nbformat.writes(result.notebook) == nbformat.writes(exports.jupyterlab(release(), ANSWERS))
    assert "(create_client, sample_inputs)" in mapping.notes(result, "dbc", "en")[-1]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_cell_a_learner_may_edit_carries_its_marker_and_the_anchors_are_unique(lang):
    """The anchors the mapping relies on: a marker on each unlocked code cell of lab/, the check cells' first line,
    and a first line that tells each locked kit cell apart."""
    nb = release(lang)
    steps, texts, firsts, checks = mapping.anchors(nb)
    unlocked = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("locked")]
    assert list(steps) == unlocked and len(unlocked) == 8
    assert checks == {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_check(c)} and len(checks) == 14
    locked = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("locked") and not is_check(c)]
    assert len(firsts) == len(locked) == 4
    assert all(mapping.CHECK.match(c.source.splitlines()[0]).group(1) == c.metadata["nbgrader"]["grade_id"]
               for c in nb.cells if is_check(c))


def test_intake_stages_every_export_as_the_notebook_a_jupyterlab_learner_hands_in(tmp_path):
    """A class folder of exports, alone, in a learner's folder and in a zip: each staged notebook is the JupyterLab
    learner's, its format recorded for the summary; a key pasted in an export is found and masked; the staged
    notebooks do not change from one intake to the next (the grader's cache keeps unchanged grades)."""
    from rai_lab.grading.instructor import intake

    folder = tmp_path / "class"
    (folder / "Eve").mkdir(parents=True)
    nb = release()
    key_answers = {**ANSWERS, "env_vars": subs.ENV_OK.replace('"any-value-in-replay-mode"', f'"{subs.FAKE_KEY}"')}
    for learner, kind, answers in (("Ana", "jupyter", ANSWERS), ("Ben", "source", key_answers), ("Cid", "dbc", ANSWERS),
                                   ("Dee", "html", ANSWERS)):
        suffix, raw = exports.export(exports.workspace(nb, answers, "ipynb" if kind == "jupyter" else "source"), kind)
        (folder / f"{learner}{suffix}").write_bytes(raw)
    (folder / "Eve" / "responsible_ai.py").write_bytes(exports.as_source(exports.workspace(nb, ANSWERS)))
    (folder / "Eve" / "helpers.txt").write_text("notes")
    with zipfile.ZipFile(folder / "Fay.zip", "w") as archive:
        archive.writestr("Fay/responsible_ai.dbc", exports.as_dbc(exports.workspace(nb, ANSWERS)))
    (folder / "Gus.ipynb").write_text(nbformat.writes(exports.jupyterlab(nb, ANSWERS)), encoding="utf-8")
    first = {s.learner: s for s in intake.collect(folder, tmp_path / "one", "fr")}
    assert {k: (s.format, s.problem) for k, s in first.items()} == {
        "Ana": ("databricks-jupyter", None), "Ben": ("databricks-source", None), "Cid": ("databricks-dbc", None),
        "Dee": ("databricks-html", None), "Eve": ("databricks-source", None), "Fay": ("databricks-dbc", None),
        "Gus": ("jupyterlab", None)}
    expected = nbformat.writes(exports.jupyterlab(nb, ANSWERS))
    for learner, sub in first.items():
        staged = nbformat.writes(nbformat.read(sub.notebook, as_version=4))
        if learner == "Ben":
            assert subs.FAKE_KEY not in staged and any("vraie clé Azure OpenAI" in n for n in sub.notes)
        else:
            assert staged == expected, learner
    assert first["Ana"].notes == ["Remise lue comme un export Databricks (JUPYTER (.ipynb)) et replacée dans le notebook "
                                  "distribué ; les cellules de vérification du correcteur y ont été remises."]
    again = {s.learner: s.digest for s in intake.collect(folder, tmp_path / "two", "fr")}
    assert again == {k: s.digest for k, s in first.items()}
    assert mapping.count_formats(s.format for s in first.values()) == (
        "JupyterLab (.ipynb) 1, Databricks JUPYTER (.ipynb) 1, Databricks SOURCE (.py) 2, Databricks DBC (.dbc) 2, "
        "Databricks HTML (.html) 1")
