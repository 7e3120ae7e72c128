"""`rai-lab grade`: nbgrader autograde of a folder of submissions, offline, time-limited, sandboxed.

The course tree lives in a work folder outside the repository. A batch starts one Spark Connect
server inside a network namespace of its own (`rai_lab.sandbox hold`); `--workers` processes
(`rai_lab.gradeworker`) each run nbgrader's autograde and feedback for one learner after
another, and every learner's kernel joins that namespace: it reaches the batch's Spark server on
the namespace's loopback and nothing else. Kernels get no secret in their environment, a
notebook has a time limit (its worker is killed and replaced), and one broken submission never
stops the others. `--spark local` gives each kernel its own embedded Spark and namespace instead.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import html
import json
import os
import re
import shutil
import signal
import socket
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

# Environment variables never passed to a learner's kernel.
SECRET_NAME = re.compile(
    r"^(AZURE|DATABRICKS|OPENAI|AWS|GOOGLE|GCP|GITHUB|GITLAB|HF|HUGGING|ANTHROPIC|SSH)_|"
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_KEY|PRIVATE)",
    re.IGNORECASE,
)
KERNEL_NAME = "rai-lab-sandbox"

REASONS = {
    "timeout": {
        "fr": "Le notebook a dépassé la limite de temps ({seconds} s) : il a été arrêté (boucle infinie ?).",
        "en": "The notebook went over the time limit ({seconds} s) and was stopped (an endless loop?).",
    },
    "dead_kernel": {
        "fr": "Le noyau Python s'est arrêté pendant l'exécution (sortie forcée ou plantage) ; les cellules suivantes n'ont pas été notées.",
        "en": "The Python kernel died while running (a forced exit or a crash); the cells after it were not graded.",
    },
    "failed": {
        "fr": "La notation automatique a échoué : {detail}",
        "en": "Automatic grading failed: {detail}",
    },
}


def reason(key: str, lang: str, **values) -> str:
    return REASONS[key].get(lang, REASONS[key]["fr"]).format(**values)


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

    def __init__(self, assignment: str, out_dir: Path, work_dir: Path | None = None, timeout: int = 600,
                 cell_timeout: int = 180, isolate: bool = True, workers: int | None = None, spark: str = "shared",
                 illustrations: bool = False):
        if assignment not in paths.ASSIGNMENTS.values():
            raise RaiLabError(f"unknown assignment {assignment!r} (known: {', '.join(paths.ASSIGNMENTS.values())})")
        self.assignment = assignment
        self.lang = next(lang for lang, name in paths.ASSIGNMENTS.items() if name == assignment)
        self.out_dir = out_dir.resolve()
        self.work = (work_dir or default_work_dir(assignment, self.out_dir)).resolve()
        if paths.ROOT in self.work.parents or self.work == paths.ROOT:
            raise RaiLabError(f"the grading work folder must be outside the repository: {self.work}")
        self.course = self.work / "course"
        self.timeout, self.cell_timeout, self.isolate = timeout, cell_timeout, isolate
        self.illustrations = illustrations  # also run the cells no check reads (tag rai-lab-illustration)
        if spark not in ("shared", "local"):
            raise RaiLabError(f"--spark must be 'shared' (one Spark Connect server for the batch) or 'local', not {spark!r}")
        self.spark = spark
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.state_path = self.work / "state.json"
        self.batch_logs = self.work / "logs" / "batch"  # the last batch's server, workers and timings
        self.spark_url: str | None = None
        self.network_namespace = False
        self.holder: subprocess.Popen | None = None  # the batch's namespace and Spark server
        self.forkserver: subprocess.Popen | None = None  # the batch's warm kernels
        self.kernel_prefix: list[str] | None = None  # how a process joins the batch's namespace
        self.forkserver_socket = str(self.work / "ipc" / "forkserver")
        # Where a batch's time goes, written to <work>/logs/batch/timings.json (benchmarks/grading.py reads it).
        self.timings: dict = {"notebooks": {}, "worker_start_s": []}

    # -- the course tree -------------------------------------------------------------------
    def prepare(self) -> None:
        (self.course / "source").mkdir(parents=True, exist_ok=True)
        source = self.course / "source" / self.assignment
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(paths.SOLUTIONS / self.assignment, source)
        shutil.copy(paths.GRADERS / "nbgrader_config.py", self.course / "nbgrader_config.py")
        shutil.rmtree(self.work / "ipc", ignore_errors=True)
        (self.work / "ipc").mkdir()
        done = self._nbgrader("generate_assignment", self.assignment, "--force")
        if done.returncode != 0:
            raise RaiLabError(f"nbgrader generate_assignment failed:\n{done.stdout[-2000:]}")
        # Several workers write grades: WAL lets readers and one writer at a time work without errors.
        with sqlite3.connect(self.course / "gradebook.db") as db:
            db.execute("PRAGMA journal_mode=WAL")

    # -- the batch's namespace, Spark Connect server and warm kernels ------------------------------
    def start_batch(self) -> None:
        """Start, without waiting: the namespace holder and its Spark server, then the fork server.

        The JVM (about 10 s) and the fork server's imports (about 2 s) start while nbgrader
        prepares the course; `wait_batch` waits for both just before the first notebook.
        """
        shutil.rmtree(self.batch_logs, ignore_errors=True)
        self.batch_logs.mkdir(parents=True)
        if self.spark != "shared":
            return  # --spark local: each kernel gets a namespace of its own (unshare) and its own JVM
        prefix = sandbox.unshare_prefix() if self.isolate else []
        command = [*prefix, sys.executable, "-m", "rai_lab.sandbox", "hold"]
        state = self.work / "spark"
        shutil.rmtree(state / "pids", ignore_errors=True)
        # A new namespace has every port free; without one, ask the host for a free port.
        port = sparkserver.DEFAULT_PORT if prefix else _free_port()
        command += [str(state), str(port)]
        self.spark_url = f"sc://127.0.0.1:{port}"  # known now: workers can start before the server answers
        with open(self.batch_logs / "spark-holder.log", "w", encoding="utf-8") as log:
            self.holder = subprocess.Popen(command, env=self._env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=log, text=True, start_new_session=True)
        first = self._answer(self.holder, 60, "spark-holder.log")
        if "error" in first:
            raise RaiLabError(f"the grading namespace did not start: {first['error']}")
        self.kernel_prefix = sandbox.join_prefix(self.holder.pid) if prefix else []
        with open(self.batch_logs / "forkserver.log", "w", encoding="utf-8") as log:
            self.forkserver = subprocess.Popen(
                [*self.kernel_prefix, sys.executable, "-m", "rai_lab.forkserver", "serve", self.forkserver_socket],
                cwd=self.work, env=self._env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                text=True, start_new_session=True)

    def wait_batch(self) -> None:
        """Wait for the Spark server and the fork server; write the kernelspec that uses them."""
        spec = sandbox.kernelspec(self.isolate, prefix=self.kernel_prefix)
        self.network_namespace = bool(spec["argv"][0] != sys.executable)
        if self.spark == "shared":
            answer = self._answer(self.holder, 300, "spark-holder.log")
            if "error" in answer:
                raise RaiLabError(f"the batch's Spark Connect server did not start: {answer['error']}\n"
                                  "Try `rai-lab grade --spark local` (an embedded Spark per notebook, slower).")
            if answer.get("spark") != self.spark_url:
                raise RaiLabError(f"the batch's Spark Connect server answered at {answer.get('spark')}, not {self.spark_url}")
            warm = self._answer(self.forkserver, 120, "forkserver.log")
            if warm.get("ready"):
                spec["argv"] = [sys.executable, "-m", "rai_lab.forkserver", "launch", self.forkserver_socket,
                                "-f", "{connection_file}"]
                spec["display_name"] = "rai-lab grading sandbox (warm kernels)"
            else:
                _kill_family(self.forkserver)
                self.forkserver = None
                print("rai-lab: warm kernels unavailable (see logs/batch/forkserver.log); each kernel starts cold",
                      file=sys.stderr)
        spec_dir = self.work / "jupyter" / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")

    def _answer(self, process: subprocess.Popen, timeout: float, log: str) -> dict:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else ""
        try:
            return json.loads(line)
        except ValueError:
            return {"error": f"no answer in {timeout:.0f} s (see {self.batch_logs / log})"}

    def stop_batch(self) -> None:
        """Kill the fork server (and any kernel left), then let the holder stop the Spark server."""
        if self.forkserver is not None:
            _kill_family(self.forkserver)
            self.forkserver = None
        holder, self.holder = self.holder, None
        if holder is None:
            return
        try:
            holder.stdin.close()  # the holder stops the Spark server and leaves
            holder.wait(timeout=90)
        except (OSError, subprocess.TimeoutExpired):
            _kill_family(holder)

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = clean_environment({
            "RAI_LAB_LANG": self.lang,
            "RAI_LAB_GRADING": "1",
            "RAI_LAB_KERNEL": KERNEL_NAME,
            "RAI_LAB_IPC": str(self.work / "ipc" / "kernel"),
            **({"SPARK_REMOTE": self.spark_url} if self.spark_url else {}),
            "RAI_LAB_CELL_TIMEOUT": str(self.cell_timeout),
            "RAI_LAB_ILLUSTRATIONS": "run" if self.illustrations else "skip",
            "JUPYTER_PATH": str(self.work / "jupyter"),
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        })
        if not self.spark_url:
            env.pop("SPARK_REMOTE", None)  # --spark local: the instructor's own server is not the batch's
        return env

    def _nbgrader(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.course}"]
        return subprocess.run(command, cwd=self.course, env=self._env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)

    # -- one learner ---------------------------------------------------------------------------
    def new_outcome(self, sub: intake.Submission) -> Outcome:
        outcome = Outcome(learner=sub.learner, source=sub.source, notes=list(sub.notes), digest=sub.digest)
        table = rubric()
        outcome.max_score, outcome.bonus_max = split_points({name: item["points"] for name, item in table.items()})
        outcome.checks = {name: 0.0 for name in table}
        if sub.problem:
            outcome.status, outcome.notes = "not run", [sub.problem, *outcome.notes]
        return outcome

    def stage(self, sub: intake.Submission) -> dict[str, str]:
        """Put the submission in nbgrader's submitted/ folder; the kernel environment it needs."""
        submitted = self.course / "submitted" / sub.learner / self.assignment
        shutil.rmtree(submitted, ignore_errors=True)
        submitted.mkdir(parents=True)
        shutil.copy(sub.notebook, submitted / paths.NOTEBOOK)
        if sub.cassette:
            shutil.copy(sub.cassette, submitted / "cassette.yaml")
        graded_copy = self.course / "autograded" / sub.learner / self.assignment
        shutil.rmtree(graded_copy, ignore_errors=True)
        shutil.rmtree(self.course / "feedback" / sub.learner, ignore_errors=True)
        # nbgrader copies the submission folder to autograded/ and runs the kernel there.
        return {"RAI_LAB_GRADING_CASSETTE": str(graded_copy / "cassette.yaml") if sub.cassette else ""}

    def conclude(self, sub: intake.Submission, outcome: Outcome, returncode: int, log: str) -> Outcome:
        """Read nbgrader's grades for one learner and say why, if something stopped the notebook."""
        log = cassettes.redact(log or "", sub.secrets)
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{sub.learner}.log").write_text(log, encoding="utf-8")
        graded = self._scores(sub.learner)
        if returncode == -9:
            why = reason("timeout", self.lang, seconds=self.timeout)
        elif "DeadKernelError" in log or "Kernel died" in log:
            why = reason("dead_kernel", self.lang)
        elif graded is None:
            why = reason("failed", self.lang, detail=_last_error(log))
        else:
            why = None
        if why:
            outcome.notes.insert(0, why)
        if graded is None or returncode == -9:
            # Killed at the time limit, nbgrader leaves zero scores behind: not a grade it computed.
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

    # -- the batch -------------------------------------------------------------------------------
    def run(self, submissions_dir: Path, progress: bool = True) -> list[Outcome]:
        if not submissions_dir.is_dir():
            raise RaiLabError(f"no such folder of submissions: {submissions_dir}")
        self.work.mkdir(parents=True, exist_ok=True)
        clock = time.monotonic()
        try:
            self.start_batch()  # the JVM and the warm kernels start while nbgrader prepares the course
            self.prepare()
            staging = self.work / "intake"
            shutil.rmtree(staging, ignore_errors=True)
            submissions = intake.collect(submissions_dir, staging, self.lang)
            self.timings["prepare_and_intake_s"] = time.monotonic() - clock
            previous = self._load_state()
            outcomes: dict[str, Outcome] = {}
            pending = []
            for sub in submissions:
                cached = previous.get(sub.learner)
                if cached and cached.get("digest") == sub.digest and self._scores(sub.learner) is not None:
                    outcomes[sub.learner] = Outcome(**cached)
                elif sub.problem:
                    outcomes[sub.learner] = self.new_outcome(sub)
                else:
                    pending.append(sub)
            if pending:
                # nbgrader's import in each worker overlaps the JVM's start too.
                workers = [_Worker(self, index) for index in range(min(self.workers, len(pending)))]
                try:
                    self.wait_batch()
                except BaseException:
                    for worker in workers:
                        worker.kill()
                    raise
                self.timings["spark_server_ready_s"] = time.monotonic() - clock
                started = time.monotonic()
                for outcome in self._grade_all(pending, progress, workers):
                    outcomes[outcome.learner] = outcome
                self.timings["grading_s"] = time.monotonic() - started
        finally:
            started = time.monotonic()
            self.stop_batch()
            self.timings["spark_server_stop_s"] = time.monotonic() - started
        started = time.monotonic()
        ordered = [outcomes[sub.learner] for sub in submissions]
        self._forget_removed({o.learner for o in ordered})
        self._save_state(ordered)
        self.write_outputs(ordered, {s.learner: s for s in submissions})
        self.timings["outputs_s"] = time.monotonic() - started
        self.timings.update(total_s=time.monotonic() - clock, workers=self.workers, spark=self.spark,
                            network_namespace=self.network_namespace, graded=len(pending), cached=len(ordered) - len(pending))
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
        count = len(workers)

        def serve(index: int) -> None:
            worker = workers[index]
            try:
                while True:
                    try:
                        sub = jobs.get_nowait()
                    except queue.Empty:
                        return
                    if worker is None:
                        worker = _Worker(self, index)
                    outcome = self.new_outcome(sub)
                    started = time.monotonic()
                    returncode, log, seconds = worker.grade(sub.learner, self.stage(sub), self.timeout)
                    seconds["total"] = time.monotonic() - started
                    if returncode != 0:
                        worker = None  # killed at the limit, or died: the next learner gets a fresh one
                    outcome = self.conclude(sub, outcome, returncode, log)
                    with lock:
                        self.timings["notebooks"][sub.learner] = seconds
                        results.append(outcome)
                        bar.set_postfix_str(sub.learner)
                        bar.update()
            finally:
                if worker is not None:
                    worker.close()

        threads = [threading.Thread(target=serve, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bar.close()
        return results

    def _course_digest(self) -> str:
        """What a cached grade depends on besides the submission: the source notebook, rubric and checks."""
        digest = hashlib.sha256()
        for path in (paths.SOLUTIONS / self.assignment / paths.NOTEBOOK, paths.GRADERS / "rubric.toml",
                     paths.GRADERS / "checks.py"):
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def _load_state(self) -> dict[str, dict]:
        """The grades of the last run, kept for unchanged submissions (none if the course changed since)."""
        try:
            state = json.loads(self.state_path.read_text())
            if state["course"] != self._course_digest():
                return {}
            known = {f.name for f in fields(Outcome)}
            return {item["learner"]: {k: v for k, v in item.items() if k in known} for item in state["outcomes"]}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def _save_state(self, outcomes: list[Outcome]) -> None:
        state = {"course": self._course_digest(), "outcomes": [asdict(o) for o in outcomes]}
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
        title = {"fr": "Retour de notation", "en": "Grading feedback"}[self.lang]
        score = {"fr": "Note", "en": "Score"}[self.lang]
        bonus = {"fr": "bonus (aller plus loin)", "en": "bonus (going further)"}[self.lang]
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in outcome.notes)
        banner = (
            f'<div id="rai-lab-summary" style="border:2px solid #c60;padding:1em;margin:1em;font-family:sans-serif">'
            f"<h2>{title} — {html.escape(outcome.learner)}</h2>"
            f"<p><b>{score} : {outcome.score:g} / {outcome.max_score:g}</b> · {bonus} : {outcome.bonus:g} / {outcome.bonus_max:g}</p>"
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
            rows.append(f"<tr><td>{mark}</td><td>{html.escape(item[self.lang])}</td><td>{got:g} / {item['points']}</td></tr>")
        return "<table>" + "".join(rows) + "</table>"

    def _write_csv(self, outcomes: list[Outcome]) -> None:
        names = list(rubric())
        with open(self.out_dir / "grades.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["learner", "score", "max_score", "bonus", "bonus_max", *names, "status", "notes"])
            for o in sorted(outcomes, key=lambda item: item.learner):
                writer.writerow([o.learner, f"{o.score:g}", f"{o.max_score:g}", f"{o.bonus:g}", f"{o.bonus_max:g}",
                                 *(f"{o.checks.get(n, 0):g}" for n in names),
                                 o.status, " | ".join(o.notes)])


class _Worker:
    """A `rai_lab.gradeworker` process: one learner at a time, killed with its kernel at the time limit."""

    def __init__(self, grader: Grader, index: int):
        self.grader = grader
        env = grader._env({"RAI_LAB_IPC": str(grader.work / "ipc" / f"w{index}")})
        self.stderr = open(grader.batch_logs / f"worker-{index}.log", "a", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rai_lab.gradeworker", str(grader.course), grader.assignment],
            cwd=grader.course, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
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

    def grade(self, learner: str, env: dict[str, str], timeout: float) -> tuple[int, str, dict]:
        """(0, nbgrader's log, seconds) when nbgrader finished; (-9, ...) when killed at the limit; (1, ...) if the worker died."""
        deadline = time.monotonic() + timeout
        if not self.ready:
            started = time.monotonic()
            answer = self._read(time.monotonic() + 120)
            self.grader.timings["worker_start_s"].append(time.monotonic() - started)
            if not answer or not answer.get("ready"):
                self.kill()
                return 1, "the grading worker did not start (see logs/batch/worker-*.log)", {}
            self.ready = True
        try:
            self.process.stdin.write(json.dumps({"learner": learner, "env": env}) + "\n")
            self.process.stdin.flush()
        except OSError:
            self.kill()
            return 1, "the grading worker stopped (see logs/batch/worker-*.log)", {}
        answer = self._read(deadline)
        if answer is None:
            self.kill()
            return -9, f"killed after {timeout:g} s", {}
        if answer.get("dead"):
            self.kill()
            return 1, "the grading worker stopped (see logs/batch/worker-*.log)", {}
        return 0, answer.get("log", ""), answer.get("seconds", {})

    def kill(self) -> None:
        """The worker and its kernel (which jupyter_client starts in a session of its own)."""
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "Error" in line or "error" in line]
    return (lines[-1] if lines else "see the grading log")[:300]


def grade(submissions: Path, assignment: str, out_dir: Path, work_dir: Path | None = None, timeout: int = 600,
          cell_timeout: int = 180, progress: bool = True, isolate: bool = True, workers: int | None = None,
          spark: str = "shared", illustrations: bool = False) -> list[Outcome]:
    """Grade every submission in `submissions`; grades.csv and feedback/ land in `out_dir`."""
    grader = Grader(assignment, out_dir, work_dir=work_dir, timeout=timeout, cell_timeout=cell_timeout, isolate=isolate,
                    workers=workers, spark=spark, illustrations=illustrations)
    return grader.run(submissions, progress=progress)

