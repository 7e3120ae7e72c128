"""Inside a learner's grading kernel: every connection from Python that is not to the loopback is refused, with
a message, so that a learner who tries the network reads why (the sandbox has no network anyway)."""

from __future__ import annotations

import ipaddress
import socket

from rai_lab.messages import say


class NetworkRefused(PermissionError):
    """A connection the grading sandbox refuses."""


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
        raise NetworkRefused(say("sandbox.network_refused", lang, address=address))

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
