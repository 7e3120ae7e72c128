"""The grader's re-run of a learner's Spark DataFrames: each plan the kernel reported (`rai_lab.evidence.report`)
is run by Spark itself, in the learner's own session on the learner's own server, within limits; the rows a check
reads are Spark's, not the kernel's word."""

from __future__ import annotations

import base64
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rai_lab.evidence import plain
from rai_lab.messages import say

RERUN_ROWS = 1000  # the most rows the grader reads of a learner's DataFrame (the lab's largest, samples_df, has 300)


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
    found["rows"] = [[plain(row[n]) for n in names] for row in table.to_pylist()]
