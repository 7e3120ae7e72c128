"""Warm grading kernels: a fork server that has already imported what every lab kernel imports.

Starting an IPython kernel and importing openai, vcrpy, pandas, pyarrow and the Spark Connect
client costs about 2 s of CPU per notebook, more than the notebook itself. Each grading worker
starts one fork server in its own bubblewrap sandbox (``serve --fd FD --sealed``, see
`rai_lab.grading.worker.main`), with those modules imported once; each learner's kernel is a fresh fork of
it (copy-on-write, nothing shared afterwards), one at a time. Sealed, the server cannot be traced
by its kernels (not dumpable), sets their limits (address space, file size; processes for the
slot's uid), passes them only the names of `KERNEL_PASS` from the grader, and
after each kernel kills every other process of the sandbox and empties its folders before it reads
the next request.

jupyter_client still launches and manages an ordinary process, the launcher
(`rai_lab.grading.worker.launcher`: ``python -m rai_lab.grading.worker.launcher SOCKET -f {connection_file}``),
in the grading worker, outside the sandbox: it hands
its stdin/stdout/stderr, the connection file's content and the allowed environment to the server,
which forks the kernel; the launcher forwards interrupts to it and exits with its exit status. If
the launcher is killed (a kernel shut down hard, a notebook over its time limit), the server kills
that kernel.
"""

from __future__ import annotations

import array
import atexit
import gc
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import threading

from rai_lab.grading.sandboxed.clearing import clear_sandbox, kill_session

# Names a kernel may receive from the grader (everything else of the grader's environment stays out).
KERNEL_PASS = ("RAI_LAB_LANG", "RAI_LAB_I18N", "RAI_LAB_GRADING", "RAI_LAB_REPLAY", "SPARK_REMOTE", "JPY_SESSION_NAME")
# What the lab's kernels import; imported once in the server, before any thread exists.
PRELOAD = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "openai", "httpx", "vcr", "yaml", "pandas",
    "pyarrow", "numpy", "pyspark.sql", "pyspark.sql.connect.session", "grpc", "rai_lab", "rai_lab.kit",
    "rai_lab.azure.cassette.player", "rai_lab.spark.session", "nbformat", "rai_lab.bias", "matplotlib.figure",
    "matplotlib.backends.backend_agg", "ipykernel.debugger", "pdb", "sqlite3",  # each kernel's IPythonKernel imports
)


def send(conn: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    conn.sendall(struct.pack("!I", len(data)) + data)


def receive(conn: socket.socket) -> dict | None:
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
def serve(listener: socket.socket, sealed: bool, limits: dict) -> int:
    """Fork one kernel at a time; in a sealed sandbox, clear the sandbox between two kernels.

    Sealed (`rai-lab grade` in its bubblewrap slot): this server is the sandbox's only long-lived
    process. After each kernel, everything else in the sandbox is killed (`kill(-1)` reaches just
    this PID namespace) and the learner's folder and /tmp are emptied; only then is the next
    launcher's request read, and {"clean": n} is printed for the grading worker.
    """
    import ctypes
    import importlib
    import resource

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS threads in a process that forks
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's note on frozen modules, at its import
    if sealed:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no kernel may ptrace or read this server
        _limit(resource.RLIMIT_NPROC, limits.get("processes"))
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that fails here is imported (and fails) in the kernel
            pass
    # What the imports made is frozen: no collection in a kernel walks it again (one at the kernel's exit took about
    # 0.3 s of CPU), and none writes its headers, so its pages stay shared with this server instead of copied.
    gc.collect()
    gc.freeze()
    listener.listen(8)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    served = 0
    while True:
        conn, _ = listener.accept()
        try:
            message, fds = _receive_request(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        served += 1
        connection_file = os.path.join(tempfile.gettempdir(), f"rai-lab-kernel-{served}.json")
        with open(os.open(connection_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(message.get("connection", "{}"))
        pid = os.fork()
        if pid == 0:  # the kernel
            listener.close()
            conn.close()
            _become_kernel(message, fds, connection_file, limits, sealed)
        for fd in fds:
            os.close(fd)
        print(json.dumps({"kernel": served}), flush=True)
        _watch(conn, pid)
        if sealed:
            clear_sandbox()
        else:
            kill_session(pid)
        try:
            os.unlink(connection_file)
        except OSError:
            pass
        print(json.dumps({"clean": served}), flush=True)


def _limit(kind: int, value) -> None:
    import resource

    if value:
        try:
            resource.setrlimit(kind, (int(value), int(value)))
        except (ValueError, OSError):
            pass


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
    """Tell the launcher the kernel's pid and, once it ends, its exit status; kill it if the launcher goes."""
    done = threading.Event()

    def launcher_gone() -> None:
        try:
            while not done.is_set():
                message = receive(conn)
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
        send(conn, {"pid": pid})
    except OSError:
        pass
    threading.Thread(target=launcher_gone, daemon=True).start()
    _, status = os.waitpid(pid, 0)
    done.set()
    try:
        send(conn, {"exit": os.waitstatus_to_exitcode(status)})
    except OSError:
        pass
    conn.close()


def _become_kernel(message: dict, fds: list[int], connection_file: str, limits: dict, sealed: bool) -> None:
    import resource

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
        _limit(resource.RLIMIT_AS, limits.get("memory"))
        _limit(resource.RLIMIT_FSIZE, limits.get("file_size"))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sealed:
            os.chdir(os.environ.get("HOME") or "/")
        else:
            os.chdir(message.get("cwd") or "/")
        # The kernel's environment: this server's own (an allowlist) and the few names the grader passes.
        passed = {k: v for k, v in (message.get("env") or {}).items() if k in KERNEL_PASS}
        os.environ.update(passed)
        argv = list(message["argv"])
        if "-f" in argv:
            argv[argv.index("-f") + 1] = connection_file
        sys.argv = ["rai_lab.sandbox", *argv]
        atexit._clear()  # the server's exit handlers are not the kernel's
        from rai_lab.grading.sandboxed import guard

        guard.install_guard(os.environ.get("RAI_LAB_LANG", "fr"))
        guard.spark_fails_fast()
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m rai_lab.grading.sandboxed.forkserver",
                                     usage="%(prog)s serve (--socket PATH | --fd FD) [--sealed] [limits]")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--socket", help="listen on this Unix socket path")
    parser.add_argument("--fd", type=int, help="listen on this inherited, bound Unix socket")
    parser.add_argument("--sealed", action="store_true", help="this is a sandbox of its own: clear it between kernels")
    parser.add_argument("--memory", type=int, default=0)
    parser.add_argument("--processes", type=int, default=0)
    parser.add_argument("--file-size", type=int, default=0)
    args = parser.parse_args(argv)
    if args.fd is not None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=args.fd)
    elif args.socket:
        if os.path.exists(args.socket):
            os.unlink(args.socket)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args.socket)
        os.chmod(args.socket, 0o600)
    else:
        parser.error("--socket or --fd")
    return serve(listener, args.sealed, {"memory": args.memory, "processes": args.processes, "file_size": args.file_size})


if __name__ == "__main__":
    sys.exit(main())
