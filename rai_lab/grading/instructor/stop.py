"""Stopping `rai-lab grade` cleanly: SIGINT (Ctrl-C), SIGTERM (`timeout`, a scheduler) and SIGHUP (a closed terminal).

`install` turns each into `Stopped`, raised in the main thread wherever it waits (a pipe, a thread's join, a
subprocess), so that `Grader.run`'s `finally:` kills the workers and the batch's services and removes its /run
folder. What cleans up runs inside `deferred()`: a signal that arrives then waits until the cleanup ends. Only the
first signal stops; the next ones change nothing (the stop is already under way, and takes a few seconds).

If the grader itself is killed (SIGKILL), what it started still ends: each worker leaves as soon as its parent
is gone (`rai_lab.grading.worker.sandbox.die_with_parent`), each sandbox with the process that started it (bubblewrap's
--die-with-parent, then its PID namespace ends), and the next grader removes the /run folder left behind
(`rai_lab.grading.worker.sandbox.remove_stale_batch_folders`).
"""

from __future__ import annotations

import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The grader was told to stop by a signal."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal's number (SIGINT 130, SIGTERM 143, SIGHUP 129)."""
        return 128 + self.signum


# Touched only in the main thread (where Python runs signal handlers): no lock, which a handler could deadlock on.
_state = {"deferred": 0, "pending": None, "raised": False}


def _handler(signum, _frame) -> None:
    if _state["raised"] or _state["pending"] is not None:
        return  # already stopping
    _state["pending"] = signum
    if _state["deferred"]:
        return  # raised when the cleanup under way ends
    _state["raised"] = True
    raise Stopped(signum)


def install() -> dict:
    """SIGINT, SIGTERM and SIGHUP stop grading (main thread only). Returns the handlers they had, for `restore`."""
    _state.update(deferred=0, pending=None, raised=False)
    return {signum: signal.signal(signum, _handler) for signum in SIGNALS}


def restore(previous: dict) -> None:
    """The handlers `install` replaced; no stop is remembered."""
    _state.update(deferred=0, pending=None, raised=False)
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def requested() -> int | None:
    """The signal that asked for a stop, if one did."""
    return _state["pending"]


class deferred:
    """A block a signal does not interrupt (the cleanup of a batch); a stop asked for meanwhile is raised at its end,
    unless the block already ends with an exception (that one goes on)."""

    def __enter__(self):
        _state["deferred"] += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        _state["deferred"] -= 1
        signum = _state["pending"]
        late = signum is not None and not _state["raised"] and not _state["deferred"]
        if late:
            _state["raised"] = True
        if late and exc_type is None:
            raise Stopped(signum)
        return False
