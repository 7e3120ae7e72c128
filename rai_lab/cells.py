"""The check cells: which of a notebook's cells are checks (nbgrader's metadata), what each is worth (graders/rubric.toml).

Light on purpose (the standard library and `rai_lab.paths`): the learner's kernel, the tools and the
grader all import it.
"""

from __future__ import annotations

import functools
import tomllib

from rai_lab import paths


def is_check(cell) -> bool:
    """Whether a cell (nbformat's node or a plain dict) is a check cell: nbgrader's "autograder tests", a code
    cell whose metadata says `grade: true` and `solution: false` (a graded answer of the learner's has both)."""
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


@functools.cache
def rubric() -> dict[str, dict]:
    """graders/rubric.toml's entry of each check ({"points": …, "bonus": …}), by grade_id; read once a process."""
    return tomllib.loads((paths.GRADERS / "rubric.toml").read_text(encoding="utf-8"))["checks"]
