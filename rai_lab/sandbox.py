"""The grading kernel's launcher: no network but loopback, then an ordinary IPython kernel.

`rai-lab grade` starts each learner's kernel as
``unshare -n -- python -m rai_lab.sandbox -f {connection_file}`` (a network namespace of its own,
where only its own loopback exists) when the machine allows it, else without unshare. Either way
this module also refuses, in Python, every connection that is not to the loopback, so that a
learner who tries the network reads why it failed.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import sys

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1

MESSAGE = {
    "fr": "rai-lab : le réseau est coupé pendant la notation (seul 127.0.0.1 est permis) ; adresse refusée : {address}",
    "en": "rai-lab: the network is off while grading (only 127.0.0.1 is allowed); refused address: {address}",
}


class NetworkRefused(PermissionError):
    """A connection the grading sandbox refuses."""


# The batch server's Spark settings beyond sparkserver's own.
BATCH_SPARK_CONF = {"spark.sql.codegen.wholeStage": "false"}


def bring_loopback_up() -> None:
    """A new network namespace starts with `lo` down; Spark and py4j need it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


def _allowed(address) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths: the kernel's own IPC with the grader
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it is already leaving the machine


def install_guard(lang: str = "fr") -> None:
    """Refuse, with a message, connections from Python to anything but the loopback."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(address):
        raise NetworkRefused(MESSAGE.get(lang, MESSAGE["fr"]).format(address=address))

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _allowed(address):
            refuse(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _allowed(address):
            refuse(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _allowed((host.decode() if isinstance(host, bytes) else str(host), 0)):
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo


def unshare_prefix() -> list[str]:
    """The command prefix that gives a process a network namespace of its own here, or []."""
    tool = shutil.which("unshare")
    if not tool:
        return []
    for flags in (["-n"], ["-rn"]) if os.geteuid() == 0 else (["-rn"],):
        try:
            done = subprocess.run([tool, *flags, "--", "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return [tool, *flags, "--"]
    return []


def join_prefix(pid: int) -> list[str]:
    """The command prefix that puts a process in the network namespace of process `pid`, or []."""
    tool = shutil.which("nsenter")
    if not tool:
        return []
    candidates = [[tool, f"--net=/proc/{pid}/ns/net", "--"]]
    candidates.append([tool, f"--target={pid}", "--user", "--net", "--"])  # a namespace made with unshare -rn
    for prefix in candidates:
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return []


def kernelspec(isolate: bool = True, prefix: list[str] | None = None) -> dict:
    """The kernel.json of the grading kernel: in a namespace of its own, or in `prefix`'s."""
    if prefix is None:
        prefix = unshare_prefix() if isolate else []
    return {
        "argv": [*prefix, sys.executable, "-m", "rai_lab.sandbox", "-f", "{connection_file}"],
        "display_name": "rai-lab grading sandbox",
        "language": "python",
        "metadata": {"rai_lab_network_namespace": bool(prefix)},
    }


def hold(spark_state: str | None, port: int | None = None) -> int:
    """Keep a batch's network namespace open (and its Spark Connect server running) until stdin closes.

    `rai-lab grade` starts this under `unshare -n`; the learners' kernels join the namespace with
    nsenter, so that they reach this one server on the namespace's loopback and nothing else.
    Prints a JSON line once the namespace is ready ({"namespace": pid}), then, once the Spark
    server answers, {"ready": true, "spark": "sc://127.0.0.1:PORT" or null} or {"error": "..."}.
    """
    import json
    from pathlib import Path

    from rai_lab import sparkserver

    try:
        bring_loopback_up()
    except OSError:
        pass
    print(json.dumps({"namespace": os.getpid()}), flush=True)
    state = Path(spark_state) if spark_state else None
    url = None
    try:
        if state:
            # A batch lasts minutes: the JIT's quick tier only, which leaves the 2 cores to the kernels;
            # and no whole-stage code generation, whose compile time the lab's small queries never win back.
            url = sparkserver.start(port=port or sparkserver.DEFAULT_PORT, state=state,
                                    java_options=os.environ.get("RAI_LAB_BATCH_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1"),
                                    conf=BATCH_SPARK_CONF).url
    except Exception as err:  # noqa: BLE001 - reported to the grader, which says it to the instructor
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    print(json.dumps({"ready": True, "spark": url}), flush=True)
    try:
        sys.stdin.read()  # EOF when the grader ends, however it ends
    finally:
        if state:
            sparkserver.stop(state)
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["hold"]:
        sys.exit(hold(argv[1] if len(argv) > 1 else None, int(argv[2]) if len(argv) > 2 else None))
    try:
        bring_loopback_up()
    except OSError:
        pass  # not in a namespace of our own (or not allowed): the guard below still holds
    install_guard(os.environ.get("RAI_LAB_LANG", "fr"))
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)


if __name__ == "__main__":
    main()
