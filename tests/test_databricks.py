"""Databricks source notebooks exported from lab/ round-trip to the same cells."""

from __future__ import annotations

import re
import tomllib

import nbformat
import pytest
import yaml
from conftest import LAB, ROOT, rai_lab_command

from rai_lab import databricks


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_export_round_trips_to_the_same_cells(tmp_path, lang):
    done = rai_lab_command("export", "--databricks", str(tmp_path))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / f"responsible-ai-{lang}" / "responsible_ai.py").read_text(encoding="utf-8")
    assert text.startswith("# Databricks notebook source\n")
    assert "\n# COMMAND ----------\n" in text and "\n# MAGIC %md\n" in text
    nb = nbformat.read(LAB / f"responsible-ai-{lang}" / "responsible_ai.ipynb", 4)
    assert databricks.from_source(text) == [(c.cell_type, c.source) for c in databricks.learner(nb).cells]
    # The check cells are there, calling rai_lab_checks (no kit on a cluster); grading puts the instructor's back.
    assert text.count("graded check:") == 10 and text.count("bonus check:") == 4 and "checking.check" not in text
    assert text.count('rai_lab_checks.check("') == 14
    # the install is two cells there, plus the checks' setup, plus a note that says so and asks to keep the markers
    assert len(databricks.learner(nb).cells) == len(nb.cells) + 3
    assert "# MAGIC > **rai-lab (Databricks)**" in text and "# rai-lab step: …" in text
    # Every cell a learner may edit keeps its marker line: grading maps an export back to lab/ by them.
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.metadata["nbgrader"].get("locked"):
            marker = f"# rai-lab step: {cell.metadata['nbgrader']['grade_id']} (gardez cette ligne / keep this line)\n"
            assert cell.source.startswith(marker) and f"\n\n{marker}" in text


def test_kit_cells_are_there_for_databricks_to_skip(tmp_path):
    """In Databricks the kit is absent: the exported kit cell falls back to live calls."""
    databricks.export(tmp_path)
    text = (tmp_path / "responsible-ai-en" / "responsible_ai.py").read_text(encoding="utf-8")
    assert "except ImportError" in text and 'mode = "replay"' in text


def test_on_databricks_the_notebook_installs_the_exercises_library_and_uses_the_clusters_variables():
    """Databricks' own form (its "Notebook-scoped Python libraries" page): `%pip install openai==1.42.0 httpx==0.27.2`
    in the first cell, alone, as the exercise writes %pip, then `dbutils.library.restartPython()` alone in the next;
    in the source file the %pip cell is `# MAGIC` lines. Without the kit, `client` takes the cluster's AZURE_OPENAI_*
    where the learner's are unset or the exercise's placeholders, says so, and stops clearly when neither sets them."""
    for lang in ("fr", "en"):
        text = (ROOT / "databricks" / f"responsible-ai-{lang}" / "responsible_ai.py").read_text()
        assert "\n# MAGIC %pip install openai==1.42.0 httpx==0.27.2\n\n# COMMAND ----------\n\ndbutils.library.restartPython()\n" in text
        cells = [source for kind, source in databricks.from_source(text) if kind == "code"]
        assert cells[:2] == ["%pip install openai==1.42.0 httpx==0.27.2", "dbutils.library.restartPython()"]
        assert "run_line_magic" not in text and "DATABRICKS_RUNTIME_VERSION" not in text  # only in lab/'s .ipynb
        assert "cluster_azure = {name: os.environ.get(name)" in cells[3]
        client = next(source for source in cells if "client = AzureOpenAI(" in source)
        assert "valeur du cluster / the cluster's value" in client and "raise RuntimeError" in client


def test_the_install_cell_does_nothing_off_databricks_and_the_cluster_variables_fill_placeholders(monkeypatch, capsys):
    """Run the kit's Databricks cells here, as Databricks would without the kit: nothing installed, the
    cluster's values taken where the exercise's placeholders stand, a clear error where none is set."""
    cells = {databricks._grade_id(c): c.source for c in nbformat.read(LAB / "responsible-ai-en" / "responsible_ai.ipynb", 4).cells}
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.delenv("RAI_LAB_SPARK", raising=False)
    exec(cells["kit_databricks"], {"get_ipython": None})  # noqa: S102 - would fail if it tried to install
    for name, value in (("AZURE_OPENAI_API_KEY", "cluster-key"), ("AZURE_OPENAI_ENDPOINT", "https://c.openai.azure.com/"),
                        ("AZURE_OPENAI_API_VERSION", "2023-03-15-preview")):
        monkeypatch.setenv(name, value)
    namespace = {"rai_lab": None, "os": __import__("os"),
                 "cluster_azure": {"AZURE_OPENAI_API_KEY": "cluster-key", "AZURE_OPENAI_ENDPOINT": "https://c.openai.azure.com/",
                                   "AZURE_OPENAI_API_VERSION": "2023-03-15-preview"}}
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "your_openai_api_key")  # the learner typed the exercise's code
    exec(cells["create_client"], namespace)  # noqa: S102 - our own cell
    assert namespace["client"].api_key == "cluster-key"
    assert "AZURE_OPENAI_API_KEY = valeur du cluster / the cluster's value" in capsys.readouterr().out
    namespace["cluster_azure"] = {"AZURE_OPENAI_API_KEY": None, "AZURE_OPENAI_ENDPOINT": None, "AZURE_OPENAI_API_VERSION": None}
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "your_openai_api_key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "your_openai_endpoint")
    with pytest.raises(RuntimeError, match="AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT : ni le cluster"):
        exec(cells["create_client"], namespace)  # noqa: S102


