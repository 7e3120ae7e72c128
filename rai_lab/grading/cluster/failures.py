"""How a task's failure reaches the cluster's driver: which task failed (and so whose learner), why, and how many times
Spark tries a task before it gives up."""

from __future__ import annotations

import re

from rai_lab.grading.cluster import task

FAILED_TASK = re.compile(r"Task (\d+) in stage [\d.]+ failed (\d+) times")
# A task's own exception, as `grade_group` raises it. Spark 4 hands a Python exception (a SparkThrowable) to the driver
# as it is, without "Job aborted due to stage failure: Task N ... failed K times": the task says which it was.
TASK_ERROR = re.compile(r"rai-lab task (\d+) failed: ([^\n]*)")
LOCAL_TRIES = re.compile(r"^local\[\s*(?:\d+|\*)\s*,\s*(\d+)\s*\]$")


def task_tries(master: str, conf) -> int:
    """How many times Spark tries a task: spark.task.maxFailures, except on a local master, which ignores it
    (local[N, F]: F tries; local, local[N]: one)."""
    if master.startswith("local"):
        found = LOCAL_TRIES.match(master.replace(" ", ""))
        return int(found.group(1)) if found else 1
    return int(conf.get("spark.task.maxFailures", "4"))


def grade_group(config, sink, part) -> None:
    """A task (`task.grade_partition`) whose failure names its partition, so that the driver knows whose it was."""
    from pyspark import TaskContext

    groups = list(part)
    try:
        task.grade_partition(config, sink, groups)
    except Exception as err:  # noqa: BLE001 - said to the driver, which tells the learner (TASK_ERROR)
        context = TaskContext.get()
        index = context.partitionId() if context else -1
        raise RuntimeError(f"rai-lab task {index} failed: {type(err).__name__}: {err}"[:500]) from err


def failed_task(error: BaseException) -> tuple[int | None, str]:
    """The index of the task whose failure stopped a job (None when it cannot be told), and why, in one line."""
    text = str(error)
    detail = _spark_error(error)
    found = FAILED_TASK.search(text)
    if found:
        return int(found.group(1)), detail
    own = TASK_ERROR.findall(text)  # the last: what the task raised (a learner's text may come before)
    if own:
        return int(own[-1][0]), own[-1][1].strip()[:300]
    return None, detail


def _spark_error(error: BaseException) -> str:
    """The line of a Spark job's failure that says why (the task's own exception when there is one)."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^\w+(Error|Exception)\b", line) and "Py4J" not in line]
    found = FAILED_TASK.search(text)
    head = found.group(0) if found else (lines[0] if lines else type(error).__name__)
    return (head + (f": {causes[-1]}" if causes else ""))[:300]
