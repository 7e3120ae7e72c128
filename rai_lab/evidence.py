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
import math
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rai_lab.messages import say

ENV_NAMES = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION")
MIME = "application/vnd.rai-lab.evidence.v1"  # text: JSON inside, never shown
MAX_ROWS = 5000
MAX_CHARS = 8 << 20  # what the grader reads of one snapshot
RERUN_ROWS = 1000  # the most rows the grader reads of a learner's DataFrame (the lab's largest, samples_df, has 300)


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
    "deployment", "calls"}): in the learner's kernel (`rai_lab.checking`) and in the grader (`rai_lab.sealed`).

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
            found["rows"] = [[_plain(item) for item in row] for row in value.limit(MAX_ROWS).collect()]
        except Exception as err:  # noqa: BLE001 - a DataFrame that fails is the learner's answer too
            found["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        return found
    if value is None or isinstance(value, (bool, int, float, str, list, tuple)):
        return {"kind": "value", "type": type(value).__name__, "value": _plain(value)}
    kind = type(value)
    return {"kind": "other", "type": f"{kind.__module__}.{kind.__name__}"}


@dataclass
class Rerun:
    """Where and within what the grader re-runs a learner's DataFrame plans: the learner's own Spark Connect
    server (`url`), at most `rows` rows, `seconds` each; `stalled` is called when a re-run is stopped at its time
    limit (the grader then clears that server's Python workers, which a cancelled job leaves running)."""

    url: str
    lang: str = "en"
    rows: int = RERUN_ROWS
    seconds: float = 30.0
    stalled: Callable[[], None] | None = None
    timeouts: int = 0  # re-runs stopped at the time limit (the grader grades such a learner again, alone)


_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _client(url: str, session: dict):
    """A Spark Connect client attached to the learner's own session (its temporary views are there)."""
    from pyspark.sql.connect.client import SparkConnectClient

    session_id = str(session.get("session_id") or "")
    if not _SESSION_ID.fullmatch(session_id):
        raise ValueError("no Spark Connect session")
    target = f"{url.rstrip('/')}/;session_id={session_id}"
    user = session.get("user_id")
    if isinstance(user, str) and re.fullmatch(r"[\w.-]{1,64}", user):
        target += f";user_id={user}"
    return SparkConnectClient(target)


def rerun_frames(snapshot: dict, rerun: Rerun) -> None:
    """The grader's side: replace each Spark Connect DataFrame's rows by those of its plan, run by Spark.

    The plan runs in the learner's own session on the learner's own server, wrapped in a limit of
    `rerun.rows` + 1 rows (so a plan of millions of rows reads only those), stopped after `rerun.seconds`.
    Past a limit the DataFrame carries `limit`, a reason naming it, and no rows. A report of a DataFrame
    without a plan (there is always one on Spark Connect) is not taken.
    """
    for found in (snapshot.get("vars") or {}).values():
        if isinstance(found, dict) and found.get("kind") == "spark_df":
            found.pop("rows", None)
            found.pop("columns", None)
            found.pop("limit", None)
            try:
                _rerun_one(found, rerun)
                found.pop("error", None)
            except Exception as err:  # noqa: BLE001 - no plan, or one the server refuses: not a DataFrame we can check
                found["error"] = say("rerun.failed", rerun.lang, error=f"{type(err).__name__}: {str(err)[:200]}")


def _rerun_one(found: dict, rerun: Rerun) -> None:
    from pyspark.sql.connect.proto import base_pb2, relations_pb2

    plan = base_pb2.Plan()
    plan.ParseFromString(base64.b64decode(found["plan"]))
    if not plan.HasField("root"):
        raise ValueError("not a query")
    bounded = base_pb2.Plan(root=relations_pb2.Relation(limit=relations_pb2.Limit(input=plan.root, limit=rerun.rows + 1)))
    client = _client(rerun.url, found.get("session") or {})
    result: dict = {}

    def run() -> None:
        try:
            result["table"] = client.to_table(bounded, {})
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(rerun.seconds)
    try:
        if thread.is_alive():
            try:
                client.interrupt_all()
            except Exception:  # noqa: BLE001 - the server may be gone: the limit is the learner's reason all the same
                pass
            if rerun.stalled is not None:
                rerun.stalled()
            thread.join(5)
            rerun.timeouts += 1
            found["limit"] = say("rerun.time", rerun.lang, seconds=math.ceil(rerun.seconds))
            return
    finally:
        client.close()  # the channel only (an unfinished call with it): the learner's session stays as it is
    if "error" in result:
        raise result["error"]
    table, schema, _ = result["table"]
    if table.num_rows > rerun.rows:
        found["limit"] = say("rerun.rows", rerun.lang, rows=rerun.rows)
        return
    names = [f.name for f in schema.fields]
    found["columns"] = [[f.name, f.dataType.simpleString()] for f in schema.fields]
    found["rows"] = [[_plain(row[n]) for n in names] for row in table.to_pylist()]


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
