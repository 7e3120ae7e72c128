"""Inside a learner's grading kernel: every connection from Python that is not to the loopback is refused, with
a message, so that a learner who tries the network reads why (the sandbox has no network anyway); and a Spark Connect
client that cannot reach the worker slot's Spark server gives up within about a second (`spark_fails_fast`)."""

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


# What a grading kernel's Spark Connect client retries when the slot's server does not answer: 3 retries, at most
# 0.5 s apart (under a second in all), instead of pyspark's 15 up to a minute apart (10 minutes, for a cluster).
SPARK_RETRIES = {"max_retries": 3, "max_backoff": 500}


def spark_fails_fast() -> None:
    """Make every Spark Connect client of this kernel retry a server that does not answer for about a second only.

    The slot's Spark server is on the loopback and is never restarted while a learner runs: once it is gone (a
    learner's UDF killed it), waiting helps nothing. With pyspark's default a client waits 10 minutes, ignoring the
    interrupt, so the notebook was stopped at its cell limit twice (in the batch, then alone); now the learner's cell
    fails at once with Spark's own error. pyspark 4 builds each client's policy from
    `pyspark.sql.connect.client.core.DefaultPolicy` (looked up when a client is made), replaced here by a subclass."""
    try:
        from pyspark.sql.connect.client import core, retries
    except ImportError:  # no Spark Connect client: nothing retries
        return

    class GradingRetryPolicy(retries.DefaultPolicy):
        def __init__(self, **options):
            super().__init__(**{**SPARK_RETRIES, **options})

    core.DefaultPolicy = GradingRetryPolicy
