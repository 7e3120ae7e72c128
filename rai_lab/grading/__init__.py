"""`rai-lab grade`: nbgrader autograde of a folder of submissions, offline, time-limited, sandboxed.

Split by where the code runs (docs/grading.md draws a submission's path through them):
- `instructor/`: the instructor's `rai-lab grade` process: `intake` (reading submissions), `batch` (the Grader),
  `course` (nbgrader's course tree, the gradebook), `state` (the kept grades), `limits` (the time limits, from the
  reference run), `services` (the batch's folder, namespace and clean environment), `workers` (starting the
  grading workers and talking to them), `reports` (grades.csv, nbgrader's export, the feedback pages), `rubric`
  (points and a learner's Outcome), `stop` (SIGINT, SIGTERM and SIGHUP turned into an orderly stop);
- `worker/`: a grading worker process: `main` (one learner after another), `sandbox` (bubblewrap), `launcher`
  (a kernel's launcher), `slotspark` (the worker's own Spark server), `replay` (the replay service), `sealed`
  (checks judged outside the kernel), `rerun` (a DataFrame's plan re-run by the grader), `feedback` (feedback
  preprocessors);
- `sandboxed/`: inside a learner's sandbox: `forkserver` (warm kernels), `guard` (the network refused), `replay`
  (the kernel's side of the replay service). It imports nothing from the other two.

The public names below are imported on first use, so that a worker or a kernel importing its own part does not
import the instructor's.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Grader": "batch", "grade": "batch", "default_work_dir": "course", "Outcome": "rubric", "is_bonus": "rubric",
    "reason": "rubric", "rubric": "rubric", "split_points": "rubric", "SECRET_NAME": "services",
    "clean_environment": "services",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"rai_lab.grading.instructor.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'rai_lab.grading' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
