"""The keeper's test of a slot's Spark server between two learners: still busy, or idle. Its judgement is tested on
a server whose CPU clock the test sets (a real process gets what a loaded machine leaves it), its clock on a real
process that computes (no Spark needed: the JVM is read the same way)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from rai_lab.grading.worker import sparkkeeper


class _Clock:
    """A server's CPU seconds: `shares` is the share of a core it uses in each successive window (the last repeats)."""

    def __init__(self, shares: list[float]):
        self.shares, self.seconds, self.reads = list(shares), 0.0, 0

    def __call__(self, jvm) -> float:
        self.reads += 1
        if self.reads % 2 == 0:  # the end of a window: what the server used in it
            share = self.shares.pop(0) if len(self.shares) > 1 else self.shares[0]
            self.seconds += share * 0.1
        return self.seconds


@pytest.mark.parametrize("shares, busy", [([0.9], True), ([0.0], False), ([0.9, 0.9, 0.2], False),
                                          ([0.6] * 9 + [0.1], False), ([0.51], True)])
def test_a_server_is_busy_only_when_it_computes_in_every_window(monkeypatch, shares, busy):
    """Busy: more than half a core in each of 10 windows of 0.1 s; one quieter window (a GC or the JIT settling,
    then idle) and it is not."""
    clock = _Clock(shares)
    monkeypatch.setattr(sparkkeeper, "_cpu_seconds", clock)
    monkeypatch.setattr(sparkkeeper.time, "sleep", lambda seconds: None)
    assert sparkkeeper._busy(object()) is busy
    assert clock.reads == (20 if busy else 2 * (len(shares) if shares[-1] < 0.5 else 1))


def test_a_server_s_cpu_is_read_to_the_nanosecond_from_its_threads():
    computing = subprocess.Popen([sys.executable, "-c", "import hashlib, threading, time\ndata = bytes(1 << 22)\n"
                                  "def spin():\n    while True: hashlib.sha256(data).digest()\n"
                                  "for _ in range(3): threading.Thread(target=spin, daemon=True).start()\n"
                                  "print('running', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert computing.stdout.readline().strip() == "running"
        process = psutil.Process(computing.pid)
        first = sparkkeeper._cpu_seconds(process)
        time.sleep(0.3)
        second, ticks = sparkkeeper._cpu_seconds(process), sum(process.cpu_times()[:2])
        assert second > first  # it ran, however loaded the machine
        assert second != round(second, 2)  # nanoseconds, not 10 ms ticks
        assert abs(second - ticks) < 0.2  # the same clock as the kernel's own count, read finer
    finally:
        computing.kill()
        computing.wait()


def test_a_server_that_is_gone_is_not_busy():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    process = psutil.Process(gone.pid)
    gone.wait()
    assert not sparkkeeper._busy(process)
