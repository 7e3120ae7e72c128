"""`rai-lab check NOTEBOOK`: a learner's notebook run from the top, and its visible checks as a report.

The same verdicts as the check cells in JupyterLab and as nbgrader's Validate (rai_lab.checking),
in a terminal: ✓, ✗ with what to do, ○ for an optional step not started, and the learner's cells
that stopped with an error. The notebook is run in a copy beside it; the file itself is not touched.
It is for learning: grading runs the same checks outside the learner's kernel (rai_lab.grading.worker.sealed).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rai_lab import paths
from rai_lab.cells import is_check, rubric
from rai_lab.errors import RaiLabError
from rai_lab.messages import detect_lang, say, table

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Report:
    lang: str
    lines: list[str] = field(default_factory=list)
    passed: int = 0
    failed: int = 0
    not_started: int = 0
    cell_errors: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.cell_errors == 0

    def text(self, notebook: str) -> str:
        t = table("selfcheck", self.lang)
        total = self.passed + self.failed
        out = [t["title"].format(notebook=notebook), *self.lines, "", t["summary"].format(passed=self.passed, total=total)]
        if self.not_started:
            out.append(t["optional"].format(count=self.not_started))
        out.append(t["ok"] if self.ok else t["not_ok"])
        return "\n".join(out)


def notebook_lang(path: Path) -> str:
    """The notebook's language: its rai-lab metadata, else its folder (responsible-ai-en), else as usual."""
    return paths.notebook_lang(path) or detect_lang()


def _text_of(outputs) -> tuple[list[str], list[str]]:
    """(stdout lines, error and stderr lines) of a cell, without colours."""
    said, errors = [], []
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            said.extend(output.get("text", "").splitlines())
        elif output.get("output_type") == "stream" and output.get("name") == "stderr":
            errors.extend(ANSI.sub("", output.get("text", "")).splitlines())
        elif output.get("output_type") == "error":
            errors.extend(ANSI.sub("", line) for line in output.get("traceback") or [])
    return said, errors


def _first_advice(errors: list[str], fallback: str) -> str:
    """The line a learner acts on: the kit's advice when there is one, else the exception's line."""
    for line in errors:
        for part in line.splitlines():
            if part.startswith("rai-lab"):
                return part.split(":", 1)[1].strip() if ":" in part else part
    return fallback


def _going_further(cell) -> bool:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "").startswith(("gf_", "bonus_"))


def report(nb, lang: str) -> Report:
    """Read the verdicts from an executed notebook. The going-further cells count only once the
    learner has started that optional part (one of its checks is not ○)."""
    rubric_points = rubric()
    result = Report(lang)
    t = table("selfcheck", lang)
    optional_errors = []
    bonus_started = False
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        said, errors = _text_of(cell.get("outputs", []))
        if is_check(cell):
            name = cell.metadata["nbgrader"].get("grade_id", "")
            entry = rubric_points.get(name, {})
            label = say(f"rubric.{name}", lang) if name in rubric_points else name
            not_started = not errors and any(line.startswith("○") for line in said)
            bonus_started |= bool(entry.get("bonus")) and not not_started
            if errors:
                result.failed += 1
                result.lines.extend(line for line in errors if line.strip())
            elif any(line.startswith("✓") for line in said):
                result.passed += 1
                result.lines.extend(line for line in said if line.startswith("✓"))
            elif not_started:
                result.not_started += 1
                result.lines.extend(line for line in said if line.startswith("○"))
            else:
                result.failed += 1
                result.lines.append(t["not_run"].format(label=label))
        elif any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            error = next(o for o in cell.outputs if o.get("output_type") == "error")
            shown = f"{error.get('ename', '')}: {error.get('evalue', '')}".strip(": ")
            line = t["cell_error"].format(number=number, error=_first_advice(errors, shown)[:400])
            if _going_further(cell):
                optional_errors.append(len(result.lines))
            result.cell_errors += 1
            result.lines.append(line)
    if not bonus_started:  # an optional part not started: its unfilled cells are not faults
        for index in optional_errors:
            result.lines[index] = "○" + result.lines[index][1:]
        result.cell_errors -= len(optional_errors)
    return result


def run(path: Path, timeout: int = 180) -> Report:
    """Execute a copy of the notebook in its folder and report its checks."""
    import nbformat
    from nbclient import NotebookClient

    from jupyter_client import AsyncKernelManager
    from jupyter_core.utils import run_sync

    from rai_lab import kit
    from rai_lab.runner import environment

    path = Path(path)
    if not path.is_file():
        raise RaiLabError(say("selfcheck.missing", notebook_lang(path), path=path))
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise RaiLabError(say("selfcheck.unreadable", notebook_lang(path), path=path,
                              reason=f"{type(err).__name__}: {err}")) from err
    lang = notebook_lang(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    # The kernel speaks the notebook's language and runs as a learner's (not as while grading).
    with environment({"RAI_LAB_LANG": lang, kit.GRADING_ENV: None}):
        with tempfile.TemporaryDirectory(prefix="rai-lab-check-") as scratch:
            # IPC transport: the kernel's messages never touch a TCP port.
            kernel = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(Path(scratch) / "kernel"))
            # A cell over the limit is interrupted and the run goes on. The kernel manager must be the async one
            # nbclient expects: with a blocking one, reading the kernel's output blocked nbclient's event loop, and a
            # cell stuck in time.sleep was never stopped (nor was `rai-lab check` by SIGTERM).
            client = NotebookClient(nb, km=kernel, timeout=timeout, kernel_name="python3", allow_errors=True,
                                    interrupt_on_timeout=True,
                                    resources={"metadata": {"path": str(path.parent.resolve())}})
            try:
                client.execute()
            finally:
                if kernel.has_kernel:
                    run_sync(kernel.shutdown_kernel)(now=True)
    return report(nb, lang)
