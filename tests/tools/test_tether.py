"""rai_lab.tether: what a grader starts through it ends with the grader, even when the grader is killed outright."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
from conftest import ROOT

# A stand-in for the grader: it runs a command through the tether (as rai-lab grade runs nbgrader, which runs
# alembic), prints the tether's pid, and waits to be killed.
GRADER = """
import sys, threading
from rai_lab import tether
threading.Thread(target=tether.run, args=(["sh", "-c", "sleep 300 & sleep 300"],), daemon=True).start()
import time, psutil
me = psutil.Process()
while not me.children():
    time.sleep(0.05)
print(me.children()[0].pid, flush=True)
time.sleep(300)
"""


def _family(pid: int) -> list[psutil.Process]:
    try:
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def test_a_killed_grader_takes_what_it_tethered_with_it():
    grader = subprocess.Popen([sys.executable, "-c", GRADER], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        tethered = int(grader.stdout.readline())
        deadline = time.monotonic() + 30
        while len([p for p in _family(tethered) if p.name() == "sleep"]) < 2:  # the command and what it started
            assert time.monotonic() < deadline, [p.cmdline() for p in _family(tethered)]
            time.sleep(0.1)
        family = _family(tethered)
        grader.send_signal(signal.SIGKILL)
        grader.wait()
        gone, alive = psutil.wait_procs(family, timeout=5)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        grader.kill()
        grader.wait()


def test_a_tethered_command_gives_its_output_and_exit_code():
    from rai_lab import tether

    done = tether.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, sorted(done.stdout.split())) == (3, ["err", "out"])
