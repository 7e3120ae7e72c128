"""The kit's Spark session settings, and what a learner without Java is told."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rai_lab.spark import session as spark


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_missing_java_gets_a_clear_message(lang):
    """No Java: a JavaMissingError that says how to install it, before any JVM is tried."""
    code = f"from rai_lab.spark import session\nsession.session({lang!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PATH": "/nonexistent", "HOME": "/tmp"})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("rai_lab.errors.JavaMissingError:")
    assert "openjdk=17" in last and "SPARK_REMOTE" in last
    assert ("Java 17 est nécessaire" in last or "a besoin de Java 17" in last) if lang == "fr" else "needs Java 17" in last


def test_a_wrong_java_home_names_the_path_it_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert spark.java_problem() == f"{tmp_path / 'jdk' / 'bin' / 'java'} does not exist (JAVA_HOME={tmp_path / 'jdk'})"


def test_java_here_is_usable():
    """The machine running the tests has Java 17+, as the README requires."""
    assert spark.java_problem() is None


def test_local_settings_keep_spark_quiet_and_local():
    conf = {**spark.LOCAL_CONF, **spark.DISPLAY_CONF}
    assert conf["spark.ui.showConsoleProgress"] == "false"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.sql.repl.eagerEval.enabled"] == "true"
