"""Databricks exports read as cells: SOURCE (.py), JUPYTER (.ipynb), DBC (.dbc) and HTML (.html), bytes in, cells out.

What each format is, as Databricks documents it (Workspace API, `GET /api/2.0/workspace/export`, formats SOURCE, HTML,
JUPYTER, DBC) and as its exports in public repositories show it:
- SOURCE: `# Databricks notebook source` on the first line, cells separated by `# COMMAND ----------` between blank
  lines, Markdown and other magic cells as `# MAGIC` lines (`# MAGIC %md`, `# MAGIC %pip install ...`), a cell's
  title as `# DBTITLE 1,<title>` above it;
- JUPYTER: an nbformat 4 notebook whose cells carry `application/vnd.databricks.v1+cell` metadata (nuid, title,
  cellMetadata...) instead of nbgrader's, often without cell ids, and magics as the cell's first line (`%md`, `%pip`);
- DBC: a zip archive of JSON notebooks (`{"version": "NotebookV1", "name", "language", "commands": [{"version":
  "CommandV1", "command", "position", "commandTitle", ...}]}`), one member per notebook of the exported folder;
- HTML: a page that embeds the same notebook model as `var __DATABRICKS_NOTEBOOK_MODEL = '<base64>';`, the base64
  of the URL-quoted JSON. In DBC and HTML the commands' order is their `position`, not their order in the list.

Nothing here runs or writes anything: every function takes bytes (or text) and returns cells, or raises Unreadable
with the key of a text of the [intake] catalogue that says why, in the learner's language.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

SOURCE_HEADER = "# Databricks notebook source"
SEPARATOR = re.compile(r"^# COMMAND -{10,}[ \t]*$", re.M)
MAGIC = re.compile(r"^# MAGIC ?")
TITLE = re.compile(r"^# DBTITLE \d+,")
HTML_MODEL = re.compile(r"__DATABRICKS_NOTEBOOK_MODEL\s*=\s*['\"]([^'\"]*)['\"]")
CELL_METADATA = "application/vnd.databricks.v1+cell"
NOTEBOOK_METADATA = "application/vnd.databricks.v1+notebook"

MAX_DBC_MEMBERS = 1_000
MAX_DBC_BYTES = 20 * 1024 * 1024  # unpacked, all notebooks of one archive

# What a learner hands in, by the name's suffix; "jupyterlab" is an .ipynb that kept nbgrader's metadata.
SUFFIXES = {".py": "source", ".dbc": "dbc", ".html": "html", ".htm": "html", ".ipynb": "jupyter"}


@dataclass(frozen=True)
class Cell:
    """One cell of an export: "code" or "markdown", and its text (a magic cell's text starts with its magic)."""

    kind: str
    source: str


class Unreadable(Exception):
    """Why an export could not be read: a key of the [intake] catalogue and its values."""

    def __init__(self, key: str, **values):
        super().__init__(key)
        self.key, self.values = key, values


def format_of(name: str) -> str | None:
    """The export format a file name says ("source", "dbc", "html", "jupyter"), None for any other name."""
    return SUFFIXES.get(PurePosixPath(name).suffix.lower())


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise Unreadable("unreadable", what=what, reason=f"UTF-8: {err.reason}") from None


def _trim(lines: list[str]) -> str:
    """Lines as a cell's text, without the blank lines around it."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines)


def _command(text: str) -> Cell:
    """A cell from a command's text as Databricks keeps it: `%md` makes Markdown; `%python` on a Python notebook's
    cell is dropped; any other magic (`%pip`, `%sql`) stays in a code cell."""
    first, _, rest = text.partition("\n")
    magic = first.strip()
    if magic in ("%md", "%md-sandbox") or magic.startswith(("%md ", "%md-sandbox ")):
        return Cell("markdown", (magic.split(" ", 1)[1] + "\n" if " " in magic else "") + rest)
    if magic == "%python":
        return Cell("code", rest)
    return Cell("code", text)


def read_source(raw: bytes) -> list[Cell]:
    """The cells of a SOURCE export (.py)."""
    text = _text(raw, "source").replace("\r\n", "\n")
    if not text.startswith(SOURCE_HEADER):
        raise Unreadable("not_source", header=SOURCE_HEADER)
    cells = []
    for block in SEPARATOR.split(text[len(SOURCE_HEADER):]):
        lines = block.split("\n")
        lines = [line for line in lines if not TITLE.match(line)]  # a title is not code
        body = [line for line in lines if line.strip()]
        if body and all(MAGIC.match(line) for line in body):
            lines = [MAGIC.sub("", line) if MAGIC.match(line) else line for line in lines]
            cells.append(_command(_trim(lines)))
        else:
            cells.append(Cell("code", _trim(lines)))
    return [cell for cell in cells if cell.source.strip() or cell.kind == "code"]


def read_jupyter(nb: dict) -> list[Cell]:
    """The cells of a notebook (a JUPYTER export, as a dict): Markdown, and code with its magics as Databricks keeps
    them (a `%md` code cell is Markdown)."""
    cells = []
    for cell in nb.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "markdown":
            cells.append(Cell("markdown", source))
        elif cell.get("cell_type") == "code":
            cells.append(_command(source))
    return cells


def _commands(model: dict) -> list[Cell]:
    """The cells of a Databricks notebook model (DBC member, HTML page): its commands by `position`."""
    commands = [c for c in model.get("commands") or [] if isinstance(c, dict) and c.get("subtype", "command") == "command"]
    ordered = sorted(commands, key=lambda c: float(c.get("position") or 0))
    return [_command(str(c.get("command") or "")) for c in ordered]


def _is_model(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("commands"), list)


def read_dbc(raw: bytes) -> list[tuple[str, list[Cell]]]:
    """Each notebook of a DBC archive: (its name, its cells)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > MAX_DBC_MEMBERS or sum(m.file_size for m in members) > MAX_DBC_BYTES:
                raise Unreadable("dbc_large", limit=MAX_DBC_BYTES // (1024 * 1024))
            found = []
            for member in members:
                try:
                    data = json.loads(archive.read(member).decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    continue  # a resource of the folder, not a notebook
                if _is_model(data):
                    found.append((str(data.get("name") or PurePosixPath(member.filename).stem), _commands(data)))
    except Unreadable:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, ValueError,
            zlib.error, OSError, KeyError) as err:
        raise Unreadable("unreadable", what="DBC", reason=type(err).__name__) from None
    if not found:
        raise Unreadable("no_notebook", what="DBC")
    return found


def _decode_model(value: str) -> dict | None:
    """The notebook model of an HTML export's variable: base64 of the URL-quoted JSON (also read: the other way round)."""
    for attempt in (lambda v: urllib.parse.unquote(base64.b64decode(v, validate=True).decode("utf-8")),
                    lambda v: urllib.parse.unquote(base64.b64decode(urllib.parse.unquote(v), validate=True).decode("utf-8"))):
        try:
            data = json.loads(attempt(value))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
        if _is_model(data):
            return data
    return None


def read_html(raw: bytes) -> list[Cell]:
    """The cells of an HTML export; Unreadable when the page holds no notebook model (a page saved from the browser,
    a printed notebook)."""
    found = HTML_MODEL.search(_text(raw, "HTML"))
    model = _decode_model(found.group(1)) if found else None
    if model is None:
        raise Unreadable("html_no_model")
    return _commands(model)


def is_databricks_notebook(nb: dict) -> bool:
    """Whether an .ipynb is Databricks' JUPYTER export (its metadata, or no nbgrader metadata on any cell)."""
    cells = [c for c in nb.get("cells") or [] if isinstance(c, dict)]
    if any((c.get("metadata") or {}).get("nbgrader", {}).get("grade_id") for c in cells if isinstance(c.get("metadata"), dict)):
        return False
    return bool(cells)


def read_export(raw: bytes, name: str) -> tuple[str, list[Cell]]:
    """(format, cells) of one exported file, by its name's suffix. For a DBC of several notebooks, the one named
    like the lab's (responsible_ai), else the first in the archive that holds a step marker, else the first."""
    kind = format_of(name)
    if kind == "source":
        return kind, read_source(raw)
    if kind == "html":
        return kind, read_html(raw)
    if kind == "dbc":
        notebooks = read_dbc(raw)
        named = [cells for title, cells in notebooks if title.startswith("responsible_ai")]
        marked = [cells for _, cells in notebooks if any("rai-lab step:" in cell.source for cell in cells)]
        return kind, (named or marked or [notebooks[0][1]])[0]
    if kind == "jupyter":
        try:
            nb = json.loads(_text(raw, "JUPYTER"))
        except ValueError as err:
            raise Unreadable("unreadable", what="JUPYTER", reason=str(err)[:150]) from None
        if not isinstance(nb, dict):
            raise Unreadable("unreadable", what="JUPYTER", reason="not a notebook")
        return kind, read_jupyter(nb)
    raise Unreadable("unknown", name=name)
