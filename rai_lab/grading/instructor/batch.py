"""`rai-lab grade`'s batch: nbgrader autograde of a folder of submissions, offline, time-limited, sandboxed.

The course tree lives in a work folder outside the repository. `--workers` processes
(`rai_lab.grading.worker.main`) each run nbgrader's autograde and feedback for one learner after another,
each in a network namespace of its own with its own Spark Connect server
(`rai_lab.grading.worker.slotspark`): a learner's kernel reaches that server, on the namespace's loopback,
and nothing else, and the server is checked (and started anew when it must be) before the next
learner. Kernels get no secret in their environment, a notebook has a time limit (its worker is
killed and replaced), and one broken submission never stops the others. A learner whose grading
something may have disturbed (a time limit, a Spark server that stopped, a worker that died) is
graded again at the end, alone; a failure on the grader's side is never kept as a grade.
`--batch-spark local` gives each kernel its own embedded Spark instead.
"""

from __future__ import annotations

import json
import os
import shutil
import queue
import sys
import threading
import time
from pathlib import Path

from rai_lab import paths
from rai_lab.errors import RaiLabError
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.course import CourseTree, course_digest, default_work_dir
from rai_lab.grading.instructor.limits import TimeLimits
from rai_lab.grading.instructor.reports import Reports
from rai_lab.grading.instructor.outcomes import WORKER_GRACE, conclude, disturbed, grader_fault, new_outcome
from rai_lab.grading.instructor.rubric import Outcome
from rai_lab.grading.instructor.services import BatchServices
from rai_lab.grading.instructor.state import KeptGrades
from rai_lab.grading.instructor.workers import Worker
from rai_lab.grading.worker import sandbox, sparkkeeper
from rai_lab.grading.worker.rerun import RERUN_ROWS

