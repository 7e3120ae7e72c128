"""Intake of learners' submissions: find, unpack, validate and redact them before anything runs.

Every entry of the class folder becomes a Submission, so a row of grades.csv: graded, or with the reason
it was not (`problem`, in the learner's language). Nothing outside the class folder is ever read: a
symbolic link anywhere in a submission (an entry of the class folder, a file or folder inside a learner's
folder, a zip member) refuses that submission, unfollowed: the class folder is read through
`rai_lab.grading.instructor.classfolder`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat
import yaml

from rai_lab.azure.cassette.files import load_safely
from rai_lab.azure.cassette.scrub import KEPT_REQUEST_HEADERS, KEPT_RESPONSE_HEADERS, SCRUBBED_ORIGIN, redact
from rai_lab.azure.provider import KEY_ASSIGNMENT, KEY_SHAPES, normal_path
from rai_lab.errors import CassetteError
from rai_lab.grading.instructor import databricks_formats, databricks_mapping
from rai_lab.grading.instructor.classfolder import (CLUTTER, MAX_CASSETTE_BYTES, MAX_NOTEBOOK_BYTES, MAX_ZIP_BYTES,
                                                    ZIP_ERRORS, Refused, Tree, appledouble, as_text, kind_of, note,
                                                    unzip)
from rai_lab.paths import NOTEBOOK, lab_notebook

EXPORT_SUFFIXES = (".py", ".dbc", ".html", ".htm")  # Databricks exports (an .ipynb may be one too)
KEPT_SUFFIXES = (".ipynb", ".yaml", ".yml", *EXPORT_SUFFIXES)
ACCEPTED_SUFFIXES = (".ipynb", ".zip")  # besides folders (an export takes its id after them: it never renames a learner)


@dataclass
class Submission:
    """One learner's submission, as the grader will use it."""

    learner: str
    source: str
    notebook: Path | None = None
    cassette: Path | None = None
    problem: str | None = None  # set: graded zero without running, for this reason
    notes: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # values redacted from everything written
    digest: str = ""
    format: str = ""  # what was handed in: "jupyterlab", "databricks-<jupyter|source|dbc|html>"; "" when not read


def learner_id(name: str) -> str:
    """A learner's id from a file or folder name, safe as an nbgrader student id and a path."""
    safe = re.sub(r"[^\w-]+", "_", unicodedata.normalize("NFC", name)).strip("_")
    return safe[:64] or "learner"


def find_keys(text: str) -> list[str]:
    """Values in `text` that look like Azure OpenAI keys."""
    found = set(KEY_SHAPES.findall(text))
    for value in KEY_ASSIGNMENT.findall(text):
        if re.search(r"\d", value) and re.search(r"[A-Za-z]", value) and " " not in value:
            found.add(value)
    return sorted(found, key=len, reverse=True)


def _pick(listing: list) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The notebook (responsible_ai.ipynb first, else the first by name) and the cassette of a surveyed folder."""
    files = [parts for parts, kind, *_ in listing if kind == "file" and not CLUTTER.intersection(parts)]
    notebooks = sorted(p for p in files if PurePosixPath(p[-1]).suffix.lower() == ".ipynb")
    preferred = [p for p in notebooks if p[-1] == NOTEBOOK]
    exported = sorted(p for p in files if PurePosixPath(p[-1]).suffix.lower() in EXPORT_SUFFIXES)  # no .ipynb: an export
    exported = [p for p in exported if PurePosixPath(p[-1]).stem == "responsible_ai"] + exported
    cassette_files = sorted(p for p in files if PurePosixPath(p[-1]).suffix.lower() in (".yaml", ".yml"))
    return (preferred or notebooks or exported or [None])[0], (cassette_files[0] if cassette_files else None)


def _learner_ids(entries: list[tuple[str, os.stat_result, str]]) -> dict[str, str]:
    """Each entry's learner id (learner_id of its name, its suffix dropped unless a folder), unique. What was graded
    before every entry got a row (visible notebooks, archives and folders) takes its id first, in name order:
    whatever lands beside a learner's submission (a PDF, a link, a hidden file) never renames that learner."""
    def stem(name: str, kind: str) -> str:
        suffix = "" if kind == "dir" else PurePosixPath(name).suffix
        return name[: len(name) - len(suffix)]

    def first(name: str, kind: str) -> bool:
        accepted = kind == "dir" or (kind == "file" and PurePosixPath(name).suffix.lower() in ACCEPTED_SUFFIXES)
        return accepted and not name.startswith(".")

    ordered = [e for e in entries if first(e[0], e[2])] + [e for e in entries if not first(e[0], e[2])]
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for name, _, kind in ordered:
        learner = learner_id(stem(name, kind))
        while learner in taken:
            learner += "_2"
        taken.add(learner)
        ids[name] = learner
    return ids


