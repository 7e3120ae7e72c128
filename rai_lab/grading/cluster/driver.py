"""The driver's side of cluster grading (`rai-lab grade --master URL`): a local batch whose learners are graded by
Spark tasks on the cluster's executors instead of by local workers.

Everything around the grading is the local `Grader`'s: the intake (every entry a row), the kept grades of unchanged
submissions, the course prepared and the solution timed once (on the driver, by one local worker, with the same
sandbox), and the outputs (grades.csv, the feedback pages, nbgrader's export, state.json). Only `grade_all` differs:
the pending learners are split into partitions, each a Spark task (`task.grade_partition`) that grades them on its
executor with the local batch's own code, and answers through an accumulator (`answers.Sink`) once it is done.

Faults: a task whose executor dies answers nothing and Spark runs it again elsewhere (spark.task.maxFailures); the
driver keeps the first answer of each learner (never two); when a task fails every try, its learners are tried
again one per task, and a learner that fails every try of their own gets a row with the reason. A learner whom a
time limit or a stopped Spark server stopped in a task (whose host graded other tasks beside it) is graded again
alone on the driver's own worker (`grade_again_alone`). An executor host that would grade with another kit or
without the sandbox stops the batch (`host.refusal`)."""

from __future__ import annotations

import datetime
import math
import os
import shutil
import sys
import threading
import time
import uuid
import zlib
from dataclasses import asdict
from pathlib import Path

from rai_lab import paths
from rai_lab.errors import RaiLabError
from rai_lab.grading.cluster import failures, host, task
from rai_lab.grading.cluster.answers import Sink, SinkParam
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.batch import Grader
from rai_lab.grading.instructor.course import CourseTree
from rai_lab.grading.instructor.outcomes import new_outcome
from rai_lab.grading.instructor.rubric import Outcome, reason
from rai_lab.messages import say

MIN_LEARNERS_PER_TASK, MAX_LEARNERS_PER_TASK = 4, 16  # see learners_per_task
def learners_per_task(learners: int, slots: int) -> int:
    """How many learners a task grades by default: the class over twice the cluster's task slots (a slow task is
    overtaken), at least MIN_LEARNERS_PER_TASK (a task starts a worker and its Spark server, 10 s or more, once for
    all its learners) unless the class is too small for every slot to get that many, at most
    MAX_LEARNERS_PER_TASK (an executor lost costs its tasks' learners again)."""
    even = math.ceil(learners / max(1, slots))
    return max(1, min(MAX_LEARNERS_PER_TASK, max(min(MIN_LEARNERS_PER_TASK, even), math.ceil(even / 2))))


class LazyWorker:
    """A local worker started on its first learner (`Worker`'s interface): waiting for it before then waits for
    nothing."""

    def __init__(self, start):
        self.start, self.worker = start, None

    def wait_ready(self) -> bool:
        return self.worker.wait_ready() if self.worker is not None else True

    def grade(self, job: dict, timeout: float):
        if self.worker is None:
            self.worker = self.start()
        return self.worker.grade(job, timeout)

    def kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def spark_context(master: str, app: str):
    """A SparkContext on `master` (any URL spark-submit takes), or the one spark-submit made."""
    from pyspark import SparkConf, SparkContext

    from rai_lab.spark import cds

    conf = SparkConf().setAppName(app)
    if master:
        conf.setMaster(master)
    defaults = {
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON") or sys.executable,
        "spark.task.maxFailures": "4",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        # The driver's JVM places tasks and gathers answers: started as every Spark JVM of the kit on this machine
        # (the JIT's quick tier, the kit's class archive). The executors' JVMs are the cluster's to set.
        "spark.driver.extraJavaOptions": cds.with_archive(),
    }
    if os.environ.get("SPARK_LOCAL_IP"):
        defaults["spark.driver.host"] = os.environ["SPARK_LOCAL_IP"]
    for key, value in defaults.items():
        if not conf.contains(key):
            conf.set(key, value)
    # pyspark's SparkContext takes the executors' Python from PYSPARK_PYTHON (spark-submit sets it from the conf).
    os.environ["PYSPARK_PYTHON"] = conf.get("spark.pyspark.python")
    context = SparkContext.getOrCreate(conf)
    context.setLogLevel("ERROR")
    return context


