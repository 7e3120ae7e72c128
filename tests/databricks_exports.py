"""Build Databricks exports of a learner's notebook, byte for byte as Databricks writes each format, for the tests.

The formats, from Databricks' Workspace API (`GET /api/2.0/workspace/export`, formats SOURCE, HTML, JUPYTER, DBC:
https://docs.databricks.com/api/workspace-objects/v1/export) and from real exports in public repositories:
- SOURCE: `# Databricks notebook source`, `\\n\\n# COMMAND ----------\\n\\n` between cells, `# MAGIC %md` / `# MAGIC %pip`
  lines, `# MAGIC` alone on an empty line of a magic cell, `# DBTITLE 1,<title>` above a titled cell. Seen in
  andyweaves/databricks-notebooks common/presidio.py (`# MAGIC %pip install ...` in its own cell, then
  `dbutils.library.restartPython()` in the next) and mlflow/mlflow-export-import databricks_notebooks/bulk/Common.py.
- JUPYTER: nbformat 4, nbformat_minor 0 (no cell ids), `execution_count: 0`, each cell's metadata only
  `application/vnd.databricks.v1+cell` (cellMetadata {byteLimit, rowLimit}, inputWidgets, nuid, showTitle,
  tableResultSettingsMap, title), the notebook's `application/vnd.databricks.v1+notebook` (computePreferences,
  dashboards, environmentMetadata, inputWidgetPreferences, language, notebookMetadata {pythonIndentUnit},
  notebookName, widgets) beside `language_info: {name: python}`; magics stay the cell's first line (`%pip ...`).
  Seen in public Databricks exports found by code search (databricks-v1+cell notebooks, 2024-2026).
- DBC: a zip whose member `<notebook>.python` is the JSON `{"version": "NotebookV1", "origId", "name", "language",
  "commands": [{"version": "CommandV1", "origId", "guid", "subtype": "command", "commandType": "auto", "position",
  "command", "commandTitle", "showCommandTitle", ...}], "dashboards", "guid", "globalVars", "iPythonMetadata",
  "inputWidgets", "notebookMetadata"}`; the list is not in `position` order once cells were moved or inserted. The
  keys come from public DBC readers and writers (a DBC header written by a public test generator, Databricks
  Academy's gendbc); no real .dbc file could be read here (they are binary zips): reconstructed.
- HTML: the page Databricks writes with `<meta name="databricks-html-version">` and, in a script,
  `var __DATABRICKS_NOTEBOOK_MODEL = '<base64 of the URL-quoted JSON model>';` (the DBC member's JSON). The
  encoding is the one public readers of real exports decode (base64, then URL-unquote, then JSON); the page around
  it is reconstructed.
"""

from __future__ import annotations

import base64
import io
import json
import random
import urllib.parse
import uuid
import zipfile

import nbformat

from rai_lab import databricks

MARKER = "# rai-lab step: {} (gardez cette ligne / keep this line)"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def workspace(nb, answers: dict[str, str], imported: str = "source") -> list[tuple[str, str, str]]:
    """The notebook in the learner's workspace: (kind, source, title) per cell. `nb` is lab/'s notebook; `imported`
    says what the learner imported: "source" (databricks/'s .py: %pip cells, no check cells) or "ipynb" (lab/'s
    .ipynb as it is). `answers` gives the code of each step the learner filled (under the step's marker line)."""
    if imported == "source":
        cells = [(kind, source, "") for kind, source in databricks.from_source(databricks.to_source(databricks.learner(nb)))]
    else:
        cells = [(c.cell_type, c.source, "") for c in nb.cells]
    filled = []
    for kind, source, title in cells:
        step = source.splitlines()[0].split("rai-lab step: ")[-1].split(" ")[0] if source.startswith("# rai-lab step:") else None
        if kind == "code" and step in answers:
            source = MARKER.format(step) + "\n" + answers[step]
        filled.append((kind, source, title))
    return filled


