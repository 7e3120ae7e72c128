"""A grading slot's own Spark Connect server: one per worker, used by one learner at a time, checked between them.

Each grading worker lives in a network namespace of its own (`Grader` starts it with `unshare -n`), so
its learners' kernels reach this server, and the worker's replay service, on that namespace's
loopback and nothing else: no learner can reach another slot's server. The server runs in a
bubblewrap sandbox of its own (own PID namespace, the Spark uid), under a keeper process
(`rai_lab.grading.worker.sparkkeeper`) that answers the worker on stdin/stdout:

- ``reset``: kill the Python workers the JVM started (a cancelled job leaves a sleeping UDF's worker
  running), then say whether the JVM is alive, still busy (CPU) and how much memory it holds;
- ``clear``: kill the Python workers only (after a re-run stopped at its time limit);
- ``status``: alive, and the JVM's pid (a new pid means it was started again);
- end of input: stop the server and leave.

Before each learner the worker resets the server and empties what Spark shares between sessions
(the cache, global temporary views, tables, databases); a server that died, stalls, holds too much
memory, or fails that, is started anew (the keeper's sandbox is killed whole). A learner can stop
only their own server; the grader notices (`failed_during`) and grades that learner again, alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rai_lab.grading.worker.jsonlines import JsonLines
from rai_lab.spark.server import free_port

DEFAULT_PORT = 15002
RSS_LIMIT = 1200 << 20  # a JVM holding more than this between learners (heap 640 MB) is started anew


class SlotSpark:
    """The worker's handle on its slot's server: start, check and clean between learners, restart."""

    def __init__(self, root: Path, lang: str, sealed: bool, logs: Path, index: int, env: dict[str, str]):
        self.root, self.lang, self.sealed, self.index = root, lang, sealed, index
        self.logs = logs
        self.env = env  # the worker's own environment (no secret), for an unsandboxed server (--trusted)
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None  # the JVM's, as the keeper last said
        self.port = DEFAULT_PORT if _private_loopback() else free_port()
        self.url = f"sc://127.0.0.1:{self.port}"
        self.restarts: list[str] = []  # why the server was started anew, batch-long
        self.seconds: dict = {}  # what the last check between learners took
        self.lines: JsonLines | None = None  # the keeper's answers

    def start(self) -> None:
        """Start the keeper's sandbox (the JVM starts inside); `wait` reads its answer."""
        from rai_lab.grading.worker import sandbox

        self.stop()
        state = self.root / "spark"
        if state.exists():
            self._keep_logs(state)
            shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        keep_args = [sys.executable, "-P", "-m", "rai_lab.grading.worker.sparkkeeper"]
        env = {**sandbox.base_environment(self.lang), "HOME": sandbox.SPARK_STATE}
        if os.environ.get("RAI_LAB_BATCH_JAVA_OPTIONS"):
            env["RAI_LAB_BATCH_JAVA_OPTIONS"] = os.environ["RAI_LAB_BATCH_JAVA_OPTIONS"]
        log = open(self.logs / f"spark-{self.index}.log", "a", encoding="utf-8")
        if self.sealed:
            os.chown(state, sandbox.uid_base(), sandbox.uid_base())
            command, args_fd = sandbox.hidden_args([*sandbox.bwrap_command(
                sandbox.uid_base(), network=True, env=env, chdir=sandbox.SPARK_STATE, scratch=1 << 30,
                etc=self.root.parent, binds=["--bind", str(state), sandbox.SPARK_STATE]),
                *keep_args, sandbox.SPARK_STATE, str(self.port)])
            pass_fds: tuple = (args_fd,)
        else:
            command, pass_fds, args_fd = [*keep_args, str(state), str(self.port)], (), None
            env = {**self.env, **{k: v for k, v in env.items() if k != "HOME"}}
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                        bufsize=0, pass_fds=pass_fds, start_new_session=True)
        log.close()
        if args_fd is not None:
            os.close(args_fd)
        self.lines = JsonLines(self.process)

    def wait(self, timeout: float = 300) -> None:
        answer = self._read(timeout)
        if not answer.get("ready"):
            raise RuntimeError(f"the slot's Spark Connect server did not start: {answer.get('error', answer)} "
                               f"(see {self.logs / f'spark-{self.index}.log'})")
        self.pid = answer.get("pid")

    def _read(self, timeout: float) -> dict:
        return self.lines.read(timeout) if self.lines is not None else {"gone": True}

    def ask(self, command: str, timeout: float = 15) -> dict:
        if self.process is None or self.process.poll() is not None:
            return {"gone": True}
        try:
            self.process.stdin.write(command.encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            return {"gone": True}
        return self._read(timeout)

    def failed_during(self) -> bool:
        """Did the server die, or start anew, since the last check (while a learner was graded)?"""
        answer = self.ask("status")
        return not answer.get("alive") or answer.get("pid") != self.pid

    def clear_python(self) -> None:
        self.ask("clear")

    def ready_for_next(self) -> str | None:
        """Before a learner: the server is alive, idle, lean and holds nothing of the last learner's; or it is
        started anew. Returns why it was started anew (None when it was not)."""
        started = time.monotonic()
        answer = self.ask("reset")
        self.seconds = {"reset": round(time.monotonic() - started, 3)}
        if answer.get("gone") or answer.get("timeout"):
            why = "gone"
        elif not answer.get("alive"):
            why = "died"
        elif answer.get("busy"):
            why = "busy"
        elif answer.get("rss", 0) > RSS_LIMIT:
            why = "memory"
        else:
            started = time.monotonic()
            why = None if self._forget_shared_state() else "state"
            self.seconds["forget"] = round(time.monotonic() - started, 3)
        if why is None:
            self.pid = answer.get("pid")
            return None
        self.restarts.append(why)
        self.start()
        self.wait()
        return why

    def _forget_shared_state(self) -> bool:
        """Empty what a Spark server shares between sessions: the cache, global temporary views, tables, databases."""
        try:
            from pyspark.sql.connect.session import SparkSession

            spark = SparkSession.builder.remote(self.url).create()
            try:
                spark.catalog.clearCache()
                global_temp = spark.conf.get("spark.sql.globalTempDatabase", "global_temp")
                for row in spark.sql(f"SHOW VIEWS IN {global_temp}").collect():
                    spark.sql(f"DROP VIEW IF EXISTS {global_temp}.`{row['viewName']}`")
                for row in spark.sql("SHOW DATABASES").collect():
                    name = row[0]
                    if name != "default":
                        spark.sql(f"DROP DATABASE IF EXISTS `{name}` CASCADE")
                for row in spark.sql("SHOW TABLES IN default").collect():
                    if not row["isTemporary"]:
                        spark.sql(f"DROP TABLE IF EXISTS default.`{row['tableName']}`")
            finally:
                spark.stop()
            return True
        except Exception:  # noqa: BLE001 - a server that cannot be cleaned is started anew
            return False

    def stop(self) -> None:
        """The keeper stops the server; the sandbox is killed whole if it does not leave in time."""
        process, self.process = self.process, None
        self.lines = None
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(process.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        self._keep_logs(self.root / "spark")

    def _keep_logs(self, state: Path) -> None:
        logs = state / "logs"
        if logs.is_dir():
            shutil.copytree(logs, self.logs / f"spark-{self.index}", dirs_exist_ok=True)


def _private_loopback() -> bool:
    """In a network namespace of the worker's own (nothing else listens on its loopback)."""
    return os.environ.get("RAI_LAB_PRIVATE_NETNS") == "1"

