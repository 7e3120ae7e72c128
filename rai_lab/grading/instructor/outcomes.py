"""A learner's outcome from a worker's answer: nbgrader's scores, and why, if something stopped the notebook;
whether that grading must be done again, alone; a row for a learner the grader itself failed."""

from __future__ import annotations

import math
from pathlib import Path

from rai_lab.azure.cassette.scrub import redact
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.rubric import Outcome, reason, rubric, split_points
from rai_lab.grading.instructor.workers import last_error

WORKER_GRACE = 30.0  # seconds past the notebook limit before the grader kills a worker that did not stop it


def new_outcome(sub: intake.Submission, sandbox: str) -> Outcome:
    """A learner's outcome before grading: no point yet, "not run" if the submission cannot run (`sub.problem`);
    `sandbox` is what grades.csv says of the sandbox (bubblewrap, none)."""
    outcome = Outcome(learner=sub.learner, source=sub.source, notes=list(sub.notes), digest=sub.digest, sandbox=sandbox)
    table = rubric()
    outcome.max_score, outcome.bonus_max = split_points({name: item["points"] for name, item in table.items()})
    outcome.checks = {name: 0.0 for name in table}
    if sub.problem:
        outcome.status, outcome.notes = "not run", [sub.problem, *outcome.notes]
    return outcome


def conclude(sub: intake.Submission, outcome: Outcome, returncode: int, answer: dict, *, scores: dict | None,
             lang: str, notebook_limit: float, logs: Path, alone: bool = True) -> Outcome:
    """Read nbgrader's grades for one learner (`scores`, None when it wrote none) and say why, if something stopped
    the notebook; the worker's log goes to `logs`/<learner>.log, without the learner's secrets.

    A worker that died is the grader's failure, never the learner's: such an outcome is `provisional` (not kept
    by the next run). A Spark server that stopped while the learner was graded alone was stopped by their code.
    """
    log = redact(answer.get("log") or "", sub.secrets)
    logs.mkdir(exist_ok=True)
    (logs / f"{sub.learner}.log").write_text(log, encoding="utf-8")
    stopped = answer.get("stopped") or {}
    if returncode == -9:
        why = reason("timeout", lang, seconds=math.ceil(notebook_limit + WORKER_GRACE))
    elif stopped:
        why = stopped.get("message")
    elif scores is None:
        why = reason("failed", lang, detail=last_error(log))
    else:
        why = None
    spark = reason("spark_stopped", lang) if answer.get("spark_failed") and alone else None
    for note in reversed([spark, why, *(answer.get("interrupted") or [])]):
        if note:
            outcome.notes.insert(0, redact(note, sub.secrets))
    outcome.stopped = stopped.get("reason", "killed" if returncode == -9 else "")
    if returncode not in (0, -9):  # the worker died or did not start: nothing of the learner's can do that
        outcome.provisional = True
        outcome.notes.insert(0, reason("provisional", lang))
    elif scores is None and returncode == 0:  # nbgrader wrote no grade (a full disk?): not kept, tried again
        outcome.provisional = True
    if scores is None or returncode == -9 or outcome.provisional:
        outcome.status = "failed"
        return outcome
    outcome.checks.update(scores)
    outcome.score, outcome.bonus = split_points(scores)
    return outcome


def grader_fault(sub: intake.Submission, err: BaseException, sandbox: str, lang: str) -> Outcome:
    """A learner whom the grader itself failed (a bug of ours): a row that says so, never kept (graded next run)."""
    outcome = new_outcome(sub, sandbox)
    outcome.status, outcome.provisional = "failed", True
    outcome.notes.insert(0, reason("provisional", lang))
    outcome.notes.append(reason("failed", lang, detail=f"{type(err).__name__}: {str(err)[:200]}"))
    return outcome


def disturbed(returncode: int, answer: dict) -> str | None:
    """Why a learner's grading may owe something to the rest of the batch (CPU taken by other slots, a service
    of the grader's), so that it is done again alone; None when it cannot."""
    if returncode != 0:
        return "worker killed at the limit" if returncode == -9 else "worker stopped"
    if answer.get("spark_failed"):
        return "Spark server stopped"
    if (answer.get("stopped") or {}).get("reason"):
        return str(answer["stopped"]["reason"])
    if answer.get("interrupted"):
        return "cell time limit"
    return None  # a DataFrame re-run stopped at its limit is not: its plan ran alone on the learner's own server
