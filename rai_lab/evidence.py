"""What a check reads of a notebook: a plain-data snapshot of named variables and the Azure variables.

The checks (graders/checks.py) never touch a live kernel object: they read this snapshot. In a
learner's own run (`rai-lab run --checks`) the snapshot is taken and checked in the kernel; while
grading, the grader asks the kernel for it (`report`) and runs the check in its own process, out of
the learner's reach. A snapshot only says what the learner's variables hold, which is their answer;
whether calls were made is never taken from the kernel.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys

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


def _plain(value, depth: int = 0):
    """A JSON value as it is, or a marker that never equals one (so a check cannot be fooled by a str())."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and depth < 3:
        return [_plain(item, depth + 1) for item in value[:MAX_ROWS]]
    return {"__type__": f"{type(value).__module__}.{type(value).__name__}"}


def is_spark_frame(value) -> bool:
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.startswith("pyspark.sql")


def describe(value, rows: bool = True) -> dict:
    """One variable as plain data: its kind, and its value, or a Spark DataFrame's schema and rows.

    `rows=False` (the grader asks): a Spark Connect DataFrame is sent as its plan only, which the
    grader runs on the batch's server itself; the rows it checks are Spark's, not the kernel's word.
    """
    if is_spark_frame(value):
        kind = type(value)
        found = {"kind": "spark_df", "type": f"{kind.__module__}.{kind.__name__}"}
        try:
            if kind.__module__.startswith("pyspark.sql.connect"):
                found["plan"] = base64.b64encode(value._plan.to_proto(value._session.client).SerializeToString()).decode()
                if not rows:
                    return found
            found["columns"] = [[f.name, f.dataType.simpleString()] for f in value.schema.fields]
            found["rows"] = [[_plain(item) for item in row] for row in value.limit(MAX_ROWS).collect()]
        except Exception as err:  # noqa: BLE001 - a DataFrame that fails is the learner's answer too
            found["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        return found
    if value is None or isinstance(value, (bool, int, float, str, list, tuple)):
        return {"kind": "value", "type": type(value).__name__, "value": _plain(value)}
    kind = type(value)
    return {"kind": "other", "type": f"{kind.__module__}.{kind.__name__}"}


def rerun_frames(snapshot: dict, spark) -> None:
    """The grader's side: replace each Spark Connect DataFrame's rows by those of its plan, run on `spark`.

    A report of a DataFrame without a plan (there is always one on Spark Connect) is not taken.
    """
    from pyspark.sql.connect.proto import base_pb2

    for found in (snapshot.get("vars") or {}).values():
        if not isinstance(found, dict) or found.get("kind") != "spark_df":
            continue
        try:
            plan = base_pb2.Plan()
            plan.ParseFromString(base64.b64decode(found["plan"]))
            table, schema, _ = spark.client.to_table(plan, {})
            names = [f.name for f in schema.fields]
            found["columns"] = [[f.name, f.dataType.simpleString()] for f in schema.fields]
            found["rows"] = [[_plain(row[n]) for n in names] for row in table.slice(0, MAX_ROWS).to_pylist()]
            found.pop("error", None)
        except Exception as err:  # noqa: BLE001 - no plan, or one the server refuses: not a DataFrame we can check
            found["error"] = f"the grader could not run this DataFrame's plan ({type(err).__name__}: {str(err)[:200]})"


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
