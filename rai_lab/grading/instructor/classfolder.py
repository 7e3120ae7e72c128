"""Reading a class folder without following anything: a folder read through its descriptor (`Tree`), one name
at a time with O_NOFOLLOW (and O_NONBLOCK: a FIFO never blocks the grader), each opened descriptor checked to lie
inside the class folder; zip archives read in memory, member by member (`unzip`); within limits of size, number
and depth. What is not taken is `Refused`, with a text of the [intake] catalogue."""

from __future__ import annotations

import errno
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from rai_lab.messages import say

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_CASSETTE_BYTES = MAX_ZIP_BYTES
MAX_ENTRIES = 10_000  # files and folders in one learner's folder or archive
MAX_DEPTH = 32  # folders within folders

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


def as_text(name: str) -> str:
    """A file name as text (bytes that are not UTF-8 show as �)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def kind_of(mode: int) -> str:
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


def appledouble(dir_fd: int, name: str) -> bool:
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


class Tree:
    """A folder read through its descriptor: nothing in it is followed, nothing outside it is read."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the instructor's own path: may be a link
        self.real = (_where(self.fd) or os.path.realpath(path)).rstrip("/") or "/"

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def _inside(self, fd: int, parts: tuple[str, ...]) -> None:
        """The second guard: what `fd` opened lies inside this folder (resolved), or Refused."""
        where = _where(fd) or os.path.realpath(os.path.join(self.path, *parts))
        if not (where == self.real or where.startswith(self.real.rstrip("/") + "/")):
            os.close(fd)
            raise Refused("outside", name=as_text("/".join(parts)))

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
            raise unreadable(parts, err) from err
        self._inside(fd, parts)
        return fd

    def open_file(self, parts: tuple[str, ...]):
        """The regular file at `parts`, opened for reading (Refused if it is anything else)."""
        handle = os.fdopen(self._open(parts, _FILE), "rb")
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):  # changed since it was listed: never read a FIFO or a device
            handle.close()
            raise Refused("special", name=as_text("/".join(parts)), kind=Refused(f"kind_{kind_of(info.st_mode)}"))
        return handle

    def read(self, parts: tuple[str, ...], limit: int, too_big: str) -> bytes:
        """The bytes of the regular file at `parts`; Refused(too_big) past `limit` bytes."""
        with self.open_file(parts) as handle:
            try:
                data = handle.read(limit + 1)
            except OSError as err:
                raise unreadable(parts, err) from err
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
            raise unreadable(top, err) from err
        finally:
            os.close(fd)

    def _visit(self, fd: int, top: tuple[str, ...], parts: tuple[str, ...], name: str, listing: list) -> None:
        if len(parts) > MAX_DEPTH:
            raise Refused("too_many_files", name=name, limit=MAX_ENTRIES, depth=MAX_DEPTH)
        with os.scandir(fd) as found:
            entries = sorted(found, key=lambda entry: entry.name)
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            here, kind = (*parts, entry.name), kind_of(info.st_mode)
            target = as_text(os.readlink(entry.name, dir_fd=fd)) if kind == "link" else ""
            if kind == "file" and appledouble(fd, entry.name):
                kind = "clutter"
            listing.append([here, kind, info.st_size, info.st_mtime_ns, target])
            path = as_text("/".join(here))
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


def unreadable(parts: tuple[str, ...], err: OSError) -> Refused:
    code = errno.errorcode.get(err.errno or 0, str(err.errno))
    return Refused("unreadable", name=as_text("/".join(parts)) or ".", error=code)


# What a malformed archive makes zipfile raise while it is read (writing into the staging folder is not here:
# a full disk is the grader's failure, never a learner's grade).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, ValueError,
              zlib.error, struct.error, OSError, UnicodeDecodeError, IndexError, KeyError)


def unzip(handle, kept_suffixes: tuple[str, ...]) -> list[tuple[tuple[str, ...], bytes]]:
    """The members of an archive whose suffix is one of `kept_suffixes`, read in memory (at most MAX_ZIP_BYTES). Every member is checked,
    kept or not: Refused when one is a link, a special file, encrypted, outside the archive, there twice."""
    with zipfile.ZipFile(handle) as zf:
        members = zf.infolist()
        if len(members) > MAX_ENTRIES:
            raise Refused("zip_too_many", limit=MAX_ENTRIES)
        seen: set[str] = set()
        kept, total = [], 0
        for info in members:
            name = info.filename
            member = as_text(name)[:120]
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
            if info.is_dir() or path.suffix.lower() not in kept_suffixes or CLUTTER.intersection(path.parts):
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