def collect(folder: Path, staging: Path, lang: str) -> list[Submission]:
    """Every entry of `folder`, unpacked under `staging`, validated and redacted: one Submission each (its
    `problem` says why when it is not graded), but for the clutter of CLUTTER. Nothing in it is followed."""
    staging.mkdir(parents=True, exist_ok=True)
    with Tree(folder) as tree:
        entries = []
        with os.scandir(tree.fd) as found:
            for entry in sorted(found, key=lambda entry: entry.name):
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # gone since the folder was listed: nothing left to grade
                    continue
                kind = kind_of(info.st_mode)
                if (entry.name in CLUTTER and kind != "link") or (kind == "file" and appledouble(tree.fd, entry.name)):
                    continue
                entries.append((entry.name, info, kind))
        ids = _learner_ids(entries)
        return [_take(tree, name, info, kind, ids[name], staging, lang) for name, info, kind in entries]


def _take(tree: Tree, name: str, info: os.stat_result, kind: str, learner: str, staging: Path,
          lang: str) -> Submission:
    """One entry of the class folder as a Submission, graded or with the reason it is not."""
    shown = as_text(name)
    sub = Submission(learner=learner, source=shown)
    suffix = PurePosixPath(name).suffix.lower()
    # What makes a refused entry's digest change when the entry does (a link's target text, never its content).
    fingerprint: list = [kind, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    try:
        if kind == "link":
            try:
                fingerprint.append(as_text(os.readlink(name, dir_fd=tree.fd)))
            except OSError as err:
                fingerprint.append(err.errno)
            raise Refused("link", name=shown)  # its target is not shown: it may name a path of the grader's machine
        if kind == "dir":
            listing: list = []
            fingerprint.append(listing)
            tree.survey((name,), shown, listing)
            if not any(item[1] == "file" for item in listing):
                raise Refused("empty_folder", name=shown)
            _take_files(sub, tree, (name,), listing, staging / learner, shown, lang)
        elif kind == "file" and suffix == ".ipynb":
            _take_notebook(sub, tree.read((name,), MAX_NOTEBOOK_BYTES, "too_big"), staging / learner, lang)
        elif kind == "file" and suffix == ".zip":
            _take_zip(sub, tree, name, staging, lang)
        elif kind == "file" and suffix in EXPORT_SUFFIXES:
            _take_export(sub, tree.read((name,), MAX_NOTEBOOK_BYTES, "too_big"), shown, staging / learner, lang)
        elif kind == "file":
            raise Refused("unknown_type", name=shown)
        else:  # a FIFO, a socket, a device: never opened (opening a FIFO would wait for a writer)
            raise Refused("special", name=shown, kind=Refused(f"kind_{kind}"))
    except Refused as refused:
        sub.problem = refused.say(lang)
    sub.digest = _digest(sub, fingerprint)
    return sub


def _take_zip(sub: Submission, tree: Tree, name: str, staging: Path, lang: str) -> None:
    shown = as_text(name)
    try:
        with tree.open_file((name,)) as handle:
            if os.fstat(handle.fileno()).st_size > MAX_ZIP_BYTES:
                raise Refused("zip_large", limit=MAX_ZIP_BYTES // (1024 * 1024))
            members = unzip(handle, KEPT_SUFFIXES)
    except Refused as refused:
        raise Refused("bad_zip", name=shown, reason=refused) from None
    except ZIP_ERRORS:
        raise Refused("bad_zip", name=shown, reason=Refused("zip_unreadable")) from None
    unpacked = staging / ".unzipped" / sub.learner  # learner ids never start with a dot
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir(parents=True)
    try:
        for parts, data in members:
            destination = unpacked.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.exists():  # "a" and "a/b.ipynb": a file where a folder should be
                raise Refused("bad_zip", name=shown, reason=Refused("zip_duplicate", member=as_text("/".join(parts))))
            destination.write_bytes(data)
        with Tree(unpacked) as inner:
            listing: list = []
            inner.survey((), shown, listing)
            _take_files(sub, inner, (), listing, staging / sub.learner, shown, lang)
    except (NotADirectoryError, FileExistsError) as err:
        raise Refused("bad_zip", name=shown, reason=Refused("zip_unreadable")) from err
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)  # unredacted copies: the staged ones are redacted


def _take_files(sub: Submission, tree: Tree, top: tuple[str, ...], listing: list, target: Path, name: str,
                lang: str) -> None:
    """The notebook and the cassette of a surveyed folder (a learner's, or an unpacked archive)."""
    notebook, cassette_parts = _pick(listing)
    if notebook is None:
        raise Refused("no_notebook", name=name)
    raw = tree.read((*top, *notebook), MAX_NOTEBOOK_BYTES, "too_big")
    if PurePosixPath(notebook[-1]).suffix.lower() in EXPORT_SUFFIXES:
        _take_export(sub, raw, as_text(notebook[-1]), target, lang)
    else:
        _take_notebook(sub, raw, target, lang)
    if sub.problem is not None or cassette_parts is None:
        return
    try:
        raw = tree.read((*top, *cassette_parts), MAX_CASSETTE_BYTES, "cassette_too_big")
    except Refused as refused:
        sub.notes.append(note("cassette_refused", lang, reason=refused.say(lang)))
        return
    _take_cassette(sub, raw, as_text(cassette_parts[-1]), target, lang)


def _take_notebook(sub: Submission, raw: bytes, target: Path, lang: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    try:
        text = raw.decode("utf-8")
        nb = nbformat.reads(text, as_version=4)
        if databricks_formats.is_databricks_notebook(nb):  # no nbgrader metadata: Databricks' JUPYTER export
            _take_export(sub, raw, NOTEBOOK, target, lang, nb=nb)
            return
        nbformat.validate(nb)
    except (UnicodeDecodeError, ValueError, nbformat.ValidationError, KeyError, AttributeError) as err:
        reason = str(err).splitlines()[0][:150] if str(err) else type(err).__name__
        sub.problem = note("invalid_json", lang, reason=reason)
        return
    sub.format = "jupyterlab"
    _compare_with_release(sub, nb, lang)
    keys = find_keys(_cell_text(nb))
    if keys:
        sub.secrets.extend(keys)
        sub.notes.append(note("key_found", lang))
        text = redact(text, keys)
    copy = target / NOTEBOOK
    copy.write_text(text, encoding="utf-8")
    sub.notebook = copy


def _take_export(sub: Submission, raw: bytes, name: str, target: Path, lang: str, nb=None) -> None:
    """A Databricks export (or its parsed .ipynb `nb`), mapped back onto the released notebook and staged as one."""
    try:
        mapped, kind = databricks_mapping.from_export(raw, name, lang, nb=nb)
    except databricks_formats.Unreadable as err:
        sub.problem = databricks_mapping.refusal(err, lang, name)
        return
    sub.format = f"databricks-{kind}"
    sub.notes.extend(databricks_mapping.notes(mapped, kind, lang))
    text = nbformat.writes(mapped.notebook)
    keys = find_keys(_cell_text(mapped.notebook))
    if keys:
        sub.secrets.extend(keys)
        sub.notes.append(note("key_found", lang))
        text = redact(text, keys)
    copy = target / NOTEBOOK
    target.mkdir(parents=True, exist_ok=True)
    copy.write_text(text, encoding="utf-8")
    sub.notebook = copy


@functools.cache
def _locked_cells(lang: str) -> tuple[tuple[str, str, bool], ...]:
    """(grade_id, source, is a check) of each locked cell of the released notebook, read once."""
    given = nbformat.read(lab_notebook(lang), as_version=4)
    return tuple(
        (cell.metadata["nbgrader"]["grade_id"], cell.source, bool(cell.metadata["nbgrader"].get("grade")))
        for cell in given.cells
        if cell.metadata.get("nbgrader", {}).get("locked")
    )


def _compare_with_release(sub: Submission, nb, lang: str) -> None:
    """Notes on locked cells the learner edited (nbgrader restores them) or deleted (they score 0)."""
    mine = {c.metadata.get("nbgrader", {}).get("grade_id"): c.get("source", "") for c in nb.cells}
    edited, missing, deleted = [], [], []
    for grade_id, source, graded in _locked_cells(lang):
        if grade_id not in mine:
            (missing if graded else deleted).append(grade_id)
        elif mine[grade_id].strip() != source.strip():
            edited.append(grade_id)
    if missing:
        sub.notes.append(note("cells_missing", lang, cells=", ".join(missing)))
    if deleted:  # nbgrader restores an edited locked cell, never a deleted one
        sub.notes.append(note("cells_deleted", lang, cells=", ".join(deleted)))
    if edited:
        sub.notes.append(note("cells_restored", lang, cells=", ".join(edited)))


def _cell_text(nb) -> str:
    """What a learner wrote or ran (sources and outputs), not metadata: nbgrader's cell checksums
    are 32 hex digits too."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.get("source", ""))
        for output in cell.get("outputs", []):
            parts.append(json.dumps({k: v for k, v in output.items() if k != "metadata"}, ensure_ascii=False))
    return "\n".join(parts)


def _take_cassette(sub: Submission, raw: bytes, name: str, target: Path, lang: str) -> None:
    handed = target / ".handed-in-cassette.yaml"  # the grader's own copy: loaded, then gone
    handed.write_bytes(raw)
    try:
        data = load_safely(handed)
    except CassetteError:  # its text names the grader's copy, in French: say it in the learner's language
        sub.notes.append(note("cassette_refused", lang, reason=note("cassette_not_yaml", lang, name=name)))
        return
    finally:
        handed.unlink(missing_ok=True)
    leaked = False
    for interaction in data["interactions"]:
        request = interaction.get("request") or {}
        headers = request.get("headers") or {}
        kept = {k: v for k, v in headers.items() if k.lower() in KEPT_REQUEST_HEADERS}
        leaked |= len(kept) != len(headers) and any(k.lower() in ("api-key", "authorization") for k in headers)
        request["headers"] = kept
        response = interaction.get("response") or {}
        response["headers"] = {
            k: v for k, v in (response.get("headers") or {}).items() if k.lower() in KEPT_RESPONSE_HEADERS
        }
        uri = str(request.get("uri", ""))
        if "://" in uri:
            path_part = "/" + uri.split("://", 1)[1].split("/", 1)[-1]
            request["uri"] = SCRUBBED_ORIGIN + normal_path(path_part)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    keys = find_keys(text)
    if keys or leaked:
        sub.secrets.extend(keys)
        text = redact(text, keys)
        sub.notes.append(note("cassette_key", lang))
    copy = target / "cassette.yaml"
    copy.write_text(text, encoding="utf-8")
    sub.cassette = copy
    sub.notes.append(note("cassette_used", lang, name=name))


def _digest(sub: Submission, fingerprint: list) -> str:
    """What the grader's cache compares: the staged files and the notes (as before every entry got a row, so
    unchanged submissions keep their grade), and for a refused entry what it is on disk (`fingerprint`)."""
    sha = hashlib.sha256()
    for part in (sub.notebook, sub.cassette):
        sha.update(part.read_bytes() if part else b"-")
    sha.update(json.dumps([sub.problem, sub.notes]).encode())
    if sub.problem is not None:
        sha.update(json.dumps(fingerprint).encode())
    return sha.hexdigest()
