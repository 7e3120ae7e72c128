"""The Spark session the learner's `SparkSession.builder.getOrCreate()` picks up, and where it lives.

TARGETS is the one registry of Spark targets (embedded local Spark, a Spark Connect server,
Databricks Connect): `rai-lab run --spark`, `rai-lab record --spark`, the grader (its kernels
on the batch's Connect server or embedded) and the kernel's kit cell all go through it. Embedded
local Spark (Java 17) is quiet on stderr; every target renders DataFrames as tables.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rai_lab.errors import JavaMissingError, RaiLabError
from rai_lab.messages import say
from rai_lab.spark import cds

LOCAL_CONF = {
    "spark.master": "local[1]",
    "spark.app.name": "rai-lab",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "1",
}
# The lab's data are tens of rows: the JIT's quick tier only and the serial collector. Measured on 2 cores
# (`make lab`): the same 20 s, with a third less CPU (20 s instead of 30). Local sessions, `rai-lab spark
# start` and a grading batch's server all start their JVM with these.
SMALL_DATA_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# Both classic and Connect DataFrames render as an HTML table in Jupyter with these.
DISPLAY_CONF = {
    "spark.sql.repl.eagerEval.enabled": "true",
    "spark.sql.repl.eagerEval.maxNumRows": "20",
    "spark.sql.repl.eagerEval.truncate": "0",
}


def java_binary() -> str | None:
    """The java that Spark runs: JAVA_HOME's, else the one on PATH (None: none there)."""
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else shutil.which("java")


def java_problem() -> str | None:
    """Why Java 17+ cannot be used here, or None when it can."""
    home = os.environ.get("JAVA_HOME")
    java = java_binary()
    if not java or not Path(java).exists():
        return f"{java} does not exist (JAVA_HOME={home})" if home else "java not on PATH"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{java}: {err}"
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return f"{java} -version: {(out.stderr or out.stdout).strip()[:80]}"
    major = int(found.group(1)) if found.group(1) != "1" else int(found.group(2) or 0)
    return None if major >= 17 else f"Java {major} < 17"


