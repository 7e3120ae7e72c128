"""Databricks source notebooks (`# Databricks notebook source`) from the lab's .ipynb, and back.

`export` writes, for each language, the learner's notebook (from lab/) and a reference notebook:
the solution without its hidden tests (which need the kit), which the asset bundle's job runs on
the cluster (`databricks.yml`); and `rai_lab_bias.py`, a copy of the kit's bias measures (PySpark
and matplotlib only), which the going-further cells import on a cluster without the kit. The
repository keeps their export under databricks/ (a test checks it is current; `rai-lab release`
rewrites it).
"""

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


BIAS_HEADER = "# A copy of rai_lab/bias.py, written by `rai-lab release`: edit that file, not this one.\n"
HIDDEN = "### BEGIN HIDDEN TESTS"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def reference(nb):
    """The solution notebook as the bundle's job runs it: no hidden tests, no nbgrader markers."""
    nb = nbformat.from_dict(nb)
    nb.cells = [cell for cell in nb.cells if HIDDEN not in cell.source]
    for cell in nb.cells:
        cell.source = "\n".join(line for line in cell.source.splitlines() if line.strip() not in MARKERS)
    return nb


def export(dest: Path, folder: Path | None = None) -> list[Path]:
    """Write each language's lab notebook (from `folder`, default lab/) and reference notebook as source files."""
    written = []
    for assignment in paths.ASSIGNMENTS.values():
        lab = nbformat.read((folder or paths.LAB) / assignment / paths.NOTEBOOK, as_version=4)
        solution = nbformat.read(paths.SOLUTIONS / assignment / paths.NOTEBOOK, as_version=4)
        for target, nb in ((dest / assignment / "responsible_ai.py", lab),
                           (dest / "reference" / assignment / "responsible_ai.py", reference(solution))):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(to_source(nb), encoding="utf-8")
            written.append(target)
    measures = dest / "rai_lab_bias.py"
    measures.write_text(BIAS_HEADER + (paths.ROOT / "rai_lab" / "bias.py").read_text(encoding="utf-8"), encoding="utf-8")
    written.append(measures)
    return written


def stale(dest: Path | None = None) -> list[str]:
    """The files under databricks/ (or `dest`) that differ from a fresh export."""
    import tempfile

    dest = dest or paths.ROOT / "databricks"
    with tempfile.TemporaryDirectory() as fresh:
        return [str(path.relative_to(fresh)) for path in export(Path(fresh))
                if not (dest / path.relative_to(fresh)).is_file()
                or (dest / path.relative_to(fresh)).read_text(encoding="utf-8") != path.read_text(encoding="utf-8")]
