"""`rai-lab grade`: nbgrader autograde of a folder of submissions, offline, time-limited, sandboxed.

The course tree lives in a work folder outside the repository. A batch starts one Spark Connect
server inside a network namespace of its own (`rai_lab.sandbox hold`); `--workers` processes
(`rai_lab.gradeworker`) each run nbgrader's autograde and feedback for one learner after
another, and every learner's kernel joins that namespace: it reaches the batch's Spark server on
the namespace's loopback and nothing else. Kernels get no secret in their environment, a
notebook has a time limit (its worker is killed and replaced), and one broken submission never
stops the others. `--batch-spark local` gives each kernel its own embedded Spark and namespace instead.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import html
import json
import math
import os
import re
import shutil
import signal
import queue
import select
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rai_lab import cassette as cassettes
from rai_lab import intake, paths, release, sandbox, sparkserver
from rai_lab.errors import RaiLabError
from rai_lab.messages import say

# Environment variables never passed to a learner's kernel.
SECRET_NAME = re.compile(
    r"^(AZURE|DATABRICKS|OPENAI|AWS|GOOGLE|GCP|GITHUB|GITLAB|HF|HUGGING|ANTHROPIC|SSH)_|"
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_KEY|PRIVATE)",
    re.IGNORECASE,
)
REFERENCE = "_rai_lab_reference"  # the solution, graded first to time the course (never a learner: ids have no leading _)
LIMIT_FACTOR = 10  # the notebook's time limit is this many times the reference run's
CELL_LIMIT_FACTOR = 5  # a cell's, this many times the reference's slowest cell (a cold server's first query)
MIN_CELL_LIMIT, MIN_NOTEBOOK_LIMIT = 10.0, 30.0  # seconds, whatever the reference took
WORKER_GRACE = 30.0  # seconds past the notebook limit before the grader kills a worker that did not stop it

def reason(key: str, lang: str, **values) -> str:
    return say(f"grading.{key}", lang, **values)


@dataclass
class Outcome:
    """One learner's grade."""

    learner: str
    source: str
    score: float = 0.0  # the exercise's checks
    max_score: float = 0.0
    bonus: float = 0.0  # the going-further checks (rubric: bonus = true)
    bonus_max: float = 0.0
    checks: dict[str, float] = field(default_factory=dict)
    status: str = "graded"  # graded | not run | failed
    notes: list[str] = field(default_factory=list)
    digest: str = ""
    sandbox: str = "bubblewrap"  # or "none" (--trusted)
    stopped: str = ""  # what stopped the notebook: notebook_time_limit, interrupt_ignored, kernel_crashed, killed


@functools.cache
def rubric() -> dict[str, dict]:
    return tomllib.loads((paths.GRADERS / "rubric.toml").read_text(encoding="utf-8"))["checks"]


def is_bonus(name: str) -> bool:
    return bool(rubric()[name].get("bonus"))


def split_points(checks: dict[str, float]) -> tuple[float, float]:
    """(the exercise's points, the bonus points) of per-check points; names outside the rubric count for nothing."""
    sums = {False: 0.0, True: 0.0}
    for name, points in checks.items():
        if name in rubric():
            sums[is_bonus(name)] += points
    return sums[False], sums[True]


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """The environment of nbgrader and the learner's kernel: the caller's, minus any secret."""
    env = {k: v for k, v in release.tool_env().items() if not SECRET_NAME.search(k)}
    return {**env, **extra}


def default_work_dir(assignment: str, out_dir: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rai-lab" / "grading"
    tag = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:12]
    return base / f"{assignment}-{tag}"


