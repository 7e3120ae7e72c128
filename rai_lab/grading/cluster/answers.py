"""Where the cluster's tasks answer on the driver: an accumulator (`SinkParam`) whose driver-side value is a `Sink`,
which keeps one result per learner (the first) and merges it into the driver's course tree as each task ends."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.rubric import Outcome

if TYPE_CHECKING:
    from rai_lab.grading.cluster.driver import ClusterGrader

try:
    from pyspark.accumulators import AccumulatorParam
except ImportError:  # pragma: no cover - pyspark is a dependency of the kit
    AccumulatorParam = object


class SinkParam(AccumulatorParam):
    """An accumulator whose value is a list of records on the executors and a `Sink` on the driver: each finished
    task's records reach the driver as the task ends (pyspark's accumulator server), and are merged there."""

    def zero(self, value):
        return []

    def addInPlace(self, value1, value2):
        if isinstance(value1, Sink):
            value1.receive(value2)
            return value1
        return [*value1, *value2]


class Sink:
    """Where the tasks' records land on the driver: one result per learner, the first one (a task run twice, its
    executor lost after it answered, answers twice), merged into the driver's course tree and saved at once."""

    def __init__(self, grader: ClusterGrader, expected: dict[str, intake.Submission], bar, on_refusal):
        self.grader, self.expected, self.bar, self.on_refusal = grader, expected, bar, on_refusal
        self.outcomes: dict[str, Outcome] = {}
        self.records: dict[str, dict] = {}  # per learner, where and when it was graded (host, partition, attempt)
        self.tasks: list[dict] = []
        self.refused: list[dict] = []
        self.doubled = 0
        self.merge_s = 0.0  # the driver's time spent merging answers (in pyspark's accumulator thread)
        self.errors: list[str] = []
        # learners the driver must grade again alone, and why (a task's timings["graded_again"])
        self.again: dict[str, str] = {}
        self.lock = threading.Lock()

    def receive(self, records: list[dict]) -> None:
        for record in records:
            try:
                self._receive_one(record)
            except Exception as err:  # noqa: BLE001 - never lose the server thread; the learner is tried again
                self.errors.append(f"{record.get('learner', '?')}: {type(err).__name__}: {err}")

    def _receive_one(self, record: dict) -> None:
        if record.get("refused"):
            self.refused.append(record)
            self.on_refusal()
            return
        if record.get("task"):
            self.tasks.append(record["task"])
            return
        learner = record["learner"]
        with self.lock:
            if learner in self.outcomes or learner not in self.expected:
                self.doubled += learner in self.outcomes
                return
        outcome = Outcome(**record["outcome"])
        started = time.monotonic()
        self.grader.merge(record)
        self.merge_s += time.monotonic() - started
        with self.lock:
            self.outcomes[learner] = outcome
            self.records[learner] = {k: record.get(k) for k in ("host", "partition", "attempt", "pid", "start")}
            self.grader.timings["notebooks"][learner] = record.get("seconds") or {}
            if record.get("again"):  # not final: graded again alone on the driver (`ClusterGrader.grade_all`)
                self.again[learner] = record["again"]
                return
        self.grader.state.keep(outcome)
        self.bar.set_postfix_str(learner)
        self.bar.update()
