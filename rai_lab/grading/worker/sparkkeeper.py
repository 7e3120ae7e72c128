"""The keeper of a grading slot's Spark Connect server, inside the server's own bubblewrap sandbox.

A grading worker (`rai_lab.grading.worker.slotspark.SlotSpark`) starts it as ``python -P -m
rai_lab.grading.worker.sparkkeeper SPARK_STATE PORT``; it starts the server (the JVM), then answers one JSON line per
command read on stdin: ``reset`` (kill the Python workers the JVM started, then say whether the JVM is alive, still
busy and how much memory it holds), ``clear`` (the Python workers only), ``status``; at the end of its input it
stops the server and leaves.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BUSY_SHARE = 0.5  # of one core: a JVM using more than this after its learner left still runs their work
PYTHON_WORKER_MEMORY = "1g"  # RLIMIT_AS of each Python worker (a UDF) the server starts
HEAP = "640m"  # the JVM's heap at most: with the serial collector and the JIT's quick tier, about 450 MB resident
# The heap starts small and its young generation stays small: the JVM's default first heap (1/64 of the machine's
# memory, 384 MB here) filled with short-lived garbage before the first full collection, while what a batch's
# server keeps alive is about 100 MB; the young collections stay quick (what survives them is small).
HEAP_OPTIONS = "-Xms128m -Xmn64m"
# What Spark keeps of past jobs, stages, queries and Connect sessions for its UI, which a batch's server never shows
RETAINED = {"spark.ui.retainedJobs": "20", "spark.ui.retainedStages": "20", "spark.ui.retainedTasks": "200",
            "spark.sql.ui.retainedExecutions": "20", "spark.connect.ui.retainedSessions": "20",
            "spark.connect.ui.retainedStatements": "20"}


def _conf() -> dict[str, str]:
    """Beyond rai_lab.spark.server's own settings. A batch lasts minutes: the JIT's quick tier only and the serial
    collector (SMALL_DATA_JAVA_OPTIONS) leave the cores to the kernels; no code generation, neither whole-stage nor
    of single expressions (Spark's interpreted evaluation, NO_CODEGEN): each query's generated classes were compiled
    by Janino, loaded, verified and compiled again by the JIT, a sixth of the server's CPU for queries of a few
    hundred rows; a fresh Python worker per UDF task (none outlives its task)."""
    return {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            "spark.driver.memory": HEAP, **RETAINED,
            "spark.executor.pyspark.memory": PYTHON_WORKER_MEMORY, "spark.python.worker.reuse": "false"}


def _jvm(state: Path):
    import psutil

    from rai_lab.spark import server as spark_server

    pid = spark_server.status(state).pid
    try:
        process = psutil.Process(pid) if pid else None
        return process if process and process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def _kill_python(jvm) -> int:
    import psutil

    if jvm is None:
        return 0
    try:
        children = jvm.children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass
    # Until each is gone or a zombie: a killed worker runs nothing more, and only the JVM, its parent, can reap it
    # (psutil.wait_procs counts a zombie as running, so it waited its whole timeout, 3 s, before every learner).
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not all(_ended(child) for child in children):
        time.sleep(0.01)
    return len(children)


def _ended(process) -> bool:
    import psutil

    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone, reaped
        return True


def _cpu_seconds(jvm) -> float:
    """The CPU time the JVM's live threads have used, in nanoseconds' precision (/proc/PID/task/*/schedstat), so a
    short window tells a busy server from an idle one; psutil's clock ticks (10 ms) where that cannot be read."""
    total = 0
    try:
        tasks = os.scandir(f"/proc/{jvm.pid}/task")
    except OSError:
        return sum(jvm.cpu_times()[:2])
    with tasks:
        for task in tasks:
            try:
                with open(f"{task.path}/schedstat", "rb") as handle:
                    total += int(handle.read().split(None, 1)[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
    return total / 1e9


def _busy(jvm, window: float = 0.1, tries: int = 10) -> bool:
    """Still computing: more than BUSY_SHARE of a core in each of `tries` windows (GC or JIT settle in one)."""
    import psutil

    for _ in range(tries):
        try:
            before = _cpu_seconds(jvm)
            time.sleep(window)
            used = _cpu_seconds(jvm) - before
        except psutil.Error:
            return False
        if used < BUSY_SHARE * window:
            return False
    return True


def _reap() -> None:
    """Collect the exited children a subreaper inherits (spark-daemon.sh's shells, a JVM that died)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def keep(state: str, port: int) -> int:
    """The keeper: start the server, answer the worker, stop the server when the worker's pipe closes."""
    from rai_lab.spark import session as spark_mod
    from rai_lab.spark import server as spark_server

    from rai_lab.grading.worker.sandbox import die_with_parent

    die_with_parent()  # unsandboxed (--trusted), nothing else ties this keeper to its worker
    folder = Path(state)
    try:  # spark-daemon.sh leaves the JVM to its own devices: as a subreaper, the keeper stays its ancestor
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    try:
        options = os.environ.get("RAI_LAB_BATCH_JAVA_OPTIONS", f"{spark_mod.SMALL_DATA_JAVA_OPTIONS} {HEAP_OPTIONS}")
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")  # the JVM's threads share 2 malloc arenas, not 8 per core
        url = spark_server.start(port=port, state=folder, java_options=options, conf=_conf()).url
    except Exception as err:  # noqa: BLE001 - said to the worker, which says it to the instructor
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    _reap()
    jvm = _jvm(folder)
    print(json.dumps({"ready": True, "spark": url, "pid": jvm.pid if jvm else None}), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            _reap()
            jvm = _jvm(folder)
            if command == "status":
                answer = {"alive": jvm is not None, "pid": jvm.pid if jvm else None}
            elif command == "clear":
                answer = {"killed": _kill_python(jvm)}
            elif command == "reset":
                killed = _kill_python(jvm)
                alive = jvm is not None
                answer = {"alive": alive, "pid": jvm.pid if alive else None, "killed": killed,
                          "busy": alive and _busy(jvm), "rss": jvm.memory_info().rss if alive else 0}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        spark_server.stop(folder)
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        sys.exit("usage: python -m rai_lab.grading.worker.sparkkeeper SPARK_STATE PORT")
    sys.exit(keep(argv[0], int(argv[1])))


if __name__ == "__main__":
    main()
