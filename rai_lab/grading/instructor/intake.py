"""Intake of learners' submissions: find, unpack, validate and redact them before anything runs.

Every entry of the class folder becomes a Submission, so a row of grades.csv: graded, or with the reason
it was not (`problem`, in the learner's language). Nothing outside the class folder is ever read: a
symbolic link anywhere in a submission (an entry of the class folder, a file or folder inside a learner's
folder, a zip member) refuses that submission, unfollowed. Files are opened through the class folder's
descriptor one name at a time with O_NOFOLLOW (and O_NONBLOCK: a FIFO never blocks the grader), and the
path the kernel gives each opened descriptor is checked to lie inside the class folder as a second guard.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import stat
import struct
import unicodedata
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat
import yaml

from rai_lab import cassette as cassettes
from rai_lab.errors import CassetteError
from rai_lab.grading.instructor import databricks_formats, databricks_mapping
from rai_lab.azure import KEY_ASSIGNMENT, KEY_SHAPES
from rai_lab.messages import say
from rai_lab.paths import NOTEBOOK, lab_notebook

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_CASSETTE_BYTES = MAX_ZIP_BYTES
MAX_ENTRIES = 10_000  # files and folders in one learner's folder or archive
MAX_DEPTH = 32  # folders within folders
EXPORT_SUFFIXES = (".py", ".dbc", ".html", ".htm")  # Databricks exports (an .ipynb may be one too)
KEPT_SUFFIXES = (".ipynb", ".yaml", ".yml", *EXPORT_SUFFIXES)
ACCEPTED_SUFFIXES = (".ipynb", ".zip")  # besides folders (an export takes its id after them: it never renames a learner)

# Hidden entries. Every entry of the class folder gets a row, hidden ones too: ".Élodie.ipynb" is graded
# like any notebook, ".notes" is refused as an unknown type, ".x" that is a link is refused as a link.
# Only the clutter operating systems and Jupyter leave in folders is ignored, and only when it is not a
# link: these exact names (at the top of the class folder, and inside learners' folders and archives,
# where they are never taken as the notebook or the cassette), and macOS's AppleDouble companions
# "._<name>", recognised by their magic number rather than by their name.
CLUTTER = frozenset({".DS_Store", ".ipynb_checkpoints", "__MACOSX", ".Spotlight-V100", ".Trashes", ".fseventsd",
                     ".localized", "Thumbs.db", "desktop.ini"})
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def note(key: str, lang: str, **values) -> str:
    return say(f"intake.{key}", lang, **values)


class Refused(Exception):
    """Why a submission (or its cassette) is not taken: a text of the [intake] catalogue and its values."""

    def __init__(self, key: str, **values):
        super().__init__(key)
        self.key, self.values = key, values

    def say(self, lang: str) -> str:
        values = {k: v.say(lang) if isinstance(v, Refused) else v for k, v in self.values.items()}
        return note(self.key, lang, **values)


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


def _shown(name: str) -> str:
    """A file name as text (bytes that are not UTF-8 show as �)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _kind(mode: int) -> str:
    for kind, test in (("link", stat.S_ISLNK), ("dir", stat.S_ISDIR), ("file", stat.S_ISREG), ("fifo", stat.S_ISFIFO),
                       ("socket", stat.S_ISSOCK), ("device", stat.S_ISCHR), ("device", stat.S_ISBLK)):
        if test(mode):
            return kind
    return "other"