class ClusterGrader(Grader):
    """A batch graded on the Spark cluster at `master`: `learners_per_task` learners per task (default: the class
    spread over twice the cluster's cores, at most MAX_LEARNERS_PER_TASK). The other options are `Grader`'s; the
    driver runs one local worker, for the reference run only."""

    def __init__(self, assignment: str, out_dir: Path, master: str, learners_per_task: int | None = None, **options):
        options.pop("workers", None)
        super().__init__(assignment, out_dir, workers=1, **options)
        if self.trusted:
            raise RaiLabError("rai-lab grade --master grades sandboxed only: --trusted is for one machine")
        self.master = master
        self.learners_per_task = learners_per_task
        self.context = None
        self.cluster: dict = {}  # what the cluster did: tasks, hosts, tries, shipping costs (timings.json has it)
        self.gradebook = None  # the driver's gradebook, open while the answers are merged
        self.course_blob = b""  # the course the executors get (`shipped_course`), prepared beside the local batch's
        self._started: threading.Thread | None = None
        self._start_error: BaseException | None = None

    def run(self, submissions_dir: Path, progress: bool = True) -> list[Outcome]:
        """`Grader.run`, the cluster's driver started at the same time as the local worker and the course."""
        def start() -> None:
            try:
                if self.master.startswith("local") and not os.environ.get("RAI_LAB_CLUSTER_TASK_DIR"):
                    # The executor is this process's JVM, its tasks' folders in this folder (the kit's, often): in the
                    # work folder instead, outside the repository as a grading work folder must be (batch.Grader).
                    tasks = self.work / "cluster-tasks"
                    tasks.mkdir(parents=True, exist_ok=True)
                    os.environ["RAI_LAB_CLUSTER_TASK_DIR"] = str(tasks)
                self.context = spark_context(self.master, f"rai-lab grade {self.assignment}")
                started = time.monotonic()
                self.course_blob = self.shipped_course()
                self.cluster["prepare_course_s"] = time.monotonic() - started
            except BaseException as err:  # noqa: BLE001 - said when the cluster is needed
                self._start_error = err

        self._started = threading.Thread(target=start, name="spark-driver", daemon=True)
        self._started.start()
        try:
            return super().run(submissions_dir, progress=progress)
        finally:
            self._started.join()
            if self.context is not None:
                self.context.stop()
                self.context = None

    def start_worker(self, index: int):
        """The driver's one local worker, for the reference run only: started when the solution must be timed (not
        when this course's timing is kept on this machine)."""
        return LazyWorker(lambda: Grader.start_worker(self, index))

    @property
    def sandbox_summary(self) -> str:
        hosts = sorted({t["host"] for t in self.cluster.get("tasks", [])})
        where = f" on {len(hosts)} executor host{'s' if len(hosts) != 1 else ''} ({', '.join(hosts)})" if hosts else ""
        return f"bubblewrap, a uid block per task{where}, loopback only (Spark cluster {self.master})"

    @property
    def spark_summary(self) -> str:
        """The local summary's, said of the cluster's tasks: each task's grading worker has its own server."""
        return super().spark_summary.replace(f"per worker ({self.workers})", "per task")

    # -- what the executors get ----------------------------------------------------------------------------
    def task_config(self, course: bytes) -> dict:
        return {"assignment": self.assignment, "lang": self.lang, "spark": self.spark,
                "illustrations": self.illustrations,
                "limits_used": {k: v for k, v in self.limits_used.items()}, "sandbox_limits": asdict(self.limits),
                "kit": host.fingerprint(self.assignment), "course": course}

    def shipped_course(self) -> bytes:
        """The course as nbgrader prepared it, without any learner (a tree of its own, prepared once per batch)."""
        tree = CourseTree(self.work / "cluster-course", self.assignment, self.lang)
        shutil.rmtree(tree.course, ignore_errors=True)  # a new tree: a copy of the course this machine prepared
        tree.prepare(self.env())
        return task.pack(tree.course, sorted(p.name for p in tree.course.iterdir()))

    @staticmethod
    def payload(sub: intake.Submission) -> dict:
        return {"learner": sub.learner, "source": sub.source, "notes": list(sub.notes), "secrets": list(sub.secrets),
                "digest": sub.digest, "format": sub.format, "notebook": sub.notebook.read_bytes(),
                "cassette": sub.cassette.read_bytes() if sub.cassette else None}

    def merge(self, record: dict) -> None:
        """A learner graded on an executor, into the driver's course tree, logs and gradebook (as a local worker's)."""
        learner = record["learner"]
        for step in ("autograded", "feedback"):
            shutil.rmtree(self.tree.folder(step, learner).parent, ignore_errors=True)
        task.unpack(record["files"], self.course)
        logs = self.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{learner}.log").write_bytes(zlib.decompress(record["log"]) if record["log"] else b"")
        if record["gradebook"] is not None:
            self.merge_gradebook(learner, record["gradebook"])

    def merge_gradebook(self, learner: str, rows: dict) -> None:
        from nbgrader.api import Gradebook

        if self.gradebook is None:  # one for the batch (opening one costs about 40 ms), in the accumulator's thread
            self.gradebook = Gradebook(f"sqlite:///{self.course / 'gradebook.db'}")
        gb = self.gradebook
        try:
            self._merge_rows(gb, learner, rows)
        except Exception:
            gb.db.rollback()  # the batch's session stays usable for the next learner
            raise

    def _merge_rows(self, gb, learner: str, rows: dict) -> None:
        import warnings

        from nbgrader.api import MissingEntry
        from sqlalchemy.exc import SAWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission on a learner graded before
            gb.update_or_create_student(learner)
            try:
                gb.remove_submission(self.assignment, learner)
            except MissingEntry:
                pass
            timestamp = datetime.datetime.fromisoformat(rows["timestamp"]) if rows.get("timestamp") else None
            gb.add_submission(self.assignment, learner, **({"timestamp": timestamp} if timestamp else {}))
            notebook = gb.find_submission_notebook(paths.NOTEBOOK[:-6], self.assignment, learner)
            grades = {name: values for name, *values in rows["grades"]}
            for grade in notebook.grades:
                if grade.name in grades:
                    grade.auto_score, grade.manual_score, grade.extra_credit = grades[grade.name]
            comments = {name: values for name, *values in rows["comments"]}
            for comment in notebook.comments:
                if comment.name in comments:
                    comment.auto_comment, comment.manual_comment = comments[comment.name]
            gb.db.commit()

    # -- the batch on the cluster ----------------------------------------------------------------------------
    def grade_all(self, pending: list[intake.Submission], progress: bool, workers: list) -> list[Outcome]:
        from tqdm import tqdm

        for index, worker in enumerate(workers):  # the local worker timed the solution; the cluster grades
            if worker is not None:
                worker.close()
                workers[index] = None
        self._started.join()
        if self.context is None or not self.course_blob:
            raise RaiLabError(say("cluster.no_cluster", self.lang, master=self.master,
                                  detail=f"{type(self._start_error).__name__}: {str(self._start_error)[:300]}"))
        context = self.context
        clock = time.monotonic()
        self.check_hosts(context)
        self.cluster["check_hosts_s"] = time.monotonic() - clock
        started = time.monotonic()
        course = self.course_blob
        payloads = {sub.learner: self.payload(sub) for sub in pending}
        self.cluster["payloads_s"] = time.monotonic() - started
        self.cluster["payload_bytes"] = sorted(len(p["notebook"]) + len(p["cassette"] or b"")
                                               for p in payloads.values())
        config = context.broadcast(self.task_config(course))
        self.cluster["course_bytes"] = len(course)
        group = f"rai-lab-{uuid.uuid4().hex[:12]}"
        bar = tqdm(total=len(pending), desc="grading on the cluster", unit="notebook", disable=not progress,
                   file=sys.stderr)
        sink = Sink(self, {sub.learner: sub for sub in pending}, bar, lambda: context.cancelJobGroup(group))
        accumulator = context.accumulator(sink, SinkParam())
        tries = failures.task_tries(context.master, context.getConf())
        slots = max(1, context.defaultParallelism)
        size = self.learners_per_task or learners_per_task(len(pending), slots)
        failed: dict[str, str] = {}
        remaining = list(pending)
        rounds = 0
        try:
            while remaining:
                per_task = size if rounds == 0 else 1
                groups = [[payloads[sub.learner] for sub in remaining[i:i + per_task]]
                          for i in range(0, len(remaining), per_task)]
                context.setJobGroup(group, f"rai-lab grade {self.assignment}: {len(remaining)} learners",
                                    interruptOnCancel=True)
                error = None
                before = len(sink.outcomes)
                try:
                    context.parallelize(groups, len(groups)).foreachPartition(
                        lambda part, _config=config, _sink=accumulator: failures.grade_group(_config, _sink, part))
                except Exception as err:  # noqa: BLE001 - a task failed every try, or the batch was stopped
                    error = err
                rounds += 1
                if sink.refused:
                    why = sink.refused[0]["refused"]
                    raise RaiLabError(say("cluster.refused", self.lang, master=self.master, why=why))
                if self.stopping.is_set():
                    raise RaiLabError("the batch was stopped")
                remaining = [sub for sub in remaining if sub.learner not in sink.outcomes]
                if not remaining:
                    continue
                if error is None:  # every task answered, some answers could not be merged: tried again, once
                    if len(sink.outcomes) == before:
                        for sub in remaining:
                            failed[sub.learner] = "; ".join(sink.errors[-3:])[:300] or "no answer"
                        remaining = []
                    continue
                index, detail = failures.failed_task(error)
                if per_task == 1 and index is not None and index < len(groups):
                    learner = groups[index][0]["learner"]
                    failed[learner] = detail
                    remaining = [sub for sub in remaining if sub.learner != learner]
                elif per_task == 1 and len(sink.outcomes) == before:  # nothing came back: the cluster, not a learner
                    for sub in remaining:
                        failed[sub.learner] = detail
                    remaining = []
        finally:
            bar.close()
            if self.gradebook is not None:
                self.gradebook.close()
                self.gradebook = None
            self.cluster.update(tasks=sink.tasks, rounds=rounds, doubled=sink.doubled, errors=sink.errors,
                                learners_per_task=size, tries=tries, merge_s=sink.merge_s, slots=slots,
                                graded_where=sink.records, failed_every_try=sorted(failed),
                                seconds=time.monotonic() - clock)
            self.timings["cluster"] = self.cluster
        results = dict(sink.outcomes)
        results.update(self.grade_again_alone([sub for sub in pending if sub.learner in sink.again], sink.again,
                                              progress, workers))
        for learner, detail in failed.items():
            sub = next(s for s in pending if s.learner == learner)
            outcome = new_outcome(sub, self.sandbox_kind)
            outcome.status, outcome.provisional = "failed", True
            outcome.notes.insert(0, say("cluster.failed_every_try", self.lang, tries=tries, detail=detail))
            outcome.notes.insert(1, reason("provisional", self.lang))
            results[learner] = outcome
            self.state.keep(outcome)
        return [results[sub.learner] for sub in pending]

    def grade_again_alone(self, subs: list[intake.Submission], why: dict[str, str], progress: bool,
                          workers: list) -> dict[str, Outcome]:
        """The learners a task's batch may have disturbed (a time limit, a Spark server that stopped: `disturbed`),
        graded again on the driver's own worker, alone on this machine, as a local batch grades them at its end:
        their host ran other tasks beside them. The second grading is the one kept."""
        if not subs or self.stopping.is_set():
            return {}
        self.timings.setdefault("graded_again", {}).update(why)
        clock = time.monotonic()
        try:
            graded = Grader.grade_all(self, subs, progress, workers)  # `workers`: the batch's own, one local slot
        finally:
            self.cluster["graded_again_alone"] = {"learners": sorted(why), "seconds": time.monotonic() - clock}
        return {outcome.learner: outcome for outcome in graded}

    def check_hosts(self, context) -> None:
        """Ask as many tasks as the cluster has cores whether their host may grade (`host.refusal`): a host that
        may not stops the batch before anyone is graded (a task checks its host again before grading)."""
        slots = max(1, context.defaultParallelism)
        assignment, lang, kit = self.assignment, self.lang, host.fingerprint(self.assignment)
        answers = context.parallelize(range(slots), slots).map(
            lambda _: (host.name(), host.refusal(assignment, lang, kit))).collect()
        refused = sorted({why for _, why in answers if why})
        if refused:
            raise RaiLabError(say("cluster.refused", self.lang, master=self.master, why=" ".join(refused)))
        self.cluster["hosts_checked"] = sorted({name for name, _ in answers})
