"""A real Spark Connect server started by `rai-lab spark start`, and the lab run against it."""

from __future__ import annotations

import socket

import pytest
from conftest import assert_lab_ran_cleanly, free_port, rai_lab_command

pytestmark = [pytest.mark.spark, pytest.mark.notebook]


# /proc/net/tcp{,6} spellings of 127.0.0.1, ::ffff:127.0.0.1 and ::1
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def exited(pid: int) -> bool:
    """Gone, or a zombie: it has exited and waits for init (or a subreaper) to collect its status."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in list(handle)[1:]:
                fields = line.split()
                address, hex_port = fields[1].rsplit(":", 1)
                if int(hex_port, 16) == port and fields[3] == "0A":
                    found.add(address)
    return found


@pytest.fixture(scope="module")
def server(connect_server):
    return connect_server


def test_server_runs_on_loopback_only(server):
    url, port, env = server
    done = rai_lab_command("spark", "status", env=env)
    assert done.returncode == 0 and f"running at {url}" in done.stdout
    found = listening_addresses(port)
    assert found and found <= LOOPBACK, found  # 127.0.0.1 (or its IPv6-mapped form), nothing else


def test_starting_twice_keeps_the_one_server(server):
    url, port, env = server
    done = rai_lab_command("spark", "start", "--port", str(port), env=env)
    assert done.returncode == 0 and url in done.stdout


@pytest.mark.parametrize("how", ["--spark", "SPARK_REMOTE"])
def test_the_lab_runs_on_the_connect_server(server, tmp_path, how):
    """Same notebook, same getOrCreate(): the DataFrames live on the server; display shows tables."""
    url, _, env = server
    args = ["run", "--checks", "--no-progress", "--out", str(tmp_path)]
    if how == "--spark":
        done = rai_lab_command(*args, "--spark", url, env=env)
    else:
        done = rai_lab_command(*args, env={**env, "SPARK_REMOTE": url})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Spark : Spark Connect {url}" in done.stdout
    assert "neutral_df 5 lignes, loaded_df 5 lignes" in done.stdout
    assert_lab_ran_cleanly(tmp_path)


def test_a_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = rai_lab_command("spark", "start", "--port", str(port), env={"RAI_LAB_SPARK_STATE": str(tmp_path)})
    assert done.returncode == 2 and f"port {port} on 127.0.0.1 is taken" in done.stderr


def test_stop_waits_for_the_jvm(tmp_path):
    """Start, stop: the server's process is gone and its port closed when stop returns."""
    env = {"RAI_LAB_SPARK_STATE": str(tmp_path)}
    port = free_port()
    assert rai_lab_command("spark", "start", "--port", str(port), env=env, timeout=300).returncode == 0
    pid = int(next((tmp_path / "pids").glob("*.pid")).read_text())
    done = rai_lab_command("spark", "stop", env=env, timeout=120)
    assert done.returncode == 0 and "stopped" in done.stdout
    assert exited(pid)
    assert listening_addresses(port) == set()
    assert rai_lab_command("spark", "status", env=env).returncode == 3
