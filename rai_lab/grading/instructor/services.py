"""A batch's services: its private folder, how its workers start (a network namespace each, holding that
worker's own Spark Connect server), and the environment the grader's subprocesses get (no secret passes)."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

from rai_lab import release
from rai_lab.grading.instructor import uids
from rai_lab.grading.worker import sandbox

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
    """The batch's private folder and how its workers start: each in a network namespace of its own, where its
    Spark Connect server (rai_lab.grading.worker.slotspark), its replay service and its learners' kernels meet.
    `workers` sandboxes at most, bubblewrap unless `trusted`; `lang` is the learners' language."""

    def __init__(self, lang: str, *, trusted: bool, workers: int):
        self.lang, self.trusted, self.workers = lang, trusted, workers
        self.batch_dir: Path | None = None  # sockets and the slots' Spark state, outside the course tree
        self.join: list[str] = []  # the prefix that gives a worker a network namespace of its own
        self.private_netns = False
        self.uids: uids.UidBlock | None = None  # the uids this batch's sandboxes run as, no other batch's
        self.uid_base = sandbox.UID_BASE

    def start(self) -> None:
        """The batch's folder (sockets, the slots' Spark state, the sandboxes' /etc names), its uids and the workers'
        prefix."""
        self.batch_dir = sandbox.batch_folder()
        if not self.trusted:
            self.uids = uids.UidBlock(self.workers)
            self.uid_base = self.uids.base
            sandbox.passwd_file(self.batch_dir, {self.uid_base: "spark", **{
                self.uid_base + 1 + i: "learner" for i in range(self.workers)}})
            self.join = [shutil.which("unshare") or "unshare", "--net", "--"]  # root: sandbox.unavailable() said so
        else:
            self.join = unshare_prefix()
        self.private_netns = bool(self.join)

    def stop(self) -> None:
        """Remove the batch folder (the workers, closed first, stopped their Spark servers and kept their logs)."""
        if self.batch_dir is not None:
            shutil.rmtree(self.batch_dir, ignore_errors=True)
            self.batch_dir = None
        if self.uids is not None:  # every sandbox of the batch is gone: its uids are free for the next batch
            self.uids.release()
            self.uids = None

    def env(self, cell_limit: float, illustrations: bool) -> dict[str, str]:
        """The environment of nbgrader and of the workers: no secret, the learners' language, the cell limit."""
        env = clean_environment({
            "RAI_LAB_LANG": self.lang,
            "RAI_LAB_GRADING": "1",
            "RAI_LAB_CELL_TIMEOUT": str(math.ceil(cell_limit)),
            "RAI_LAB_ILLUSTRATIONS": "run" if illustrations else "skip",
            "PYTHONUNBUFFERED": "1",
            **({"RAI_LAB_PRIVATE_NETNS": "1"} if self.private_netns else {}),
            sandbox.UID_ENV: str(self.uid_base),
        })
        env.pop("SPARK_REMOTE", None)  # the instructor's own server is not the batch's
        if os.environ.get("RAI_LAB_BATCH_JAVA_OPTIONS"):
            env["RAI_LAB_BATCH_JAVA_OPTIONS"] = os.environ["RAI_LAB_BATCH_JAVA_OPTIONS"]
        return env

    def worker_settings(self, index: int, *, course: Path, assignment: str, logs: Path, spark: str,
                        limits: sandbox.Limits) -> dict:
        """What worker `index` is started with (rai_lab.grading.worker.main reads it)."""
        return {"index": index, "course": str(course), "assignment": assignment, "lang": self.lang,
                "ipc": str(self.batch_dir), "logs": str(logs), "trusted": self.trusted, "spark": spark,
                "limits": asdict(limits)}


def unshare_prefix() -> list[str]:
    """--trusted: a network namespace of its own with unshare, when the machine allows it, or []."""
    tool = shutil.which("unshare")
    if not tool:
        return []
    for flags in (["-n"], ["-rn"]) if os.geteuid() == 0 else (["-rn"],):
        try:
            done = subprocess.run([tool, *flags, "--", "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return [tool, *flags, "--"]
    return []


def join_prefix(pid: int) -> list[str]:
    """--trusted: the prefix that puts a process in the network namespace of process `pid`, or []."""
    tool = shutil.which("nsenter")
    if not tool:
        return []
    for prefix in ([tool, f"--net=/proc/{pid}/ns/net", "--"], [tool, f"--target={pid}", "--user", "--net", "--"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return []
