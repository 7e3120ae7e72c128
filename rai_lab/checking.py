"""The visible check cells: one check of graders/checks.py, run in the learner's own kernel.

Each graded step of the lab is followed by locked check cells (`checking.check("env_key_set",
globals())`) that the learner sees and runs. A check that passes prints ✓ and what it checked; one
that fails writes ✗ and the message to act on to stderr: nbgrader scores a cell with stderr 0, so
its Validate button (and `rai-lab check`) fails on an unfilled or wrong notebook, while JupyterLab's
Run All goes on to the next cells (an exception would stop it at the first ✗, as otter-grader's
checks do not). An optional going-further check that the learner has not started prints ○.

These cells are for learning. While grading they never run in the learner's kernel: the grader
takes the snapshot (`rai_lab.evidence.report`) and runs the same check in its own process
(`rai_lab.grading.worker.sealed`), and its verdict is the one that counts. Both sides make a check's verdict with
`rai_lab.evidence.judge`.
"""

from __future__ import annotations

import sys
import warnings

from rai_lab import events, evidence, kit
from rai_lab.cells import rubric
from rai_lab.messages import detect_lang, say

# A going-further step is "started" once one of these exists (or a call asked for several answers).
BONUS_NAMES = ("samples_rows", "samples_df", "neutral_samples", "representation_df")


def _context(namespace: dict) -> dict:
    session = kit.current()
    return {
        "lang": session.lang if session else detect_lang(),
        "deployment": session.deployment if session else namespace.get("deployment", "gpt-35-turbo"),
        "calls": list(events.CALLS),
    }


def started_bonus(namespace: dict, checks, context: dict) -> bool:
    """Whether the learner began the optional going-further part."""
    return any(name in namespace for name in BONUS_NAMES) or bool(checks._sampled_calls(context))


def verdict(name: str, namespace: dict) -> tuple[str, str | None]:
    """("passed" | "failed" | "not_started", the learner's message when it failed)."""
    context = _context(namespace)
    checks = evidence.load_checks()
    if rubric()[name].get("bonus") and not started_bonus(namespace, checks, context):
        return "not_started", None
    with warnings.catch_warnings():
        # A warning goes to stderr, and nbgrader scores a cell 0 for anything on stderr.
        warnings.simplefilter("ignore")
        judged = evidence.judge(name, lambda: evidence.snapshot(checks.NEEDS.get(name, ()), namespace), context)
    return ("passed", None) if judged["passed"] else ("failed", judged["message"])


def check(name: str, namespace: dict) -> bool:
    """Run check `name`: ✓ or ○ on stdout, or ✗ and what to do on stderr. Whether it did not fail."""
    lang = _context(namespace)["lang"]
    label = say(f"rubric.{name}", lang)
    state, message = verdict(name, namespace)
    if state == "failed":
        print(say("check_failed", lang, label=label, message=message), file=sys.stderr, flush=True)
        return False
    print(say("check_passed" if state == "passed" else "check_not_started", lang, label=label), flush=True)
    return True
