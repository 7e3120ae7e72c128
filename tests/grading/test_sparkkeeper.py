"""The keeper's test of a slot's Spark server between two learners: still busy, or idle (no Spark needed: any
process that computes, or sleeps, is judged the same way as the JVM)."""

from __future__ import annotations

import subprocess
import sys

import psutil

from rai_lab.grading.worker import sparkkeeper


def _started(code: str) -> subprocess.Popen:
    """A process running `code`, once it has said it runs (its start is not what is judged)."""
    process = subprocess.Popen([sys.executable, "-c", code + "\nprint('running', flush=True)\nimport time\n"
                                "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "running"
    return process


def test_a_server_that_computes_is_busy_and_one_that_waits_is_not():
    # three threads that hash outside the GIL: well above half a core even when other tests share the cores
    computing = _started("import hashlib, threading\ndata = bytes(1 << 22)\n"
                         "def spin():\n    while True: hashlib.sha256(data).digest()\n"
                         "for _ in range(3): threading.Thread(target=spin).start()")
    waiting = _started("pass")
    try:
        assert sparkkeeper._busy(psutil.Process(computing.pid))
        assert not sparkkeeper._busy(psutil.Process(waiting.pid))
        assert sparkkeeper._cpu_seconds(psutil.Process(computing.pid)) > 0.5  # its whole time, at ns precision
    finally:
        for process in (computing, waiting):
            process.kill()
            process.wait()


def test_a_server_that_is_gone_is_not_busy():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    process = psutil.Process(gone.pid)
    gone.wait()
    assert not sparkkeeper._busy(process)
