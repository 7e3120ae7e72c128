"""`rai-lab grade --master`'s fault paths, end to end on Spark's local master with task retries (`local[2,3]`: two task
slots, each task tried three times; its tasks run in pyspark's Python workers, processes of their own).

The faults are injected from outside the kit: a `sitecustomize.py` on the PYTHONPATH of `rai-lab grade` (which the
pyspark workers inherit) wraps functions of `rai_lab.grading.cluster.task` and `host` as they are imported, as
RAI_LAB_TEST_FAULTS says, and logs each fault with the pid of the process it happened in (never the driver's)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_CLASS_LIMITS

SUBMISSIONS = ROOT / "tests" / "submissions"
MASTER = "local[2,3]"
TRIES = 3
# The failing learner comes first: their task fails its first try at once; its retries fail once the other learners'
# tasks have ended, so that the job they abort stops no other task (which would make the rounds depend on timing).
FAILING = "amy-fails"  # every task that grades them raises (task.submission)
UNMERGEABLE = "cid-unmergeable"  # their answer reaches the driver with a corrupt "files" blob: the merge raises
NORMAL = "bea"  # the course's solution: 15/15 and 4/4, as in a local batch (test_grading)

SITECUSTOMIZE = textwrap.dedent('''
    """Faults for tests/grading/test_cluster_faults.py: patches rai_lab.grading.cluster.task / host once imported."""
    import importlib.abc
    import importlib.util
    import json
    import os
    import sys
    import time

    FAULTS = json.loads(os.environ.get("RAI_LAB_TEST_FAULTS") or "{}")
    LOG = os.environ.get("RAI_LAB_TEST_FAULTS_LOG")


    def log(event, what):
        if LOG:
            with open(LOG, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"pid": os.getpid(), "event": event, "what": what}) + "\\n")


    def logged(event):
        try:
            with open(LOG, encoding="utf-8") as handle:
                return [entry["what"] for entry in map(json.loads, handle) if entry["event"] == event]
        except FileNotFoundError:
            return []


    def patch_task(task):
        submission, record, grade_partition = task.submission, task.TaskGrader.record, task.grade_partition

        def failing_submission(payload, folder):
            if payload["learner"] == FAULTS.get("fail"):
                from pyspark import TaskContext

                if TaskContext.get().attemptNumber() >= 1:  # its retries fail once the others' tasks have ended:
                    deadline = time.monotonic() + 300  # the job they abort stops no other learner's grading
                    while time.monotonic() < deadline and not set(FAULTS["fail_after"]) <= set(logged("done")):
                        time.sleep(0.5)
                    time.sleep(2)  # their answers, on their way to the driver
                log("fail", payload["learner"])
                raise RuntimeError(f"injected fault for {payload['learner']}")
            return submission(payload, folder)

        def ending_partition(config, sink, groups):
            grade_partition(config, sink, groups)
            for group in groups:
                for payload in group:
                    log("done", payload["learner"])

        def corrupt_record(self, outcome):
            answer = record(self, outcome)
            if answer["learner"] == FAULTS.get("unmergeable"):
                log("unmergeable", answer["learner"])
                answer["files"] = b"not a zlib stream"
            return answer

        task.submission, task.TaskGrader.record = failing_submission, corrupt_record
        task.grade_partition = ending_partition


    def patch_host(host):
        refusal = host.refusal

        def refusing(assignment, lang, driver_kit):
            caller = sys._getframe(1).f_code.co_name  # check_hosts' lambda, or a task's grade_partition
            if FAULTS.get("refuse_in") == "task" and caller != "grade_partition":
                return refusal(assignment, lang, driver_kit)
            log("refuse", caller)
            return f"the executor host {host.name()} is refused by the test: {FAULTS['refuse']}"

        if FAULTS.get("refuse"):
            host.refusal = refusing


    PATCHES = {"rai_lab.grading.cluster.task": patch_task, "rai_lab.grading.cluster.host": patch_host}


    class Patcher(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name not in PATCHES:
                return None
            sys.meta_path.remove(self)  # the real spec, found by the other finders
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None:
                return None
            self.real = getattr(self, "real", {})
            self.real[name] = spec.loader
            spec.loader = self
            return spec

        def create_module(self, spec):
            return self.real[spec.name].create_module(spec)

        def exec_module(self, module):
            self.real[module.__name__].exec_module(module)
            PATCHES[module.__name__](module)


    if FAULTS:
        sys.meta_path.insert(0, Patcher())
''')


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def faults_logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def grade_with_faults(class_dir: Path, tmp: Path, faults: dict) -> tuple[subprocess.CompletedProcess, int, Path]:
    """`rai-lab grade --master local[2,3]` of `class_dir`, `faults` injected: (its result, its pid, the fault log)."""
    hooks = tmp / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    log = tmp / "faults.jsonl"
    env = {**os.environ, "RAI_LAB_TEST_FAULTS": json.dumps(faults), "RAI_LAB_TEST_FAULTS_LOG": str(log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "rai_lab", "grade", str(class_dir), "--out", str(tmp / "out"), "--work",
         str(tmp / "work"), *SAMPLE_CLASS_LIMITS, "--master", MASTER, "--learners-per-task", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        stdout, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), process.pid, log


def a_class(folder: Path, learners: list[str]) -> Path:
    folder.mkdir(parents=True)
    for learner in learners:
        shutil.copy(SUBMISSIONS / "solution.ipynb", folder / f"{learner}.ipynb")
    return folder


def left_running(tmp: Path) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if str(tmp) in " ".join(process.cmdline()):
                found.append(process.pid)
        except psutil.Error:
            pass
    return found


@pytest.mark.notebook
@pytest.mark.spark
def test_a_learner_whose_tasks_fail_or_whose_answer_cannot_be_merged_gets_a_failed_row(tmp_path):
    """Three copies of the solution: one whose task raises on every try, one whose answer the driver cannot merge,
    one graded normally. The first two get a "failed" row saying why (and that it is provisional), not kept; the
    third its local score; every learner exactly one row."""
    class_dir = a_class(tmp_path / "class", [NORMAL, FAILING, UNMERGEABLE])
    started = time.monotonic()
    done, pid, log = grade_with_faults(class_dir, tmp_path, {"fail": FAILING, "fail_after": [NORMAL, UNMERGEABLE],
                                                           "unmergeable": UNMERGEABLE})
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"graded with faults in {seconds:.1f} s")

    # The faults happened in pyspark's workers (the sitecustomize loaded there), never in the driver.
    logged = faults_logged(log)
    fails = [entry for entry in logged if entry["event"] == "fail"]
    unmergeable = [entry for entry in logged if entry["event"] == "unmergeable"]
    assert fails and unmergeable and all(entry["pid"] != pid for entry in logged), logged
    assert {entry["what"] for entry in fails} == {FAILING} and {entry["what"] for entry in unmergeable} == {UNMERGEABLE}
    # The failing learner's task was tried three times (local[2,3]), then the driver knew it was theirs: not again.
    assert len(fails) == TRIES, fails
    assert len(unmergeable) == 2, unmergeable  # answered, not merged, tried again once (alone), still not merged

    rows = read_rows(tmp_path / "out")
    assert sorted(rows) == sorted([NORMAL, FAILING, UNMERGEABLE])
    normal = rows[NORMAL]
    assert (normal["status"], normal["score"], normal["max_score"], normal["bonus"], normal["bonus_max"]) == (
        "graded", "15", "15", "4", "4"), normal
    failing = rows[FAILING]
    assert (failing["status"], failing["score"]) == ("failed", "0"), failing
    notes = failing["notes"].split(" | ")
    assert notes[0].startswith(f"La notation a échoué à chaque essai sur le cluster ({TRIES} essais,"), notes
    assert f"RuntimeError: injected fault for {FAILING}" in notes[0], notes
    assert notes[1].startswith("La notation a échoué du côté du correcteur"), notes  # provisional: graded next time
    corrupt = rows[UNMERGEABLE]
    assert (corrupt["status"], corrupt["score"]) == ("failed", "0"), corrupt
    notes = corrupt["notes"].split(" | ")
    assert notes[0].startswith("La notation a échoué à chaque essai sur le cluster"), notes
    assert f"{UNMERGEABLE}: error: Error -3 while decompressing data" in notes[0], notes
    assert notes[1].startswith("La notation a échoué du côté du correcteur"), notes

    timings = json.loads((tmp_path / "work" / "logs" / "batch" / "timings.json").read_text())
    cluster = timings["cluster"]
    assert cluster["failed_every_try"] == sorted([FAILING, UNMERGEABLE]) and cluster["tries"] == TRIES
    assert cluster["rounds"] == 2 and len(cluster["errors"]) == 2, cluster  # the class, then the unmergeable alone
    assert sorted(cluster["graded_where"]) == [NORMAL]  # merged once: the failed learners never were
    assert (tmp_path / "out" / "feedback" / NORMAL / "responsible_ai.html").exists()
    assert not left_running(tmp_path)


@pytest.mark.notebook
@pytest.mark.spark
@pytest.mark.parametrize("where", ["hosts", "task"])
def test_a_refusing_host_stops_the_batch_naming_the_host_and_the_fix(tmp_path, where):
    """A host refuses (as for another kit or no sandbox), in the driver's host check before grading (`hosts`) or in a
    task's own check (`task`): `rai-lab grade` stops before any learner is graded, exit status 2, with a message that
    names the host and the fix."""
    import socket

    class_dir = a_class(tmp_path / "class", [NORMAL, "dan"])
    fix = "install the driver's wheel on every executor host"
    done, pid, log = grade_with_faults(class_dir, tmp_path, {"refuse": fix, "refuse_in": where})
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr
    assert f"rai-lab grade --master {MASTER} : la notation est arrêtée" in message, message
    assert f"the executor host {socket.getfqdn()} is refused by the test: {fix}" in message, message
    logged = faults_logged(log)
    refusals = [entry for entry in logged if entry["event"] == "refuse"]
    assert refusals and all(entry["pid"] != pid for entry in logged), logged
    # Who refused: check_hosts' tasks, or (the host check passed) the grading tasks, each before grading anyone.
    assert {entry["what"] for entry in refusals} == {"<lambda>" if where == "hosts" else "grade_partition"}, logged
    assert not (tmp_path / "out" / "grades.csv").exists()
    assert not list((tmp_path / "work").glob("**/autograded/*"))
    assert not left_running(tmp_path)
