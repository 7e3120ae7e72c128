"""The roster (CSV: login, name, language) and the classroom's state, kept in <state>/classroom.json."""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rai_lab import paths
from rai_lab.errors import RaiLabError

DEFAULT_STATE = Path("/var/lib/rai-lab/classroom")
DEFAULT_PREFIX = "rl-"
LOGIN = re.compile(r"[a-z][a-z0-9-]*")
MAX_USER = 32  # useradd's limit on a user name


@dataclass
class Person:
    login: str  # as the roster gives it
    name: str
    lang: str
    user: str  # the Unix account: prefix + login


@dataclass
class Classroom:
    state: Path
    prefix: str
    instructor: Person
    learners: list[Person]
    exchange: Path
    port: int = 8000
    created: list[str] = field(default_factory=list)  # accounts this classroom made (only these are removed)
    due: dict[str, str] = field(default_factory=dict)  # assignment -> due date (nbgrader's format, UTC)
    lab_args: list[str] = field(default_factory=list)  # extra options for every user's JupyterLab

    @property
    def people(self) -> list[Person]:
        return [self.instructor, *self.learners]

    def person(self, user: str) -> Person:
        for person in self.people:
            if person.user == user:
                return person
        raise RaiLabError(f"{user} is not in this classroom ({self.state})")

    @property
    def home(self) -> Path:
        return Path("/home") / self.instructor.user

    def course_dir(self, assignment: str) -> Path:
        """The instructor's nbgrader course folder for `assignment` (course id = assignment id)."""
        return self.home / "courses" / assignment

    def save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["state"], data["exchange"] = str(self.state), str(self.exchange)
        target = self.state / "classroom.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(target)

    @classmethod
    def load(cls, state: Path) -> "Classroom":
        target = state / "classroom.json"
        if not target.exists():
            raise RaiLabError(f"no classroom in {state} (no classroom.json): start one with "
                              f"`rai-lab classroom start ROSTER.csv --state {state}`")
        data = json.loads(target.read_text(encoding="utf-8"))
        data["state"], data["exchange"] = Path(data["state"]), Path(data["exchange"])
        data["instructor"] = Person(**data["instructor"])
        data["learners"] = [Person(**p) for p in data["learners"]]
        return cls(**data)


def unix_name(prefix: str, login: str, where: str) -> str:
    user = prefix + login
    if not LOGIN.fullmatch(login) or len(user) > MAX_USER or not re.fullmatch(r"[a-z][a-z0-9-]*-?", prefix):
        raise RaiLabError(f"{where}: login {login!r} cannot make a Unix account {user!r}: use lower-case letters, digits "
                          f"and '-', starting with a letter, at most {MAX_USER} characters with the prefix {prefix!r}")
    return user


def read(path: Path, prefix: str = DEFAULT_PREFIX) -> list[Person]:
    """The learners of a roster CSV with a header `login,name,language` (language: one of the kit's, fr or en)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise RaiLabError(f"cannot read the roster {path}: {err.strerror}. It is a CSV file with the header "
                          f"login,name,language (one learner a line)") from err
    rows = list(csv.DictReader(text.splitlines()))
    header = {key.strip().lower() for key in (rows[0].keys() if rows else [])}
    if not rows or not {"login", "name", "language"} <= header:
        raise RaiLabError(f"{path}: the roster needs the header login,name,language and one learner a line")
    people, seen = [], set()
    for number, row in enumerate(rows, start=2):
        row = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        where = f"{path}, line {number}"
        lang = row["language"].lower()
        if lang not in paths.ASSIGNMENTS:
            raise RaiLabError(f"{where}: language {row['language']!r} is not one of the course's: "
                              f"{', '.join(paths.ASSIGNMENTS)}")
        user = unix_name(prefix, row["login"], where)
        if user in seen:
            raise RaiLabError(f"{where}: login {row['login']!r} is in the roster twice")
        seen.add(user)
        people.append(Person(row["login"], row["name"] or row["login"], lang, user))
    return people
