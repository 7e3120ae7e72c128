"""nbgrader's Execute, sealed: verdicts made outside the learner's kernel, and every stop with its true reason.

`rai-lab grade` runs this preprocessor in its grading worker (outside the learner's sandbox) in
place of nbgrader's Execute. The learner's cells run in the kernel as usual. A check cell
never does: the worker asks the kernel for a plain-data snapshot of what the check reads
(`rai_lab.evidence`), runs the check itself on that snapshot and on the calls that its replay
service served (`rai_lab.grading.worker.replay`), and writes the cell's output from its own verdict; nbgrader then
scores the cell from that output. Patching the kernel, IPython or the kit can change what the
snapshot says the learner's variables hold, never which calls were made nor how they are judged.

Limits: each cell gets the cell limit (it is interrupted, the notebook goes on); the notebook gets
its own limit, and a cell that ignores the interrupt stops the notebook there. A kernel that dies
stops the notebook at that cell. In each case the checks before keep their points, the ones after
score 0, and the reason names the limit or the cell.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute

from rai_lab import evidence
from rai_lab.cells import is_check
from rai_lab.errors import RaiLabError
from rai_lab.grading.worker import rerun
from rai_lab.jupyterlab import FORMGRADER_ENV
from rai_lab.messages import say


@dataclass
class Job:
    """One learner's run, set by the grading worker before nbgrader's autograde."""

    lang: str
    session: object  # rai_lab.grading.worker.replay.Session: the calls served to this learner, and its deployment
    cell_limit: float
    notebook_limit: float
    spark: object = None  # rai_lab.grading.worker.rerun.Rerun: where DataFrame plans are re-run (None: --batch-spark local)
    max_output_bytes: int = 20 << 20
    stopped: dict | None = None  # {"reason", "cell", "message"}
    interrupted: list = field(default_factory=list)  # a message per cell stopped at the cell limit
    seconds: dict = field(default_factory=dict)  # code cell number -> seconds
    verdicts: dict = field(default_factory=dict)  # check -> {"passed", "message"}


JOB: Job | None = None


def _error(ename: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=message, traceback=[message])


def _first_line(cell) -> str:
    for line in cell.source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:60]
    return "…"


class SealedExecute(Execute):
    """nbgrader's Execute with the checks judged here, per-cell and per-notebook limits, crashes kept."""

    def preprocess(self, nb, resources=None, retries=None):
        if JOB is None and os.environ.get(FORMGRADER_ENV):
            # The formgrader's Autograde button would run a learner's notebook on the instructor's
            # machine, outside the sandbox: grading is `rai-lab grade`'s alone.
            raise RaiLabError("autograding from the formgrader is turned off in rai-lab: it would run learners' code "
                              "outside the grading sandbox. Run `rai-lab grade` (or `make grade`) instead.")
        self.job = JOB
        self._started = time.monotonic()
        self._output_bytes = 0
        self._output_cut = False
        self._code_number = 0
        return super().preprocess(nb, resources, retries)

    def _get_timeout(self, cell):
        """nbclient's per-cell timeout (its timeout_func is reset by every preprocess): the cell limit, or what is
        left of the notebook's."""
        if getattr(self, "job", None) is None:
            return super()._get_timeout(cell)
        return max(1, math.ceil(min(self.job.cell_limit, self._remaining())))

    # -- limits ----------------------------------------------------------------------------------
    def _remaining(self) -> float:
        return self.job.notebook_limit - (time.monotonic() - self._started)

    def _stop(self, reason: str, cell, seconds: float) -> str:
        message = say(reason, self.job.lang, seconds=math.ceil(seconds), cell=self._code_number,
                      first_line=_first_line(cell))
        self.job.stopped = {"reason": reason, "cell": self._code_number, "message": message}
        try:
            from jupyter_core.utils import run_sync

            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - already dead, or going: the launcher is killed below
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            if process is not None:
                process.kill()
        return message

    # -- cells -----------------------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        job = self.job
        if job is None or cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        self._code_number += 1
        if job.stopped:
            cell.outputs = [_error("NotRun", say("not_run_stopped", job.lang, why=job.stopped["message"]))] \
                if is_check(cell) else []
            return cell, resources
        if self.skip_cells_with_tag in cell.metadata.get("tags", []):
            return cell, resources
        if is_check(cell):
            self._judge(cell, index)
            return cell, resources
        started = time.monotonic()
        self._run(cell, index)
        job.seconds[str(self._code_number)] = round(time.monotonic() - started, 3)
        return cell, resources

    def _run(self, cell, index, store_history: bool = True) -> None:
        """Execute one cell of the learner's within the limits; stop the notebook when it must."""
        remaining = self._remaining()
        if remaining <= 0:
            cell.outputs = [_error("TimeLimit", self._stop("notebook_time_limit", cell, self.job.notebook_limit))]
            return
        at_notebook_limit = remaining < self.job.cell_limit
        limit = min(self.job.cell_limit, remaining)
        message = say("cell_time_limit", self.job.lang, seconds=math.ceil(self.job.cell_limit), cell=self._code_number,
                      first_line=_first_line(cell))
        self.error_on_timeout = {"ename": "TimeLimit", "evalue": message, "traceback": [message]}
        try:
            self.execute_cell(cell, index, store_history=store_history)
        except CellTimeoutError:  # no answer after the interrupt: the cell ignored it
            reason = "notebook_time_limit" if at_notebook_limit else "interrupt_ignored"
            seconds = self.job.notebook_limit if at_notebook_limit else math.ceil(limit)
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
            cell.outputs.append(_error("TimeLimit", self._stop(reason, cell, seconds)))
            return
        except DeadKernelError:
            cell.outputs.append(_error("KernelDied", self._stop("kernel_crashed", cell, 0)))
            return
        timed_out = any(o.get("ename") == "TimeLimit" for o in cell.outputs if o.get("output_type") == "error")
        if timed_out:  # interrupted: the KeyboardInterrupt traceback says nothing more than the limit
            cell.outputs = [o for o in cell.outputs if o.get("ename") != "KeyboardInterrupt"]
            if not at_notebook_limit:
                self.job.interrupted.append(message)
            else:
                cell.outputs = [o for o in cell.outputs if o.get("ename") != "TimeLimit"]
                cell.outputs.append(_error("TimeLimit", self._stop("notebook_time_limit", cell, self.job.notebook_limit)))

    def _judge(self, cell, index) -> None:
        """Ask the kernel for the snapshot this check reads; judge it here; write the verdict as the cell's output."""
        checks = evidence.load_checks()
        name = cell.metadata["nbgrader"].get("grade_id", "")
        snapshot = {"env": {}, "vars": {}}
        if name not in checks.CALLS_ONLY:  # the calls are the replay service's: only the rest is asked of the kernel
            snapshot = self._snapshot(list(checks.NEEDS.get(name, ())), cell, index)
            if snapshot is None:  # the kernel died or hung while answering
                cell.outputs = [_error("NotRun", say("not_run_stopped", self.job.lang, why=self.job.stopped["message"]))]
                return
        if self.job.spark is not None:
            rerun.rerun_frames(snapshot, self.job.spark)
        session = self.job.session
        context = {"lang": self.job.lang, "deployment": session.deployment, "calls": list(session.calls)}
        verdict = evidence.judge(name, snapshot, context)
        self.job.verdicts[name] = verdict
        cell.outputs = [] if verdict["passed"] else [_error("CheckFailed", verdict["message"])]

    def _snapshot(self, names: list[str], cell, index) -> dict | None:
        """What the kernel's variables `names` hold (rai_lab.evidence.report), as plain data; None if it stopped."""
        probe = NotebookNode(cell_type="code", source=f"__import__('rai_lab.evidence').evidence.report({names!r})",
                             metadata={}, outputs=[], execution_count=None)
        self._run(probe, index, store_history=False)
        self.nb.cells[index] = cell  # nbclient puts the cell it ran (the probe) at `index`: the check cell stays
        if self.job.stopped:
            return None
        snapshot = {"env": {}, "vars": {}}
        for output in probe.outputs:
            raw = output.get("data", {}).get(evidence.MIME) if output.get("output_type") == "display_data" else None
            if isinstance(raw, str) and len(raw) <= evidence.MAX_CHARS:
                try:
                    found = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(found, dict):
                    snapshot = found
        return snapshot

    # -- output size -----------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        if self.job is None:
            return super().output(outs, msg, display_id, cell_index)
        content = msg.get("content", {})
        if evidence.MIME in (content.get("data") or {}):  # the grader's own probe: never cut, never counted
            return super().output(outs, msg, display_id, cell_index)
        size = len(content.get("text") or "") + sum(len(str(v)) for v in (content.get("data") or {}).values())
        self._output_bytes += size
        if self._output_bytes > self.job.max_output_bytes and msg.get("msg_type") != "error":
            if not self._output_cut:
                self._output_cut = True
                text = say("output_cut", self.job.lang, limit=self.job.max_output_bytes >> 20)
                outs.append(NotebookNode(output_type="display_data", metadata={}, data={"text/plain": text}))
            return None
        return super().output(outs, msg, display_id, cell_index)
