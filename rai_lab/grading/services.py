"""A batch's services: its network namespace and Spark Connect server (`rai_lab.sandbox hold`), and the
environment the grader's subprocesses get (no secret passes)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import select
import subprocess
import sys
from dataclasses import asdict

from rai_lab import release, sandbox, sparkserver
from rai_lab.errors import RaiLabError
from rai_lab.grading.workers import _kill_family

# Environment variables never passed to a learner's kernel.
SECRET_NAME = re.compile(
    r"^(AZURE|DATABRICKS|OPENAI|AWS|GOOGLE|GCP|GITHUB|GITLAB|HF|HUGGING|ANTHROPIC|SSH)_|"
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_KEY|PRIVATE)",
    re.IGNORECASE,
)


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """The environment of nbgrader and the learner's kernel: the caller's, minus any secret."""
    env = {k: v for k, v in release.tool_env().items() if not SECRET_NAME.search(k)}
    return {**env, **extra}


class BatchServices:
    """The batch's namespace and Spark server, for a Grader."""

    # -- the batch's namespace and Spark Connect server ------------------------------------------------
    def start_batch(self) -> None:
        """Start, without waiting: the batch's namespace holder (sandboxed) and its Spark server.

        The JVM (about 10 s) starts while nbgrader prepares the course; `wait_batch` waits for it.
        """
        self.batch_dir = sandbox.batch_folder()
        state = self.batch_dir / "spark"
        state.mkdir()
        spark_args = [sandbox.SPARK_STATE if not self.trusted else str(state), str(sparkserver.DEFAULT_PORT)] \
            if self.spark == "shared" else []
        env = {**sandbox.base_environment(self.lang), "HOME": sandbox.SPARK_STATE}
        if os.environ.get("RAI_LAB_BATCH_JAVA_OPTIONS"):
            env["RAI_LAB_BATCH_JAVA_OPTIONS"] = os.environ["RAI_LAB_BATCH_JAVA_OPTIONS"]
        command = [sys.executable, "-m", "rai_lab.sandbox", "hold", *spark_args]
        info_read = info_write = None
        if self.trusted:
            prefix = sandbox.unshare_prefix()
            env = {**self._env(), **{k: v for k, v in env.items() if k != "HOME"}}
            pass_fds: tuple = ()
            join_prefix_needed = bool(prefix)
        else:
            if os.geteuid() == 0:
                os.chown(state, sandbox.UID_BASE, sandbox.UID_BASE)
            etc = sandbox.passwd_file(self.batch_dir, {sandbox.UID_BASE: "spark", **{
                sandbox.UID_BASE + 1 + i: "learner" for i in range(self.workers)}})
            info_read, info_write = os.pipe()
            command, args_fd = sandbox.hidden_args([*sandbox.bwrap_command(
                sandbox.UID_BASE, network=False, env=env, chdir=sandbox.SPARK_STATE, scratch=1 << 30,
                info_fd=info_write, etc=etc, binds=["--bind", str(state), sandbox.SPARK_STATE]), *command])
            prefix, pass_fds = [], (info_write, args_fd)
        self.spark_url = f"sc://127.0.0.1:{sparkserver.DEFAULT_PORT}" if self.spark == "shared" else None
        with open(self.batch_logs / "spark-holder.log", "w", encoding="utf-8") as log:
            self.holder = subprocess.Popen([*prefix, *command], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=log, text=True, start_new_session=True, pass_fds=pass_fds)
        if info_write is not None:
            os.close(info_write)
            os.close(args_fd)
            with os.fdopen(info_read) as info:
                try:
                    self.namespace_pid = int(json.loads(info.read() or "{}")["child-pid"])
                except (ValueError, KeyError):
                    self.namespace_pid = None
        else:
            self.namespace_pid = self.holder.pid
        first = self._answer(self.holder, 60, "spark-holder.log")
        if "error" in first or self.namespace_pid is None:
            raise RaiLabError(f"the grading namespace did not start: {first.get('error', first)}")
        if self.trusted:
            self.join = sandbox.join_prefix(self.namespace_pid) if join_prefix_needed else []
        else:
            self.join = sandbox.netns_of(self.namespace_pid)

    def wait_batch(self) -> None:
        """Wait for the batch's Spark server."""
        answer = self._answer(self.holder, 300, "spark-holder.log")
        if "error" in answer:
            raise RaiLabError(f"the batch's Spark Connect server did not start: {answer['error']}\n"
                              "Try `rai-lab grade --batch-spark local` (an embedded Spark per notebook, slower).")
        if answer.get("spark") != self.spark_url:
            raise RaiLabError(f"the batch's Spark Connect server answered at {answer.get('spark')}, not {self.spark_url}")

    def _answer(self, process: subprocess.Popen, timeout: float, log: str) -> dict:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        try:
            return json.loads(line)
        except ValueError:
            return {"error": f"no answer in {timeout:.0f} s (see {self.batch_logs / log})"}

    def stop_batch(self) -> None:
        """Let the holder stop the Spark server (or kill it), keep the server's logs, remove the batch folder."""
        holder, self.holder = self.holder, None
        if holder is not None:
            try:
                holder.stdin.close()  # the holder stops the Spark server and leaves
                holder.wait(timeout=90)
            except (OSError, subprocess.TimeoutExpired):
                pass
            _kill_family(holder)
        if self.batch_dir is not None:
            logs = self.batch_dir / "spark" / "logs"
            if logs.is_dir():
                shutil.copytree(logs, self.batch_logs / "spark", dirs_exist_ok=True)
            shutil.rmtree(self.batch_dir, ignore_errors=True)
            self.batch_dir = None

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = clean_environment({
            "RAI_LAB_LANG": self.lang,
            "RAI_LAB_GRADING": "1",
            "RAI_LAB_CELL_TIMEOUT": str(math.ceil(self.limits_used.get("cell", 180))),
            "RAI_LAB_ILLUSTRATIONS": "run" if self.illustrations else "skip",
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        })
        env.pop("SPARK_REMOTE", None)  # the instructor's own server is not the batch's
        return env

    def worker_settings(self, index: int) -> dict:
        return {"index": index, "course": str(self.course), "assignment": self.assignment, "lang": self.lang,
                "ipc": str(self.batch_dir), "logs": str(self.batch_logs), "trusted": self.trusted,
                "spark_remote": self.spark_url, "limits": asdict(self.limits)}
