"""What a check reads of a notebook: a plain-data snapshot of named variables and the Azure variables.

The checks (graders/checks.py) never touch a live kernel object: they read this snapshot. In a
learner's own run (`rai-lab run --checks`) the snapshot is taken and checked in the kernel; while
grading, the grader asks the kernel for it (`report`) and runs the check in its own process, out of
the learner's reach (re-running each Spark DataFrame's plan itself: `rai_lab.grading.worker.rerun`). A
snapshot only says what the learner's variables hold, which is their answer; whether calls were made is
never taken from the kernel.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from collections.abc import Callable

ENV_NAMES = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION")
MIME = "application/vnd.rai-lab.evidence.v1"  # text: JSON inside, never shown
MAX_ROWS = 5000
MAX_CHARS = 8 << 20  # what the grader reads of one snapshot


_CHECKS_MODULE = "rai_lab_graders_checks"


def load_checks():
    """graders/checks.py, loaded from the kit's path (a file of the learner's cannot stand in for it)."""
    if _CHECKS_MODULE not in sys.modules:
        from rai_lab import paths

        spec = importlib.util.spec_from_file_location(_CHECKS_MODULE, paths.GRADERS / "checks.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_CHECKS_MODULE] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_CHECKS_MODULE]
            raise
    return sys.modules[_CHECKS_MODULE]


def judge(name: str, snapshot: dict | Callable[[], dict], context: dict) -> dict:
    """Check `name`'s verdict, {"passed": bool, "message": str}, on a snapshot and its context ({"lang",
    "deployment", "calls"}): in the learner's kernel (`rai_lab.checking`) and in the grader (`rai_lab.grading.worker.sealed`).

    A CheckFailed is the learner's message as the check wrote it; any other exception (an odd value of the
    learner's) becomes "Type: message", never a crash. `snapshot` may be a function that takes it, so that a
    value which fails to be read becomes a verdict too.
    """
    checks = load_checks()
    try:
        checks.run(name, snapshot() if callable(snapshot) else snapshot, context)
    except checks.CheckFailed as failed:
        return {"passed": False, "message": str(failed)}
    except Exception as err:  # noqa: BLE001 - an odd value of the learner's becomes feedback, never a crash
        return {"passed": False, "message": f"{type(err).__name__}: {str(err)[:300]}"}
    return {"passed": True, "message": ""}


def plain(value, depth: int = 0):
    """A JSON value as it is, or a marker that never equals one (so a check cannot be fooled by a str())."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and depth < 3:
        return [plain(item, depth + 1) for item in value[:MAX_ROWS]]
    return {"__type__": f"{type(value).__module__}.{type(value).__name__}"}


def is_spark_frame(value) -> bool:
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pyspark.sql")


def describe(value, rows: bool = True) -> dict:
    """One variable as plain data: its kind, and its value, or a Spark DataFrame's schema and rows.

    `rows=False` (the grader asks): a Spark Connect DataFrame is sent as its plan only, which the
    grader runs itself (in the learner's own session); the rows it checks are Spark's, not the kernel's word.
    """
    if is_spark_frame(value):
        kind = type(value)
        found = {"kind": "spark_df", "type": f"{kind.__module__}.{kind.__name__}"}
        try:
            if kind.__module__.startswith("pyspark.sql.connect"):
                found["plan"] = base64.b64encode(value._plan.to_proto(value._session.client).SerializeToString()).decode()
                # The session the plan lives in (its temporary views): the grader re-runs the plan there.
                found["session"] = {"session_id": str(value._session.session_id),
                                    "user_id": getattr(value._session.client, "_user_id", None)}
                if not rows:
                    return found
            found["columns"] = [[f.name, f.dataType.simpleString()] for f in value.schema.fields]
            found["rows"] = [[plain(item) for item in row] for row in value.limit(MAX_ROWS).collect()]
        except Exception as err:  # noqa: BLE001 - a DataFrame that fails is the learner's answer too
            found["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        return found
    if value is None or isinstance(value, (bool, int, float, str, list, tuple)):
        return {"kind": "value", "type": type(value).__name__, "value": plain(value)}
    kind = type(value)
    return {"kind": "other", "type": f"{kind.__module__}.{kind.__name__}"}


def snapshot(names, namespace: dict, rows: bool = True) -> dict:
    """The Azure variables of the environment and, for each name, what the namespace holds."""
    return {
        "env": {name: os.environ.get(name) for name in ENV_NAMES},
        "vars": {name: describe(namespace[name], rows) if name in namespace else {"kind": "undefined"}
                 for name in names},
    }


def report(names, namespace: dict | None = None) -> None:
    """Display a snapshot for the grader (a mime type of the kit's own; nothing else reads it)."""
    from IPython import get_ipython
    from IPython.display import display

    if namespace is None:
        namespace = get_ipython().user_ns
    display({MIME: json.dumps(snapshot(names, namespace, rows=False), ensure_ascii=False, default=str)}, raw=True)