def as_source(cells) -> bytes:
    """A SOURCE export (.py)."""
    blocks = []
    for kind, source, title in cells:
        head = f"# DBTITLE 1,{title}\n" if title else ""
        if kind == "markdown" or source.startswith("%"):
            lines = (["%md"] if kind == "markdown" else []) + source.splitlines()
            blocks.append(head + "\n".join(f"# MAGIC {line}".rstrip() for line in lines))
        else:
            blocks.append(head + source)
    return ("# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(blocks) + "\n").encode()


def as_jupyter(cells, name: str = "responsible_ai", seed: int = 1) -> bytes:
    """A JUPYTER export (.ipynb)."""
    rng = random.Random(seed)
    out = []
    for kind, source, title in cells:
        meta = {"application/vnd.databricks.v1+cell": {
            "cellMetadata": {"byteLimit": 2048000, "rowLimit": 10000} if kind == "code" else {},
            "inputWidgets": {}, "nuid": _uuid(rng), "showTitle": bool(title), "tableResultSettingsMap": {}, "title": title}}
        lines = source.splitlines(keepends=True)
        if kind == "markdown":
            out.append({"cell_type": "markdown", "metadata": meta, "source": lines})
        else:
            out.append({"cell_type": "code", "execution_count": 0, "metadata": meta, "outputs": [], "source": lines})
    nb = {"cells": out, "metadata": {"application/vnd.databricks.v1+notebook": {
        "computePreferences": None, "dashboards": [], "environmentMetadata": {"base_environment": "", "environment_version": "2"},
        "inputWidgetPreferences": None, "language": "python", "notebookMetadata": {"pythonIndentUnit": 4},
        "notebookName": name, "widgets": {}}, "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 0}
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode()


def model(cells, name: str = "responsible_ai", seed: int = 1, shuffle: bool = True) -> dict:
    """The notebook model of DBC and HTML exports: commands with their `position`, listed out of order."""
    rng = random.Random(seed)
    commands = []
    for index, (kind, source, title) in enumerate(cells):
        text = "%md\n" + source if kind == "markdown" else source
        commands.append({
            "version": "CommandV1", "origId": 3043243669922457 + index, "guid": _uuid(rng), "subtype": "command",
            "commandType": "auto", "position": index + 1.0 if index % 7 else index + 0.5, "command": text,
            "commandVersion": 0, "state": "finished", "results": None, "resultDbfsStatus": "INLINED_IN_TREE",
            "resultDbfsErrorMessage": None, "errorSummary": None, "errorTraceType": None, "error": None,
            "workflows": [], "startTime": 0, "submitTime": 0, "finishTime": 0, "collapsed": False, "bindings": {},
            "inputWidgets": {}, "displayType": "table", "width": "auto", "height": "auto", "xColumns": None,
            "yColumns": None, "pivotColumns": None, "pivotAggregation": None, "useConsistentColors": False,
            "customPlotOptions": {}, "commentThread": [], "commentsVisible": False, "parentHierarchy": [],
            "diffInserts": [], "diffDeletes": [], "globalVars": {}, "latestUser": "a user", "latestUserId": None,
            "commandTitle": title, "showCommandTitle": bool(title), "hideCommandCode": False, "hideCommandResult": False,
            "isLockedInExamMode": False, "iPythonMetadata": None, "metadata": {}, "streamStates": {},
            "datasetPreviewNameToCmdIdMap": {}, "tableResultIndex": None, "listResultMetadata": [], "subcommandOptions": None,
            "nuid": _uuid(rng)})
    if shuffle:
        rng.shuffle(commands)
    return {"version": "NotebookV1", "origId": 3043243669922456, "name": name, "language": "python",
            "commands": commands, "dashboards": [], "guid": _uuid(rng), "globalVars": {}, "iPythonMetadata": None,
            "inputWidgets": {}, "notebookMetadata": {"pythonIndentUnit": 4}}


def as_dbc(cells, folder: str | None = None, others: dict[str, list] | None = None) -> bytes:
    """A DBC archive: the notebook as `<folder>/responsible_ai.python` (and `others`, more notebooks of the folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        prefix = f"{folder}/" if folder else ""
        for name, notebook in {**(others or {}), "responsible_ai": cells}.items():
            archive.writestr(f"{prefix}{name}.python", json.dumps(model(notebook, name), separators=(",", ":")))
    return buffer.getvalue()


def as_html(cells) -> bytes:
    """An HTML export: the page with the notebook model in `__DATABRICKS_NOTEBOOK_MODEL`."""
    quoted = urllib.parse.quote(json.dumps(model(cells), separators=(",", ":")), safe="()*'")
    encoded = base64.b64encode(quoted.encode()).decode()
    return f"""<!DOCTYPE html>
<html>
<head>
  <meta name="databricks-html-version" content="1">
<title>responsible_ai - Databricks</title>
<meta charset="utf-8">
<meta name="google" content="notranslate">
<meta name="robots" content="nofollow">
<meta http-equiv="Content-Language" content="en">
<meta http-equiv="Content-Type" content="text/html; charset=UTF8">
<script>
window.settings = {{"enableNotebookNotebookParameters":true,"notebookLanguage":"python"}};
</script>
</head>
<body>
  <script>
var __DATABRICKS_NOTEBOOK_MODEL = '{encoded}';
</script>
<script
 src="https://databricks-prod-cloudfront.cloud.databricks.com/static/notebook-exporter.js"
 onerror="window.mainJsLoadError = true;"></script>
</body>
</html>
""".encode()


WRITERS = {"jupyter": (".ipynb", as_jupyter), "source": (".py", as_source), "dbc": (".dbc", as_dbc), "html": (".html", as_html)}


def export(cells, kind: str) -> tuple[str, bytes]:
    """(suffix, bytes) of the export of `cells` in format `kind`."""
    suffix, write = WRITERS[kind]
    return suffix, write(cells)


def jupyterlab(nb, answers: dict[str, str]):
    """The same answers handed in from JupyterLab: lab/'s notebook, each filled step under its marker line."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    for cell in nb.cells:
        step = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and step in answers:
            cell.source = MARKER.format(step) + "\n" + answers[step]
    return nb
