"""A Spark standalone cluster on this machine's loopback, from the installed pyspark: a master and workers started
with `bin/spark-class` (pip's pyspark has no `sbin/start-master.sh`), each worker with a work folder of its own.

For trying `rai-lab grade --master` (`rai-lab cluster`, `make cluster`), the tests and the benchmark; a real cluster
is started by its administrators (docs/cluster.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyspark

from rai_lab.grading.instructor.workers import kill_family
from rai_lab.spark.server import free_port

SPARK_HOME = Path(pyspark.__file__).resolve().parent


class Cluster:
    """A master on 127.0.0.1 and `workers` workers of `cores` cores and `memory` each, their logs and work folders
    under `root`. `url` is the master's; `stop()` ends every process started (the executors with their workers)."""

    def __init__(self, root: Path, workers: int = 2, cores: int = 1, memory: str = "1g"):
        self.root = root.resolve()
        self.cores, self.memory = cores, memory
        self.master: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = []
        self.logs: list[Path] = []
        self.url = ""
        self.count = workers

    def env(self) -> dict[str, str]:
        conf = self.root / "conf"  # empty: no spark-defaults.conf of the machine's changes the cluster
        conf.mkdir(parents=True, exist_ok=True)
        from rai_lab.spark import cds

        # The master and the workers only place executors: the JIT's quick tier and the kit's class archive (as every
        # Spark JVM of the kit) start them on about half the CPU (2.8 s instead of 5 s each here).
        daemon = os.environ.get("SPARK_DAEMON_JAVA_OPTS") or cds.with_archive()
        return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_CONF_DIR": str(conf),
                "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable,
                "SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_JAVA_OPTS": daemon}

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        with open(log, "ab") as handle:
            return subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=handle,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(),
                                    cwd=self.root, start_new_session=True)

    @staticmethod
    def _wait_for(log: Path, pattern: str, process: subprocess.Popen, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, log.read_text(errors="replace")) if log.exists() else None
            if found:
                return found
            if process.poll() is not None:
                break
            time.sleep(0.2)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"Spark {log.stem} did not start (see {log}):\n{tail}")

    def start(self, timeout: float = 120) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            port = free_port()
            self.master = self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                                 "--port", str(port), "--webui-port", "0"])
            self._wait_for(self.root / "master.log", r"I have been elected leader", self.master, timeout)
            self.url = f"spark://127.0.0.1:{port}"
            for index in range(self.count):  # started side by side, each a JVM and its launcher's
                self.add_worker(index, wait=False)
            for index in range(self.count):
                self._wait_for(self.root / f"worker-{index}.log", r"Successfully registered with master",
                               self.workers[index], timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self, index: int, timeout: float = 120, wait: bool = True) -> None:
        work = self.root / f"worker-{index}"
        work.mkdir(parents=True, exist_ok=True)
        process = self._start(f"worker-{index}", [
            "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1", "--cores", str(self.cores),
            "--memory", self.memory, "--work-dir", str(work), "--webui-port", "0"])
        self.workers.append(process)
        if wait:
            self._wait_for(self.root / f"worker-{index}.log", r"Successfully registered with master", process, timeout)

    def kill_worker(self, index: int) -> None:
        """Worker `index` killed outright with its executors and all they started, as when its host goes down."""
        process = self.workers[index]
        if process is not None:
            kill_family(process)
            self.workers[index] = None

    def pids(self) -> list[int]:
        return [p.pid for p in [self.master, *self.workers] if p is not None]

    def stop(self) -> None:
        for index in range(len(self.workers)):
            self.kill_worker(index)
        if self.master is not None:
            kill_family(self.master)
            self.master = None

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`make cluster`: a master and workers on this machine's loopback until Ctrl-C, for `rai-lab grade --master`."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m rai_lab.grading.cluster.standalone", description=main.__doc__)
    parser.add_argument("--workers", type=int, default=2, help="Spark workers (default: 2)")
    parser.add_argument("--cores", type=int, default=1, help="cores per worker (default: 1)")
    parser.add_argument("--memory", default="1g", help="memory per worker (default: 1g)")
    parser.add_argument("--dir", default=None, help="logs and work folders (default: a new folder under /tmp)")
    args = parser.parse_args(argv)
    import tempfile

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="rai-lab-cluster-"))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    cluster = Cluster(root, workers=args.workers, cores=args.cores, memory=args.memory)
    try:
        cluster.start()
        print(f"Spark standalone cluster: {cluster.url} ({args.workers} workers of {args.cores} core(s), "
              f"logs and work folders in {root})", flush=True)
        print(f"grade on it:  SPARK_LOCAL_IP=127.0.0.1 rai-lab grade SUBMISSIONS --out DIR --master {cluster.url}",
              flush=True)
        print("Ctrl-C stops it.", flush=True)
        while all(p is not None and p.poll() is None for p in [cluster.master, *cluster.workers]):
            time.sleep(1)
        print("a process of the cluster stopped: stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
