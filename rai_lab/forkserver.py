"""Warm grading kernels: a fork server that has already imported what every lab kernel imports.

Starting an IPython kernel and importing openai, vcrpy, pandas, pyarrow and the Spark Connect
client costs about 2 s of CPU per notebook, more than the notebook itself. `rai-lab grade`
starts one fork server per batch, inside the batch's network namespace, with those modules
imported once; each learner's kernel is a fresh fork of it (copy-on-write, nothing shared
afterwards: a kernel's own imports, variables and patches die with it).

jupyter_client still launches and manages an ordinary process, the launcher
(``python -m rai_lab.forkserver launch SOCKET -f {connection_file}``): it hands its
stdin/stdout/stderr, environment and folder to the server, which forks the kernel; the launcher
forwards interrupts to it and exits with its exit status. If the launcher is killed (a kernel
shut down hard, a notebook over its time limit), the server kills that kernel.
"""

from __future__ import annotations

import array
import atexit
import json
import os
import signal
import socket
import struct
import sys
import threading

# What the lab's kernels import; imported once in the server, before any thread exists.
PRELOAD = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "openai", "httpx", "vcr", "yaml", "pandas",
    "pyarrow", "numpy", "pyspark.sql", "pyspark.sql.connect.session", "grpc", "rai_lab", "rai_lab.kit",
    "rai_lab.cassette", "rai_lab.spark", "nbformat", "rai_lab.bias", "matplotlib.figure", "matplotlib.backends.backend_agg",
)


def _send(conn: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    conn.sendall(struct.pack("!I", len(data)) + data)


def _recv(conn: socket.socket) -> dict | None:
    header = _recv_exact(conn, 4)
    if header is None:
        return None
    data = _recv_exact(conn, struct.unpack("!I", header)[0])
    return json.loads(data) if data is not None else None


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    chunks = b""
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


# -- the server ---------------------------------------------------------------------------------
def serve(path: str) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads in a process that forks
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that fails here is imported (and fails) in the kernel
            pass
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        conn, _ = listener.accept()
        try:
            message, fds = _receive_request(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:  # the kernel
            listener.close()
            conn.close()
            _become_kernel(message, fds)
        for fd in fds:
            os.close(fd)
        threading.Thread(target=_watch, args=(conn, pid), daemon=True).start()


def _receive_request(conn: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    size = struct.unpack("!I", data[:4])[0]
    body = data[4:]
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            raise ValueError("truncated request")
        body += more
    return json.loads(body), list(fds)


def _watch(conn: socket.socket, pid: int) -> None:
    """Tell the launcher the kernel's pid and, later, its exit status; kill the kernel if the launcher goes."""
    done = threading.Event()

    def launcher_gone() -> None:
        try:
            while not done.is_set():
                message = _recv(conn)
                if message is None:
                    break
                if "signal" in message:
                    try:
                        os.kill(pid, int(message["signal"]))
                    except ProcessLookupError:
                        pass
        except OSError:
            pass
        if not done.is_set():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    try:
        _send(conn, {"pid": pid})
    except OSError:
        pass
    threading.Thread(target=launcher_gone, daemon=True).start()
    _, status = os.waitpid(pid, 0)
    done.set()
    try:
        _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
    except OSError:
        pass
    conn.close()


def _become_kernel(message: dict, fds: list[int]) -> None:
    code = 1
    try:
        os.setsid()
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update({k: v for k, v in message["env"].items() if k != "JPY_PARENT_PID"})
        sys.argv = ["rai_lab.sandbox", *message["argv"]]
        atexit._clear()  # the server's exit handlers are not the kernel's
        from rai_lab import sandbox

        sandbox.install_guard(os.environ.get("RAI_LAB_LANG", "fr"))
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=message["argv"])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr, then the kernel ends
        import traceback

        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()  # the kernel's own (the kit's: leave the cassette, end the Spark session)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# -- the launcher -------------------------------------------------------------------------------
def launch(path: str, argv: list[str]) -> int:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    body = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    conn.sendmsg([struct.pack("!I", len(body)) + body],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
    first = _recv(conn)
    if not first or "pid" not in first:
        print("rai-lab: the warm kernel server did not start a kernel", file=sys.stderr)
        return 1
    lock = threading.Lock()

    def forward(signum, _frame):
        with lock:
            try:
                _send(conn, {"signal": signum})
            except OSError:
                pass
        if signum == signal.SIGTERM:
            os._exit(128 + signum)  # the server sees the connection close and kills the kernel

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    while True:
        try:
            message = _recv(conn)
        except InterruptedError:
            continue
        if message is None:
            return 1
        if "exit" in message:
            return int(message["exit"])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"] and len(argv) == 2:
        return serve(argv[1])
    if argv[:1] == ["launch"] and len(argv) >= 2:
        return launch(argv[1], argv[2:])
    print("usage: python -m rai_lab.forkserver serve SOCKET | launch SOCKET -f CONNECTION_FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
