"""The grading batch's pieces, each really started: the --trusted namespace, and warm kernels (unsealed here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from jupyter_client.manager import KernelManager

from rai_lab.grading.instructor import services
from rai_lab.grading.instructor import uids
from rai_lab.grading.worker import sandbox

pytestmark = [pytest.mark.notebook]

PROBE = (
    "import socket, sys\n"
    "sock = socket.socket()\n"
    "sock.settimeout(3)\n"
    "print(sock.connect_ex((sys.argv[1], int(sys.argv[2]))))\n"
)


HOLD = "from rai_lab.grading.worker import sandbox\nsandbox.bring_loopback_up()\nprint('ready', flush=True)\nimport sys\nsys.stdin.read()"


@pytest.fixture
def holder():
    """A process in a network namespace of its own, as each grading worker is (unshare -n), without Spark."""
    prefix = services.unshare_prefix()
    assert prefix, "this machine allows network namespaces (see test_kernels_get_a_network_namespace_here)"
    process = subprocess.Popen([*prefix, sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "ready"
    yield process
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def test_a_workers_namespace_has_its_own_loopback_and_no_way_out(holder):
    """Kernels in it reach a server inside it (the worker's Spark server, its replay service); the host's loopback and
    the outside are not there."""
    join = services.join_prefix(holder.pid)
    assert join and os.path.basename(join[0]) == "nsenter"
    server = subprocess.Popen([*join, sys.executable, "-c",
                               "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\n"
                               "print(s.getsockname()[1], flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip()
        inside = subprocess.run([*join, sys.executable, "-c", PROBE, "127.0.0.1", port], capture_output=True, text=True)
        assert inside.stdout.strip() == "0"  # a second process in the namespace reaches the server
        outside = subprocess.run([*join, sys.executable, "-c", PROBE, "192.0.2.1", "80"], capture_output=True, text=True)
        assert outside.stdout.strip() in ("101", "113")  # ENETUNREACH / EHOSTUNREACH
        host = subprocess.run([sys.executable, "-c", PROBE, "127.0.0.1", port], capture_output=True, text=True)
        assert host.stdout.strip() != "0"  # not the host's loopback: nothing there
    finally:
        server.kill()
        server.wait()


@pytest.fixture
def warm_kernels(tmp_path):
    """A fork server and a kernelspec that launches kernels through it."""
    socket_path = str(tmp_path / "forkserver")
    server = subprocess.Popen([sys.executable, "-m", "rai_lab.grading.sandboxed.forkserver", "serve", "--socket", socket_path],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "RAI_LAB_LANG": "en"})
    assert json.loads(server.stdout.readline())["ready"]
    spec = tmp_path / "jupyter" / "kernels" / "warm"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "rai_lab.grading.worker.launcher", socket_path, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "warm", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    try:
        yield server
    finally:
        os.environ.pop("JUPYTER_PATH", None)
        server.kill()
        server.wait()


def wait_for(client, msg_id: str, msg_type: str, timeout: float = 30) -> dict:
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == msg_type:
            return msg


def run_code(client, code: str, timeout: float = 30) -> dict:
    """Execute `code`; return {'stdout': ..., 'error': ename or None}."""
    msg_id = client.execute(code)
    found = {"stdout": "", "error": None}
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            found["stdout"] += msg["content"]["text"]
        elif msg["msg_type"] == "error":
            found["error"] = msg["content"]["ename"]
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return found


def test_a_warm_kernel_is_a_fresh_preloaded_fork(warm_kernels, tmp_path):
    """Its own pid, folder and environment (only the names the grader passes); the lab's modules already imported;
    the network guard on."""
    workdir = tmp_path / "learner"
    workdir.mkdir()
    km = KernelManager(kernel_name="warm")
    km.start_kernel(cwd=str(workdir), env={**os.environ, "RAI_LAB_LANG": "en", "LEARNER_MARK": "ana",
                                           "RAI_LAB_REPLAY": "http://127.0.0.1:9/token"})
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        got = run_code(client, "import os, sys\nprint(os.getcwd(), os.environ.get('LEARNER_MARK'), os.getppid(), "
                               "'pyspark.sql.connect.session' in sys.modules, os.getpid(), os.environ.get('RAI_LAB_REPLAY'))")
        cwd, mark, parent, preloaded, kernel_pid, replay = got["stdout"].split()
        assert (cwd, mark, preloaded, replay) == (str(workdir), "None", "True", "http://127.0.0.1:9/token")
        assert int(parent) == warm_kernels.pid  # forked by the server, not started cold
        refused = run_code(client, "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=3)\n"
                                   "except PermissionError as err:\n    print(err)")
        assert "the network is off while grading" in refused["stdout"]
        # A cell stopped at its time limit: jupyter_client's interrupt reaches the forked kernel.
        loop = client.execute("while True:\n    pass", stop_on_error=False)  # as nbclient does
        wait_for(client, loop, "execute_input")
        time.sleep(0.5)
        km.interrupt_kernel()
        assert wait_for(client, loop, "error")["content"]["ename"] == "KeyboardInterrupt"
        assert run_code(client, "print('still here')")["stdout"].strip() == "still here"
    finally:
        client.stop_channels()
    km.shutdown_kernel(now=True)
    assert wait_gone(int(kernel_pid))


def wait_gone(pid: int, timeout: float = 15) -> bool:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


def test_killing_the_launcher_kills_its_kernel(warm_kernels, tmp_path):
    """A notebook over its time limit: the grader kills the launcher; the forked kernel goes too."""
    import psutil

    km = KernelManager(kernel_name="warm")
    km.start_kernel(cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
    finally:
        client.stop_channels()
    kernels = psutil.Process(warm_kernels.pid).children()
    assert len(kernels) == 1
    km.provisioner.process.kill()
    assert wait_gone(kernels[0].pid)
    km.cleanup_resources()


@pytest.fixture
def sealed_slot(tmp_path):
    """A grading worker's slot as `rai-lab grade` builds it: bubblewrap, its fork server, its kernelspec."""
    from rai_lab.grading.worker import main as gradeworker

    batch = sandbox.batch_folder()
    assert (batch / sandbox.BATCH_OWNER).read_text().split()[0] == str(os.getpid())  # no other grader removes it
    logs = tmp_path / "logs"
    logs.mkdir()
    block = uids.UidBlock(1)  # uids no batch running beside this test uses
    sandbox.passwd_file(batch, {block.base + 1: "learner"})
    settings = {"index": 0, "ipc": str(batch), "logs": str(logs), "trusted": False, "lang": "en",
                "limits": vars(sandbox.Limits())}
    saved = dict(os.environ)
    os.environ[sandbox.UID_ENV] = str(block.base)  # as the grader tells its workers
    slot = gradeworker.Slot(settings)
    assert slot.uid == block.base + 1
    slot.environment()
    slot.start()
    try:
        yield slot
    finally:
        slot.stop()
        block.release()
        os.environ.clear()
        os.environ.update(saved)
        import shutil

        shutil.rmtree(batch, ignore_errors=True)
        assert not batch.exists()


def _kernel(env: dict | None = None):
    km = KernelManager(kernel_name="rai-lab-sandbox")
    km.start_kernel(env={**os.environ, **(env or {})})
    client = km.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return km, client


LEAVE_TRACES = """
import ctypes, os, subprocess, sys
for path in (os.path.expanduser("~/planted.txt"), "/tmp/planted.txt", "/dev/shm/planted.txt"):
    try:
        open(path, "w").write("from the last learner")
    except OSError as err:
        print("no", path, err)
libc = ctypes.CDLL(None)
print("shm", libc.shmget(0, 4096, 0o1666))  # IPC_PRIVATE | IPC_CREAT, readable by all
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
print(os.getuid(), os.environ.get("HOME"), ",".join(sorted(os.environ)))
print(open("/proc/1/cmdline").read().replace("\\0", " "))
"""

LOOK_AROUND = """
import glob, os
import sys, rai_lab
found = glob.glob(os.path.expanduser("~/*")) + glob.glob("/tmp/*") + glob.glob("/dev/shm/*")
kit = (sys.prefix, rai_lab.__file__)  # a kit cloned under /tmp is mounted there, read-only
print(sorted(p for p in found if not p.startswith("/tmp/rai-lab-kernel-") and not any(k.startswith(p + "/") for k in kit)))
print(open("/proc/sysvipc/shm").read().count("\\n") - 1)
print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
"""


def test_a_sealed_slot_gives_each_kernel_a_clean_sandbox(sealed_slot):
    """What one learner's kernel leaves (files, a shared-memory segment, a daemon) is gone before the next
    kernel starts; a kernel runs as an unprivileged uid with the allowlist environment only."""
    km, client = _kernel({"RAI_LAB_REPLAY": "http://127.0.0.1:9/t", "GRADER_SECRET": "canary-slot-31f"})
    try:
        first = run_code(client, LEAVE_TRACES)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    lines = first["stdout"].splitlines()
    assert not [line for line in lines if line.startswith("no ") and "/dev/shm" not in line]  # /dev/shm: not even writable
    assert int(lines[1].split()[1]) >= 0  # a segment was made
    uid, home, names = lines[2].split(" ")
    assert int(uid) == sealed_slot.uid and home == sandbox.SCRATCH
    assert "GRADER_SECRET" not in names.split(",") and "RAI_LAB_REPLAY" in names.split(",")
    # PID 1 is `bwrap --args N -- <the fork server>`: its mounts, and so the grader's folders, are not shown
    assert "--args" in lines[3] and sealed_slot.settings["ipc"] not in lines[3] and "--bind" not in lines[3]
    sealed_slot.ready_for_next()
    km, client = _kernel()
    try:
        second = run_code(client, LOOK_AROUND)["stdout"].splitlines()
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    assert second[0] == "[]" and second[1] == "0"
    assert len(eval(second[2])) <= 3  # bubblewrap's init, the fork server, this kernel: no daemon


def test_two_batches_never_share_a_uid_and_a_block_where_a_process_runs_is_passed_over():
    """Each batch claims a block of uids for as long as it runs (a lock that ends with its grader): a second batch
    gets other uids, so no learner of one can signal, or use up the process limit of, a learner of the other."""
    first = uids.UidBlock(2)
    second = uids.UidBlock(2)
    try:
        assert first.base != second.base and abs(first.base - second.base) >= sandbox.UID_BLOCK
        assert (first.base - sandbox.UID_BASE) % sandbox.UID_BLOCK == 0
    finally:
        second.release()
    free = first.base
    first.release()
    # A process still running with one of a free block's uids (a killed grader's sandbox, dying): passed over.
    lingering = subprocess.Popen(["sleep", "60"], user=free + 1)
    try:
        third = uids.UidBlock(1)
        third.release()
        assert third.base != free
    finally:
        lingering.kill()
        lingering.wait()
    with pytest.raises(ValueError, match="at most 127 workers"):
        uids.UidBlock(sandbox.UID_BLOCK)


NAMES = "import os, pwd; print(pwd.getpwuid(os.getuid()).pw_name, os.path.exists('/etc/shadow'))"


def test_a_sandbox_keeps_its_names_when_the_host_replaces_its_passwd(sealed_slot):
    """useradd (an administrator, the classroom) renames a new /etc/passwd into place: a sandbox's own /etc is a copy,
    so its kernels still know their uid's name (Java needs it for user.home) in the middle of a batch. What the
    sandbox's uid could not read in the host's /etc (shadow) is not in the copy either."""
    import shutil

    km, client = _kernel()
    try:
        assert run_code(client, NAMES)["stdout"].split()[0] == "learner"
        replacement = "/etc/passwd.rai-lab-test"
        shutil.copy2("/etc/passwd", replacement)  # the same text, renamed over it: what useradd does
        os.replace(replacement, "/etc/passwd")
        name, shadow = run_code(client, NAMES)["stdout"].split()
        assert name == "learner" and shadow == "False"
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
