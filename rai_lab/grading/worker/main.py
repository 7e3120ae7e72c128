"""One grading worker: nbgrader's autograde and feedback for one learner after another, and their sandbox.

`rai-lab grade` starts `--workers` of these (``python -m rai_lab.grading.worker.main SETTINGS_JSON``), each in
the batch's network namespace, so that nbgrader is imported once per worker, not once per notebook.
Each worker owns:

- a grading slot (`Slot`): a bubblewrap sandbox of its own (`rai_lab.grading.worker.sandbox`) holding a fork server
  of warm kernels (`rai_lab.grading.sandboxed.forkserver`); one learner's kernel at a time runs in it, and the sandbox
  is cleared (every process killed, its folders emptied) before the next;
- a replay service (`rai_lab.grading.worker.replay`) that answers that learner's Azure OpenAI calls and keeps the
  log the checks read;
- nbgrader's autograde with `rai_lab.grading.worker.sealed.SealedExecute`, which judges each check here, not in
  the kernel.

Protocol: the worker takes its settings as one JSON argument (`Grader.worker_settings`), prints
{"ready": true}, then reads one JSON job per line on stdin ({"learner", "cassette", "cell_limit",
"notebook_limit"}) and answers one JSON line per job on its original stdout ({"learner", "success",
"log", "seconds", "stopped", "interrupted", "verdicts", "cells", "calls"}); anything else the worker
or nbgrader prints goes to stderr. The grader kills a worker (and so its sandbox) whose notebook
goes well over its time limit (the notebook limit is enforced inside, by `rai_lab.grading.worker.sealed`).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from rai_lab.grading.worker.jsonlines import JsonLines

KERNEL_NAME = "rai-lab-sandbox"


def reuse_relaxed_validators() -> None:
    """Compile nbformat's relaxed schema validator once per process, not at every preprocessor.

    nbconvert validates the notebook after each preprocessor with ``relax_add_props=True``, and
    nbformat recompiles the schema for every such call (about 40 ms each, 0.5 s per notebook
    here). This keeps nbformat's exact behaviour (the relaxed validator also replaces the cached
    one, as nbformat does) but compiles it once.
    """
    from nbformat import validator

    original = validator.get_validator
    relaxed: dict = {}

    def get_validator(version=None, version_minor=None, relax_add_props=False, name=None):
        if not relax_add_props:
            return original(version, version_minor, relax_add_props, name)
        if version is None:
            from nbformat import current_nbformat as version
        if version_minor is None:
            version_minor = getattr(validator.import_item(f"nbformat.v{version}"), "nbformat_minor", 0)
        current = validator._validator_for_name(name) if name else validator.get_current_validator()
        key = (current.name, version, version_minor)
        if relaxed.get(key) is None:
            relaxed[key] = original(version, version_minor, True, name)  # compiles it, caches it as nbformat does
        elif relaxed[key] is not None:
            validator.validators[key] = relaxed[key]
        return relaxed[key]

    validator.get_validator = get_validator


def load_config(course: Path):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config())
    config.CourseDirectory.root = str(course)
    # Several workers share the gradebook (WAL mode, set by the grader): wait for a lock, do not fail.
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}?timeout=120"
    return config


class Slot:
    """This worker's sandbox and its fork server; the kernelspec that launches kernels through it."""

    def __init__(self, settings: dict):
        from rai_lab.grading.worker import sandbox

        self.settings = settings
        self.index = settings["index"]
        self.sealed = not settings["trusted"]
        self.uid = sandbox.uid_base() + 1 + self.index if os.geteuid() == 0 else None
        self.root = Path(settings["ipc"]) / f"w{self.index}"
        self.kernel_dir = self.root / "kernel"  # the kernel's ZMQ sockets: the one folder it shares with us
        self.control = self.root / "ctl"  # the fork server's socket and the connection files: ours alone
        self.limits = sandbox.Limits(**settings["limits"])
        self.process: subprocess.Popen | None = None
        self.kernels = self.cleaned = 0
        self.log = open(Path(settings["logs"]) / f"slot-{self.index}.log", "a", encoding="utf-8")

    def environment(self) -> None:
        """This worker's own Jupyter paths, set before nbgrader (and jupyter_client) read them."""
        spec_dir = self.root / "jupyter" / "kernels" / KERNEL_NAME
        argv = [sys.executable, "-m", "rai_lab.grading.worker.launcher", str(self.control / "forkserver"),
                "-f", "{connection_file}"]
        spec_dir.mkdir(parents=True, exist_ok=True)
        sandboxed = "bubblewrap sandbox" if self.sealed else "no sandbox (--trusted)"
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": argv, "display_name": f"rai-lab grading ({sandboxed}, warm kernels)", "language": "python",
            "metadata": {"rai_lab_sandbox": self.sealed}}), encoding="utf-8")
        os.environ.update({"JUPYTER_PATH": str(self.root / "jupyter"), "JUPYTER_RUNTIME_DIR": str(self.control),
                           "RAI_LAB_IPC": str(self.kernel_dir / "k"), "RAI_LAB_KERNEL": KERNEL_NAME})

    def start(self) -> None:
        from rai_lab.grading.worker import sandbox

        self.stop()
        for folder, owner, mode in ((self.root, None, 0o711), (self.control, None, 0o700),
                                    (self.kernel_dir, self.uid, 0o700)):
            if folder != self.root:
                shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, mode)
            if owner is not None:
                os.chown(folder, owner, owner)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.control / "forkserver"))
        # -P: nothing is imported from the learner's folder (the server's working folder), ever.
        serve = [sys.executable, "-P", "-m", "rai_lab.grading.sandboxed.forkserver", "serve", "--fd", str(listener.fileno()),
                 "--memory", str(self.limits.memory), "--file-size", str(self.limits.file_size)]
        env = sandbox.base_environment(self.settings["lang"])
        if self.sealed:
            # The process limit counts every process of a uid: only with a uid of the slot's own.
            serve += ["--sealed", "--processes", str(self.limits.processes if self.uid is not None else 0)]
            command, args_fd = sandbox.hidden_args([*sandbox.bwrap_command(
                self.uid, network=True, env=env, chdir=sandbox.SCRATCH, scratch=self.limits.scratch,
                etc=Path(self.settings["ipc"]), binds=["--bind", str(self.kernel_dir), str(self.kernel_dir)]), *serve])
            pass_fds = [listener.fileno(), args_fd]
        else:
            command, pass_fds, args_fd = serve, [listener.fileno()], None
            env = {**env, "HOME": str(self.root / "home"), "TMPDIR": str(self.root / "tmp")}
            for folder in ("home", "tmp"):
                (self.root / folder).mkdir(exist_ok=True)
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=self.log, bufsize=0, pass_fds=pass_fds, start_new_session=True)
        if args_fd is not None:
            os.close(args_fd)
        self.lines = JsonLines(self.process)
        listener.close()  # the fork server holds it now
        self.kernels = self.cleaned = 0
        answer = self._read(120)
        if not answer.get("ready"):
            raise RuntimeError(f"the grading sandbox did not start: {answer} (see {self.log.name})")

    def _read(self, timeout: float) -> dict:
        return self.lines.read(timeout)

    def ready_for_next(self) -> None:
        """Before a learner's kernel: the last one's sandbox is cleared, or the slot is started anew."""
        if self.process is None or self.process.poll() is not None:
            self.start()
            return
        deadline = time.monotonic() + 20
        while True:
            ready, _, _ = select.select([self.process.stdout], [], [], 0)
            if not ready and b"\n" not in self.lines.pending and self.cleaned >= self.kernels:
                break
            answer = self._read(max(0.0, deadline - time.monotonic()))
            if "kernel" in answer:
                self.kernels = max(self.kernels, answer["kernel"])
            elif "clean" in answer:
                self.cleaned = max(self.cleaned, answer["clean"])
            elif "gone" in answer or time.monotonic() > deadline:
                self.start()
                return
        for entry in self.kernel_dir.iterdir():  # stale sockets of the last kernel (never followed: no symlink walk)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            import signal

            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        self.process = None


