"""The kit cell of the lab: start replay or live calls, embedded Spark, and learner-facing hints."""

from __future__ import annotations

import atexit
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rai_lab import events, paths, tables, tracebacks
from rai_lab.azure import pacing, provider
from rai_lab.azure.cassette import player
from rai_lab.azure.cassette.files import display_path, provenance_line, provenance_of
from rai_lab.errors import CassetteError, RaiLabError
from rai_lab.grading.sandboxed import replay
from rai_lab.messages import detect_lang, say
from rai_lab.spark import session as spark_mod

MODES = ("replay", "live")
# Set by `rai-lab grade` for the learner's kernel: replay only, answered by its replay service (rai_lab.grading.worker.replay).
GRADING_ENV = "RAI_LAB_GRADING"
LAB_DATAFRAMES = ("neutral_df", "loaded_df")


@dataclass
class KitSession:
    """What `start` set up in this kernel."""

    mode: str
    deployment: str
    cassette_path: Path
    lang: str
    provenance: dict = field(default_factory=dict)
    context: object = None
    spark: object = None
    pacer: pacing.Pacer | None = None
    spark_start: SparkStart | None = None

    def stop(self) -> None:
        if self.spark_start is not None:
            self.spark_start.wait()
        if self.pacer is not None:
            pacing.uninstall()
            self.pacer = None
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None


_current: KitSession | None = None


def current() -> KitSession | None:
    """The kit session of this kernel, if `start` ran."""
    return _current


def resolve_cassette(mode: str, deployment: str, cassette: str | os.PathLike | None) -> Path:
    if cassette:
        return Path(cassette).expanduser().resolve()
    if mode == "replay":
        return paths.reference_cassette(deployment)
    return (Path.cwd() / f"rai-lab-live-{deployment}.yaml").resolve()


# Azure's estimates of the lab's calls (prompt + max_tokens x n), for the wait announced in live mode.
EXERCISE_CALLS = [180] * 10  # max_tokens=100, the exercise's system prompt
FURTHER_CALLS = [1100] * 30  # max_tokens=100, n=10


def start(mode: str = "replay", deployment: str = "gpt-35-turbo", cassette=None, lang: str | None = None,
          tpm: int | None = 5000):
    """Start the kit: calls replayed from (or recorded to) a cassette, then the Spark session.

    In live mode the calls are paced to `tpm`, the deployment's tokens per minute (the exercise's
    5,000 by default; None or 0: no pacing), as Azure counts them (rai_lab.azure.quota)."""
    global _current
    lang = detect_lang(lang)
    if os.environ.get(GRADING_ENV):  # graded: replay only (from the grader's replay service when it gives one)
        mode, cassette = "replay", None
    if mode not in MODES:
        raise RaiLabError(say("bad_mode", lang, mode=mode))
    if _current is not None:  # the kit cell was run again: leave the previous cassette first
        _current.stop()
        _current = None
    remote = os.environ.get(replay.REPLAY_ENV) if os.environ.get(GRADING_ENV) else None
    if remote:  # grading: the grader's replay service answers, from outside this kernel
        context = replay.RemoteReplay(remote, lang)
        context.__enter__()
        answer = context.start(deployment)
        if "error" in answer:
            context.__exit__(None, None, None)
            raise CassetteError(answer["error"])
        path, count, provenance = Path(answer["cassette"]), answer["count"], answer["provenance"]
    else:
        path = resolve_cassette(mode, deployment, cassette)
        extra = {"deployment": deployment, "lab": "responsible-ai"}
        context = player.use(mode, path, lang=lang, extra=extra, keep_errors=bool(os.environ.get(player.KEEP_ERRORS_ENV)))
        context.__enter__()
        count = len(context.cassette.data) if context.cassette else 0
        provenance = provenance_of(context.cassette) if mode == "replay" else {}
    session = KitSession(mode=mode, deployment=deployment, cassette_path=path, lang=lang, context=context,
                         provenance=provenance)
    _current = session
    atexit.register(session.stop)
    _install_ipython_hooks(lang)
    shown = str(path) if remote else display_path(path)
    events.emit("start", mode=mode, deployment=deployment, lang=lang, cassette=shown, provenance=session.provenance)
    print(say("banner", lang, mode=mode, deployment=deployment))
    if mode == "replay":
        print(say("banner_replay", lang, cassette=shown, count=count))
        print(provenance_line(session.provenance, lang))
    else:
        print(say("banner_live", lang, cassette=shown))
        if tpm:
            session.pacer = pacing.Pacer(int(tpm), lang=lang, time_scale=pacing.time_scale())
            pacing.install(session.pacer)
            exercise = pacing.plan(EXERCISE_CALLS, int(tpm))
            further = pacing.plan(EXERCISE_CALLS + FURTHER_CALLS, int(tpm)) - exercise
            shown_tpm = f"{int(tpm):,}".replace(",", say("thousands_separator", lang))
            print(say("banner_quota", lang, tpm=shown_tpm, exercise=round(exercise), further=max(1, round(further / 60))))
    shell = _shell()
    if os.environ.get(GRADING_ENV):
        graded_stand_ins(shell.user_ns if shell is not None else None, getattr(shell, "kernel", None))
    if shell is None or os.environ.get(GRADING_ENV):  # a script, or graded: Spark now, as before
        session.spark = _spark_ready(spark_mod.session(lang), lang)
    else:  # the learner reads and runs the next cells while embedded Spark starts
        session.spark_start = SparkStart(lang)
        print(say("spark_starting", lang))
        _wait_for_spark_before(shell, session)
    return session


