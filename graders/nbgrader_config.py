"""nbgrader configuration of rai-lab: the one place the instructor's tools are configured.

`rai-lab release` and `rai-lab grade` load this file; RAI_LAB_LANG (fr or en) chooses the
language of the stubs that the released notebook shows the learner.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

from rai_lab.messages import say  # noqa: E402 - the stubs speak the learner's language (rai_lab/i18n)

LANG = os.environ.get("RAI_LAB_LANG", "fr")
code_stub, text_stub = say("stub.code", LANG), say("stub.text", LANG)

c.ClearSolutions.code_stub = {"python": code_stub}
c.ClearSolutions.text_stub = text_stub

# --- Grading (`rai-lab grade` sets these variables; nbgrader's defaults apply without them) ---
# A classic Spark setup cell takes 8-15 s here: nbgrader's default 30 s per cell is too tight.
c.Execute.timeout = int(os.environ.get("RAI_LAB_CELL_TIMEOUT", "180"))
# Cells tagged rai-lab-illustration (the going-further tables and chart) come after every check and
# no check reads them: grading skips them unless asked (`rai-lab grade --run-illustrations`).
c.Execute.skip_cells_with_tag = "" if os.environ.get("RAI_LAB_ILLUSTRATIONS") == "run" else "rai-lab-illustration"
if os.environ.get("RAI_LAB_KERNEL"):
    # The grading kernel: warm, in the grading worker's bubblewrap sandbox (rai_lab/grading/worker/main.py).
    c.Execute.kernel_name = os.environ["RAI_LAB_KERNEL"]
if os.environ.get("RAI_LAB_IPC"):
    # Unix sockets between nbgrader and the kernel, in the one folder the sandbox shares with the grader.
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = os.environ["RAI_LAB_IPC"]
c.Autograde.autograde_preprocessors = [
    # nbgrader's Execute, with each check judged by the grader outside the learner's kernel and every stop
    # (time limits, a crash) given its reason (rai_lab/grading/worker/sealed.py); outside `rai-lab grade`, Execute.
    "rai_lab.grading.worker.sealed.SealedExecute",
    # Tracebacks cut to the learner's own cells; no path of the grader's machine (rai_lab/grading/worker/feedback.py).
    "rai_lab.grading.worker.feedback.TrimTracebacks",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "rai_lab.grading.worker.feedback.LimitOutputSize",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Feedback shows why a check failed, never the check cell's code (nbgrader issues #917, #1363).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "rai_lab.grading.worker.feedback.HideTestCode",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