class Grader:
    """Grades a folder of submissions for one assignment."""

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
        self.timeout, self.cell_timeout = timeout, cell_timeout  # None: scaled from the reference run
        self.illustrations = illustrations  # also run the cells no check reads (tag rai-lab-illustration)
        if spark not in ("shared", "local"):
            raise RaiLabError(f"--batch-spark must be 'shared' (one Spark Connect server for the batch) or 'local', not {spark!r}")
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
        self.spark_url: str | None = None
        self.holder: subprocess.Popen | None = None  # the batch's network namespace (and Spark server)
        self.namespace_pid: int | None = None  # a process inside that namespace
        self.join: list[str] = []  # how a worker joins it
        self.batch_dir: Path | None = None  # sockets and the Spark server's state, outside the course tree
        self.limits_used: dict = {}
        # Where a batch's time goes, written to <work>/logs/batch/timings.json (benchmarks/grading.py reads it).
        self.timings: dict = {"notebooks": {}, "worker_start_s": []}

    @property
    def sandbox_kind(self) -> str:
        """What grades.csv says of the sandbox a learner was graded in."""
        return "none" if self.trusted else "bubblewrap"

    @property
    def sandbox_summary(self) -> str:
        if self.trusted:
            return "none (--trusted: learners' code ran with the grader's rights)"
        return f"bubblewrap, uid {sandbox.UID_BASE + 1}+, loopback only"

    # -- the course tree -------------------------------------------------------------------------
    def prepare(self) -> None:
        (self.course / "source").mkdir(parents=True, exist_ok=True)
        source = self.course / "source" / self.assignment
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(paths.SOLUTIONS / self.assignment, source)
        shutil.copy(paths.GRADERS / "nbgrader_config.py", self.course / "nbgrader_config.py")
        done = self._nbgrader("generate_assignment", self.assignment, "--force")
        if done.returncode != 0:
            raise RaiLabError(f"nbgrader generate_assignment failed:\n{done.stdout[-2000:]}")
        # Several workers write grades: WAL lets readers and one writer at a time work without errors.
        with sqlite3.connect(self.course / "gradebook.db") as db:
            db.execute("PRAGMA journal_mode=WAL")

    # -- the batch's namespace and Spark Connect server ------------------------------------------------
    def start_batch(self) -> None:
        """Start, without waiting: the batch's namespace holder (sandboxed) and its Spark server.

        The JVM (about 10 s) starts while nbgrader prepares the course; `wait_batch` waits for it.
        """
        shutil.rmtree(self.batch_logs, ignore_errors=True)
        self.batch_logs.mkdir(parents=True)
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

    def _nbgrader(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.course}"]
        return subprocess.run(command, cwd=self.course, env=self._env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)

    def worker_settings(self, index: int) -> dict:
        return {"index": index, "course": str(self.course), "assignment": self.assignment, "lang": self.lang,
                "ipc": str(self.batch_dir), "logs": str(self.batch_logs), "trusted": self.trusted,
                "spark_remote": self.spark_url, "limits": asdict(self.limits)}

    # -- time limits, from the reference run ------------------------------------------------------------
    def reference_limits(self, worker: "_Worker", previous: dict) -> dict:
        """Time the solution notebook once per course; the limits scale from it (5x its slowest cell, 10x its whole,
        with floors), unless --cell-timeout / --timeout say otherwise.

        It is graded like a learner (sandbox, replay, checks) and must score every point: a course whose
        own solution fails its checks is refused before any learner is graded.
        """
        known = previous.get("reference") or {}
        if known.get("course") == self._course_digest():  # `previous` is empty with --regrade
            reference = known
        else:
            sub = intake.Submission(learner=REFERENCE, source="(solution)",
                                    notebook=paths.SOLUTIONS / self.assignment / paths.NOTEBOOK)
            job = {"learner": REFERENCE, "cassette": "", **self._stage(sub), "cell_limit": 180, "notebook_limit": 600}
            returncode, answer = worker.grade(job, 900)
            scores = self._scores(REFERENCE) or {}
            graded = self.course / "autograded" / REFERENCE / self.assignment / paths.NOTEBOOK
            if graded.exists():  # kept for the instructor: what the reference run did
                shutil.copy(graded, self.batch_logs / "reference.ipynb")
            self._forget_learner(REFERENCE)
            total = sum(item["points"] for item in rubric().values())
            if returncode != 0 or sum(scores.values()) != total:
                failed = {name: v.get("message") for name, v in (answer.get("verdicts") or {}).items() if not v.get("passed")}
                raise RaiLabError(f"the course's own solution does not pass its checks ({sum(scores.values()):g}/{total}): "
                                  f"{failed or answer.get('stopped') or _last_error(answer.get('log', ''))} "
                                  f"(see {self.batch_logs / 'reference.ipynb'} and worker-0.log)")
            cells = {k: float(v) for k, v in (answer.get("cells") or {}).items()} or {"?": 1.0}
            reference = {"course": self._course_digest(), "slowest_cell_s": max(cells.values()),
                         "total_s": sum(cells.values()), "cells_s": cells}
        self.limits_used = {
            "reference": reference,
            "cell": self.cell_timeout or math.ceil(max(MIN_CELL_LIMIT, CELL_LIMIT_FACTOR * reference["slowest_cell_s"])),
            "notebook": self.timeout or math.ceil(max(MIN_NOTEBOOK_LIMIT, LIMIT_FACTOR * reference["total_s"])),
        }
        return reference

    # -- one learner ---------------------------------------------------------------------------------------
    def new_outcome(self, sub: intake.Submission) -> Outcome:
        outcome = Outcome(learner=sub.learner, source=sub.source, notes=list(sub.notes), digest=sub.digest,
                          sandbox=self.sandbox_kind)
        table = rubric()
        outcome.max_score, outcome.bonus_max = split_points({name: item["points"] for name, item in table.items()})
        outcome.checks = {name: 0.0 for name in table}
        if sub.problem:
            outcome.status, outcome.notes = "not run", [sub.problem, *outcome.notes]
        return outcome

    def _stage(self, sub: intake.Submission) -> dict:
        """Put the submission in nbgrader's submitted/ folder; where its own cassette is, for the replay service."""
        submitted = self.course / "submitted" / sub.learner / self.assignment
        shutil.rmtree(submitted, ignore_errors=True)
        submitted.mkdir(parents=True)
        shutil.copy(sub.notebook, submitted / paths.NOTEBOOK)
        if sub.cassette:
            shutil.copy(sub.cassette, submitted / "cassette.yaml")
        shutil.rmtree(self.course / "autograded" / sub.learner, ignore_errors=True)
        shutil.rmtree(self.course / "feedback" / sub.learner, ignore_errors=True)
        return {"cassette": str(submitted / "cassette.yaml") if sub.cassette else ""}

    def job(self, sub: intake.Submission) -> dict:
        return {"learner": sub.learner, **self._stage(sub), "cell_limit": self.limits_used["cell"],
                "notebook_limit": self.limits_used["notebook"]}

    def conclude(self, sub: intake.Submission, outcome: Outcome, returncode: int, answer: dict) -> Outcome:
        """Read nbgrader's grades for one learner and say why, if something stopped the notebook."""
        log = cassettes.redact(answer.get("log") or "", sub.secrets)
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{sub.learner}.log").write_text(log, encoding="utf-8")
        graded = self._scores(sub.learner)
        stopped = answer.get("stopped") or {}
        if returncode == -9:
            why = reason("timeout", self.lang, seconds=math.ceil(self.limits_used["notebook"] + WORKER_GRACE))
        elif stopped:
            why = stopped.get("message")
        elif graded is None:
            why = reason("failed", self.lang, detail=_last_error(log))
        else:
            why = None
        for note in reversed([why, *(answer.get("interrupted") or [])]):
            if note:
                outcome.notes.insert(0, cassettes.redact(note, sub.secrets))
        outcome.stopped = stopped.get("reason", "killed" if returncode == -9 else "")
        if graded is None or returncode == -9:
            outcome.status = "failed"
            return outcome
        outcome.checks.update(graded)
        outcome.score, outcome.bonus = split_points(graded)
        return outcome

    def _scores(self, learner: str) -> dict[str, float] | None:
        from nbgrader.api import Gradebook, MissingEntry

        autograded = self.course / "autograded" / learner / self.assignment / paths.NOTEBOOK
        if not autograded.exists():
            return None
        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                notebook = gb.find_submission_notebook(paths.NOTEBOOK[:-6], self.assignment, learner)
            except MissingEntry:
                return None
            return {grade.name: float(grade.score) for grade in notebook.grades if grade.max_score}

    def _with_manual_scores(self, outcome: Outcome) -> Outcome:
        """A kept grade with the scores an instructor set by hand in the formgrader (`rai-lab formgrader`)."""
        from nbgrader.api import Gradebook, MissingEntry

        if outcome.status != "graded" or not (self.course / "gradebook.db").exists():
            return outcome
        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                notebook = gb.find_submission_notebook(paths.NOTEBOOK[:-6], self.assignment, outcome.learner)
            except MissingEntry:
                return outcome
            manual = {grade.name: float(grade.manual_score) for grade in notebook.grades
                      if grade.max_score and grade.manual_score is not None}
        if manual:
            outcome.checks.update(manual)
            outcome.score, outcome.bonus = split_points(outcome.checks)
            outcome.notes = [n for n in outcome.notes if not n.startswith(reason("manual", self.lang, checks="")[:20])]
            outcome.notes.append(reason("manual", self.lang, checks=", ".join(
                f"{name} {score:g}" for name, score in sorted(manual.items()))))
        return outcome

    def _forget_learner(self, learner: str) -> None:
        """A learner out of the course tree and the gradebook (the reference run is nobody's grade)."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            try:
                gb.remove_student(learner)
            except MissingEntry:
                pass
        for folder in ("submitted", "autograded", "feedback"):
            shutil.rmtree(self.course / folder / learner, ignore_errors=True)

    # -- the batch -------------------------------------------------------------------------------------
    def run(self, submissions_dir: Path, progress: bool = True) -> list[Outcome]:
        if not submissions_dir.is_dir():
            raise RaiLabError(f"no such folder of submissions: {submissions_dir}")
        self.work.mkdir(parents=True, exist_ok=True)
        clock = time.monotonic()
        workers: list[_Worker] = []
        try:
            self.start_batch()  # the JVM starts while nbgrader prepares the course
            self.prepare()
            staging = self.work / "intake"
            shutil.rmtree(staging, ignore_errors=True)
            submissions = intake.collect(submissions_dir, staging, self.lang)
            self.timings["prepare_and_intake_s"] = time.monotonic() - clock
            previous = {} if self.regrade else self._load_state()
            kept = previous.get("outcomes", {})
            outcomes: dict[str, Outcome] = {}
            pending = []
            self.kept = 0
            for sub in submissions:
                cached = kept.get(sub.learner)
                if cached and cached.get("digest") == sub.digest and cached.get("sandbox") == self.sandbox_kind:
                    outcomes[sub.learner] = Outcome(**cached)
                    self.kept += 1
                elif sub.problem:
                    outcomes[sub.learner] = self.new_outcome(sub)
                else:
                    pending.append(sub)
            # Workers start (importing nbgrader, warming their sandbox) while the JVM starts.
            workers = [_Worker(self, index) for index in range(min(self.workers, max(1, len(pending))))]
            if self.spark == "shared":
                self.wait_batch()
            self.timings["spark_server_ready_s"] = time.monotonic() - clock
            self.reference = self.reference_limits(workers[0], previous)
            self.timings["reference_s"] = time.monotonic() - clock - self.timings["spark_server_ready_s"]
            if pending:
                started = time.monotonic()
                for outcome in self._grade_all(pending, progress, workers):
                    outcomes[outcome.learner] = outcome
                self.timings["grading_s"] = time.monotonic() - started
        finally:
            for worker in workers:
                worker.close()
            started = time.monotonic()
            self.stop_batch()
            self.timings["spark_server_stop_s"] = time.monotonic() - started
        started = time.monotonic()
        ordered = [self._with_manual_scores(outcomes[sub.learner]) for sub in submissions]
        self._forget_removed({o.learner for o in ordered})
        self._save_state(ordered)
        self.write_outputs(ordered, {s.learner: s for s in submissions})
        self.timings["outputs_s"] = time.monotonic() - started
        self.timings.update(total_s=time.monotonic() - clock, workers=self.workers, spark=self.spark,
                            sandbox=self.sandbox_summary, limits={k: v for k, v in self.limits_used.items()},
                            graded=len(pending), kept=self.kept)
        (self.batch_logs / "timings.json").write_text(json.dumps(self.timings, indent=1), encoding="utf-8")
        return ordered

    def _grade_all(self, pending: list[intake.Submission], progress: bool, workers: list) -> list[Outcome]:
        from tqdm import tqdm

        jobs: queue.Queue = queue.Queue()
        for sub in pending:
            jobs.put(sub)
        results: list[Outcome] = []
        lock = threading.Lock()
        bar = tqdm(total=len(pending), desc="grading", unit="notebook", disable=not progress, file=sys.stderr)

        def serve(index: int) -> None:
            while True:
                try:
                    sub = jobs.get_nowait()
                except queue.Empty:
                    return
                if workers[index] is None:
                    workers[index] = _Worker(self, index)
                outcome = self.new_outcome(sub)
                started = time.monotonic()
                returncode, answer = workers[index].grade(self.job(sub), self.limits_used["notebook"] + WORKER_GRACE)
                seconds = {**(answer.get("seconds") or {}), "total": time.monotonic() - started}
                if returncode != 0:
                    workers[index] = None  # killed at the limit, or died: the next learner gets a fresh one
                outcome = self.conclude(sub, outcome, returncode, answer)
                with lock:
                    self.timings["notebooks"][sub.learner] = seconds
                    results.append(outcome)
                    bar.set_postfix_str(sub.learner)
                    bar.update()

        threads = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(len(workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bar.close()
        return results

    def _course_digest(self) -> str:
        """What a kept grade depends on besides the submission: the source notebook, rubric, checks and limits."""
        digest = hashlib.sha256()
        for path in (paths.SOLUTIONS / self.assignment / paths.NOTEBOOK, paths.GRADERS / "rubric.toml",
                     paths.GRADERS / "checks.py"):
            digest.update(path.read_bytes())
        digest.update(json.dumps([self.timeout, self.cell_timeout, self.spark, self.illustrations]).encode())
        return digest.hexdigest()

    def _load_state(self) -> dict:
        """The last run's outcomes (by learner) and reference timing, if the course has not changed since."""
        try:
            state = json.loads(self.state_path.read_text())
            if state["course"] != self._course_digest():
                return {}
            known = {f.name for f in fields(Outcome)}
            outcomes = {item["learner"]: {k: v for k, v in item.items() if k in known} for item in state["outcomes"]}
            return {"outcomes": outcomes, "reference": state.get("reference") or {}}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def _save_state(self, outcomes: list[Outcome]) -> None:
        state = {"course": self._course_digest(), "reference": self.limits_used.get("reference"),
                 "outcomes": [asdict(o) for o in outcomes]}
        self.state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")

    def _forget_removed(self, present: set[str]) -> None:
        for folder in ("submitted", "autograded", "feedback"):
            root = self.course / folder
            if root.is_dir():
                for learner_dir in root.iterdir():
                    if learner_dir.name not in present:
                        shutil.rmtree(learner_dir, ignore_errors=True)

    # -- outputs ---------------------------------------------------------------------------------
    def write_outputs(self, outcomes: list[Outcome], submissions: dict[str, intake.Submission]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        feedback_root = self.out_dir / "feedback"
        shutil.rmtree(feedback_root, ignore_errors=True)
        for outcome in outcomes:
            sub = submissions.get(outcome.learner)
            secrets = sub.secrets if sub else []
            target = feedback_root / outcome.learner / "responsible_ai.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            generated = self.course / "feedback" / outcome.learner / self.assignment / "responsible_ai.html"
            body = generated.read_text(encoding="utf-8") if generated.exists() and outcome.status == "graded" else None
            target.write_text(cassettes.redact(self._feedback_page(outcome, body), secrets), encoding="utf-8")
        self._export_nbgrader_csv(self.out_dir / "nbgrader_grades.csv")
        self._write_csv(outcomes)

    def _export_nbgrader_csv(self, target: Path) -> None:
        """What `nbgrader export` writes, with its own plugin, in this process (no 2 s start-up)."""
        from nbgrader.api import Gradebook
        from nbgrader.plugins import CsvExportPlugin

        try:
            with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
                CsvExportPlugin(to=str(target)).export(gb)
        except Exception as err:  # noqa: BLE001 - grades.csv is still written; say why this one is not
            self.batch_logs.mkdir(parents=True, exist_ok=True)
            (self.batch_logs / "export.log").write_text(f"nbgrader export failed: {err!r}\n", encoding="utf-8")

    def _feedback_page(self, outcome: Outcome, body: str | None) -> str:
        title, score, bonus = (say(f"grading.feedback_{key}", self.lang) for key in ("title", "score", "bonus"))
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in outcome.notes)
        banner = (
            f'<div id="rai-lab-summary" style="border:2px solid #c60;padding:1em;margin:1em;font-family:sans-serif">'
            f"<h2>{title} — {html.escape(outcome.learner)}</h2>"
            f"<p><b>{score} {outcome.score:g} / {outcome.max_score:g}</b> · {bonus} {outcome.bonus:g} / {outcome.bonus_max:g}</p>"
            f"{self._checks_table(outcome)}"
            f"{f'<ul>{notes}</ul>' if notes else ''}</div>"
        )
        if body and "<body" in body:
            start = body.index(">", body.index("<body")) + 1
            return body[:start] + banner + body[start:]
        return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>{banner}</body></html>"

    def _checks_table(self, outcome: Outcome) -> str:
        rows = []
        for name, item in rubric().items():
            got = outcome.checks.get(name, 0.0)
            mark = "✓" if got >= item["points"] else "✗"
            label = html.escape(say(f"rubric.{name}", self.lang))
            rows.append(f"<tr><td>{mark}</td><td>{label}</td><td>{got:g} / {item['points']}</td></tr>")
        return "<table>" + "".join(rows) + "</table>"

    def _write_csv(self, outcomes: list[Outcome]) -> None:
        names = list(rubric())
        with open(self.out_dir / "grades.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["learner", "file", "score", "max_score", "bonus", "bonus_max", *names, "status", "sandbox",
                             "notes"])
            for o in sorted(outcomes, key=lambda item: item.learner):
                writer.writerow([o.learner, o.source, f"{o.score:g}", f"{o.max_score:g}", f"{o.bonus:g}", f"{o.bonus_max:g}",
                                 *(f"{o.checks.get(n, 0):g}" for n in names),
                                 o.status, o.sandbox, " | ".join(o.notes)])


