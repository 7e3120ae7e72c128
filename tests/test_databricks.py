"""Databricks source notebooks exported from lab/ round-trip to the same cells."""

from __future__ import annotations

import nbformat
import pytest
from conftest import LAB, rai_lab_command

from rai_lab import databricks


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_export_round_trips_to_the_same_cells(tmp_path, lang):
    done = rai_lab_command("export", "--databricks", str(tmp_path))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / f"responsible-ai-{lang}" / "responsible_ai.py").read_text(encoding="utf-8")
    assert text.startswith("# Databricks notebook source\n")
    assert "\n# COMMAND ----------\n" in text and "\n# MAGIC %md\n" in text
    nb = nbformat.read(LAB / f"responsible-ai-{lang}" / "responsible_ai.ipynb", 4)
    assert databricks.from_source(text) == [(c.cell_type, c.source) for c in nb.cells]


def test_kit_cells_are_there_for_databricks_to_skip(tmp_path):
    """In Databricks the kit is absent: the exported kit cell falls back to live calls."""
    databricks.export(tmp_path)
    text = (tmp_path / "responsible-ai-en" / "responsible_ai.py").read_text(encoding="utf-8")
    assert "except ImportError" in text and 'mode = "replay"' in text


def test_a_file_that_is_not_a_databricks_notebook_is_refused():
    with pytest.raises(ValueError, match="not a Databricks source notebook"):
        databricks.from_source("print('hello')\n")
