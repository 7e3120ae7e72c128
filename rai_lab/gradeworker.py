"""One grading worker: nbgrader's autograde and feedback for one learner after another, in one process.

`rai-lab grade` starts `--workers` of these (``python -m rai_lab.gradeworker COURSE ASSIGNMENT``)
so that nbgrader is imported once per worker, not once per notebook. The grader sends one JSON
job per line on stdin ({"learner": ..., "env": {...}}) and reads one JSON result per line
({"learner", "success", "log"}) on the worker's original stdout; anything else the worker or a
kernel prints goes to stderr. The grader kills a worker whose notebook goes over the time limit
and starts a fresh one for the next learner.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


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


def main(argv: list[str] | None = None) -> int:
    course, assignment = (argv or sys.argv[1:])[:2]
    course_dir = Path(course).resolve()
    results = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints (nbgrader, kernels) must not mix with the results
    os.chdir(course_dir)
    reuse_relaxed_validators()
    from nbgrader.apps import NbGraderAPI

    api = NbGraderAPI(config=load_config(course_dir))
    results.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        learner = job["learner"]
        os.environ.update(job.get("env", {}))
        started = time.monotonic()
        done = api.autograde(assignment, learner, force=True, create=True)
        seconds = {"autograde": time.monotonic() - started}
        log = (done.get("log") or "") + (done.get("error") or "")
        autograded = course_dir / "autograded" / learner / assignment
        if job.get("feedback", True) and autograded.is_dir():
            started = time.monotonic()
            feedback = api.generate_feedback(assignment, learner, force=True)
            seconds["feedback"] = time.monotonic() - started
            log += (feedback.get("log") or "") + (feedback.get("error") or "")
        answer = {"learner": learner, "success": bool(done.get("success")), "log": log, "seconds": seconds}
        results.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