def _where(fd: int) -> str | None:
    """The path the kernel gives an open descriptor (None without /proc)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _appledouble(dir_fd: int, name: str) -> bool:
    """A macOS AppleDouble companion ("._<name>", metadata the Finder leaves on other file systems)."""
    if not name.startswith("._"):
        return False
    try:
        fd = os.open(name, _FILE, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, 4) == APPLEDOUBLE_MAGIC
    finally:
        os.close(fd)


class _Tree:
    """A folder read through its descriptor: nothing in it is followed, nothing outside it is read."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the instructor's own path: may be a link
        self.real = (_where(self.fd) or os.path.realpath(path)).rstrip("/") or "/"

    def __enter__(self) -> "_Tree":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def _inside(self, fd: int, parts: tuple[str, ...]) -> None:
        """The second guard: what `fd` opened lies inside this folder (resolved), or Refused."""
        where = _where(fd) or os.path.realpath(os.path.join(self.path, *parts))
        if not (where == self.real or where.startswith(self.real.rstrip("/") + "/")):
            os.close(fd)
            raise Refused("outside", name=_shown("/".join(parts)))

    def _open(self, parts: tuple[str, ...], flags: int) -> int:
        """A descriptor of `parts` (names inside this folder), each name opened without following a link."""
        fd = os.dup(self.fd)
        try:
            for index, name in enumerate(parts):
                try:
                    inner = os.open(name, flags if index == len(parts) - 1 else _DIR, dir_fd=fd)
                finally:
                    os.close(fd)
                fd = inner
        except OSError as err:
            raise _unreadable(parts, err) from err
        self._inside(fd, parts)
        return fd

    def open_file(self, parts: tuple[str, ...]):
        """The regular file at `parts`, opened for reading (Refused if it is anything else)."""
        handle = os.fdopen(self._open(parts, _FILE), "rb")
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):  # changed since it was listed: never read a FIFO or a device
            handle.close()
            raise Refused("special", name=_shown("/".join(parts)), kind=Refused(f"kind_{_kind(info.st_mode)}"))
        return handle

    def read(self, parts: tuple[str, ...], limit: int, too_big: str) -> bytes:
        """The bytes of the regular file at `parts`; Refused(too_big) past `limit` bytes."""
        with self.open_file(parts) as handle:
            try:
                data = handle.read(limit + 1)
            except OSError as err:
                raise _unreadable(parts, err) from err
        if len(data) > limit:
            raise Refused(too_big, limit=limit // (1024 * 1024))
        return data

    def survey(self, top: tuple[str, ...], name: str, listing: list) -> None:
        """Everything under the folder `top` into `listing`, as [parts, kind, size, mtime, link target], following
        nothing; Refused at the first link, special file, or past MAX_ENTRIES or MAX_DEPTH. `name` is what the
        learner handed in, for the reasons."""
        fd = self._open(top, _DIR)
        try:
            self._visit(fd, top, (), name, listing)
        except OSError as err:
            raise _unreadable(top, err) from err
        finally:
            os.close(fd)

    def _visit(self, fd: int, top: tuple[str, ...], parts: tuple[str, ...], name: str, listing: list) -> None:
        if len(parts) > MAX_DEPTH:
            raise Refused("too_many_files", name=name, limit=MAX_ENTRIES, depth=MAX_DEPTH)
        with os.scandir(fd) as found:
            entries = sorted(found, key=lambda entry: entry.name)
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            here, kind = (*parts, entry.name), _kind(info.st_mode)
            target = _shown(os.readlink(entry.name, dir_fd=fd)) if kind == "link" else ""
            if kind == "file" and _appledouble(fd, entry.name):
                kind = "clutter"
            listing.append([here, kind, info.st_size, info.st_mtime_ns, target])
            path = _shown("/".join(here))
            if len(listing) > MAX_ENTRIES:
                raise Refused("too_many_files", name=name, limit=MAX_ENTRIES, depth=MAX_DEPTH)
            if kind == "link":
                raise Refused("link_inside", name=name, path=path)
            if kind not in ("dir", "file", "clutter"):
                raise Refused("special_inside", name=name, path=path, kind=Refused(f"kind_{kind}"))
            if kind == "dir":
                inner = os.open(entry.name, _DIR, dir_fd=fd)
                self._inside(inner, (*top, *here))
                try:
                    self._visit(inner, top, here, name, listing)
                finally:
                    os.close(inner)


def _unreadable(parts: tuple[str, ...], err: OSError) -> Refused:
    code = errno.errorcode.get(err.errno or 0, str(err.errno))
    return Refused("unreadable", name=_shown("/".join(parts)) or ".", error=code)


def _pick(listing: list) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The notebook (responsible_ai.ipynb first, else the first by name) and the cassette of a surveyed folder."""
    files = [parts for parts, kind, *_ in listing if kind == "file" and not CLUTTER.intersection(parts)]
    notebooks = sorted(p for p in files if PurePosixPath(p[-1]).suffix.lower() == ".ipynb")
    preferred = [p for p in notebooks if p[-1] == NOTEBOOK]
    exported = sorted(p for p in files if PurePosixPath(p[-1]).suffix.lower() in EXPORT_SUFFIXES)  # no .ipynb: an export
    exported = [p for p in exported if PurePosixPath(p[-1]).stem == "responsible_ai"] + exported
    cassette_files = sorted(p for p in files if PurePosixPath(p[-1]).suffix.lower() in (".yaml", ".yml"))
    return (preferred or notebooks or exported or [None])[0], (cassette_files[0] if cassette_files else None)


# What a malformed archive makes zipfile raise while it is read (writing into the staging folder is not here:
# a full disk is the grader's failure, never a learner's grade).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, ValueError,
              zlib.error, struct.error, OSError, UnicodeDecodeError, IndexError, KeyError)


def _unzip(handle) -> list[tuple[tuple[str, ...], bytes]]:
    """The notebooks and cassettes of an archive, read in memory (at most MAX_ZIP_BYTES). Every member is checked,
    kept or not: Refused when one is a link, a special file, encrypted, outside the archive, there twice."""
    with zipfile.ZipFile(handle) as zf:
        members = zf.infolist()
        if len(members) > MAX_ENTRIES:
            raise Refused("zip_too_many", limit=MAX_ENTRIES)
        seen: set[str] = set()
        kept, total = [], 0
        for info in members:
            name = info.filename
            member = _shown(name)[:120]
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise Refused("zip_link", member=member)
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # a FIFO, a device, a socket
                raise Refused("zip_special", member=member)
            path = PurePosixPath(name)
            if (not path.parts or path.is_absolute() or ".." in path.parts or "\\" in name
                    or re.match(r"[A-Za-z]:", name) or len(path.parts) > MAX_DEPTH):
                raise Refused("zip_path", member=member)
            if info.flag_bits & 0x1:
                raise Refused("zip_encrypted", member=member)
            # Two members with one name (or one name but for case or Unicode form): different tools would
            # unpack a different one.
            key = unicodedata.normalize("NFC", "/".join(path.parts)).casefold()
            if key in seen:
                raise Refused("zip_duplicate", member=member)
            seen.add(key)
            if info.is_dir() or path.suffix.lower() not in KEPT_SUFFIXES or CLUTTER.intersection(path.parts):
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise Refused("zip_too_big", limit=MAX_ZIP_BYTES // (1024 * 1024))
            kept.append((info, path.parts))
        unpacked = []
        for info, parts in kept:
            data = zf.read(info)  # zipfile stops at the declared size and checks the CRC
            if not (parts[-1].startswith("._") and data.startswith(APPLEDOUBLE_MAGIC)):
                unpacked.append((parts, data))
        return unpacked


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
    with _Tree(folder) as tree:
        entries = []
        with os.scandir(tree.fd) as found:
            for entry in sorted(found, key=lambda entry: entry.name):
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # gone since the folder was listed: nothing left to grade
                    continue
                kind = _kind(info.st_mode)
                if (entry.name in CLUTTER and kind != "link") or (kind == "file" and _appledouble(tree.fd, entry.name)):
                    continue
                entries.append((entry.name, info, kind))
        ids = _learner_ids(entries)
        return [_take(tree, name, info, kind, ids[name], staging, lang) for name, info, kind in entries]


def _take(tree: _Tree, name: str, info: os.stat_result, kind: str, learner: str, staging: Path,
          lang: str) -> Submission:
    """One entry of the class folder as a Submission, graded or with the reason it is not."""
    shown = _shown(name)
    sub = Submission(learner=learner, source=shown)
    suffix = PurePosixPath(name).suffix.lower()
    # What makes a refused entry's digest change when the entry does (a link's target text, never its content).
    fingerprint: list = [kind, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    try:
        if kind == "link":
            try:
                fingerprint.append(_shown(os.readlink(name, dir_fd=tree.fd)))
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


def _take_zip(sub: Submission, tree: _Tree, name: str, staging: Path, lang: str) -> None:
    shown = _shown(name)
    try:
        with tree.open_file((name,)) as handle:
            if os.fstat(handle.fileno()).st_size > MAX_ZIP_BYTES:
                raise Refused("zip_large", limit=MAX_ZIP_BYTES // (1024 * 1024))
            members = _unzip(handle)
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
                raise Refused("bad_zip", name=shown, reason=Refused("zip_duplicate", member=_shown("/".join(parts))))
            destination.write_bytes(data)
        with _Tree(unpacked) as inner:
            listing: list = []
            inner.survey((), shown, listing)
            _take_files(sub, inner, (), listing, staging / sub.learner, shown, lang)
    except (NotADirectoryError, FileExistsError) as err:
        raise Refused("bad_zip", name=shown, reason=Refused("zip_unreadable")) from err
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)  # unredacted copies: the staged ones are redacted


def _take_files(sub: Submission, tree: _Tree, top: tuple[str, ...], listing: list, target: Path, name: str,
                lang: str) -> None:
    """The notebook and the cassette of a surveyed folder (a learner's, or an unpacked archive)."""
    notebook, cassette_parts = _pick(listing)
    if notebook is None:
        raise Refused("no_notebook", name=name)
    raw = tree.read((*top, *notebook), MAX_NOTEBOOK_BYTES, "too_big")
    if PurePosixPath(notebook[-1]).suffix.lower() in EXPORT_SUFFIXES:
        _take_export(sub, raw, _shown(notebook[-1]), target, lang)
    else:
        _take_notebook(sub, raw, target, lang)
    if sub.problem is not None or cassette_parts is None:
        return
    try:
        raw = tree.read((*top, *cassette_parts), MAX_CASSETTE_BYTES, "cassette_too_big")
    except Refused as refused:
        sub.notes.append(note("cassette_refused", lang, reason=refused.say(lang)))
        return
    _take_cassette(sub, raw, _shown(cassette_parts[-1]), target, lang)


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
        text = cassettes.redact(text, keys)
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
        text = cassettes.redact(text, keys)
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
        data = cassettes.load_safely(handed)
    except CassetteError:  # its text names the grader's copy, in French: say it in the learner's language
        sub.notes.append(note("cassette_refused", lang, reason=note("cassette_not_yaml", lang, name=name)))
        return
    finally:
        handed.unlink(missing_ok=True)
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