class Grader:
    """Grades a folder of submissions for one assignment: the batch's course tree (`tree`), kept grades (`state`),
    services (`services`), time limits (`time_limits`) and reports (`reports`), each an object of its own."""

    def __init__(self, assignment: str, out_dir: Path, work_dir: Path | None = None, timeout: float | None = None,
                 cell_timeout: float | None = None, workers: int | None = None, spark: str = "shared",
                 illustrations: bool = False, trusted: bool = False, regrade: bool = False,
                 limits: sandbox.Limits | None = None):
        if assignment not in paths.ASSIGNMENTS.values():
            raise RaiLabError(f"unknown assignment {assignment!r} (known: {', '.join(paths.ASSIGNMENTS.values())})")
        self.assignment = assignment
        self.lang = next(lang for lang, name in paths.ASSIGNMENTS.items() if name == assignment)
        self.out_dir = out_dir.resolve()
        self.work = (work_dir or default_work_dir(assignment, self.out_dir)).resolve()
        if paths.ROOT in self.work.parents or self.work == paths.ROOT:
            raise RaiLabError(f"the grading work folder must be outside the repository: {self.work}")
        self.course = self.work / "course"
        self.illustrations = illustrations  # also run the cells no check reads (tag rai-lab-illustration)
        if spark not in ("shared", "local"):
            raise RaiLabError(f"--batch-spark must be 'shared' (a Spark Connect server per worker, shared by its "
                              f"learners one after another) or 'local', not {spark!r}")
        self.spark = spark
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.trusted, self.regrade = trusted, regrade
        self.limits = limits or sandbox.Limits(memory=0 if spark == "local" else sandbox.Limits.memory)
        if not trusted:
            why = sandbox.unavailable(self.lang)
            if why:
                raise RaiLabError(f"rai-lab grade will not run untrusted notebooks without its sandbox: {why}")
        self.state_path = self.work / "state.json"
        self.batch_logs = self.work / "logs" / "batch"  # the last batch's server, workers and timings
        self.stopping = threading.Event()  # set on a stop or a failure: no new learner, no grade saved
        self.tree = CourseTree(self.course, assignment, self.lang)
        # timeout, cell_timeout (None: scaled from the reference run), spark and illustrations change a grade.
        self.state = KeptGrades(self.state_path, course_digest(assignment, [timeout, cell_timeout, spark, illustrations]),
                                self.stopping)
        self.services = BatchServices(self.lang, trusted=trusted, workers=self.workers)
        self.time_limits = TimeLimits(self.tree, self.batch_logs, timeout=timeout, cell_timeout=cell_timeout,
                                      regrade=regrade, cache_key=[spark, illustrations, trusted])
        self.reports = Reports(self.out_dir, self.lang, self.tree, self.batch_logs)
        # Where a batch's time goes, written to <work>/logs/batch/timings.json (benchmarks/grading.py reads it).
        self.timings: dict = {"notebooks": {}, "worker_start_s": []}
        # A cluster task's batch (cluster.task): its host grades other tasks' learners at the same time, so none of
        # its learners is graded alone; the learners to grade again alone are left in timings["graded_again"] for
        # the driver.
        self.shares_host = False

    @property
    def limits_used(self) -> dict:
        """The batch's time limits ({"cell", "notebook", "reference"}), once known."""
        return self.time_limits.used

    @property
    def saved_now(self) -> list[str]:
        """The learners graded and saved by this run (a stopped batch's summary counts them)."""
        return self.state.saved_now

    def env(self) -> dict[str, str]:
        """The environment of nbgrader and of the workers (no secret; the cell limit once known, else 180 s)."""
        return self.services.env(self.limits_used.get("cell", 180), self.illustrations)

    def start_worker(self, index: int) -> Worker:
        settings = self.services.worker_settings(index, course=self.course, assignment=self.assignment,
                                                 logs=self.batch_logs, spark=self.spark, limits=self.limits)
        return Worker(index, settings=settings, prefix=self.services.join, cwd=self.course, env=self.env(),
                      logs=self.batch_logs, start_times=self.timings["worker_start_s"])

    @property
    def sandbox_kind(self) -> str:
        """What grades.csv says of the sandbox a learner was graded in."""
        return "none" if self.trusted else "bubblewrap"

    @property
    def sandbox_summary(self) -> str:
        if self.trusted:
            return "none (--trusted: learners' code ran with the grader's rights)"
        return f"bubblewrap, uid {self.services.uid_base + 1}+, loopback only"

    @property
    def spark_summary(self) -> str:
        """What the summary says of the Spark servers and of the limits on re-running a learner's DataFrames."""
        if self.spark == "local":
            return "embedded in each kernel (--batch-spark local)"
        rerun = f"{RERUN_ROWS} rows and {self.limits_used['cell']:g} s" if self.limits_used.get("cell") \
            else f"{RERUN_ROWS} rows and the cell limit"
        heap, python = sparkkeeper.HEAP, sparkkeeper.PYTHON_WORKER_MEMORY
        return (f"a Spark Connect server per worker ({self.workers}), each with a {heap[:-1]} {heap[-1].upper()}B heap and "
                f"{python[:-1]} {python[-1].upper()}B per Python worker (UDF); a DataFrame re-run reads at most {rerun}")

    # -- one learner ---------------------------------------------------------------------------------------
    def new_outcome(self, sub: intake.Submission) -> Outcome:
        return new_outcome(sub, self.sandbox_kind)

    def job(self, sub: intake.Submission) -> dict:
        return {"learner": sub.learner, **self.tree.stage(sub), "cell_limit": self.limits_used["cell"],
                "notebook_limit": self.limits_used["notebook"]}

    # -- the batch -------------------------------------------------------------------------------------
    def run(self, submissions_dir: Path, progress: bool = True) -> list[Outcome]:
        if not submissions_dir.is_dir():
            raise RaiLabError(f"no such folder of submissions: {submissions_dir}")
        self.work.mkdir(parents=True, exist_ok=True)
        clock = time.monotonic()
        shutil.rmtree(self.batch_logs, ignore_errors=True)
        self.batch_logs.mkdir(parents=True)
        staging = self.work / "intake"
        shutil.rmtree(staging, ignore_errors=True)
        submissions = intake.collect(submissions_dir, staging, self.lang)
        self.formats = [sub.format for sub in submissions]  # what each learner handed in, for the summary
        previous = {} if self.regrade else self.state.load()
        kept = previous.get("outcomes", {})
        outcomes: dict[str, Outcome] = {}
        pending = []
        self.kept = 0
        for sub in submissions:
            cached = kept.get(sub.learner)
            if cached and cached.get("digest") == sub.digest and cached.get("sandbox") == self.sandbox_kind \
                    and not cached.get("provisional"):
                outcomes[sub.learner] = Outcome(**cached)
                self.kept += 1
            elif sub.problem:
                outcomes[sub.learner] = self.new_outcome(sub)
            else:
                pending.append(sub)
        from rai_lab.grading.instructor import stop

        # Each learner's grade is saved once it is final (`KeptGrades.keep`): a stopped batch keeps them, the next run
        # grades only the rest. The processes this grader starts die with it, even if it is killed (die_with_parent).
        self.state.begin(outcomes)
        self.stopping.clear()
        os.environ["RAI_LAB_GRADER_PID"] = str(os.getpid())
        workers: list[Worker] = []
        try:
            if pending:  # nothing to run (every grade kept): no Spark server, no worker, no reference run
                self.services.start()
                # Which /run folder is this batch's (the tests check that it is gone, and nothing of it runs).
                self.timings["batch_dir"] = str(self.services.batch_dir)
                self.timings["uids"] = [self.services.uid_base, self.services.uid_base + sandbox.UID_BLOCK - 1]
                (self.batch_logs / "batch.json").write_text(json.dumps(
                    {"pid": os.getpid(), "batch_dir": str(self.services.batch_dir)}), encoding="utf-8")
                self.course.mkdir(parents=True, exist_ok=True)
                # Workers start (their Spark server, nbgrader, their sandbox) while nbgrader prepares the course.
                workers = [self.start_worker(index) for index in range(min(self.workers, len(pending)))]
            self.tree.prepare(self.env())
            self.timings["prepare_and_intake_s"] = time.monotonic() - clock
            if pending:
                workers[0].wait_ready()
                self.timings["spark_server_ready_s"] = time.monotonic() - clock
                self.state.reference = self.time_limits.reference_limits(workers[0], previous, self.state.digest)
                self.timings["reference_s"] = time.monotonic() - clock - self.timings["spark_server_ready_s"]
                started = time.monotonic()
                for outcome in self.grade_all(pending, progress, workers):
                    outcomes[outcome.learner] = outcome
                self.timings["grading_s"] = time.monotonic() - started
            elif previous.get("reference"):
                self.state.reference = self.time_limits.set_from(previous["reference"])  # for the summary and the state
        except BaseException:
            # A stop (SIGINT, SIGTERM, SIGHUP: rai_lab.grading.instructor.stop) or a failure: no grade is saved from now on
            # (a learner the stop interrupted is graded again next time), and what runs is killed, not waited for.
            self.stopping.set()
            raise
        finally:
            with stop.deferred():  # a signal now waits until every process is gone and the /run folder removed
                for worker in workers:
                    if worker is not None:  # None: a grading thread's worker that died and was not replaced
                        worker.kill() if self.stopping.is_set() else worker.close()
                started = time.monotonic()
                self.services.stop()
                self.timings["spark_server_stop_s"] = time.monotonic() - started
        started = time.monotonic()
        ordered = [self.tree.with_manual_scores(outcomes[sub.learner]) for sub in submissions]
        self.tree.forget_removed({o.learner for o in ordered})
        self.state.save(ordered)
        self.reports.write(ordered, {s.learner: s for s in submissions})
        self.timings["outputs_s"] = time.monotonic() - started
        self.timings.update(total_s=time.monotonic() - clock, workers=self.workers, spark=self.spark,
                            sandbox=self.sandbox_summary, limits={k: v for k, v in self.limits_used.items()},
                            graded=len(pending), kept=self.kept)
        (self.batch_logs / "timings.json").write_text(json.dumps(self.timings, indent=1), encoding="utf-8")
        return ordered

    def grade_all(self, pending: list[intake.Submission], progress: bool, workers: list) -> list[Outcome]:
        """Grade every pending learner on the workers; then, alone on one worker, each learner whose grading
        something may have disturbed (`disturbed`): that second grading is theirs alone, and it is the one kept."""
        from tqdm import tqdm

        jobs: queue.Queue = queue.Queue()
        for sub in pending:
            jobs.put(sub)
        results: dict[str, Outcome] = {}
        again: list[intake.Submission] = []
        lock = threading.Lock()
        bar = tqdm(total=len(pending), desc="grading", unit="notebook", disable=not progress, file=sys.stderr)

        def grade_one(index: int, sub: intake.Submission, alone: bool, second: bool = False) -> None:
            with lock:
                if self.stopping.is_set():
                    return
                if workers[index] is None:  # under the lock: a stop sees every worker there is, and kills it
                    workers[index] = self.start_worker(index)
            outcome = self.new_outcome(sub)
            started = time.monotonic()
            returncode, answer = workers[index].grade(self.job(sub), self.limits_used["notebook"] + WORKER_GRACE)
            seconds = {**(answer.get("seconds") or {}), "total": time.monotonic() - started}
            if returncode != 0:
                workers[index] = None  # killed at the limit, or died: the next learner gets a fresh one
            why = disturbed(returncode, answer)
            outcome = conclude(sub, outcome, returncode, answer, scores=self.tree.scores(sub.learner), lang=self.lang,
                               notebook_limit=self.limits_used["notebook"], logs=self.work / "logs", alone=alone)
            with lock:
                self.timings["notebooks"][sub.learner + (" (again, alone)" if second else "")] = seconds
                results[sub.learner] = outcome
                if why and not alone:
                    again.append(sub)
                    self.timings.setdefault("graded_again", {})[sub.learner] = why
                else:
                    self.state.keep(outcome)  # final: saved now, kept if the batch is stopped
                    bar.set_postfix_str(sub.learner)
                    bar.update()

        def serve(index: int) -> None:
            while not self.stopping.is_set():  # stopped: no new learner, no new worker
                try:
                    sub = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    grade_one(index, sub, alone=len(workers) == 1 and not self.shares_host)
                except Exception as err:  # noqa: BLE001 - a fault of the grader's own: this learner is not lost
                    with lock:
                        results[sub.learner] = grader_fault(sub, err, self.sandbox_kind, self.lang)

        threads = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(len(workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not self.shares_host:  # a cluster task's: its driver grades them again, alone (cluster.driver)
            for sub in sorted(again, key=lambda item: item.learner):  # every other worker is idle now
                grade_one(0, sub, alone=True, second=True)
        bar.close()
        return [results.get(sub.learner) or grader_fault(sub, RuntimeError("not graded"), self.sandbox_kind, self.lang)
                for sub in pending]


def grade(submissions: Path, assignment: str, out_dir: Path, work_dir: Path | None = None, timeout: float | None = None,
          cell_timeout: float | None = None, progress: bool = True, workers: int | None = None, spark: str = "shared",
          illustrations: bool = False, trusted: bool = False, regrade: bool = False) -> Grader:
    """Grade every submission in `submissions`; grades.csv and feedback/ land in `out_dir`. Returns the grader
    (its `outcomes`, `kept`, `limits_used` and `sandbox_summary` are for the summary)."""
    grader = Grader(assignment, out_dir, work_dir=work_dir, timeout=timeout, cell_timeout=cell_timeout, workers=workers,
                    spark=spark, illustrations=illustrations, trusted=trusted, regrade=regrade)
    grader.outcomes = grader.run(submissions, progress=progress)
    return grader
