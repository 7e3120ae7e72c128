"""JSON lines from a child process's stdout: the fork server's (to its grading worker) and a slot Spark server's
keeper's."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time


class JsonLines:
    """JSON lines from a child's stdout, read unbuffered (so that select() sees what is left): the fork server's, and
    a slot Spark server's keeper's. `read` gives the next one, {"gone": True} at its end, {"timeout": True}."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.pending = b""

    def read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                return {"gone": True} if ready else {"timeout": True}
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return {"noise": line.decode("utf-8", "replace")}
