"""Headless runs of the lab with papermill, and the summary a user reads afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import secrets as _secrets_mod
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rai_lab import events, paths
from rai_lab.azure.cassette import player, scrub
from rai_lab.azure.provider import DEFAULT_API_VERSION, VARIABLES as AZURE_VARS, live_problems
from rai_lab.azure.standin import DEFAULT_DEPLOYMENTS, StandinConfig, StandinServer
from rai_lab.cells import is_check
from rai_lab.errors import RaiLabError
from rai_lab.messages import say
from rai_lab.spark import session as spark_mod


@dataclass
class RunResult:
    """What a run did, read from the kit's events and the executed notebook."""

    lang: str
    mode: str
    deployment: str
    output: Path
    cassette: str | None = None
    provenance: dict = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)
    dataframes: dict[str, int] = field(default_factory=dict)
    spark: str | None = None
    error: str | None = None
    hint: str | None = None
    quota_waits: list[tuple[int, float]] = field(default_factory=list)  # (request, seconds of quota time)

    @property
    def ok(self) -> bool:
        return self.error is None


@contextlib.contextmanager
def environment(values: dict[str, str | None]):
    """Set (or unset, for None) environment variables for a kernel about to start; restored afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def redact_notebook(path: Path, secret_values: list[str]) -> None:
    """Rewrite an executed notebook with every secret value replaced by <redacted>."""
    if not secret_values or not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    cleaned = text
    for secret in sorted(secret_values, key=len, reverse=True):
        cleaned = cleaned.replace(secret, scrub.REDACTED)
        cleaned = cleaned.replace(json.dumps(secret)[1:-1], scrub.REDACTED)
    if cleaned != text:
        path.write_text(cleaned, encoding="utf-8")


def run(
    lang: str = "fr",
    mode: str = "replay",
    deployment: str = "gpt-35-turbo",
    out_dir: str | os.PathLike = "out",
    notebook: str | os.PathLike | None = None,
    cassette: str | os.PathLike | None = None,
    progress: bool = True,
    env: dict[str, str | None] | None = None,
    timeout: int = 600,
    checks: bool = False,
    spark: str | None = None,
    tpm: int | None = None,
) -> RunResult:
    """Execute the lab notebook with papermill; never raises for an error inside the notebook.

    The notebook runs without its check cells, unless `checks` is set (then a ✗ makes the run fail).
    """
    import papermill
    from jupyter_client.manager import KernelManager
    from papermill.exceptions import PapermillExecutionError

    source = Path(notebook) if notebook else paths.solution_notebook(lang)
    if not source.is_file():
        raise RaiLabError(f"notebook not found: {source}")
    target_dir = Path(out_dir).resolve() / paths.ASSIGNMENTS[lang]
    target_dir.mkdir(parents=True, exist_ok=True)
    output = target_dir / paths.NOTEBOOK
    result = RunResult(lang=lang, mode=mode, deployment=deployment, output=output)
    parameters = {"mode": mode, "deployment": deployment, "cassette": str(Path(cassette).resolve()) if cassette else None}
    if tpm is not None:  # else the notebook's own (the exercise's 5,000)
        parameters["tpm"] = tpm
    if mode == "live":
        problems = live_problems({**os.environ, **{k: v for k, v in (env or {}).items() if v is not None}}, lang)
        if problems:  # before any kernel starts: no request may go to a placeholder host
            raise RaiLabError(say("live_refused", lang, problems="; ".join(problems)))
    original = source
    with tempfile.TemporaryDirectory(prefix="rai-lab-run-") as scratch:
        source = _prepared(source, Path(scratch) / paths.NOTEBOOK, checks)
        log = Path(scratch) / "events.jsonl"
        # Where the notebook's Spark lives (rai_lab.spark.session.TARGETS): None keeps what SPARK_REMOTE and
        # RAI_LAB_SPARK say (unset: embedded Spark); "local", sc://host:port, "databricks".
        where = spark_mod.target(spark) if spark is not None else None
        remote = where.kernel_env(spark) if where is not None else {}
        if where is not None and where.precheck:  # checked before any kernel: its settings come from `env` too
            with environment({**remote, **(env or {})}):
                problem = where.problem()
            if problem:
                raise RaiLabError(f"--spark {where.spec}: {problem}")
        kernel_env = {"RAI_LAB_LANG": lang, events.EVENTS_ENV: str(log), **remote, **(env or {})}
        with environment(kernel_env):
            secret_values = scrub.secret_values()
            # IPC transport: the kernel's messages never touch a TCP port (ipykernel warns otherwise).
            kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(scratch) / "kernel"))
            try:
                papermill.execute_notebook(
                    str(source),
                    str(output),
                    parameters=parameters,
                    kernel_name="python3",
                    cwd=str(target_dir),
                    progress_bar=progress,
                    log_output=False,
                    execution_timeout=timeout,
                    language="python",
                    km=kernel,
                )
            except PapermillExecutionError as err:
                result.error = f"{err.ename}: {err.evalue}"
            finally:
                if kernel.has_kernel:  # nbclient leaves a kernel it did not create running
                    kernel.shutdown_kernel(now=False)
                redact_notebook(output, secret_values)
                _record_source(output, original)
                if checks and result.error is None:
                    result.error = _failed_check(output)
        _read_events(result, events.read(str(log)))
    return result


def _failed_check(output: Path) -> str | None:
    """The first check cell that failed (its ✗ lines, on stderr: rai_lab.checking), or None."""
    import nbformat

    if not output.exists():
        return None
    for cell in nbformat.read(output, as_version=4).cells:
        if is_check(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    return " ".join(out.get("text", "").split())
    return None


TEACHING_CASSETTE = "teaching-errors.yaml"
# What the teaching cassette holds: a prompt per answer Azure can give, as the stand-in gives it.
TEACHING = (
    ("Describe a pilot.", "gpt-35-turbo", {"key": "a-wrong-key"}, 401),
    ("Describe a nurse.", "gpt-35-turbo-missing", {}, 404),
    ("Describe a soldier who carries a bomb.", "gpt-35-turbo", {}, 400),  # the prompt filter
    ("Describe a soldier.", "gpt-35-turbo", {}, 200),  # the output filter: a 200 with no content
    ("Describe a chef.", "gpt-35-turbo", {"tpm": 200}, 200),  # spends a small quota...
    ("Describe a farmer.", "gpt-35-turbo", {"tpm": 200}, 429),  # ...so that this one goes over it
)


def record_teaching(target: str | os.PathLike | None = None) -> Path:
    """Record the teaching cassette from the stand-in: one exchange per answer in TEACHING, errors
    kept (scrubbed as every cassette is), to replay what Azure's 401, 404, 429, prompt filter and
    output filter look like. Returns its path."""
    import openai

    target = Path(target) if target else paths.reference_cassette("gpt-35-turbo").with_name(TEACHING_CASSETTE)
    with player.use("live", target, fresh=True, keep_errors=True, extra={"lab": "responsible-ai", "teaching": True}):
        # A stand-in without quota, then one whose quota the second call goes over; its minute lasts 2 s,
        # so that the recorded 429 asks for a short wait (the openai client honours it, twice, on replay).
        for tpm in (0, 200):
            with standin_endpoint(tokens_per_minute=tpm, time_scale=30, output_filter_words=("soldier.",)) as (endpoint, key):
                for prompt, deployment, change, _ in TEACHING:
                    if change.get("tpm", 0) != tpm:
                        continue
                    client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=change.get("key", key),
                                                api_version=DEFAULT_API_VERSION, max_retries=0)
                    try:
                        client.chat.completions.create(model=deployment, max_tokens=100, messages=[
                            {"role": "system", "content": "You are an advanced language model."},
                            {"role": "user", "content": prompt}])
                    except openai.APIStatusError:
                        pass  # recorded: that is the point
    return target


def _prepared(source: Path, target: Path, checks: bool) -> Path:
    """A copy of the notebook to execute: without nbgrader's marker lines, and without its graded
    check cells unless `checks` (a learner's run has none)."""
    import nbformat

    from rai_lab.release import without_markers

    nb = nbformat.read(source, as_version=4)
    if not checks:
        nb.cells = [cell for cell in nb.cells if not is_check(cell)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = without_markers(cell.source)
    nbformat.write(nb, target)
    return target


def _record_source(output: Path, source: Path) -> None:
    """Name the notebook that was run in papermill's metadata, not the temporary copy it ran from
    (paths inside the kit are written relative to it)."""
    import nbformat

    if not output.exists():
        return
    nb = nbformat.read(output, as_version=4)
    recorded = nb.metadata.get("papermill")
    if recorded is None:
        return
    for key, path in (("input_path", source), ("output_path", output)):
        try:
            recorded[key] = str(path.resolve().relative_to(paths.ROOT.resolve()))
        except ValueError:
            recorded[key] = str(path)
    nbformat.write(nb, output)


def _read_events(result: RunResult, records: list[dict]) -> None:
    for record in records:
        kind = record.get("kind")
        if kind == "start":
            result.cassette = record.get("cassette")
            result.provenance = record.get("provenance") or {}
        elif kind == "call":
            result.calls.append(record)
        elif kind == "dataframe" and "rows" in record:
            result.dataframes[record["name"]] = record["rows"]
        elif kind == "spark":
            result.spark = record.get("target")
        elif kind == "error":
            result.hint = record.get("hint")
        elif kind == "quota_wait":
            result.quota_waits.append((record["request"], record["seconds"]))


@contextlib.contextmanager
def standin_endpoint(deployments: dict[str, str] | None = None, **options):
    """A stand-in server on 127.0.0.1 for the duration, with a throwaway key: (endpoint, key)."""
    key = "standin-" + _secrets_mod.token_hex(8)
    server = StandinServer(StandinConfig(api_key=key, deployments=deployments or dict(DEFAULT_DEPLOYMENTS), **options))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.endpoint, key
    finally:
        server.shutdown()
        server.server_close()


def record(
    deployment: str = "gpt-35-turbo",
    target: str | os.PathLike | None = None,
    standin: bool = False,
    lang: str = "fr",
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    tpm: int | None = None,
    keep_errors: bool = False,
    spark: str | None = None,
) -> RunResult:
    """Re-record a cassette: run the lab live (against Azure, or the stand-in) into `target`."""
    target = Path(target) if target else paths.reference_cassette(deployment)
    target = target.resolve()
    partial = target.with_suffix(".recording.yaml")
    if partial.exists():
        partial.unlink()
    with contextlib.ExitStack() as stack:
        # The executed notebook goes to `out_dir`, or to a folder removed once the cassette is written.
        scratch = Path(out_dir) if out_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rai-lab-record-")))
        if standin:
            endpoint, key = stack.enter_context(standin_endpoint())
            env = {"AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_API_KEY": key,
                   "AZURE_OPENAI_API_VERSION": DEFAULT_API_VERSION}
        else:
            missing = [name for name in AZURE_VARS[:2] if not os.environ.get(name)]
            if missing:
                raise RaiLabError(
                    f"recording from Azure needs {', '.join(missing)} in the environment "
                    "(or use --standin to record from the rai-lab stand-in)"
                )
            env = {"AZURE_OPENAI_API_VERSION": os.environ.get("AZURE_OPENAI_API_VERSION", DEFAULT_API_VERSION)}
        if keep_errors:
            env[player.KEEP_ERRORS_ENV] = "1"
        result = run(lang=lang, mode="live", deployment=deployment, out_dir=scratch, cassette=partial,
                     progress=progress, env=env, tpm=0 if standin else tpm, spark=spark)
    if result.ok:
        partial.replace(target)
    return result
