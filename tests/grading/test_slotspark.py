"""A grading slot's own Spark Connect server, really started (unsandboxed here: the sandboxed one runs in every
grading batch): the grader's bounded re-run of a learner's DataFrame in the learner's own session, and the checks
between two learners that start the server anew when it must be."""

from __future__ import annotations

import os
import signal
import time

import pytest

from rai_lab import evidence
from rai_lab.grading.worker.rerun import Rerun, rerun_frames
from rai_lab.grading.worker.slotspark import SlotSpark

pytestmark = [pytest.mark.spark]


@pytest.fixture(scope="module")
def slot(tmp_path_factory):
    root = tmp_path_factory.mktemp("slot")
    (root / "w0").mkdir()
    logs = root / "logs"
    logs.mkdir()
    server = SlotSpark(root / "w0", "en", sealed=False, logs=logs, index=0, env=dict(os.environ))
    server.start()
    server.wait()
    yield server
    server.stop()


@pytest.fixture
def learner(slot):
    """A learner's session on the slot's server, as their kernel holds it."""
    from pyspark.sql.connect.session import SparkSession

    spark = SparkSession.builder.remote(slot.url).create()
    yield spark
    spark.stop()


def rerun(slot, spark, frames: dict, seconds: float = 20, stalled=None) -> dict:
    """What the grader reads of each DataFrame: the kernel's report (plans only), re-run by the grader."""
    report = evidence.snapshot(list(frames), frames, rows=False)
    rerun_frames(report, Rerun(url=slot.url, lang="en", seconds=seconds, stalled=stalled))
    return report["vars"]


def test_a_temporary_view_is_there_when_the_grader_reruns_the_plan(slot, learner):
    """Does a correct answer built with a temporary view and spark.sql score (the re-run is in the learner's session)?"""
    learner.createDataFrame([("a",), ("b",)], ["neutral_answer"]).createOrReplaceTempView("answers")
    frames = {"neutral_df": learner.sql("SELECT neutral_answer FROM answers"),
              "loaded_df": learner.createDataFrame([("c",)], ["loaded_answer"]).toDF("loaded_answer")}
    found = rerun(slot, learner, frames)
    assert found["neutral_df"]["rows"] == [["a"], ["b"]] and "error" not in found["neutral_df"]
    assert found["loaded_df"]["columns"] == [["loaded_answer", "string"]] and found["loaded_df"]["rows"] == [["c"]]
    assert learner.sql("SELECT count(*) FROM answers").collect()[0][0] == 2  # the learner's session is untouched


def test_a_huge_lazy_plan_reads_only_up_to_the_row_limit(slot, learner):
    """Does a 30-million-row DataFrame, never collected, cost the grader only its row limit?"""
    found = rerun(slot, learner, {"neutral_df": learner.range(30_000_000).selectExpr("cast(id as string) as x")})
    assert "more than 1000 rows" in found["neutral_df"]["limit"] and "rows" not in found["neutral_df"]


def test_a_sleeping_udf_is_stopped_at_the_time_limit_and_the_next_learner_finds_the_server_idle(slot, learner,
                                                                                               monkeypatch):
    """Does a UDF that sleeps cost the grader its time limit, and nothing after it (its Python worker is killed)?"""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # as in a kernel on Spark Connect: udf() is Connect's
    from pyspark.sql.functions import udf

    @udf("string")
    def slow(value):
        import time as clock

        clock.sleep(3600)
        return value

    stalled = []
    frame = learner.createDataFrame([("a",)], ["neutral_answer"]).select(slow("neutral_answer").alias("neutral_answer"))
    found = rerun(slot, learner, {"neutral_df": frame}, seconds=3, stalled=lambda: stalled.append(slot.clear_python()))
    assert "went over its limit of 3 s" in found["neutral_df"]["limit"] and stalled
    assert slot.ready_for_next() in (None, "busy")  # cleared, or started anew if the JVM was still busy
    from pyspark.sql.connect.session import SparkSession

    after = SparkSession.builder.remote(slot.url).create()
    assert after.range(10).count() == 10
    after.stop()


def test_what_spark_shares_between_sessions_is_emptied_before_the_next_learner(slot, learner):
    """Does a global temporary view, a table or a cached DataFrame of one learner reach the next? It must not."""
    learner.createDataFrame([("planted",)], ["x"]).createOrReplaceGlobalTempView("planted")
    learner.sql("CREATE TABLE planted_table (x STRING) USING parquet")
    assert slot.ready_for_next() is None
    from pyspark.sql.connect.session import SparkSession

    after = SparkSession.builder.remote(slot.url).create()
    assert after.sql("SHOW VIEWS IN global_temp").collect() == []
    assert [row["tableName"] for row in after.sql("SHOW TABLES IN default").collect()] == []
    after.stop()


def test_a_server_killed_by_its_learner_is_noticed_and_started_anew(slot):
    """Does the grader see that the server stopped while a learner was graded, and start it again before the next?"""
    assert not slot.failed_during()
    os.kill(slot.pid, signal.SIGKILL)  # what a UDF that signals every process it can reach does (unsandboxed here)
    deadline = time.monotonic() + 10
    while not slot.failed_during() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slot.failed_during()
    assert slot.ready_for_next() in ("died", "gone")
    assert not slot.failed_during()
    from pyspark.sql.connect.session import SparkSession

    after = SparkSession.builder.remote(slot.url).create()
    assert after.range(3).count() == 3
    after.stop()