# What a key read while graded is: no real key (every call is replayed), and no placeholder (it was read, not typed).
GRADED_SECRET = "rai-lab-graded-stand-in-secret"


class _GradedDbutils:
    """Databricks' dbutils while graded outside Databricks: a secret read from a scope (as the kit advises) is a
    stand-in value; restarting Python (after %pip) does nothing. Nothing else of dbutils exists here."""

    class secrets:  # noqa: N801 - dbutils.secrets
        @staticmethod
        def get(scope: str, key: str) -> str:
            return GRADED_SECRET

    class library:  # noqa: N801 - dbutils.library
        @staticmethod
        def restartPython() -> None:  # noqa: N802 - Databricks' name
            return None


def graded_stand_ins(namespace: dict | None, kernel=None) -> None:
    """While graded the kernel has no keyboard and is not in Databricks: a learner who reads the key as the kit advises
    (getpass.getpass(), or dbutils.secrets.get in Databricks) gets a stand-in secret instead of an error, so the
    same answers score the same wherever they were written. `namespace`: the notebook's (dbutils goes there);
    `kernel`: ipykernel's, which puts its own getpass in place for every cell it runs (its `getpass` is replaced)."""
    import getpass

    def stand_in(prompt: str = "Password: ", stream=None) -> str:
        return GRADED_SECRET

    getpass.getpass = stand_in
    if kernel is not None:
        kernel.getpass = stand_in
    if namespace is not None and "dbutils" not in namespace:
        namespace["dbutils"] = _GradedDbutils()


def _spark_ready(spark, lang: str):
    where = spark_mod.describe(spark)
    events.emit("spark", target=where)
    print(say("banner_spark", lang, spark=where))
    return spark


BACKGROUND_NICENESS = 10


