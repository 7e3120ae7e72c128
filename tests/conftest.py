"""Shared fixtures: paths anchored on this file, and a real stand-in server started per test module.

Nothing here imports pyspark or papermill: the `http` tests also run in the second environment
with the newest openai release (`make test-openai-latest`), which has neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "cassettes" / "responsible-ai"
SOLUTIONS = ROOT / "solutions"
LAB = ROOT / "lab"

from rai_lab.exercise import LOADED, NEUTRAL, SYSTEM_PROMPT  # noqa: E402,F401 - the exercise's prompts, written once

STANDIN_KEY = "standin-test-key-0001"

# `make test` runs the suite on every core (pytest-xdist). Each module is one unit of work, so its
# module fixtures (a graded class, a Spark server, a browser) start once. The modules that grade
# batches form two units, each collected first and so started at once, one per core: within a unit, batches
# run one after another, as on an instructor's machine; the two units' batches run side by side, as two
# graders on one machine do (each batch claims uids of its own, and each test looks only for what its own
# batch left behind in /run and in the process table). The other modules share the cores as these end.
BATCH_UNITS = {
    "batches-1": ("test_grading", "test_cluster", "test_formgrader", "test_language", "test_batch_sandbox", "test_stop"),
    "batches-2": ("test_hostile_grading", "test_databricks_exports", "test_classroom"),
}


def _unit(nodeid: str) -> str:
    stem = Path(nodeid.split("::", 1)[0]).stem
    return next((unit for unit, modules in BATCH_UNITS.items() if stem in modules), nodeid.split("::", 1)[0])


@pytest.hookimpl(optionalhook=True)  # the environment of the newest openai has no xdist
def pytest_xdist_make_scheduler(config, log):
    """xdist's loadscope, with a module as the scope and the batch modules as two (BATCH_UNITS).

    xdist_group marks with --dist loadgroup would say the same, but with pytest 9.2 they group nothing:
    xdist renames item._nodeid, which pytest no longer reads (pytest-dev/pytest-xdist#1386, open)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _unit(item.nodeid) not in BATCH_UNITS)  # stable: the rest keep their order


@contextmanager
def running_standin(*options: str, key: str = STANDIN_KEY):
    """Start `python -m rai_lab standin` on a free 127.0.0.1 port; yield (endpoint, key); stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rai_lab", "standin", "--port", "0", "--key", key, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"stand-in did not start: {line!r} {process.stderr.read()}")
        yield line.rsplit(" ", 1)[-1].strip(), key
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def machine_cache(tmp_path_factory):
    """The run's own machine cache (XDG_CACHE_HOME): nothing a grading test reads was left by an earlier run. One
    for the whole run, as a machine has one: xdist's workers share it (their basetemps are in the run's)."""
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "xdg-cache"
    cache.mkdir(exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(cache)


SUBMISSIONS = ROOT / "tests" / "submissions"
# The sample class graded in one batch: every sample but the endless loop, which test_grading's test_time_limits
# grades (a loop costs its cell limit twice in a batch of several workers: stopped there, then graded again alone).
SAMPLE_CLASS_LEFT_OUT = {"endless-loop"}
SAMPLE_CLASS_LIMITS = ("--cell-timeout", "30", "--timeout", "400")
INSTRUCTOR_SECRETS = {
    "AZURE_OPENAI_API_KEY": "instructor-azure-key-7f3a9c",
    "DATABRICKS_TOKEN": "dapi-instructor-token-51b2",
    "MY_SERVICE_SECRET": "instructor-secret-e81d",
}


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """The sample class graded once, with the instructor's secrets in the grader's environment: (out, work, stdout).
    Session-wide: test_grading checks it, and test_cluster compares a cluster's rows with it (both in one batch
    unit, BATCH_UNITS, so that one xdist worker grades it once)."""
    out = tmp_path_factory.mktemp("grades")
    work = tmp_path_factory.mktemp("work")
    class_dir = tmp_path_factory.mktemp("class") / "submissions"
    shutil.copytree(SUBMISSIONS, class_dir, ignore=lambda folder, names: {
        name for name in names if Path(name).stem in SAMPLE_CLASS_LEFT_OUT} if Path(folder) == SUBMISSIONS else set())
    done = rai_lab_command("grade", str(class_dir), "--assignment", "responsible-ai-fr", "--out", str(out),
                           "--work", str(work), *SAMPLE_CLASS_LIMITS, "--no-progress", env=INSTRUCTOR_SECRETS,
                           timeout=3000)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, work, done.stdout


@pytest.fixture(scope="module")
def standin():
    with running_standin() as server:
        yield server


@pytest.fixture
def azure_env(standin, monkeypatch):
    """The three lab variables pointing at the stand-in."""
    endpoint, key = standin
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2023-03-15-preview")
    return endpoint, key


def lab_messages(prompt: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def rai_lab_command(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 600):
    """Run the installed CLI (`python -m rai_lab`) as a user would; return the CompletedProcess.
    A variable given as None in `env` is removed from the environment."""
    full_env = {key: value for key, value in {**os.environ, **(env or {})}.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "rai_lab", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """A real Spark Connect server from `rai-lab spark start` on 127.0.0.1: (url, port, its env)."""
    state = tmp_path_factory.mktemp("spark-state")
    env = {"RAI_LAB_SPARK_STATE": str(state)}
    port = free_port()
    # A SPARK_REMOTE left in the shell must not turn the server's spark-submit into a client.
    done = rai_lab_command("spark", "start", "--port", str(port), env={**env, "SPARK_REMOTE": "sc://127.0.0.1:9"},
                           timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    yield f"sc://127.0.0.1:{port}", port, env
    rai_lab_command("spark", "stop", env=env, timeout=120)


def assert_lab_ran_cleanly(out_dir: Path, lang: str = "fr") -> None:
    """The executed lab: no error, nothing on stderr, both DataFrames shown as HTML tables, and the
    going-further part's tables and chart."""
    import nbformat

    nb = nbformat.read(out_dir / f"responsible-ai-{lang}" / "responsible_ai.ipynb", 4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    shown = {c.metadata.get("nbgrader", {}).get("grade_id"): [o.data for o in c.get("outputs", [])
                                                             if o.output_type == "display_data"] for c in nb.cells}
    tables = [data["text/html"] for data in shown["build_dataframes"]]
    assert len(tables) == 2 and all("<table" in t for t in tables)
    assert "<table" in shown["gf_representation"][0]["text/html"]
    assert shown["gf_compare"][-1]["image/png"]  # the before/after chart
