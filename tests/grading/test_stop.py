"""Stopping `rai-lab grade` (Ctrl-C, SIGTERM, SIGHUP, even SIGKILL): nothing it started keeps running, its /run
folder goes, the grades it made stay, and the same command grades only the rest."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, rai_lab_command
from test_grading import ALL, EXPECTED, RUBRIC, SUBMISSIONS, read_grades

from rai_lab.grading.instructor import stop
from rai_lab.grading.worker import sandbox

LEARNERS = ["key-placeholder", "nine-calls", "solution", "unfilled"]
OPTIONS = ["--workers", "2", "--cell-timeout", "30", "--timeout", "400", "--no-progress"]


def make_class(folder: Path, learners: list[str]) -> Path:
    folder.mkdir()
    for learner in learners:
        shutil.copy(SUBMISSIONS / f"{learner}.ipynb", folder)
    return folder


class Batch:
    """A `rai-lab grade` started in the background, and every process it started, watched while it runs."""

    def __init__(self, class_dir: Path, out: Path, work: Path):
        self.work = work
        self.args = ["grade", str(class_dir), "--out", str(out), "--work", str(work), *OPTIONS]
        self.stdout, self.stderr = open(out.parent / "stdout.txt", "w+"), open(out.parent / "stderr.txt", "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "rai_lab", *self.args], cwd=ROOT,
                                        stdout=self.stdout, stderr=self.stderr, text=True)
        self.seen: dict[int, tuple[float, str]] = {}  # pid: (start time, command line), of every process seen in its tree

    def watch(self, until, timeout: float = 900) -> None:
        """Note the grader's descendants until `until()` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            assert self.process.poll() is None, f"the grader ended first: {self.output()}"
            assert time.monotonic() < deadline, f"not reached in {timeout} s: {self.output()}"
            self.note()
            time.sleep(0.2)
        self.note()

    def note(self) -> None:
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return
        for child in family:
            try:
                self.seen.setdefault(child.pid, (child.create_time(), " ".join(child.cmdline())[:200]))
            except psutil.Error:
                pass

    def commands(self) -> str:
        return " | ".join(command for _, command in self.seen.values())

    def saved(self) -> dict[str, dict]:
        try:
            state = json.loads((self.work / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return {o["learner"]: o for o in state["outcomes"]}

    def batch_dir(self) -> Path | None:
        try:
            return Path(json.loads((self.work / "logs" / "batch" / "batch.json").read_text())["batch_dir"])
        except (OSError, ValueError, KeyError):
            return None

    def output(self) -> str:
        if self.stdout.closed:
            return self.text
        self.stdout.seek(0)
        self.stderr.seek(0)
        return self.stdout.read() + self.stderr.read()

    def left_running(self, batch_dir: Path | None) -> list[str]:
        """Processes of this batch still running: seen in its tree, or naming its grader or its /run folder."""
        left = []
        for pid, (started, command) in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == started and process.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{pid} {command}")
            except psutil.Error:
                pass
        for process in psutil.process_iter():
            try:
                if process.pid in self.seen or process.status() == psutil.STATUS_ZOMBIE:
                    continue
                environ = process.environ()
                named = environ.get("RAI_LAB_GRADER_PID") == str(self.process.pid) or (batch_dir and any(
                    str(batch_dir) in text for text in [*process.cmdline(), *environ.values()]))
                if named:
                    left.append(f"{process.pid} {' '.join(process.cmdline())[:200]}")
            except psutil.Error:
                pass
        return left

    def stop(self, signum: int) -> float:
        """Send `signum`; return how long the grader took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{signal.Signals(signum).name}: the grader did not exit in 30 s: {self.output()}")
        return time.monotonic() - sent

    def assert_nothing_left(self, within: float = 10) -> None:
        """Nothing of the batch runs (within `within` s), and its /run folder is gone."""
        batch_dir = self.batch_dir()
        deadline = time.monotonic() + within
        while self.left_running(batch_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not self.left_running(batch_dir)
        assert batch_dir is not None and not batch_dir.exists()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.text = self.output()
        self.stdout.close()
        self.stderr.close()


def assert_expected(learner: str, row: dict) -> None:
    """The row of an uninterrupted run (tests/grading/test_grading.py's EXPECTED), from grades.csv or state.json."""
    score, bonus, status, failed, _ = EXPECTED[learner]
    checks = row["checks"] if "checks" in row else {name: row[name] for name in ALL}
    assert (float(row["score"]), float(row["bonus"]), row["status"]) == (score, bonus, status), learner
    assert [name for name in ALL if float(checks[name]) < RUBRIC[name]["points"]] == failed, learner


@pytest.mark.notebook
@pytest.mark.spark
def test_sigterm_stops_everything_keeps_the_grades_made_and_the_same_command_resumes(tmp_path):
    class_dir = make_class(tmp_path / "class", LEARNERS)
    out, work = tmp_path / "out", tmp_path / "work"
    batch = Batch(class_dir, out, work)
    try:
        batch.watch(lambda: batch.saved())  # the first learner is graded, the others are being graded
        assert "rai_lab.grading.worker.main" in batch.commands() and "java" in batch.commands()
        seconds = batch.stop(signal.SIGTERM)
        print(f"SIGTERM: the grader exited in {seconds:.2f} s, {len(batch.saved())} learner(s) kept")
        assert seconds < 10, seconds
        output = batch.output()
        assert batch.process.returncode == 143, output
        batch.assert_nothing_left()
    finally:
        batch.close()
    saved = batch.saved()
    assert 1 <= len(saved) < len(LEARNERS), saved
    assert f"rai-lab: stopped by SIGTERM: {len(saved)} learner" in output
    assert "run the same command again to grade the rest" in output
    for learner, outcome in saved.items():  # each one kept is whole, as an uninterrupted run grades it
        assert_expected(learner, outcome)
    assert not out.joinpath("grades.csv").exists()

    again = rai_lab_command(*batch.args, timeout=1500)
    assert again.returncode == 0, again.stdout + again.stderr
    rest = len(LEARNERS) - len(saved)
    assert f"{len(LEARNERS)} submissions: {rest} graded now, {len(saved)} kept from the last run" in again.stdout
    timings = json.loads((work / "logs" / "batch" / "timings.json").read_text())
    assert timings["graded"] == rest and not Path(timings["batch_dir"]).exists()
    assert "reference_s" in timings and not (work / "logs" / "batch" / "reference.ipynb").exists()  # timed once
    grades = read_grades(out)
    assert sorted(grades) == LEARNERS
    for learner, row in grades.items():
        assert_expected(learner, row)


@pytest.mark.notebook
@pytest.mark.spark
def test_sighup_while_the_workers_start_stops_everything(tmp_path):
    """A closed terminal, before any learner is graded: nothing is kept, nothing runs, the /run folder is gone."""
    class_dir = make_class(tmp_path / "class", ["solution", "unfilled"])
    batch = Batch(class_dir, tmp_path / "out", tmp_path / "work")
    try:
        batch.watch(lambda: "java" in batch.commands() and "rai_lab.grading.worker.main" in batch.commands())
        seconds = batch.stop(signal.SIGHUP)
        print(f"SIGHUP: the grader exited in {seconds:.2f} s")
        assert seconds < 10, seconds
        assert batch.process.returncode == 129, batch.output()
        batch.assert_nothing_left()
    finally:
        batch.close()
    assert "stopped by SIGHUP: 0 learners graded and kept" in batch.output()
    assert not batch.saved()


@pytest.mark.notebook
@pytest.mark.spark
def test_a_killed_grader_leaves_no_process_and_the_next_one_removes_its_folder(tmp_path):
    """SIGKILL leaves the grader no time: what it started ends by itself; its /run folder waits for the next
    grader, which removes it (its owner is gone) and no folder of a grader still running."""
    class_dir = make_class(tmp_path / "class", ["solution"])
    batch = Batch(class_dir, tmp_path / "out", tmp_path / "work")
    try:
        batch.watch(lambda: "java" in batch.commands() and "rai_lab.grading.worker.main" in batch.commands())
        batch_dir = batch.batch_dir()
        batch.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while batch.left_running(batch_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not batch.left_running(batch_dir)
    finally:
        batch.close()
    assert batch_dir.is_dir()  # nobody could remove it
    assert (batch_dir / sandbox.BATCH_OWNER).read_text().split()[0] == str(batch.process.pid)
    mine = sandbox.batch_folder()  # what a grader does first: remove the folders of graders that are gone
    try:
        assert not batch_dir.exists()
        assert mine.parent == batch_dir.parent and (mine / sandbox.BATCH_OWNER).exists()
        assert sandbox.remove_stale_batch_folders(mine.parent) == [] and mine.exists()  # its owner (this test) runs
    finally:
        shutil.rmtree(mine)


def test_stale_batch_folders_are_those_whose_owner_is_gone(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    folders = {}
    for name, owner in (("gone", f"{gone.pid} 1"), ("running", sandbox._process_mark(os.getpid())),
                        ("reused", f"{os.getpid()} 1"), ("unknown", None)):
        folder = tmp_path / f"{sandbox.BATCH_PREFIX}{name}"
        folder.mkdir()
        if owner:
            (folder / sandbox.BATCH_OWNER).write_text(owner)
        folders[name] = folder
    (tmp_path / "rai-lab-other").mkdir()
    removed = sandbox.remove_stale_batch_folders(tmp_path)
    # a pid alive but started at another time is another process: its grader is gone; no owner file: left alone
    assert sorted(removed) == sorted([folders["gone"], folders["reused"]])
    assert folders["running"].exists() and folders["unknown"].exists() and (tmp_path / "rai-lab-other").exists()


def test_sigint_sigterm_and_sighup_each_stop_grading_once_cleanup_allows():
    """`rai-lab grade` turns the three signals into `Stopped` (exit 130, 143, 129); during a cleanup (`deferred`) a
    signal waits for its end; a second signal changes nothing."""
    previous = stop.install()
    try:
        for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
            stop.install()
            assert signal.getsignal(signum) is stop._handler
            with pytest.raises(stop.Stopped) as raised:
                os.kill(os.getpid(), signum)
                time.sleep(5)  # the handler raises here
            assert (raised.value.exit_status, raised.value.name, stop.requested()) == (status, signum.name, signum)
            os.kill(os.getpid(), signal.SIGTERM)  # already stopping: nothing
        stop.install()
        with pytest.raises(stop.Stopped):
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)
                cleaned = True  # the cleanup went on to its end
        assert cleaned
    finally:
        stop.restore(previous)
    assert signal.getsignal(signal.SIGTERM) is previous[signal.SIGTERM] and stop.requested() is None
