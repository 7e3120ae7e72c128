"""The lab through Databricks Connect, in its own environment, against a local Spark Connect server.

`make test-databricks` builds .venv-databricks (databricks-connect 16.1, its own pyspark 3.5,
numpy<2) and runs these tests with RAI_LAB_DATABRICKS_PYTHON pointing at it; the server is the
open-source Spark Connect 4.3 from the main environment, started on 127.0.0.1 by the test.

What this covers: `rai-lab run --spark databricks` from that environment, the kit creating a
`DatabricksSession` (`DatabricksSession.builder.remote(url).getOrCreate()`), the learner's
unchanged `SparkSession.builder.getOrCreate()` picking it up, the lab's DataFrames built and
displayed by databricks-connect's client, the graded checks passing, and the clear error when
Databricks settings are missing. What it cannot cover here: a Databricks workspace itself
(authentication, clusters, Unity Catalog, Databricks' own server-side features).
"""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import ROOT, assert_lab_ran_cleanly

pytestmark = [pytest.mark.databricks, pytest.mark.spark, pytest.mark.notebook]

PYTHON = os.environ.get("RAI_LAB_DATABRICKS_PYTHON", "")
DATABRICKS_VARIABLES = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLUSTER_ID", "DATABRICKS_CONFIG_PROFILE",
                        "DATABRICKS_SERVERLESS_COMPUTE_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_AUTH_TYPE",
                        "SPARK_REMOTE")


def in_databricks_env(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    assert PYTHON and os.path.exists(PYTHON), "run these tests with `make test-databricks` (RAI_LAB_DATABRICKS_PYTHON)"
    full = {k: v for k, v in os.environ.items() if k not in DATABRICKS_VARIABLES}
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, env={**full, **(env or {})}, cwd=ROOT,
                          timeout=timeout)


@pytest.fixture(scope="module")
def server(connect_server):
    return connect_server[0]


def test_the_environment_is_separate_and_has_its_own_pyspark():
    done = in_databricks_env("-c", "import databricks.connect, pyspark, numpy, rai_lab; "
                                   "print(pyspark.__version__, numpy.__version__)")
    assert done.returncode == 0, done.stderr
    pyspark_version, numpy_version = done.stdout.split()
    assert pyspark_version.startswith("3.5.") and numpy_version.startswith("1.")
    import pyspark

    assert pyspark.__version__ == "4.3.0"  # the main environment is untouched


def test_the_lab_runs_through_databricks_connect(server, tmp_path):
    done = in_databricks_env("-m", "rai_lab", "run", "--spark", "databricks", "--checks", "--no-progress",
                             "--out", str(tmp_path), env={"SPARK_REMOTE": server})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Databricks Connect ({server}, Spark 4.3.0)" in done.stdout
    assert "neutral_df 5 lignes, loaded_df 5 lignes" in done.stdout
    assert_lab_ran_cleanly(tmp_path)
    # The Databricks path of the first cell ran and installed nothing: the pinned versions are there.
    import nbformat

    first = nbformat.read(tmp_path / "responsible-ai-fr" / "responsible_ai.ipynb", 4).cells
    install = next(c for c in first if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "kit_databricks")
    assert [o.get("text") for o in install.outputs] == ["openai 1.42.0, httpx 0.27.2\n"]


def test_missing_databricks_settings_are_a_clear_error(tmp_path):
    done = in_databricks_env("-m", "rai_lab", "run", "--spark", "databricks", "--no-progress", "--out", str(tmp_path),
                             env={"HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "DATABRICKS_HOST" in done.stderr and "DATABRICKS_CLUSTER_ID" in done.stderr
    assert "DATABRICKS_TOKEN" in done.stderr and "~/.databrickscfg" in done.stderr
