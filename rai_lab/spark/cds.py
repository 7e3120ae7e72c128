"""The Spark JVM's classes, archived once per installation (Java's class-data sharing, AppCDS).

A Spark JVM loads about 15,000 classes before its first query; with them read from an archive it starts on
half the CPU (measured here, a Spark Connect server to its first query: 12.8 s of CPU without, 6.2 s with). A
grading batch starts one JVM per worker, again after a learner broke one; the test suite about a hundred.

`python -m rai_lab.spark.cds` (run by `make setup` and `make test`) builds the archive: a Spark Connect server
started with -XX:ArchiveClassesAtExit runs a few queries like the lab's, and writes the classes it loaded
when it stops. Every Spark JVM of the kit (`rai-lab spark start`, a batch's servers, a kernel's local
session) then starts from it (`with_archive`). Without an archive, or with one Java cannot use (another
Java, other jars: the key is made of them), a JVM starts as before: nothing else changes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rai_lab import paths

QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # an archive Java cannot use is skipped without a word
# The archive mapped where it was written: Java 17's updates map it elsewhere by default (ArchiveRelocationMode=1, an
# address-randomisation measure), then rewrite each of its pointers, which turns its 180 MB from pages shared by every
# Spark JVM of the machine into about 140 MB private to each (measured in a grading slot's server); with this, 65 MB.
MAPPING = "-XX:+UnlockDiagnosticVMOptions -XX:ArchiveRelocationMode=0"
WORKLOAD = """
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.remote({url!r}).getOrCreate()
answers = [(f"prompt {{i}}", f"{{'He' if i % 2 else 'She'}} is a nurse who cares. " * 3) for i in range(5)]
df = spark.createDataFrame(answers, ["prompt", "answer"])
words = df.select("prompt", F.explode(F.split(F.lower("answer"), "[^a-z]+")).alias("word")).where(F.length("word") > 0)
counts = words.groupBy("prompt", "word").agg(F.count("*").alias("n")).orderBy(F.desc("n"))
counts.join(df, "prompt").withColumn("share", F.col("n") / F.length("answer")).collect()
df.toPandas()
spark.createDataFrame(df.toPandas()).selectExpr("count(*)").collect()
df.select(F.udf(lambda text: len(text), "int")("answer")).collect()
df.createOrReplaceTempView("answers")
spark.sql("SELECT prompt, avg(length(answer)) FROM answers GROUP BY prompt").collect()
spark.stop()
"""


def _java() -> Path | None:
    from rai_lab.spark.session import java_binary

    found = java_binary()
    return Path(found).resolve() if found and Path(found).exists() else None


def _key() -> str | None:
    """What an archive is valid for: this Java, these Spark jars, the JVM options the kit starts Spark with."""
    import pyspark

    from rai_lab.spark.session import SMALL_DATA_JAVA_OPTIONS

    java = _java()
    if java is None:
        return None
    digest = hashlib.sha256(f"{java} {java.stat().st_mtime_ns} {pyspark.__version__} {SMALL_DATA_JAVA_OPTIONS}".encode())
    for jar in sorted((Path(pyspark.__file__).resolve().parent / "jars").glob("*.jar")):
        digest.update(f"{jar.name} {jar.stat().st_size}".encode())
    return digest.hexdigest()[:20]


def _places() -> list[Path]:
    """Where an archive may be: beside the installation (shared by its users, read in a grading sandbox), else in
    the machine's cache of a user who cannot write there."""
    return [Path(sys.prefix) / "share" / "rai-lab", paths.cache_dir() / "spark-cds"]


def archive() -> Path | None:
    """This installation's archive, if one was built."""
    key = _key()
    if key is None:
        return None
    return next((place / f"spark-{key}.jsa" for place in _places() if (place / f"spark-{key}.jsa").is_file()), None)


def with_archive(java_options: str | None = None) -> str:
    """`java_options` (by default the kit's, SMALL_DATA_JAVA_OPTIONS), and the options that start the JVM from the
    archive when there is one."""
    if java_options is None:
        from rai_lab.spark.session import SMALL_DATA_JAVA_OPTIONS

        java_options = SMALL_DATA_JAVA_OPTIONS
    found = None if "ArchiveClassesAtExit" in java_options else archive()
    return f"{java_options} -XX:SharedArchiveFile={found} {MAPPING} {QUIET}".strip() if found else java_options


def build(timeout: float = 600) -> Path:
    """Build the archive (see the module's docstring) unless there is one; its path. Two builds at once each write
    their own file, renamed into place when Java has finished it and can read it back."""
    from rai_lab.errors import RaiLabError
    from rai_lab.spark import server
    from rai_lab.spark.session import SMALL_DATA_JAVA_OPTIONS

    found, key = archive(), _key()
    if found:
        return found
    if key is None:
        raise RaiLabError("no Java to build Spark's class archive for (install Java 17, or set JAVA_HOME)")
    place = next((p for p in _places() if _writable(p)), None)
    if place is None:
        raise RaiLabError(f"nowhere to write Spark's class archive: {' or '.join(map(str, _places()))}")
    target = place / f"spark-{key}.jsa"
    partial = place / f"spark-{key}.{os.getpid()}.partial"
    with tempfile.TemporaryDirectory(prefix="rai-lab-cds-") as state:
        options = f"{SMALL_DATA_JAVA_OPTIONS} -XX:ArchiveClassesAtExit={partial} {QUIET}"
        status = server.start(port=server.free_port(), state=Path(state), java_options=options, timeout=timeout)
        try:
            subprocess.run([sys.executable, "-c", WORKLOAD.format(url=status.url)], capture_output=True, text=True,
                           timeout=timeout, check=True)
        finally:
            exited = _stop_and_wait(status.pid, timeout)  # Java writes the archive as it exits
    try:
        if not (exited and usable(partial)):  # a cut archive crashes the JVM that maps it: never kept
            raise RaiLabError(f"Java did not write a usable class archive ({partial}); Spark starts without one")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def usable(path: Path) -> bool:
    """Does a JVM start with `path` as its archive, mapped as the kit maps it (MAPPING)? A cut or damaged archive
    crashes it (Java 17's own check); a Java without MAPPING's option refuses to start, and builds no archive."""
    java = _java()
    if java is None or not path.is_file():
        return False
    with tempfile.TemporaryDirectory(prefix="rai-lab-cds-check-") as scratch:  # a crash's hs_err file goes there
        try:
            done = subprocess.run([str(java), f"-XX:SharedArchiveFile={path}", *MAPPING.split(), *QUIET.split(),
                                   f"-XX:ErrorFile={scratch}/hs_err_%p.log", "-version"],
                                  capture_output=True, timeout=120, cwd=scratch)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def _writable(place: Path) -> bool:
    try:
        place.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(place, os.W_OK)


def _stop_and_wait(pid: int | None, timeout: float) -> bool:
    """SIGTERM to the server's JVM, then wait for it to exit (archiving its classes takes a while); False if it
    had to be killed."""
    import psutil

    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout)  # a zombie counts as gone (its parent, not us, reaps it)
        return True
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        process.kill()
        return False


if __name__ == "__main__":
    started = time.monotonic()
    print(f"Spark's class archive: {build()} ({time.monotonic() - started:.0f} s)")
