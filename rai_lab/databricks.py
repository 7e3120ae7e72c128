"""Databricks source notebooks (`# Databricks notebook source`) from the lab's .ipynb, and back.

`export` writes, for each language, the learner's notebook (from lab/) and a reference notebook:
the solution without its check cells (which need the kit), which the asset bundle's job runs on
the cluster (`databricks.yml`); and `rai_lab_bias.py`, the kit's bias measures (rai_lab/bias/, PySpark
and matplotlib only) as one module, which the going-further cells import on a cluster without the kit; and
`rai_lab_checks.py` (rai_lab.databricks_checks), which the learner's check cells call there. The
repository keeps their export under databricks/ (a test checks it is current; `rai-lab release`
rewrites it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from rai_lab import databricks_checks, paths
from rai_lab.messages import say
from rai_lab.cells import is_check
from rai_lab.release import without_markers

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


def to_source(nb) -> str:
    """A notebook as a Databricks source file: code as is, markdown and magic cells (`%pip ...`) as `# MAGIC` lines."""
    blocks = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = ["%md", *cell.source.splitlines()]
            blocks.append("\n".join(f"{MAGIC} {line}".rstrip() for line in lines))
        elif cell.cell_type == "code" and cell.source.startswith("%"):
            blocks.append("\n".join(f"{MAGIC} {line}".rstrip() for line in cell.source.splitlines()))
        elif cell.cell_type == "code":
            blocks.append(cell.source)
    return HEADER + "\n" + f"\n\n{SEPARATOR}\n\n".join(blocks) + "\n"


def from_source(text: str) -> list[tuple[str, str]]:
    """The (cell type, source) pairs of a Databricks source file as `to_source` writes it (a learner's export, with
    its titles and other magics, is read by rai_lab.grading.instructor.databricks_formats)."""
    if not text.startswith(HEADER):
        raise ValueError("not a Databricks source notebook")
    cells = []
    for block in text[len(HEADER):].strip("\n").split(f"\n\n{SEPARATOR}\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith(f"{MAGIC} %"):
            body = "\n".join(line[len(MAGIC) + 1:] if line.startswith(MAGIC + " ") else "" for line in lines)
            cells.append(("markdown", body.split("\n", 1)[1] if "\n" in body else "") if lines[0] == f"{MAGIC} %md"
                         else ("code", body))
        else:
            cells.append(("code", block))
    return cells


BIAS_HEADER = "# rai_lab/bias/ as one module, written by `rai-lab release`: edit the package, not this file.\n"
BIAS_PARTS = ("words", "measures", "chart")  # rai_lab/bias/'s modules, each after those it imports


def bias_module() -> str:
    """rai_lab/bias/ as one module, for a cluster without the kit: the package's docstring, then each part's code
    without its docstring, its `from __future__` line and its imports of the other parts (whose names it then
    finds in the same module). The package's __init__ only gathers the parts' names: nothing else of it is needed."""
    package = paths.ROOT / "rai_lab" / "bias"

    def without(source: str, dropped) -> str:
        skip = {line for node in dropped for line in range(node.lineno, node.end_lineno + 1)}
        return "\n".join(line for number, line in enumerate(source.splitlines(), 1) if number not in skip).strip("\n")

    def parts_imports(node) -> bool:
        return isinstance(node, ast.ImportFrom) and node.module.startswith(("__future__", "rai_lab.bias"))

    init = (package / "__init__.py").read_text(encoding="utf-8")
    docstring = ast.parse(init).body[0]
    blocks = [BIAS_HEADER + "\n".join(init.splitlines()[docstring.lineno - 1:docstring.end_lineno])
              + "\n\nfrom __future__ import annotations"]
    for part in BIAS_PARTS:
        source = (package / f"{part}.py").read_text(encoding="utf-8")
        body = ast.parse(source).body
        blocks.append(f"# -- rai_lab/bias/{part}.py " + "-" * (96 - len(part)) + "\n\n"
                      + without(source, [body[0], *(node for node in body if parts_imports(node))]))
    return "\n\n\n".join(blocks) + "\n"


# The reference job's own cells (databricks.yml): the deployment is the job's parameter, and the
# Azure OpenAI variables must come from the cluster (the secret scope), or the job stops at once.
JOB_PARAMETER = '''dbutils.widgets.text("deployment", deployment)  # the job's parameter (databricks.yml: var.deployment)
deployment = dbutils.widgets.get("deployment")'''
JOB_VARIABLES = '''import os

# The reference job: the cluster's variables (databricks.yml: the secret scope, var.azure_openai_endpoint), or a loud stop.
problems = [name for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")
            if not os.environ.get(name) or "<" in os.environ[name] or os.environ[name].startswith("your_")]
if problems:
    raise RuntimeError(f"rai-lab reference job: {', '.join(problems)} not set on the cluster. Store the key in the secret "
                       "scope (databricks secrets put-secret rai-lab azure-openai-api-key) and deploy with "
                       "--var azure_openai_endpoint=https://<your-resource>.openai.azure.com/")
os.environ["AZURE_OPENAI_API_VERSION"] = os.environ.get("AZURE_OPENAI_API_VERSION") or "2023-03-15-preview"'''


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def reference(nb):
    """The solution notebook as the bundle's job runs it: no check cells, no nbgrader markers, the
    deployment from the job's parameter, the Azure OpenAI variables from the cluster or a loud stop."""
    nb = nbformat.from_dict(nb)
    nb.cells = [cell for cell in nb.cells if not is_check(cell)]  # they call the kit's checks: no kit on a cluster
    for cell in nb.cells:
        cell.source = without_markers(cell.source)
        if _grade_id(cell) == "kit_parameters":
            cell.source = cell.source + "\n" + JOB_PARAMETER
        elif _grade_id(cell) == "env_vars":
            cell.source = JOB_VARIABLES
    return nb