def prepare_environment() -> None:
    """Environment for a local Spark JVM: loopback only, this Python for the workers."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def remote_url() -> str | None:
    return os.environ.get("SPARK_REMOTE") or None


DATABRICKS_ENV = "RAI_LAB_SPARK"  # "databricks": a DatabricksSession (rai-lab run --spark databricks)


def databricks_requested() -> bool:
    return os.environ.get(DATABRICKS_ENV) == "databricks"


def databricks_problem() -> str | None:
    """Why Databricks Connect cannot start here (missing package or settings), or None."""
    try:
        import databricks.connect  # noqa: F401
    except ImportError:
        return ("the databricks-connect package is not installed in this environment (it ships its own pyspark, so "
                "it lives in a separate one): run `make databricks-env`, then use .venv-databricks/bin/rai-lab")
    if os.environ.get("SPARK_REMOTE"):
        return None  # an explicit connection string (sc://...;token=...;x-databricks-cluster-id=...)
    profile = os.environ.get("DATABRICKS_CONFIG_PROFILE")
    if profile:
        return None  # host, credentials and cluster come from ~/.databrickscfg
    missing = []
    if not os.environ.get("DATABRICKS_HOST"):
        missing.append("DATABRICKS_HOST (https://adb-<workspace-id>.<n>.azuredatabricks.net)")
    if not (os.environ.get("DATABRICKS_TOKEN") or os.environ.get("DATABRICKS_CLIENT_SECRET")
            or os.environ.get("DATABRICKS_AUTH_TYPE")):
        missing.append("DATABRICKS_TOKEN (a personal access token; or DATABRICKS_AUTH_TYPE for another method)")
    if not (os.environ.get("DATABRICKS_CLUSTER_ID") or os.environ.get("DATABRICKS_SERVERLESS_COMPUTE_ID")):
        missing.append("DATABRICKS_CLUSTER_ID (the cluster's id, from its page or `databricks clusters list`)")
    if missing:
        return ("Databricks Connect needs these environment variables: " + "; ".join(missing)
                + ". Or set DATABRICKS_CONFIG_PROFILE to a profile of ~/.databrickscfg.")
    return None


def _databricks_session(spec: str | None, lang: str):
    problem = databricks_problem()
    if problem:
        raise RaiLabError(problem)
    from databricks.connect import DatabricksSession

    remote = remote_url()
    builder = DatabricksSession.builder.remote(remote) if remote else DatabricksSession.builder
    spark = builder.getOrCreate()  # the learner's SparkSession.builder.getOrCreate() returns it
    for key, value in DISPLAY_CONF.items():
        try:
            spark.conf.set(key, value)
        except Exception:  # noqa: BLE001 - a workspace may forbid a setting; tables still show
            pass
    return spark


def _connect_session(spec: str | None, lang: str):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(spec or remote_url())
    for key, value in DISPLAY_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in DISPLAY_CONF.items():
        spark.conf.set(key, value)
    # The server keeps a session until it times out: end it when the kernel exits (a grading
    # batch's server sees a hundred kernels come and go).
    atexit.register(_release, spark)
    return spark


def _local_session(spec: str | None, lang: str):
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    problem = java_problem()
    if problem:
        raise JavaMissingError(say("java_missing", lang, reason=problem))
    prepare_environment()
    scratch = Path(tempfile.mkdtemp(prefix="rai-lab-spark-"))
    # Spark's scratch (warehouse, shuffle files, Derby) goes when the kernel exits; atexit runs
    # last-registered first, so the session is stopped before its folder is removed.
    atexit.register(shutil.rmtree, scratch, True)
    conf = {
        **LOCAL_CONF,
        **DISPLAY_CONF,
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.local.dir": str(scratch),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={scratch} {cds.with_archive()}",
    }
    _launch_quiet_gateway(conf, scratch / "spark-driver.log")
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    atexit.register(_release, spark)
    return spark


def _describe_databricks(spark) -> str:
    remote = remote_url()
    cluster = os.environ.get("DATABRICKS_CLUSTER_ID")
    where = remote.split(";")[0] if remote else (f"cluster {cluster}" if cluster else "from your profile")
    return f"Databricks Connect ({where}, Spark {spark.version})"


def _describe_local(spark) -> str:
    try:
        master = spark.sparkContext.master
    except Exception:  # noqa: BLE001 - a Connect session has no SparkContext
        return "Spark"
    return f"{master} (embedded, Spark {spark.version})"


@dataclass(frozen=True)
class Target:
    """One place a notebook's Spark can live: how `--spark` names it, what it needs, how the kernel is
    told (its environment), how a session starts there, and how a learner reads where it is."""

    name: str
    spec: str  # how `--spark` writes it, for help and errors
    claims: Callable[[str | None], bool]  # whether a --spark value names this target
    problem: Callable[[], str | None]  # why it cannot start here (None: it can)
    kernel_env: Callable[[str | None], dict[str, str | None]]  # for the kernel (None: unset the variable)
    start: Callable[[str | None, str], object]  # (spec, lang) -> SparkSession, in the kernel
    describe: Callable[[object], str]
    precheck: bool = False  # `rai-lab run` asks `problem` before starting a kernel (else the kit cell says it)


TARGETS = (
    Target("databricks", "databricks", lambda spec: spec == "databricks", databricks_problem,
           lambda spec: {DATABRICKS_ENV: "databricks"}, _databricks_session, _describe_databricks, precheck=True),
    Target("connect", "sc://host:port", lambda spec: bool(spec) and spec.startswith("sc://"), lambda: None,
           lambda spec: {DATABRICKS_ENV: None, "SPARK_REMOTE": spec}, _connect_session,
           lambda spark: f"Spark Connect {remote_url()}"),
    Target("local", "local", lambda spec: spec == "local", java_problem,
           lambda spec: {DATABRICKS_ENV: None, "SPARK_REMOTE": None}, _local_session, _describe_local),
)


def target(spec: str | None) -> Target:
    """The target a `--spark` value names; None: as this process's environment says (SPARK_REMOTE,
    RAI_LAB_SPARK), else embedded local Spark."""
    if spec is None:
        return current()
    for candidate in TARGETS:
        if candidate.claims(spec):
            return candidate
    forms = ", ".join(repr(t.spec) for t in TARGETS)
    raise RaiLabError(f"--spark takes one of {forms}, not {spec!r}")


def current() -> Target:
    """The target this kernel's environment names."""
    if databricks_requested():
        return target("databricks")
    return target(remote_url()) if remote_url() else target("local")


def session(lang: str = "fr"):
    """The active SparkSession on this kernel's target, created with the kit's settings when there is none."""
    return current().start(remote_url(), lang)


def _release(spark) -> None:
    try:
        spark.stop()
    except Exception:  # noqa: BLE001 - the server may be gone already; nothing to release then
        pass


def _launch_quiet_gateway(conf: dict[str, str], log_path: Path) -> None:
    """Start Spark's JVM with its stderr in `log_path`, not in the notebook.

    ipykernel forwards whatever a child process writes to the kernel's stderr into the cell's
    output, and nbgrader scores a cell 0 when it writes to stderr. The JVM prints warnings there
    that no log4j setting silences ("Using incubator modules"), so it gets a file of its own.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    spark_conf = SparkConf(loadDefaults=False)
    for key, value in conf.items():
        spark_conf.set(key, value)
    log = open(log_path, "ab")  # noqa: SIM115 - the JVM writes to it for the kernel's lifetime
    try:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": log, "stderr": log})
    except Exception as err:  # noqa: BLE001 - py4j says only "exited"; the reason is in the log
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise RaiLabError(f"Spark's JVM did not start ({err}). {log_path}:\n" + "\n".join(tail)) from err
    SparkContext._gateway = gateway
    SparkContext._jvm = gateway.jvm


def describe(spark) -> str:
    """How a learner should read where their DataFrames live."""
    return current().describe(spark)
