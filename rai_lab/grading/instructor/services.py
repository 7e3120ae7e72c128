"""A batch's services: its private folder, how its workers start (a network namespace each, holding that
worker's own Spark Connect server), and the environment the grader's subprocesses get (no secret passes)."""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import asdict

from rai_lab import release
from rai_lab.grading.worker import sandbox, slotspark

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
    Spark Connect server (rai_lab.grading.worker.slotspark), its replay service and its learners' kernels meet."""

    def start_batch(self) -> None:
        """The batch's folder (sockets, the slots' Spark state, the sandboxes' /etc names) and the workers' prefix."""
        self.batch_dir = sandbox.batch_folder()
        if not self.trusted:
            sandbox.passwd_file(self.batch_dir, {sandbox.UID_BASE: "spark", **{
                sandbox.UID_BASE + 1 + i: "learner" for i in range(self.workers)}})
            self.join = [shutil.which("unshare") or "unshare", "--net", "--"]  # root: sandbox.unavailable() said so
        else:
            self.join = sandbox.unshare_prefix()
        self.private_netns = bool(self.join)
        self.spark_url = f"sc://127.0.0.1:{slotspark.DEFAULT_PORT}" if self.spark == "shared" else None

    def wait_batch(self) -> None:
        """Nothing to wait for: each worker says it is ready once its own Spark server answers."""

    def stop_batch(self) -> None:
        """Remove the batch folder (the workers, closed first, stopped their Spark servers and kept their logs)."""
        if self.batch_dir is not None:
            shutil.rmtree(self.batch_dir, ignore_errors=True)
            self.batch_dir = None

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = clean_environment({
            "RAI_LAB_LANG": self.lang,
            "RAI_LAB_GRADING": "1",
            "RAI_LAB_CELL_TIMEOUT": str(math.ceil(self.limits_used.get("cell", 180))),
            "RAI_LAB_ILLUSTRATIONS": "run" if self.illustrations else "skip",
            "PYTHONUNBUFFERED": "1",
            **({"RAI_LAB_PRIVATE_NETNS": "1"} if getattr(self, "private_netns", False) else {}),
            **(extra or {}),
        })
        env.pop("SPARK_REMOTE", None)  # the instructor's own server is not the batch's
        if os.environ.get("RAI_LAB_BATCH_JAVA_OPTIONS"):
            env["RAI_LAB_BATCH_JAVA_OPTIONS"] = os.environ["RAI_LAB_BATCH_JAVA_OPTIONS"]
        return env

    def worker_settings(self, index: int) -> dict:
        return {"index": index, "course": str(self.course), "assignment": self.assignment, "lang": self.lang,
                "ipc": str(self.batch_dir), "logs": str(self.batch_logs), "trusted": self.trusted,
                "spark": self.spark, "limits": asdict(self.limits)}