def test_a_file_that_is_not_a_databricks_notebook_is_refused():
    with pytest.raises(ValueError, match="not a Databricks source notebook"):
        databricks.from_source("print('hello')\n")


def test_run_on_databricks_without_databricks_connect_says_how_to_get_it(tmp_path):
    """In the main environment (no databricks-connect): a clear error before any kernel starts."""
    done = rai_lab_command("run", "--spark", "databricks", "--no-progress", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "databricks-connect package is not installed" in done.stderr and "make databricks-env" in done.stderr


def test_the_committed_databricks_notebooks_are_current():
    """databricks/ is `rai-lab release`'s export of lab/ and of the solutions (reference notebooks)."""
    assert databricks.stale() == []


def test_the_bias_measures_run_on_a_cluster_without_the_kit():
    """databricks/rai_lab_bias.py, rai_lab/bias/ written as one module, imports nothing of the kit and has every
    name a notebook reads as `bias.<name>`, with the package's docstring."""
    import ast
    import subprocess
    import sys

    from rai_lab import bias

    script = ("import sys; sys.modules['rai_lab'] = None; sys.path.insert(0, 'databricks'); import rai_lab_bias; "
              "print(sorted(name for name in dir(rai_lab_bias) if not name.startswith('_')))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(bias.__all__) <= set(ast.literal_eval(done.stdout))
    assert bias.__doc__ in (ROOT / "databricks" / "rai_lab_bias.py").read_text(encoding="utf-8")


def test_reference_notebooks_have_the_solution_and_no_hidden_test():
    for lang in ("fr", "en"):
        text = (ROOT / "databricks" / "reference" / f"responsible-ai-{lang}" / "responsible_ai.py").read_text()
        cells = databricks.from_source(text)
        code = "\n".join(source for kind, source in cells if kind == "code")
        assert "checking.check" not in code and "BEGIN HIDDEN TESTS" not in code and "BEGIN SOLUTION" not in code
        assert "neutral_df = spark.createDataFrame" in code and "client.chat.completions.create" in code
        assert "except ImportError" in code  # no kit in Databricks: real calls
        # The job's deployment is its parameter; without the cluster's variables it stops at once.
        assert 'dbutils.widgets.get("deployment")' in code
        assert "rai-lab reference job:" in code and "replay-mode-no-real-key" not in code


def test_the_asset_bundle_matches_the_seed_and_holds_no_secret():
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    variables = {name: spec.get("default") for name, spec in bundle["variables"].items()}
    cluster = bundle["resources"]["clusters"]["rai_lab"]
    resolve = lambda value: re.sub(r"\$\{var\.(\w+)\}", lambda m: str(variables[m.group(1)]), str(value))  # noqa: E731

    # Single node, single user, ML runtime without GPU, no Photon, Standard_D4ds_v5, 20 idle minutes.
    assert cluster["num_workers"] == 0
    assert cluster["spark_conf"]["spark.databricks.cluster.profile"] == "singleNode"
    assert cluster["custom_tags"]["ResourceClass"] == "SingleNode"
    assert cluster["data_security_mode"] == "SINGLE_USER" and "single_user_name" in cluster
    runtime = resolve(cluster["spark_version"])
    assert re.fullmatch(r"\d+\.\d+\.x-cpu-ml-scala2\.1[23]", runtime), runtime
    assert int(runtime.split(".")[0]) >= 13  # the seed: 13.3 LTS ML or later (Spark > 3.4)
    assert cluster["runtime_engine"] == "STANDARD"  # no Photon
    assert resolve(cluster["node_type_id"]) == "Standard_D4ds_v5"
    assert cluster["autotermination_minutes"] == 20

    # The key comes from a secret scope; the endpoint and version are plain settings.
    env = cluster["spark_env_vars"]
    assert re.fullmatch(r"\{\{secrets/[^/]+/[^/]+\}\}", resolve(env["AZURE_OPENAI_API_KEY"]))
    # `databricks bundle validate` needs no --var: every variable has a default. The endpoint's is the
    # exercise's placeholder, which the reference job refuses (each deployer gives their own).
    assert all("default" in spec for spec in bundle["variables"].values())
    assert "<your-resource>" in variables["azure_openai_endpoint"]
    assert "LTS" in bundle["variables"]["spark_version"]["description"]
    assert resolve(env["AZURE_OPENAI_API_VERSION"]) == "2023-03-15-preview"

    # The job runs the reference notebook on that cluster, with the seed's library.
    task = bundle["resources"]["jobs"]["rai_lab_reference"]["tasks"][0]
    assert task["existing_cluster_id"] == "${resources.clusters.rai_lab.id}"
    assert task["libraries"] == [{"pypi": {"package": "openai==1.42.0"}}, {"pypi": {"package": "httpx==0.27.2"}}]
    assert task["notebook_task"]["base_parameters"] == {"deployment": "${var.deployment}"}
    assert variables["deployment"] == "gpt-35-turbo"
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "openai==1.42.0" in pins
    for lang in ("fr", "en"):
        path = ROOT / task["notebook_task"]["notebook_path"].replace("${var.language}", lang)
        assert path.read_text().startswith(databricks.HEADER)
    assert variables["language"] in ("fr", "en")
    for synced in bundle["sync"]["paths"]:
        assert (ROOT / synced).is_dir()


def test_the_bundle_file_has_no_key_like_value():
    text = (ROOT / "databricks.yml").read_text()
    assert not re.search(r"[0-9a-f]{32}|dapi[0-9a-f]{8,}", text)