# Databricks' own way to install a notebook's libraries ("Notebook-scoped Python libraries": `%pip install` in a cell
# of its own, then `dbutils.library.restartPython()` in the next), the exercise's `%pip` form. They replace the lab's
# install cell (kit_databricks), which does the same from Python and nothing outside Databricks.
PIP_INSTALL = "%pip install openai==1.42.0 httpx==0.27.2"
RESTART = "dbutils.library.restartPython()"


def learner(nb):
    """The learner's notebook for Databricks: the install as `%pip` then restartPython, and the same visible checks as
    in JupyterLab, from rai_lab_checks.py beside the notebook, as the kit is not there (grading maps an export back
    to lab/'s notebook and puts the instructor's check cells back: rai_lab.grading.instructor.databricks_mapping)."""
    nb = nbformat.from_dict(nb)
    lang = nb.metadata.get("rai_lab", {}).get("lang", "fr")
    cells = []
    for cell in nb.cells:
        if _grade_id(cell) == "kit_databricks":
            cells += [nbformat.v4.new_code_cell(PIP_INSTALL), nbformat.v4.new_code_cell(RESTART)]
        elif is_check(cell):
            cells.append(nbformat.v4.new_code_cell(databricks_checks.check_cell(cell.source, _grade_id(cell), lang)))
        else:
            cells.append(cell)
        if cell.get("id") == "create-notebook":  # the kit's note on the first cells: what differs on Databricks
            cells.append(nbformat.v4.new_markdown_cell(say("databricks.notebook_note", lang)))
        if _grade_id(cell) == "kit_start":
            cells.append(nbformat.v4.new_code_cell(databricks_checks.SETUP))
    nb.cells = cells
    return nb


def export(dest: Path, folder: Path | None = None) -> list[Path]:
    """Write each language's lab notebook (from `folder`, default lab/) and reference notebook as source files."""
    written = []
    for assignment in paths.ASSIGNMENTS.values():
        lab = nbformat.read((folder or paths.LAB) / assignment / paths.NOTEBOOK, as_version=4)
        solution = nbformat.read(paths.SOLUTIONS / assignment / paths.NOTEBOOK, as_version=4)
        for target, nb in ((dest / assignment / "responsible_ai.py", learner(lab)),
                           (dest / "reference" / assignment / "responsible_ai.py", reference(solution))):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(to_source(nb), encoding="utf-8")
            written.append(target)
    measures = dest / "rai_lab_bias.py"
    measures.write_text(bias_module(), encoding="utf-8")
    written.append(measures)
    checks = dest / "rai_lab_checks.py"
    checks.write_text(databricks_checks.module(), encoding="utf-8")
    written.append(checks)
    return written


def stale(dest: Path | None = None) -> list[str]:
    """The files under databricks/ (or `dest`) that differ from a fresh export."""
    import tempfile

    dest = dest or paths.ROOT / "databricks"
    with tempfile.TemporaryDirectory() as fresh:
        return [str(path.relative_to(fresh)) for path in export(Path(fresh))
                if not (dest / path.relative_to(fresh)).is_file()
                or (dest / path.relative_to(fresh)).read_text(encoding="utf-8") != path.read_text(encoding="utf-8")]
