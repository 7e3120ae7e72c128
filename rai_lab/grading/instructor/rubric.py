"""The rubric and a learner's outcome: points per check (graders/rubric.toml), the exercise's and the bonus."""

from __future__ import annotations

from dataclasses import dataclass, field

from rai_lab.cells import rubric  # the one reader of graders/rubric.toml (the learner's kernel reads it too)
from rai_lab.messages import say


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
    provisional: bool = False  # a failure on the grader's side: never kept, graded again by the next run


def is_bonus(name: str) -> bool:
    return bool(rubric()[name].get("bonus"))


def split_points(checks: dict[str, float]) -> tuple[float, float]:
    """(the exercise's points, the bonus points) of per-check points; names outside the rubric count for nothing."""
    sums = {False: 0.0, True: 0.0}
    for name, points in checks.items():
        if name in rubric():
            sums[is_bonus(name)] += points
    return sums[False], sums[True]
