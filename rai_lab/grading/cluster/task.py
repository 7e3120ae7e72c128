"""A Spark task's side of cluster grading: on an executor, one partition of learners graded by the very code a local
batch runs (`Grader`'s grading loop, its workers, sandbox, slot Spark server, replay service and time limits).

The driver ships the course it prepared (nbgrader's tree, as a tar) and the time limits of its reference run once,
in a broadcast; each task gets its learners' notebooks. The task unpacks the course in a folder of its own under the
executor's work folder, takes a uid block of its own (`uids.UidBlock`: two executors on one host never share one),
starts one grading worker and grades its learners one after another. It answers only when it is done, through the
driver's accumulator (`answers.Sink`): a task that dies halfway answers nothing, and Spark runs it again elsewhere."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from dataclasses import asdict
from pathlib import Path

from rai_lab import paths
from rai_lab.grading.cluster import host
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.batch import Grader
from rai_lab.grading.worker import sandbox


def pack(root: Path, members: list[str]) -> bytes:
    """The folders and files `members` (relative to `root`, those that exist), as a compressed tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member in members:
            if (root / member).exists():
                archive.add(root / member, arcname=member)
    return zlib.compress(buffer.getvalue(), 6)


def unpack(blob: bytes, target: Path) -> None:
    """A `pack`ed tar into `target`: plain files and folders only (tarfile's "data" filter)."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(blob)), mode="r") as archive:
        archive.extractall(target, filter="data")


class TaskGrader(Grader):
    """A local batch of one worker, in a task's own folder `root`, with the driver's course and time limits
    (`config`, what `driver.ClusterGrader.task_config` ships)."""

    def __init__(self, config: dict, root: Path):
        limits = config["limits_used"]
        super().__init__(config["assignment"], root / "out", work_dir=root / "work", timeout=limits["notebook"],
                         cell_timeout=limits["cell"], workers=1, spark=config["spark"],
                         illustrations=config["illustrations"], limits=sandbox.Limits(**config["sandbox_limits"]))
        self.time_limits.used = dict(limits)  # the driver's reference run's: the same limits as a local batch
        self.root = root
        self.shares_host = True  # other tasks grade on this host: a learner a limit stopped is graded again alone

    def grade_learners(self, subs: list[intake.Submission], course: bytes) -> tuple[list, dict]:
        """Grade `subs` on one worker, in the course `course` (a `pack`ed tree); their outcomes and the task's
        timings."""
        started = time.monotonic()
        unpack(course, self.course)
        self.batch_logs.mkdir(parents=True, exist_ok=True)
        timings = {"unpack_course_s": time.monotonic() - started}
        os.environ["RAI_LAB_GRADER_PID"] = str(os.getpid())  # the workers end with this task's Python worker
        self.state.begin({})
        workers: list = []
        try:
            self.services.start()
            timings["uid_base"] = self.services.uid_base
            workers.append(self.start_worker(0))
            outcomes = self.grade_all(subs, False, workers)
        except BaseException:
            self.stopping.set()
            raise
        finally:
            for worker in workers:
                if worker is not None:
                    worker.kill() if self.stopping.is_set() else worker.close()
            self.services.stop()
        timings["notebooks"] = self.timings["notebooks"]
        timings["worker_start_s"] = self.timings["worker_start_s"]
        return outcomes, timings

    def record(self, outcome) -> dict:
        """What the driver gets of one learner: the outcome, nbgrader's folders, the log, the gradebook's rows and, if
        something of the batch may have disturbed their grading (`again`: why), that the driver must grade them again
        alone."""
        learner = outcome.learner
        files = pack(self.course, [f"{step}/{learner}" for step in ("autograded", "feedback")])
        log = self.work / "logs" / f"{learner}.log"
        again = self.timings.get("graded_again", {}).get(learner)
        return {"learner": learner, "outcome": asdict(outcome), "files": files, "again": again,
                "log": zlib.compress(log.read_bytes()) if log.exists() else b"",
                "gradebook": self.gradebook_rows(learner)}

    def gradebook_rows(self, learner: str) -> dict | None:
        """The learner's submission in this task's gradebook (scores and comments of each cell), or None."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                notebook = gb.find_submission_notebook(paths.NOTEBOOK[:-6], self.assignment, learner)
            except MissingEntry:
                return None
            timestamp = notebook.assignment.timestamp
            return {"grades": [[g.name, g.auto_score, g.manual_score, g.extra_credit] for g in notebook.grades],
                    "comments": [[c.name, c.auto_comment, c.manual_comment] for c in notebook.comments],
                    "timestamp": timestamp.isoformat() if timestamp else None}


def submission(payload: dict, folder: Path) -> intake.Submission:
    """A learner's Submission from the driver's payload, its files written in `folder`."""
    folder.mkdir(parents=True)
    notebook = folder / paths.NOTEBOOK
    notebook.write_bytes(payload["notebook"])
    cassette = None
    if payload.get("cassette") is not None:
        cassette = folder / "cassette.yaml"
        cassette.write_bytes(payload["cassette"])
    return intake.Submission(learner=payload["learner"], source=payload["source"], notebook=notebook, cassette=cassette,
                             notes=list(payload["notes"]), secrets=list(payload["secrets"]), digest=payload["digest"],
                             format=payload["format"])


def grade_partition(config, sink, groups) -> None:
    """A task: grade the learners of this partition (`groups`, lists of the driver's payloads) with the driver's
    `config` (a broadcast) and add one record per learner to `sink` (the driver's accumulator), all at the end."""
    from pyspark import TaskContext

    config = config.value
    payloads = [payload for group in groups for payload in group]
    context = TaskContext.get()
    where = {"host": host.name(), "partition": context.partitionId() if context else None,
             "attempt": context.attemptNumber() if context else None, "pid": os.getpid(), "start": time.time()}
    why = host.refusal(config["assignment"], config["lang"], config["kit"])
    if why:
        sink.add([{"refused": why, **where}])
        return
    base = Path(os.environ.get("RAI_LAB_CLUSTER_TASK_DIR") or os.getcwd())
    root = Path(tempfile.mkdtemp(prefix="rai-lab-task-", dir=base))
    try:
        staged = time.monotonic()
        subs = [submission(payload, root / "intake" / str(index)) for index, payload in enumerate(payloads)]
        written = time.monotonic() - staged
        grader = TaskGrader(config, root)
        outcomes, timings = grader.grade_learners(subs, config["course"])
        timings["write_submissions_s"] = written
        records = [{**grader.record(outcome), **where} for outcome in outcomes]
        for item in records:
            item["seconds"] = timings["notebooks"].get(item["learner"])
        sink.add([*records, {"task": {**where, "end": time.time(), "learners": [p["learner"] for p in payloads],
                                       **{k: v for k, v in timings.items() if k != "notebooks"}}}])
    finally:
        shutil.rmtree(root, ignore_errors=True)
