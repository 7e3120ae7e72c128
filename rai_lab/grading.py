"""`rai-lab grade`: nbgrader autograde of a folder of submissions, offline, time-limited, sandboxed.

The course tree lives in a work folder outside the repository. Each learner is autograded by
its own `nbgrader autograde --student` process, with no secret in its environment, a time
limit, and a kernel that cannot reach the network; one broken submission never stops the others.
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
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rai_lab import cassette as cassettes
from rai_lab import intake, paths, release, sandbox
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
    score: float = 0.0
    max_score: float = 0.0
    checks: dict[str, float] = field(default_factory=dict)
    status: str = "graded"  # graded | not run | failed
    notes: list[str] = field(default_factory=list)
    digest: str = ""


@functools.cache
def rubric() -> dict[str, dict]:
    return tomllib.loads((paths.GRADERS / "rubric.toml").read_text(encoding="utf-8"))["checks"]


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
                 cell_timeout: int = 180, isolate: bool = True):
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
        self.state_path = self.work / "state.json"

    # -- the course tree -------------------------------------------------------------------
    def prepare(self) -> None:
        (self.course / "source").mkdir(parents=True, exist_ok=True)
        source = self.course / "source" / self.assignment
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(paths.SOLUTIONS / self.assignment, source)
        shutil.copy(paths.GRADERS / "nbgrader_config.py", self.course / "nbgrader_config.py")
        spec_dir = self.work / "jupyter" / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = sandbox.kernelspec(self.isolate)
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
        self.network_namespace = spec["metadata"]["rai_lab_network_namespace"]
        (self.work / "ipc").mkdir(exist_ok=True)
        done = self._nbgrader("generate_assignment", self.assignment, "--force")
        if done.returncode != 0:
            raise RaiLabError(f"nbgrader generate_assignment failed:\n{done.stdout[-2000:]}")

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return clean_environment({
            "RAI_LAB_LANG": self.lang,
            "RAI_LAB_GRADING": "1",
            "RAI_LAB_KERNEL": KERNEL_NAME,
            "RAI_LAB_IPC": str(self.work / "ipc" / "kernel"),
            "RAI_LAB_CELL_TIMEOUT": str(self.cell_timeout),
            "JUPYTER_PATH": str(self.work / "jupyter"),
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        })

    def _nbgrader(self, *args: str, env: dict | None = None, timeout: int | None = None):
        command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.course}"]
        process = subprocess.Popen(
            command, cwd=self.course, env=env or self._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            return subprocess.CompletedProcess(command, -9, out, None)
        return subprocess.CompletedProcess(command, process.returncode, out, None)

    # -- one learner ---------------------------------------------------------------------------
    def autograde(self, sub: intake.Submission) -> Outcome:
        outcome = Outcome(learner=sub.learner, source=sub.source, notes=list(sub.notes), digest=sub.digest)
        table = rubric()
        outcome.max_score = float(sum(item["points"] for item in table.values()))
        outcome.checks = {name: 0.0 for name in table}
        if sub.problem:
            outcome.status, outcome.notes = "not run", [sub.problem, *outcome.notes]
            return outcome
        submitted = self.course / "submitted" / sub.learner / self.assignment
        shutil.rmtree(submitted, ignore_errors=True)
        submitted.mkdir(parents=True)
        shutil.copy(sub.notebook, submitted / paths.NOTEBOOK)
        extra = {}
        if sub.cassette:
            shutil.copy(sub.cassette, submitted / "cassette.yaml")
        graded_copy = self.course / "autograded" / sub.learner / self.assignment
        shutil.rmtree(graded_copy, ignore_errors=True)
        # nbgrader copies the submission folder to autograded/ and runs the kernel there.
        extra["RAI_LAB_GRADING_CASSETTE"] = str(graded_copy / "cassette.yaml") if sub.cassette else ""
        done = self._nbgrader("autograde", self.assignment, f"--student={sub.learner}", "--force",
                              env=self._env(extra), timeout=self.timeout)
        log = cassettes.redact(done.stdout or "", sub.secrets)
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        (logs / f"{sub.learner}.log").write_text(log, encoding="utf-8")
        graded = self._scores(sub.learner)
        if done.returncode == -9:
            why = reason("timeout", self.lang, seconds=self.timeout)
        elif "DeadKernelError" in log or "Kernel died" in log:
            why = reason("dead_kernel", self.lang)
        elif graded is None:
            why = reason("failed", self.lang, detail=_last_error(log))
        else:
            why = None
        if why:
            outcome.notes.insert(0, why)
        if graded is None or done.returncode == -9:
            # Killed at the time limit, nbgrader leaves zero scores behind: not a grade it computed.
            outcome.status = "failed"
            return outcome
        outcome.checks.update(graded)
        outcome.score = float(sum(graded.values()))
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
        self.prepare()
        staging = self.work / "intake"
        shutil.rmtree(staging, ignore_errors=True)
        submissions = intake.collect(submissions_dir, staging, self.lang)
        previous = self._load_state()
        outcomes: list[Outcome] = []
        from tqdm import tqdm

        bar = tqdm(submissions, desc="grading", unit="notebook", disable=not progress, file=sys.stderr)
        for sub in bar:
            bar.set_postfix_str(sub.learner)
            cached = previous.get(sub.learner)
            if cached and cached.get("digest") == sub.digest and self._scores(sub.learner) is not None:
                outcomes.append(Outcome(**cached))
                continue
            outcomes.append(self.autograde(sub))
        self._forget_removed({o.learner for o in outcomes})
        self._save_state(outcomes)
        self.write_outputs(outcomes, {s.learner: s for s in submissions})
        return outcomes

    def _load_state(self) -> dict[str, dict]:
        try:
            known = {f.name for f in fields(Outcome)}
            return {item["learner"]: {k: v for k, v in item.items() if k in known}
                    for item in json.loads(self.state_path.read_text())}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def _save_state(self, outcomes: list[Outcome]) -> None:
        self.state_path.write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")

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
        done = self._nbgrader("generate_feedback", self.assignment, "--force")
        for outcome in outcomes:
            sub = submissions.get(outcome.learner)
            secrets = sub.secrets if sub else []
            target = feedback_root / outcome.learner / "responsible_ai.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            generated = self.course / "feedback" / outcome.learner / self.assignment / "responsible_ai.html"
            body = generated.read_text(encoding="utf-8") if generated.exists() and outcome.status == "graded" else None
            target.write_text(cassettes.redact(self._feedback_page(outcome, body), secrets), encoding="utf-8")
        export = self._nbgrader("export", f"--to={self.out_dir / 'nbgrader_grades.csv'}")
        if export.returncode != 0 or done.returncode != 0:
            (self.work / "logs").mkdir(exist_ok=True)
            (self.work / "logs" / "feedback-export.log").write_text(done.stdout + export.stdout, encoding="utf-8")
        self._write_csv(outcomes)

    def _feedback_page(self, outcome: Outcome, body: str | None) -> str:
        title = {"fr": "Retour de notation", "en": "Grading feedback"}[self.lang]
        score = {"fr": "Note", "en": "Score"}[self.lang]
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in outcome.notes)
        banner = (
            f'<div id="rai-lab-summary" style="border:2px solid #c60;padding:1em;margin:1em;font-family:sans-serif">'
            f"<h2>{title} — {html.escape(outcome.learner)}</h2>"
            f"<p><b>{score} : {outcome.score:g} / {outcome.max_score:g}</b></p>"
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
            writer.writerow(["learner", "score", "max_score", *names, "status", "notes"])
            for o in sorted(outcomes, key=lambda item: item.learner):
                writer.writerow([o.learner, f"{o.score:g}", f"{o.max_score:g}", *(f"{o.checks.get(n, 0):g}" for n in names),
                                 o.status, " | ".join(o.notes)])


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "Error" in line or "error" in line]
    return (lines[-1] if lines else "see the grading log")[:300]


def grade(submissions: Path, assignment: str, out_dir: Path, work_dir: Path | None = None, timeout: int = 600,
          cell_timeout: int = 180, progress: bool = True, isolate: bool = True) -> list[Outcome]:
    """Grade every submission in `submissions`; grades.csv and feedback/ land in `out_dir`."""
    grader = Grader(assignment, out_dir, work_dir=work_dir, timeout=timeout, cell_timeout=cell_timeout, isolate=isolate)
    return grader.run(submissions, progress=progress)

