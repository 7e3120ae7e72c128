"""One real Unix account per learner and for the instructor, each with its own password (PAM logs them in)."""

from __future__ import annotations

import os
import pwd
import secrets
import string
import subprocess

import psutil

from rai_lab.classroom.roster import Classroom, Person
from rai_lab.errors import RaiLabError

# No look-alike characters (0/O, 1/l/I): the instructor reads the password out or writes it down.
ALPHABET = "".join(ch for ch in string.ascii_letters + string.digits if ch not in "0O1lI")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise RaiLabError(f"{what} needs root (it creates Unix accounts and runs JupyterHub for them): run it with sudo")


def exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def new_password() -> str:
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(4))


def create(classroom: Classroom) -> dict[str, str]:
    """Create the accounts that do not exist yet; their passwords (user -> password), to print once and forget.
    An account of the same name that this classroom did not create is refused (another person's account)."""
    made: dict[str, str] = {}
    for person in classroom.people:
        if exists(person.user):
            if person.user not in classroom.created:
                raise RaiLabError(f"a Unix account {person.user!r} already exists and this classroom did not create it: "
                                  f"choose another --prefix, or another login for {person.name!r}")
            continue
        _create(person)
        classroom.created.append(person.user)
        classroom.save()  # recorded at once: `rai-lab classroom remove` finds it even if the next step fails
        made[person.user] = set_password(person.user)
    return made


def _create(person: Person) -> None:
    comment = "".join(ch for ch in person.name if ch not in ":,=\n")[:60] or person.login
    done = subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--comment", comment,
                           person.user], capture_output=True, text=True)
    if done.returncode != 0:
        raise RaiLabError(f"useradd {person.user} failed: {done.stderr.strip()}")
    os.chmod(pwd.getpwnam(person.user).pw_dir, 0o700)  # nobody else reads a learner's work


def set_password(user: str) -> str:
    password = new_password()
    # On stdin, never on a command line (which every user can read in /proc).
    done = subprocess.run(["chpasswd"], input=f"{user}:{password}\n", capture_output=True, text=True)
    if done.returncode != 0:
        raise RaiLabError(f"chpasswd for {user} failed: {done.stderr.strip()}")
    return password


def processes(users: list[str]) -> list[psutil.Process]:
    """The processes running as any of `users`."""
    uids = {pwd.getpwnam(user).pw_uid for user in users if exists(user)}
    found = []
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real in uids:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def remove(classroom: Classroom) -> list[str]:
    """Delete the accounts this classroom created, with their homes (their processes killed first)."""
    for proc in processes(classroom.created):
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes(classroom.created), timeout=10)
    removed = []
    for user in list(classroom.created):
        if exists(user):
            done = subprocess.run(["userdel", "--remove", user], capture_output=True, text=True)
            if done.returncode not in (0, 12):  # 12: the home was already gone
                raise RaiLabError(f"userdel {user} failed: {done.stderr.strip()}")
        removed.append(user)
        classroom.created.remove(user)
        classroom.save()
    return removed
