"""Errors a learner can act on: the learner's own line, then what to do, instead of 200 lines of library frames.

The kit cell installs `show` as IPython's handler of every exception raised by a cell:
- frames inside the kit and its libraries (openai, httpx, vcr, pyspark…) are collapsed into one
  line that names them; the learner's own cells stay, with their line (`%tb` still shows all);
- an unfilled cell (nbgrader's `raise NotImplementedError()`) says it is the learner's to fill;
- the kit's own errors (a replay miss, a placeholder Azure variable) are shown with the learner's
  line and their message only, since they already say what to do;
- an Azure OpenAI error gets its hint (`rai_lab.azure.explain`).
The error output keeps its type and message, so nbgrader and papermill see the same failure.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from rai_lab import events
from rai_lab.azure import provider
from rai_lab.azure.pacing import RequestTooLarge
from rai_lab.errors import CassetteMissError, RaiLabError
from rai_lab.messages import say

KIT_DIR = str(Path(__file__).resolve().parent)


def is_cell(filename: str) -> bool:
    """Whether a frame's file is a notebook cell (ipykernel names them /tmp/ipykernel_<pid>/<hash>.py)."""
    return "ipykernel_" in filename or filename.startswith("<ipython-input") or filename.startswith("<cell")


def _module_of(filename: str) -> str:
    path = Path(filename)
    parts = path.parts
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts:
            return parts[parts.index(anchor) + 1].split(".")[0].split("-")[0]
    if filename.startswith(KIT_DIR):
        return "rai_lab"
    return path.stem


def learner_frames(tb) -> tuple[types.TracebackType | None, list[str]]:
    """A new traceback with only the cells' frames, and the modules of the frames left out."""
    kept, hidden = [], []
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if is_cell(filename):
            kept.append(tb)
        elif kept:  # the frames before the first cell are IPython running it
            hidden.append(_module_of(filename))
        tb = tb.tb_next
    chain = None
    for entry in reversed(kept):
        chain = types.TracebackType(chain, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chain, hidden


def _raised_in_cell(tb) -> bool:
    last = tb
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    return last is not None and is_cell(last.tb_frame.f_code.co_filename)


def explain(value: BaseException, tb, lang: str) -> str | None:
    """What the learner should do about `value`, when the kit knows."""
    if isinstance(value, NotImplementedError) and not str(value) and _raised_in_cell(tb):
        return say("cell_unfilled", lang)
    return provider.explain(value, lang) if isinstance(value, Exception) else None


def handler(lang: str):
    """IPython's custom exception handler for this kernel (`shell.set_custom_exc`)."""

    def show(shell, etype, value, tb, tb_offset=None):
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb: the whole traceback
        chain, hidden = learner_frames(tb)
        if chain is None:  # not raised through a cell (a magic, a hook): as IPython shows it
            chain, hidden = tb, []
        stb = shell.InteractiveTB.structured_traceback(etype, value, chain, tb_offset=tb_offset)
        # The kit's own errors already say what to do: their frames go without a word.
        if hidden and not isinstance(value, (RaiLabError, CassetteMissError, RequestTooLarge)):
            modules = ", ".join(dict.fromkeys(name for name in hidden if name))
            stb = [*stb[:-1], say("frames_hidden", lang, count=len(hidden), modules=modules), stb[-1]]
        advice = explain(value, tb, lang)
        if advice:
            stb = [*stb, "", say("kit_says", lang, message=advice)]
            events.emit("error", ename=etype.__name__, hint=advice)
        shell._showtraceback(etype, value, stb)
        return stb

    return show


def install(shell, lang: str) -> None:
    shell.set_custom_exc((Exception, CassetteMissError, RequestTooLarge), handler(lang))
