"""`rai-lab grade --master`: a class graded on a real Spark standalone cluster (a master and two workers on 127.0.0.1,
from the installed pyspark), one worker killed in the middle of the batch; its rows are the local batch's."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_CLASS_LIMITS, rai_lab_command
from make_submissions import filled, write
from test_hostile_grading import SPARK_KILLER_FRAMES

from rai_lab.grading.cluster import answers, driver, host
from rai_lab.grading.cluster.standalone import Cluster

SUBMISSIONS = ROOT / "tests" / "submissions"
# Six learners to grade (a whole lab, nothing done, calls missing, a wrong variable, their own cassette, a zip) and
# one that never reaches nbgrader, then KILLER: four tasks of two, so that one task is killed after the first two ran.
CLASS = ["solution", "unfilled", "nine-calls", "key-placeholder", "with-own-cassette", "zipped", "invalid-json"]
# A learner whose UDF kills every process it may: its task's Spark server stops. Their host graded another task beside
# them, so the driver grades them again alone (as a local batch does at its end) and only then says it was theirs.
KILLER = "spark-server-killer"
LIMITS = list(SAMPLE_CLASS_LIMITS)  # the sample class's batch's, whose rows these are compared with


def read_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def nbgrader_scores(out: Path) -> dict[str, tuple]:
    with open(out / "nbgrader_grades.csv", encoding="utf-8") as handle:
        return {row["student_id"]: (row["raw_score"], row["score"], row["max_score"]) for row in csv.DictReader(handle)}


def grading_workers(spark_worker_pid: int) -> set[int]:
    """The grading workers (rai_lab.grading.worker.main) running under a Spark worker (in its executors' tasks)."""
    import psutil

    try:
        family = psutil.Process(spark_worker_pid).children(recursive=True)
    except psutil.Error:
        return set()
    found = {}
    for process in family:
        try:
            if "rai_lab.grading.worker.main" in process.cmdline():
                found[process.pid] = process.ppid()
        except psutil.Error:
            pass
    return {pid for pid, parent in found.items() if parent not in found}  # not its network namespace's wrapper


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cluster-class") / "submissions"
    folder.mkdir()
    for entry in SUBMISSIONS.iterdir():
        if entry.name.split(".")[0] in CLASS:
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, folder / entry.name)
    write(filled(frames=SPARK_KILLER_FRAMES), folder / f"{KILLER}.ipynb")
    return folder


@pytest.fixture(scope="module")
def local_rows(graded_class) -> tuple[dict[str, dict], dict[str, tuple]]:
    """The same learners' rows and nbgrader scores in the sample class's local batch (conftest's graded_class: the
    whole class, two workers, the same limits): a learner's row is the same whoever else is in the batch."""
    out = graded_class[0]
    learners = {Path(name).stem for name in CLASS}
    return ({k: v for k, v in read_rows(out).items() if k in learners},
            {k: v for k, v in nbgrader_scores(out).items() if k in learners})


