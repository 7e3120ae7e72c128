"""A grading kernel's launcher: the process jupyter_client starts and manages for each learner's kernel.

It runs in the grading worker, outside the sandbox (``python -m rai_lab.grading.worker.launcher SOCKET -f
{connection_file}``, the slot's kernelspec): it hands its stdin/stdout/stderr, the connection file's content and
the allowed environment (`KERNEL_PASS`) to the slot's fork server (`rai_lab.grading.sandboxed.forkserver`), which
forks the kernel inside the sandbox; it forwards interrupts to it and exits with its exit status. If the launcher
is killed (a kernel shut down hard, a notebook over its time limit), the server kills that kernel.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import struct
import sys
import threading

from rai_lab.grading.sandboxed.forkserver import KERNEL_PASS, receive, send


def launch(path: str, argv: list[str]) -> int:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    connection = ""
    if "-f" in argv:
        with open(argv[argv.index("-f") + 1], encoding="utf-8") as handle:
            connection = handle.read()
    env = {k: v for k, v in os.environ.items() if k in KERNEL_PASS}  # nothing else of the grader's leaves here
    body = json.dumps({"argv": argv, "env": env, "cwd": os.getcwd(), "connection": connection}).encode()
    conn.sendmsg([struct.pack("!I", len(body)) + body],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    first = receive(conn)
    if not first or "pid" not in first:
        print("rai-lab: the warm kernel server did not start a kernel", file=sys.stderr)
        return 1
    lock = threading.Lock()

    def forward(signum, _frame):
        with lock:
            try:
                send(conn, {"signal": signum})
            except OSError:
                pass
        if signum == signal.SIGTERM:
            os._exit(128 + signum)  # the server sees the connection close and kills the kernel

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    while True:
        try:
            message = receive(conn)
        except InterruptedError:
            continue
        if message is None:
            return 1
        if "exit" in message:
            return int(message["exit"])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.exit("usage: python -m rai_lab.grading.worker.launcher SOCKET -f CONNECTION_FILE")
    return launch(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
