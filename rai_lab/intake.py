"""Intake of learners' submissions: find, unpack, validate and redact them before anything runs."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat
import yaml

from rai_lab import cassette as cassettes
from rai_lab.errors import CassetteError
from rai_lab.azure import KEY_ASSIGNMENT, KEY_SHAPES
from rai_lab.messages import say
from rai_lab.paths import NOTEBOOK, lab_notebook

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ZIP_BYTES = 50 * 1024 * 1024
KEPT_SUFFIXES = (".ipynb", ".yaml", ".yml")


def note(key: str, lang: str, **values) -> str:
    return say(f"intake.{key}", lang, **values)


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


def _safe_unzip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        total = 0
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or name.suffix.lower() not in KEPT_SUFFIXES:
                continue
            if name.is_absolute() or ".." in name.parts or info.flag_bits & 0x1:
                raise ValueError(f"refused member {info.filename!r}")
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError("more than 50 MB once unpacked")
            destination = target.joinpath(*name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(destination, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1024 * 1024)


def _pick(folder: Path) -> tuple[Path | None, Path | None]:
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    preferred = [p for p in notebooks if p.name == NOTEBOOK]
    notebook = (preferred or notebooks or [None])[0]
    cassette_files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    return notebook, (cassette_files[0] if cassette_files else None)


def collect(folder: Path, staging: Path, lang: str) -> list[Submission]:
    """Every submission in `folder`, unpacked under `staging`, validated and redacted."""
    staging.mkdir(parents=True, exist_ok=True)
    submissions: list[Submission] = []
    taken: set[str] = set()
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        stem = entry.name[: -len(entry.suffix)] if entry.is_file() else entry.name
        if entry.is_file() and entry.suffix.lower() not in (".ipynb", ".zip"):
            continue
        learner = learner_id(stem)
        while learner in taken:
            learner += "_2"
        taken.add(learner)
        sub = Submission(learner=learner, source=entry.name)
        submissions.append(sub)
        notebook, cassette_path = None, None
        if entry.is_file() and entry.suffix.lower() == ".ipynb":
            notebook = entry
        elif entry.is_dir():
            notebook, cassette_path = _pick(entry)
        else:
            unpacked = staging / "unzipped" / learner
            shutil.rmtree(unpacked, ignore_errors=True)
            try:
                if entry.stat().st_size > MAX_ZIP_BYTES:
                    raise ValueError("larger than 50 MB")
                _safe_unzip(entry, unpacked)
            except (zipfile.BadZipFile, ValueError, OSError) as err:
                sub.problem = note("bad_zip", lang, name=entry.name, reason=str(err)[:120])
                continue
            notebook, cassette_path = _pick(unpacked)
        if notebook is None:
            sub.problem = note("no_notebook", lang, name=entry.name)
            continue
        _take_notebook(sub, notebook, staging / learner, lang)
        if sub.problem is None and cassette_path is not None:
            _take_cassette(sub, cassette_path, staging / learner, lang)
        sub.digest = _digest(sub)
    return submissions


def _take_notebook(sub: Submission, path: Path, target: Path, lang: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        sub.problem = note("too_big", lang, limit=MAX_NOTEBOOK_BYTES // (1024 * 1024))
        return
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except (UnicodeDecodeError, ValueError, nbformat.ValidationError, KeyError, AttributeError) as err:
        reason = str(err).splitlines()[0][:150] if str(err) else type(err).__name__
        sub.problem = note("invalid_json", lang, reason=reason)
        return
    _compare_with_release(sub, nb, lang)
    keys = find_keys(_cell_text(nb))
    if keys:
        sub.secrets.extend(keys)
        sub.notes.append(note("key_found", lang))
        text = cassettes.redact(text, keys)
    copy = target / NOTEBOOK
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


def _take_cassette(sub: Submission, path: Path, target: Path, lang: str) -> None:
    try:
        data = cassettes.load_safely(path)
    except CassetteError as err:
        sub.notes.append(note("cassette_refused", lang, reason=str(err).split(" (")[0][:150]))
        return
    leaked = False
    for interaction in data["interactions"]:
        request = interaction.get("request") or {}
        headers = request.get("headers") or {}
        kept = {k: v for k, v in headers.items() if k.lower() in cassettes.KEPT_REQUEST_HEADERS}
        leaked |= len(kept) != len(headers) and any(k.lower() in ("api-key", "authorization") for k in headers)
        request["headers"] = kept
        response = interaction.get("response") or {}
        response["headers"] = {
            k: v for k, v in (response.get("headers") or {}).items() if k.lower() in cassettes.KEPT_RESPONSE_HEADERS
        }
        uri = str(request.get("uri", ""))
        if "://" in uri:
            path_part = "/" + uri.split("://", 1)[1].split("/", 1)[-1]
            request["uri"] = cassettes.SCRUBBED_ORIGIN + cassettes.normal_path(path_part)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    keys = find_keys(text)
    if keys or leaked:
        sub.secrets.extend(keys)
        text = cassettes.redact(text, keys)
        sub.notes.append(note("cassette_key", lang))
    copy = target / "cassette.yaml"
    copy.write_text(text, encoding="utf-8")
    sub.cassette = copy
    sub.notes.append(note("cassette_used", lang, name=path.name))


def _digest(sub: Submission) -> str:
    sha = hashlib.sha256()
    for part in (sub.notebook, sub.cassette):
        sha.update(part.read_bytes() if part else b"-")
    sha.update(json.dumps([sub.problem, sub.notes]).encode())
    return sha.hexdigest()
