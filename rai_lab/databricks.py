"""Databricks source notebooks (`# Databricks notebook source`) from the lab's .ipynb, and back."""

from __future__ import annotations

from pathlib import Path

import nbformat

from rai_lab import paths

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


def to_source(nb) -> str:
    """A notebook as a Databricks source file: code as is, markdown as `# MAGIC %md` lines."""
    blocks = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = ["%md", *cell.source.splitlines()]
            blocks.append("\n".join(f"{MAGIC} {line}".rstrip() for line in lines))
        elif cell.cell_type == "code":
            blocks.append(cell.source)
    return HEADER + "\n" + f"\n\n{SEPARATOR}\n\n".join(blocks) + "\n"


def from_source(text: str) -> list[tuple[str, str]]:
    """The (cell type, source) pairs of a Databricks source file."""
    if not text.startswith(HEADER):
        raise ValueError("not a Databricks source notebook")
    cells = []
    for block in text[len(HEADER):].strip("\n").split(f"\n\n{SEPARATOR}\n\n"):
        lines = block.splitlines()
        if lines and lines[0] == f"{MAGIC} %md":
            body = [line[len(MAGIC) + 1:] if line.startswith(MAGIC + " ") else "" for line in lines[1:]]
            cells.append(("markdown", "\n".join(body)))
        else:
            cells.append(("code", block))
    return cells


def export(dest: Path, folder: Path | None = None) -> list[Path]:
    """Write each language's lab notebook (from `folder`, default lab/) as a Databricks source file."""
    written = []
    for assignment in paths.ASSIGNMENTS.values():
        nb = nbformat.read((folder or paths.LAB) / assignment / paths.NOTEBOOK, as_version=4)
        target = dest / assignment / "responsible_ai.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_source(nb), encoding="utf-8")
        written.append(target)
    return written