@pytest.mark.notebook
@pytest.mark.spark
def test_a_class_graded_on_a_cluster_that_loses_a_worker_has_the_local_rows(class_dir, local_rows, tmp_path):
    """Two workers of one core; once two tasks have run, the worker grading the third is killed with its executor
    and all it started: Spark runs that task again on the other worker. Every learner has exactly one row, the
    local run's; the feedback, nbgrader's export and the kept grades are there; nothing of the cluster is left."""
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    with Cluster(tmp_path / "cluster", workers=2, cores=1, memory="1g") as cluster:
        grade = subprocess.Popen(
            [sys.executable, "-m", "rai_lab", "grade", str(class_dir), "--out", str(out), "--work", str(work), *LIMITS,
             "--master", cluster.url, "--learners-per-task", "2", "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            seen: dict[int, set[int]] = {0: set(), 1: set()}
            killed = None
            deadline = time.monotonic() + 900
            while killed is None and grade.poll() is None and time.monotonic() < deadline:
                for index, worker in enumerate(cluster.workers):
                    running = grading_workers(worker.pid)
                    seen[index] |= running
                    # The third task's grading worker: a grading worker new to a Spark worker that already ran one.
                    if len(seen[0]) + len(seen[1]) >= 3 and running and len(seen[index]) >= 2:
                        time.sleep(3)  # mid-learner
                        cluster.kill_worker(index)
                        killed = index
                        break
                time.sleep(0.2)
            stdout, stderr = grade.communicate(timeout=max(60, deadline - time.monotonic()))
            started = [cluster.master.pid, *(worker.pid for worker in cluster.workers if worker is not None)]
        finally:
            if grade.poll() is None:
                grade.kill()
                grade.wait()
    assert killed is not None, "no third task was seen running"
    assert grade.returncode == 0, stdout + stderr
    timings = json.loads((work / "logs" / "batch" / "timings.json").read_text())
    graded_where = timings["cluster"]["graded_where"]
    learners = sorted(name for name in CLASS if name != "invalid-json")
    assert sorted(graded_where) == sorted([*learners, KILLER])  # each once (a record that came twice is not kept)
    assert any(record["attempt"] >= 1 for record in graded_where.values())  # the killed task, run again
    # The two executors ran their first tasks side by side, each with a uid block of its own.
    tasks = sorted(timings["cluster"]["tasks"], key=lambda task: task["start"])
    first, second = tasks[0], tasks[1]
    assert first["start"] < second["end"] and second["start"] < first["end"] and first["pid"] != second["pid"]
    assert first["uid_base"] != second["uid_base"]

    # The learner who stopped their task's Spark server, graded again alone on the driver: that stop is theirs.
    assert timings["graded_again"] == {KILLER: "Spark server stopped"}
    assert timings["cluster"]["graded_again_alone"]["learners"] == [KILLER]
    rows, expected = read_rows(out), local_rows[0]
    killer = rows.pop(KILLER)
    assert (killer["status"], killer["score"], killer["bonus"]) == ("graded", "11", "2"), killer
    assert "serveur Spark" in killer["notes"].split(" | ")[0] and "noté seul" in killer["notes"], killer["notes"]
    assert rows == expected  # row for row, every column (grades.csv has no timing column)
    assert {k: v for k, v in nbgrader_scores(out).items() if k != KILLER} == local_rows[1]
    for learner in learners:
        page = (out / "feedback" / learner / "responsible_ai.html").read_text(encoding="utf-8")
        assert "rai-lab-summary" in page and "<body" in page  # nbgrader's feedback with the kit's summary
    assert "Spark cluster " + cluster.url in stdout

    # The cache: the same class graded again, locally, keeps every grade.
    again = rai_lab_command("grade", str(class_dir), "--out", str(out), "--work", str(work), *LIMITS, "--no-progress",
                            timeout=600)
    assert again.returncode == 0 and "0 graded now, 8 kept" in again.stdout, again.stdout + again.stderr
    assert read_rows(out) == {**expected, KILLER: killer}

    import psutil

    assert not [pid for pid in started if psutil.pid_exists(pid)]  # the cluster is stopped
    left = [p.pid for p in psutil.process_iter() if str(tmp_path) in " ".join(_cmdline(p))]
    assert not left


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_a_host_with_another_kit_is_refused_by_name():
    """An executor host whose kit differs from the driver's refuses to grade, naming itself and the fix."""
    kit = host.fingerprint("responsible-ai-en")
    assert kit.startswith("0.") and host.refusal("responsible-ai-en", "en", kit) is None
    why = host.refusal("responsible-ai-en", "en", "0.0.1+0123456789abcdef")
    assert host.name() in why and "install the driver's wheel on every executor host" in why


def test_tasks_have_several_learners_and_each_learner_one_result():
    """A task grades several learners (it starts a worker once); the first result of a learner is the one kept."""
    assert driver.learners_per_task(100, 2) == 16 and driver.learners_per_task(4, 2) == 2
    assert driver.learners_per_task(10_000, 400) == 13 and driver.learners_per_task(3, 8) == 1

    class Grader:
        timings = {"notebooks": {}}
        merged: list = []

        def merge(self, record):
            self.merged.append(record["learner"])

        class state:
            kept: list = []

            @classmethod
            def keep(cls, outcome):
                cls.kept.append(outcome.learner)

    class Bar:
        def set_postfix_str(self, text):
            pass

        def update(self):
            pass

    grader = Grader()
    sink = answers.Sink(grader, {"ada": None}, Bar(), on_refusal=lambda: None)
    record = {"learner": "ada", "outcome": {"learner": "ada", "source": "ada.ipynb"}, "host": "h", "attempt": 0}
    param = answers.SinkParam()
    assert param.zero(sink) == [] and param.addInPlace([record], [record]) == [record, record]
    assert param.addInPlace(sink, [record, {**record, "attempt": 1}, {**record, "learner": "eve"}]) is sink
    assert list(sink.outcomes) == ["ada"] and sink.doubled == 1 and grader.state.kept == ["ada"]
    assert sink.records["ada"]["attempt"] == 0
    # A learner a task's batch may have disturbed: merged, but not kept, and left for the driver to grade alone.
    sink.expected["eve"] = None
    param.addInPlace(sink, [{**record, "learner": "eve", "again": "cell time limit"}])
    assert grader.merged == ["ada", "eve"] and grader.state.kept == ["ada"] and sink.again == {"eve": "cell time limit"}