class _Worker:
    """A `rai_lab.gradeworker` process in the batch's namespace: one learner at a time, killed (with its
    sandbox) at the time limit."""

    def __init__(self, grader: Grader, index: int):
        self.grader = grader
        self.stderr = open(grader.batch_logs / f"worker-{index}.log", "a", encoding="utf-8")
        self.process = subprocess.Popen(
            [*grader.join, sys.executable, "-m", "rai_lab.gradeworker", json.dumps(grader.worker_settings(index))],
            cwd=grader.course, env=grader._env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            text=True, start_new_session=True,
        )
        self.ready = False

    def _read(self, deadline: float) -> dict | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    return {"dead": True}
                try:
                    return json.loads(line)
                except ValueError:
                    continue

    def grade(self, job: dict, timeout: float) -> tuple[int, dict]:
        """(0, the worker's answer) when nbgrader finished; (-9, ...) when killed at the limit; (1, ...) if it died."""
        if not self.ready:
            started = time.monotonic()
            answer = self._read(time.monotonic() + 180)
            self.grader.timings["worker_start_s"].append(time.monotonic() - started)
            if not answer or not answer.get("ready"):
                self.kill()
                return 1, {"log": "the grading worker did not start (see logs/batch/worker-*.log)"}
            self.ready = True
        deadline = time.monotonic() + timeout
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
        except OSError:
            self.kill()
            return 1, {"log": "the grading worker stopped (see logs/batch/worker-*.log)"}
        answer = self._read(deadline)
        if answer is None:
            self.kill()
            return -9, {"log": f"killed after {timeout:g} s"}
        if answer.get("dead"):
            self.kill()
            return 1, {"log": "the grading worker stopped (see logs/batch/worker-*.log)"}
        return 0, answer

    def kill(self) -> None:
        """The worker, its kernel launcher and its sandbox (which dies with it)."""
        _kill_family(self.process)
        self.stderr.close()

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _kill_family(process: subprocess.Popen) -> None:
    """Kill a process started with start_new_session, its group, and every descendant."""
    import psutil

    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        family = []
    for child in family:
        try:
            child.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "Error" in line or "error" in line]
    return (lines[-1] if lines else "see the grading log")[:300]


def grade(submissions: Path, assignment: str, out_dir: Path, work_dir: Path | None = None, timeout: float | None = None,
          cell_timeout: float | None = None, progress: bool = True, workers: int | None = None, spark: str = "shared",
          illustrations: bool = False, trusted: bool = False, regrade: bool = False) -> Grader:
    """Grade every submission in `submissions`; grades.csv and feedback/ land in `out_dir`. Returns the grader
    (its `outcomes`, `kept`, `limits_used` and `sandbox_summary` are for the summary)."""
    grader = Grader(assignment, out_dir, work_dir=work_dir, timeout=timeout, cell_timeout=cell_timeout, workers=workers,
                    spark=spark, illustrations=illustrations, trusted=trusted, regrade=regrade)
    grader.outcomes = grader.run(submissions, progress=progress)
    return grader
