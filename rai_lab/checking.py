"""In-kernel entry point of the hidden tests, for a learner's own run: one check of graders/checks.py.

`rai-lab run --checks` runs the hidden test cells in the kernel: the snapshot and the calls are the
kernel's own. While grading, those cells never run in the kernel: the grader takes the snapshot
(`rai_lab.evidence.report`) and runs the same check in its own process (`rai_lab.sealed`).
"""

from __future__ import annotations

import warnings

from rai_lab import events, evidence, kit
from rai_lab.messages import detect_lang


def check(name: str, namespace: dict) -> None:
    """Run check `name`; an AssertionError with the learner's feedback when it fails."""
    session = kit.current()
    context = {
        "lang": session.lang if session else detect_lang(),
        "deployment": session.deployment if session else namespace.get("deployment", "gpt-35-turbo"),
        "calls": list(events.CALLS),
    }
    checks = evidence.load_checks()
    with warnings.catch_warnings():
        # A warning goes to stderr, and nbgrader scores a cell 0 for anything on stderr.
        warnings.simplefilter("ignore")
        try:
            checks.run(name, evidence.snapshot(checks.NEEDS.get(name, ()), namespace), context)
        except AssertionError:
            raise
        except Exception as err:  # noqa: BLE001 - a learner's odd value must become feedback
            raise AssertionError(f"{type(err).__name__}: {err}") from None
