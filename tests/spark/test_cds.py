"""Spark's JVMs start from the installation's class archive (rai_lab/spark/cds.py), and never from a bad one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port

from rai_lab.spark import cds, server

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def archive() -> Path:
    """This installation's archive: `make test` built it (`python -m rai_lab.spark.cds`); built here otherwise."""
    return cds.build()


def test_a_spark_connect_server_starts_from_the_archive(archive, tmp_path):
    """Does `rai-lab spark start`'s server map the archive (Java maps it only once it has checked it) and answer?"""
    assert archive.parent == Path(sys.prefix) / "share" / "rai-lab" and cds.usable(archive)
    status = server.start(port=free_port(), state=tmp_path / "state")
    try:
        assert f"-XX:SharedArchiveFile={archive}" in " ".join(Path(f"/proc/{status.pid}/cmdline").read_bytes()
                                                              .decode().split("\0"))
        assert str(archive) in Path(f"/proc/{status.pid}/maps").read_text()  # Java took it, not just was told of it
        # mapped where it was written (cds.MAPPING): its read-only part stays the file's pages, shared by every JVM;
        # relocated, Java rewrote its pointers and about 80 % of it became the JVM's own
        resident, private = _archive_pages(status.pid, archive)
        assert resident > 0 and private < 0.6 * resident, (resident, private)
        done = subprocess.run([sys.executable, "-c", "from pyspark.sql import SparkSession\n"
                               f"spark = SparkSession.builder.remote({status.url!r}).getOrCreate()\n"
                               "print(spark.range(7).count())"], capture_output=True, text=True, timeout=300)
        assert done.stdout.strip() == "7", done.stderr
    finally:
        server.stop(tmp_path / "state")


def test_a_cut_archive_is_refused_and_another_installation_has_none(archive, tmp_path, monkeypatch):
    """A cut archive would crash every JVM that maps it: `usable` refuses it, so a build never keeps one. An
    archive made for other jars or another Java is under another key: a JVM there starts without one."""
    cut = tmp_path / "cut.jsa"
    cut.write_bytes(archive.read_bytes()[:4096])
    assert not cds.usable(cut) and cds.usable(archive)
    assert cds.with_archive("-Xss4m") == f"-Xss4m -XX:SharedArchiveFile={archive} {cds.MAPPING} {cds.QUIET}"
    assert cds.with_archive("-XX:ArchiveClassesAtExit=/x.jsa") == "-XX:ArchiveClassesAtExit=/x.jsa"  # a build's own
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "another-java"))
    assert cds.archive() is None and cds.with_archive("-Xss4m") == "-Xss4m"
    java = Path(shutil.which("java")).resolve().parent.parent
    monkeypatch.setenv("JAVA_HOME", str(java))
    assert cds.archive() == archive



def _archive_pages(pid: int, archive: Path) -> tuple[int, int]:
    """The archive's resident kB in process `pid`, and how many of them are the process's own (written)."""
    resident = private = 0
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and "-" in fields[0] and ":" in fields[3]:  # a mapping's first line
            inside = len(fields) > 5 and fields[5] == str(archive)
        elif inside and fields[0] == "Rss:":
            resident += int(fields[1])
        elif inside and fields[0] == "Anonymous:":
            private += int(fields[1])
    return resident, private