class SparkStart:
    """Spark's session, started in a thread of the kernel's own (a JVM takes 10-20 s on 2 cores)."""

    def __init__(self, lang: str):
        self.lang, self.spark, self.error = lang, None, None
        self.thread = threading.Thread(target=self._run, name="rai-lab-spark", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            # A lower CPU priority for this thread, and so for the JVM it starts (Linux: nice is per
            # thread, inherited by a child): on 2 cores the learner's next cells run at full speed.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
        except (AttributeError, OSError):  # not Linux, or not allowed: the same start, at normal priority
            pass
        try:
            self.spark = spark_mod.session(self.lang)
        except BaseException as err:  # noqa: BLE001 - kept for the cell that needs Spark
            self.error = err

    def wait(self):
        self.thread.join()
        return self.spark


# A cell that may use Spark: it waits until the session is up (the learner's getOrCreate() returns it).
USES_SPARK = re.compile(r"spark|DataFrame|_df\b|display\(|bias\.")


def _wait_for_spark_before(shell, session: KitSession) -> None:
    def before(info=None) -> None:
        start = session.spark_start
        if start is None or not USES_SPARK.search(getattr(info, "raw_cell", "") or ""):
            return
        if start.thread.is_alive():
            print(say("spark_waiting", session.lang), flush=True)
        start.wait()
        session.spark_start = None
        shell.events.unregister("pre_run_cell", before)
        if start.error is not None:  # the cell goes on, and its own Spark call fails with the same cause
            print(say("kit_says", session.lang, message=start.error))
        else:
            session.spark = _spark_ready(start.spark, session.lang)

    for callback in list(shell.events.callbacks["pre_run_cell"]):
        if getattr(callback, "__name__", "") == "rai_lab_wait_for_spark":
            shell.events.unregister("pre_run_cell", callback)
    before.__name__ = "rai_lab_wait_for_spark"
    shell.events.register("pre_run_cell", before)


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def require_azure_variables() -> None:
    """Stop with what to do when an Azure OpenAI variable would break the calls (rai_lab.azure.provider), in
    this session's mode and language; never while grading, where the checks alone judge them."""
    if os.environ.get(GRADING_ENV):
        return
    session = _current
    problem = provider.calls_problem(live=bool(session and session.mode == "live"),
                                  lang=session.lang if session else detect_lang())
    if problem:
        raise RaiLabError(problem)


def _install_ipython_hooks(lang: str) -> None:
    """Errors a learner can act on (rai_lab.tracebacks); tables; DataFrame sizes reported to `rai-lab run`."""
    shell = _shell()
    if shell is None:
        return
    tracebacks.install(shell, lang)
    # Tables a learner can read (text left-aligned, numbers rounded, links short: rai_lab.tables).
    # Registered by name: a Spark Connect DataFrame answers every attribute (df.anything is a
    # Column), so IPython would distrust its _repr_html_.
    html = shell.display_formatter.formatters["text/html"]
    for module in ("pyspark.sql.connect.dataframe", "pyspark.sql.classic.dataframe", "pyspark.sql.dataframe"):
        html.for_type_by_name(module, "DataFrame", tables.spark_html)
    html.for_type_by_name("pandas.core.frame", "DataFrame", tables.pandas_html)
    # display(df) would run the query twice: once for the HTML table, once more for the plain-text
    # one. The plain text (only read where HTML cannot be shown) says the columns instead.
    for module in ("pyspark.sql.connect.dataframe", "pyspark.sql.classic.dataframe", "pyspark.sql.dataframe"):
        shell.display_formatter.formatters["text/plain"].for_type_by_name(module, "DataFrame", _plain_dataframe)
    if os.environ.get(events.EVENTS_ENV):
        _watch_dataframes(shell)


def _plain_dataframe(df, printer, cycle) -> None:
    columns = ", ".join(f"{field.name}: {field.dataType.simpleString()}" for field in df.schema.fields)
    printer.text(f"DataFrame[{columns}]")


def _watch_dataframes(shell) -> None:
    seen: dict[str, int] = {}

    def report(result=None) -> None:
        for name in LAB_DATAFRAMES:
            value = shell.user_ns.get(name)
            if value is None or seen.get(name) == id(value) or not hasattr(value, "count"):
                continue
            seen[name] = id(value)
            try:
                events.emit("dataframe", name=name, rows=value.count(), columns=list(value.columns))
            except Exception as err:  # noqa: BLE001 - a report must never break the learner's cell
                events.emit("dataframe", name=name, error=type(err).__name__)

    for callback in list(shell.events.callbacks["post_run_cell"]):
        if getattr(callback, "__name__", "") == "rai_lab_report":
            shell.events.unregister("post_run_cell", callback)
    report.__name__ = "rai_lab_report"
    shell.events.register("post_run_cell", report)
