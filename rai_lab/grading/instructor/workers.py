"""The grading workers: a `rai_lab.grading.worker.main` process each, one learner at a time, killed at the time limit."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


class Worker:
    """A `rai_lab.grading.worker.main` process in the batch's network namespace: one learner at a time, killed (with
    its sandbox) at the time limit. Started with `settings` (BatchServices.worker_settings), behind `prefix` (its
    network namespace), in the course folder `cwd` with the environment `env`; its log goes to `logs`, and the time
    it took to be ready is appended to `start_times`."""

    def __init__(self, index: int, *, settings: dict, prefix: list[str], cwd: Path, env: dict[str, str], logs: Path,
                 start_times: list[float]):
        self.start_times = start_times
        self.stderr = open(logs / f"worker-{index}.log", "a", encoding="utf-8")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "rai_lab.grading.worker.main", json.dumps(settings)],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            text=True, start_new_session=True,
        )
        self.ready = False

    def _read(self, deadline: float) -> dict | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    return {"dead": True}
                try:
                    return json.loads(line)
                except ValueError:
                    continue

    def wait_ready(self) -> bool:
        """Wait for the worker's first line: its Spark server answers, nbgrader is imported, its sandbox is warm."""
        if not self.ready:
            started = time.monotonic()
            answer = self._read(time.monotonic() + 300)
            self.start_times.append(time.monotonic() - started)
            if not answer or not answer.get("ready"):
                self.kill()
                return False
            self.ready = True
        return True

    def grade(self, job: dict, timeout: float) -> tuple[int, dict]:
        """(0, the worker's answer) when nbgrader finished; (-9, ...) when killed at the limit; (1, ...) if it died."""
        if not self.wait_ready():
            return 1, {"log": "the grading worker did not start (see logs/batch/worker-*.log)"}
        deadline = time.monotonic() + timeout
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
        except OSError:
            self.kill()
            return 1, {"log": "the grading worker stopped (see logs/batch/worker-*.log)"}
        answer = self._read(deadline)
        if answer is None:
            self.kill()
            return -9, {"log": f"killed after {timeout:g} s"}
        if answer.get("dead"):
            self.kill()
            return 1, {"log": "the grading worker stopped (see logs/batch/worker-*.log)"}
        return 0, answer

    def kill(self) -> None:
        """The worker, its kernel launcher and its sandbox (which dies with it)."""
        kill_family(self.process)
        self.stderr.close()

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def kill_family(process: subprocess.Popen) -> None:
    """Kill a process started with start_new_session, its group, and every descendant."""
    import psutil

    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        family = []
    for child in family:
        try:
            child.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def last_error(log: str) -> str:
    """The last line of a worker's log that names an error (300 characters at most): a failed learner's reason."""
    lines = [line.strip() for line in log.splitlines() if "Error" in line or "error" in line]
    return (lines[-1] if lines else "see the grading log")[:300]
