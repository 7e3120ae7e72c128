"""`python -m rai_lab.tether -- COMMAND...`: run COMMAND and end it, with every process it started, as soon as the
process that started this one is gone, however it went (SIGKILL included).

`rai-lab grade` prepares its course with nbgrader (which runs `alembic`) while its workers start: started through
this tether, in a process group of its own, nothing of that preparation outlives a grader that was killed. The
caller starts the tether as the leader of a new process group (`start_new_session=True`) and, if it is itself
interrupted, kills that group (`run`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    """subprocess.run(command) through the tether, output captured as text; a stop of the caller (an exception,
    Ctrl-C) kills the whole group at once."""
    process = subprocess.Popen([sys.executable, "-m", "rai_lab.tether", "--", *command], start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options)
    try:
        output, _ = process.communicate()
    except BaseException:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, output, None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    parent = os.getppid()
    child = subprocess.Popen(argv)  # in this process's group: killpg reaches it and what it starts
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:  # orphaned: the caller is gone
                os.killpg(os.getpgrp(), signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
