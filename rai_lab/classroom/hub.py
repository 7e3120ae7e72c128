"""Start, stop and remove a classroom. The Hub runs in the foreground (Ctrl-C stops it); `stop` from elsewhere."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from rai_lab import paths
from rai_lab.classroom import accounts, course, hubconfig, roster
from rai_lab.classroom.roster import Classroom, Person
from rai_lab.errors import RaiLabError

STOP_WAIT = 30  # seconds the Hub gets to stop its JupyterLabs, its proxy and its service


def pid_file(state: Path) -> Path:
    return hubconfig.hub_dir(state) / "classroom.pid"


def running(state: Path) -> int | None:
    """The pid of the classroom's `start` process, when it runs."""
    try:
        pid = int(pid_file(state).read_text())
        proc = psutil.Process(pid)
        return pid if "rai_lab" in " ".join(proc.cmdline()) or "rai-lab" in " ".join(proc.cmdline()) else None
    except (OSError, ValueError, psutil.Error):
        return None


def prepare(roster_file: Path, state: Path, prefix: str, instructor: str, instructor_lang: str, port: int,
            lab_args: list[str] | None = None) -> tuple[Classroom, dict[str, str]]:
    """The classroom of a roster and its accounts; (classroom, the new accounts' passwords). Run again with a longer
    roster, it adds the new learners (nobody is removed: `rai-lab classroom remove`). Then `publish` it."""
    accounts.require_root("rai-lab classroom")
    learners = roster.read(roster_file, prefix)
    boss = Person(instructor, "Instructor", instructor_lang, roster.unix_name(prefix, instructor, "--instructor"))
    if boss.user in {p.user for p in learners}:
        raise RaiLabError(f"the instructor's login {instructor!r} is also a learner's in {roster_file}: choose another "
                          f"with --instructor")
    if (state / "classroom.json").exists():
        classroom = Classroom.load(state)
        if classroom.prefix != prefix or classroom.instructor.user != boss.user:
            raise RaiLabError(f"{state} holds a classroom with prefix {classroom.prefix!r} and instructor "
                              f"{classroom.instructor.user!r}: use the same, or another --state")
        known = {p.user for p in classroom.learners}
        classroom.learners += [p for p in learners if p.user not in known]
        classroom.instructor, classroom.port = boss, port
        classroom.lab_args = list(lab_args or [])
    else:
        classroom = Classroom(state=state.resolve(), prefix=prefix, instructor=boss, learners=learners,
                              exchange=state.resolve() / "exchange", port=port, lab_args=list(lab_args or []))
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)  # the learners reach the exchange and their Jupyter settings through it
    classroom.save()
    return classroom, accounts.create(classroom)


def publish(classroom: Classroom) -> list[str]:
    """The exchange, each role's Jupyter settings, the course released, the Hub's configuration; what was released."""
    released = course.setup(classroom)
    hubconfig.write(classroom)
    return released


def serve(classroom: Classroom, log=None) -> int:
    """Run JupyterHub until it stops (Ctrl-C, SIGTERM, `rai-lab classroom stop`); then check that nothing of the
    classroom runs any more (any process left is killed and named). The Hub's exit status."""
    if running(classroom.state):
        raise RaiLabError(f"this classroom is already running (pid {running(classroom.state)}): "
                          f"`rai-lab classroom stop --state {classroom.state}` first")
    folder = hubconfig.hub_dir(classroom.state)
    pid_file(classroom.state).write_text(str(os.getpid()))
    hub = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(folder / "jupyterhub_config.py")],
                           cwd=folder, stdout=log, stderr=log, start_new_session=True)

    def forward(signum, frame):
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)

    # Ctrl-C too (a process started in the background of a script begins with SIGINT ignored: set it anyway).
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        status = hub.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        left = leftovers(classroom, hub.pid)
        pid_file(classroom.state).unlink(missing_ok=True)
    if left:
        print(f"rai-lab classroom: killed what the Hub left running: {', '.join(left)}", file=sys.stderr)
    return status


def leftovers(classroom: Classroom, hub_pid: int | None = None) -> list[str]:
    """Kill whatever of the classroom still runs (its users' processes, the Hub's session, the proxy); what was."""
    found: list[psutil.Process] = accounts.processes([p.user for p in classroom.people])
    if hub_pid:
        try:
            found += [p for p in psutil.process_iter() if os.getsid(p.pid) == hub_pid]
        except (ProcessLookupError, psutil.Error):
            pass
    proxy = hubconfig.hub_dir(classroom.state) / "proxy.pid"
    try:
        found.append(psutil.Process(int(proxy.read_text())))
    except (OSError, ValueError, psutil.Error):
        pass
    names = []
    for proc in {p.pid: p for p in found}.values():
        try:
            names.append(f"{proc.name()} (pid {proc.pid}, {proc.username()})")
            proc.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(found, timeout=10)
    proxy.unlink(missing_ok=True)
    return names


def stop(state: Path) -> bool:
    """Stop a running classroom (its `start` process stops the Hub, which stops the JupyterLabs, proxy and service);
    True when one was running."""
    pid = running(state)
    if pid is None:
        classroom = Classroom.load(state)
        left = leftovers(classroom)
        if left:
            print(f"rai-lab classroom: no Hub was running; killed: {', '.join(left)}", file=sys.stderr)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT + 15
    while True:  # gone, or a zombie its parent has not reaped yet (it is not ours to wait for)
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.Error:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            leftovers(Classroom.load(state))
            break
        time.sleep(0.2)
    return True


def remove(state: Path) -> list[str]:
    """Stop the classroom, delete the accounts it created (homes included) and its state (the exchange with it)."""
    accounts.require_root("rai-lab classroom remove")
    classroom = Classroom.load(state)
    stop(state)
    removed = accounts.remove(classroom)
    if paths.ROOT in state.resolve().parents or state.resolve() == Path("/"):
        raise RaiLabError(f"refusing to delete {state}")
    shutil.rmtree(state, ignore_errors=True)
    return removed
