"""Whether an executor's host may grade: the same kit as the driver's, and the grading sandbox built for real.

A host that cannot grade sealed, or that would grade with other checks, rubric, course or code than the driver's,
stops the whole batch with a message naming the host and the fix: never a silent unsandboxed run, never two
versions of a grade in one grades.csv."""

from __future__ import annotations

import functools
import hashlib
import socket
from pathlib import Path

import rai_lab
from rai_lab import paths
from rai_lab.messages import say


def kit_files(assignment: str) -> list[Path]:
    """Every file of the kit a grade depends on: the package's code and catalogues, the graders, the course's
    solution and the reference cassettes."""
    package = Path(rai_lab.__file__).resolve().parent
    files = [*package.rglob("*.py"), *package.rglob("*.toml"), *paths.GRADERS.glob("*"),
             *(paths.SOLUTIONS / assignment).glob("*"), *paths.CASSETTES.glob("*.yaml")]
    return sorted(path for path in files if path.is_file() and "__pycache__" not in path.parts)


@functools.lru_cache(maxsize=4)
def fingerprint(assignment: str) -> str:
    """The kit's version and a digest of its files (`kit_files`): equal on two hosts when they grade alike."""
    digest = hashlib.sha256()
    package = Path(rai_lab.__file__).resolve().parent
    for path in kit_files(assignment):
        name = path.relative_to(package) if package in path.parents else path.relative_to(paths.ROOT)
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{rai_lab.__version__}+{digest.hexdigest()[:16]}"


def name() -> str:
    """This host's name, as messages and grades.csv's summary give it."""
    return socket.getfqdn()


def refusal(assignment: str, lang: str, driver_kit: str) -> str | None:
    """Why this host must not grade (in `lang`, naming the host and the fix), or None when it may: the kit differs
    from the driver's (`driver_kit`, its `fingerprint`), or the sandbox cannot be built here."""
    from rai_lab.grading.worker import sandbox

    host = name()
    here = fingerprint(assignment)
    if here != driver_kit:
        return say("cluster.other_kit", lang, host=host, here=here, driver=driver_kit)
    why = sandbox.unavailable(lang)
    if why:
        return say("cluster.no_sandbox", lang, host=host, why=why)
    return None
