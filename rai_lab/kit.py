"""The kit cell of the lab: start replay or live calls, embedded Spark, and learner-facing hints."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from pathlib import Path

from rai_lab import cassette as cassettes
from rai_lab import events, hints, paths, quota, replay
from rai_lab import spark as spark_mod
from rai_lab.errors import CassetteError, RaiLabError
from rai_lab.messages import detect_lang, say

MODES = ("replay", "live")
# Set by `rai-lab grade` for the learner's kernel: replay only, answered by its replay service (rai_lab.replay).
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
    pacer: quota.Pacer | None = None

    def stop(self) -> None:
        if self.pacer is not None:
            quota.uninstall()
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
    5,000 by default; None or 0: no pacing), as Azure counts them (rai_lab.quota)."""
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
        context = cassettes.use(mode, path, lang=lang, extra=extra, keep_errors=bool(os.environ.get(cassettes.KEEP_ERRORS_ENV)))
        context.__enter__()
        count = len(context.cassette.data) if context.cassette else 0
        provenance = dict(context.cassette._metadata.get("provenance") or {}) if mode == "replay" else {}
    session = KitSession(mode=mode, deployment=deployment, cassette_path=path, lang=lang, context=context,
                         provenance=provenance)
    _current = session
    atexit.register(session.stop)
    _install_ipython_hooks(lang)
    shown = str(path) if remote else cassettes.display_path(path)
    events.emit("start", mode=mode, deployment=deployment, lang=lang, cassette=shown, provenance=session.provenance)
    print(say("banner", lang, mode=mode, deployment=deployment))
    if mode == "replay":
        print(say("banner_replay", lang, cassette=shown, count=count))
        print(cassettes.provenance_line(session.provenance, lang))
    else:
        print(say("banner_live", lang, cassette=shown))
        if tpm:
            session.pacer = quota.Pacer(int(tpm), lang=lang, time_scale=quota.time_scale())
            quota.install(session.pacer)
            exercise = quota.plan(EXERCISE_CALLS, int(tpm))
            further = quota.plan(EXERCISE_CALLS + FURTHER_CALLS, int(tpm)) - exercise
            shown_tpm = f"{int(tpm):,}".replace(",", "\u202f" if lang == "fr" else ",")
            print(say("banner_quota", lang, tpm=shown_tpm, exercise=round(exercise), further=max(1, round(further / 60))))
    session.spark = spark_mod.session(lang)
    where = spark_mod.describe(session.spark)
    events.emit("spark", target=where)
    print(say("banner_spark", lang, spark=where))
    return session


def _install_ipython_hooks(lang: str) -> None:
    """Hints under Azure OpenAI errors; DataFrame sizes reported to `rai-lab run`."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    import openai

    def show_with_hint(self, etype, value, tb, tb_offset=None):
        stb = self.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        hint = hints.explain(value, lang)
        if hint:
            stb = [*stb, "", f"rai-lab: {hint}"]
            events.emit("error", ename=etype.__name__, hint=hint)
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((openai.APIError,), show_with_hint)
    # A Spark Connect DataFrame answers every attribute (df.anything is a Column), so IPython
    # distrusts its _repr_html_ and shows plain text; register its table renderer by name.
    shell.display_formatter.formatters["text/html"].for_type_by_name(
        "pyspark.sql.connect.dataframe", "DataFrame", lambda df: df._repr_html_()
    )
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
