"""A local Spark Connect server from the installed pyspark: start, status, stop (`rai-lab spark`).

pyspark 4.3's wheel ships the Connect server's jar and scripts, so this works offline. The server
binds to 127.0.0.1 only; its logs and pid file live in a kit-owned folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rai_lab import paths
from rai_lab.spark import cds
from rai_lab.spark import session as spark_mod
from rai_lab.errors import JavaMissingError, RaiLabError
from rai_lab.messages import say

DEFAULT_PORT = 15002
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def state_dir() -> Path:
    base = os.environ.get("RAI_LAB_SPARK_STATE")
    return Path(base) if base else paths.cache_dir() / "spark-connect"


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a server about to start there)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass
class ServerStatus:
    running: bool
    url: str | None = None
    pid: int | None = None
    log: Path | None = None


def _environment(state: Path) -> dict[str, str]:
    # With SPARK_REMOTE set, spark-submit would start a Connect *client*, not the server.
    inherited = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    return {
        **inherited,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOG_DIR": str(state / "logs"),
        "SPARK_PID_DIR": str(state / "pids"),
        "SPARK_IDENT_STRING": "rai-lab",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }


def _pid_file(state: Path) -> Path | None:
    files = sorted((state / "pids").glob(f"*{SERVER_CLASS}*.pid"))
    return files[0] if files else None


def _alive(pid: int) -> bool:
    """Running (a zombie, which a subreaper has not reaped yet, has exited: not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status(state: Path | None = None) -> ServerStatus:
    state = state or state_dir()
    pid_file = _pid_file(state)
    if not pid_file:
        return ServerStatus(False)
    pid = int(pid_file.read_text().strip() or 0)
    port_file = state / "port"
    port = int(port_file.read_text()) if port_file.exists() else DEFAULT_PORT
    logs = sorted((state / "logs").glob("*.out"))
    if pid and _alive(pid):
        return ServerStatus(True, f"sc://127.0.0.1:{port}", pid, logs[-1] if logs else None)
    return ServerStatus(False, pid=pid, log=logs[-1] if logs else None)


def start(port: int = DEFAULT_PORT, state: Path | None = None, timeout: float = 120,
          java_options: str = spark_mod.SMALL_DATA_JAVA_OPTIONS,
          conf: dict[str, str] | None = None) -> ServerStatus:
    """Start the server (or say it already runs), wait for its port, and warm it with one query."""
    state = state or state_dir()
    current = status(state)
    if current.running:
        return current
    problem = spark_mod.java_problem()
    if problem:
        raise JavaMissingError(say("java_missing", None, reason=problem))
    if _port_open(port):
        raise RaiLabError(f"port {port} on 127.0.0.1 is taken by another program; choose another with --port")
    for sub in ("logs", "pids"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "port").write_text(str(port))
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={state} {cds.with_archive(java_options)}".strip(),
        **(conf or {}),
    }
    args = [str(spark_home() / "sbin" / "start-connect-server.sh")]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    done = subprocess.run(args, env=_environment(state), capture_output=True, text=True, cwd=state, timeout=60)
    if done.returncode != 0:
        raise RaiLabError(f"the Spark Connect server did not start: {(done.stderr or done.stdout).strip()[-500:]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(state)
        if not current.running and current.pid:
            break
        if _port_open(port):
            _warm(f"sc://127.0.0.1:{port}")
            return status(state)
        time.sleep(0.5)
    log = status(state).log
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:]) if log else ""
    stop(state)
    raise RaiLabError(f"the Spark Connect server did not open port {port} in {timeout:.0f} s. {log}:\n{tail}")


WARM = "from pyspark.sql import SparkSession\nspark = SparkSession.builder.remote({url!r}).getOrCreate()\n" \
       "spark.range(1).count()\nspark.stop()"


def _warm(url: str) -> None:
    """One query, so that the first learner does not pay for the server's first job. In a process of its own:
    the caller (a grading batch's holder waits for the whole batch) need not keep the Connect client in memory."""
    subprocess.run([sys.executable, "-c", WARM.format(url=url)], capture_output=True, timeout=120)


def stop(state: Path | None = None, timeout: float = 60) -> bool:
    """Stop the server and wait for its JVM to exit (the script returns before it does)."""
    state = state or state_dir()
    current = status(state)
    if not current.pid:
        return False
    subprocess.run([str(spark_home() / "sbin" / "stop-connect-server.sh")], env=_environment(state),
                   capture_output=True, text=True, timeout=60)
    deadline = time.monotonic() + timeout
    while _alive(current.pid) and time.monotonic() < deadline:
        time.sleep(0.25)
    if _alive(current.pid):
        os.kill(current.pid, signal.SIGKILL)
    pid_file = _pid_file(state)
    if pid_file:
        pid_file.unlink(missing_ok=True)
    return True