def main(argv: list[str] | None = None) -> int:
    from rai_lab.grading.worker.sandbox import die_with_parent

    die_with_parent()  # killed with the grader, however it ends; the slot's bubblewrap dies with this worker
    settings = json.loads((argv or sys.argv[1:])[0])
    if not Path(settings["ipc"]).is_dir():
        return 1  # the batch's folder is gone: the batch was stopped while this worker started
    course_dir = Path(settings["course"]).resolve()
    assignment, lang = settings["assignment"], settings["lang"]
    results = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints (nbgrader, kernels) must not mix with the results
    os.chdir(course_dir)
    slot = Slot(settings)
    slot.environment()
    from rai_lab.spark import session as spark_targets
    from rai_lab.grading.sandboxed.replay import REPLAY_ENV
    from rai_lab.grading.worker import feedback, replay, sandbox, sealed
    from rai_lab.grading.worker.rerun import Rerun
    from rai_lab.grading.worker.slotspark import SlotSpark

    try:
        sandbox.bring_loopback_up()  # this worker's own network namespace: its replay service and Spark server
    except OSError:
        pass
    spark = None
    if settings.get("spark") == "shared":  # the slot's own Spark Connect server; its JVM starts while we import
        spark = SlotSpark(slot.root, lang, slot.sealed, Path(settings["logs"]), slot.index, dict(os.environ))
        spark.start()
    service = replay.ReplayService()
    slot.start()
    reuse_relaxed_validators()
    feedback.reuse_compiled_templates()
    from nbgrader.apps import NbGraderAPI

    if spark is not None:
        spark.wait()
    results.write(json.dumps({"ready": True, "spark": spark.url if spark else None}) + "\n")
    api = None  # read once the grader has prepared the course (it does so while this worker starts)
    from concurrent.futures import ThreadPoolExecutor

    checking = ThreadPoolExecutor(max_workers=1)  # the slot server's check between learners
    next_server = None  # its result: why it was started anew, or None
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            learner = job["learner"]
            if api is None:
                api = NbGraderAPI(config=load_config(course_dir))
            started = time.monotonic()
            slot.ready_for_next()
            seconds = {"slot": time.monotonic() - started}
            restarted = None
            if spark is not None:  # checked and cleaned after the last learner, while its feedback was written
                started = time.monotonic()
                restarted = next_server.result() if next_server else None
                seconds["spark_wait"] = time.monotonic() - started
                seconds.update({f"spark_{k}": v for k, v in spark.seconds.items()})
            own = Path(job["cassette"]) if job.get("cassette") else None
            url, session = service.open(lang, own)
            os.environ[REPLAY_ENV] = url
            # The kernels' Spark target (rai_lab.spark.session.TARGETS): the slot's own Connect server, or embedded.
            remote = spark.url if spark else None
            for name, value in spark_targets.target(remote or "local").kernel_env(remote).items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            rerun = Rerun(url=spark.url, lang=lang, seconds=job["cell_limit"], stalled=spark.clear_python) \
                if spark else None
            sealed.JOB = run = sealed.Job(lang=lang, session=session, spark=rerun, cell_limit=job["cell_limit"],
                                          notebook_limit=job["notebook_limit"], max_output_bytes=slot.limits.output)
            started = time.monotonic()
            done = api.autograde(assignment, learner, force=True, create=True)
            seconds["autograde"] = time.monotonic() - started
            sealed.JOB = None
            service.close(url)
            spark_failed = spark.failed_during() if spark else False
            if spark is not None:  # ready the server for the next learner while this one's feedback is written
                next_server = checking.submit(spark.ready_for_next)
            log = (done.get("log") or "") + (done.get("error") or "")
            autograded = course_dir / "autograded" / learner / assignment
            if autograded.is_dir():
                started = time.monotonic()
                feedback = api.generate_feedback(assignment, learner, force=True)
                seconds["feedback"] = time.monotonic() - started
                log += (feedback.get("log") or "") + (feedback.get("error") or "")
            answer = {"learner": learner, "success": bool(done.get("success")), "log": log, "seconds": seconds,
                      "stopped": run.stopped, "interrupted": run.interrupted, "verdicts": run.verdicts,
                      "cells": run.seconds, "calls": len(session.calls), "rerun_stopped": rerun.timeouts if rerun else 0,
                      "spark_failed": spark_failed, "spark_restarted": restarted}
            results.write(json.dumps(answer) + "\n")
    finally:
        slot.stop()
        checking.shutdown(wait=True, cancel_futures=True)
        if spark is not None:
            spark.stop()
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
