"""The uids of a batch's sandboxes: a block of its own, claimed by the grader for as long as the batch runs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rai_lab.grading.worker.sandbox import UID_BASE, UID_BLOCK, UID_BLOCKS

LOCKS = Path("/run/rai-lab-uids")  # one lock file per block, held by the grader that claimed it


def _uids_in_use(first: int, last: int) -> bool:
    """Does any process run with a uid in [first, last]? (One left by a grader killed outright, still dying.)"""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    if any(first <= int(uid) <= last for uid in line.split()[1:]):
                        return True
                    break
        except (OSError, ValueError):
            continue
    return False


class UidBlock:
    """The uids of one batch's sandboxes, claimed for as long as the batch runs: two graders on one machine (two
    courses, or a batch started beside another) never share a uid, so no learner of one can signal, or count against
    the process limit of, a learner of the other. The claim is a lock (flock) on /run/rai-lab-uids/<n>: it ends with
    the grader, however the grader ends; a block where a process still runs is passed over."""

    def __init__(self, workers: int):
        if workers >= UID_BLOCK:
            raise ValueError(f"a batch has at most {UID_BLOCK - 1} workers (asked: {workers})")
        LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fd: int | None = None
        for block in range(UID_BLOCKS):
            first = UID_BASE + block * UID_BLOCK
            fd = os.open(LOCKS / str(block), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            if _uids_in_use(first, first + UID_BLOCK - 1):
                os.close(fd)  # a killed grader's sandbox, not gone yet
                continue
            self.fd, self.base = fd, first
            return
        raise RuntimeError(f"{UID_BLOCKS} grading batches already run on this machine, each with uids of its own "
                           f"(locks in {LOCKS}): wait for one to end")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
