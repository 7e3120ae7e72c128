"""The grading sandbox: bubblewrap around every learner's kernel and every worker's Spark server.

`rai-lab grade` starts each grading worker in a network namespace of its own (`unshare -n`), where
only its loopback exists; there the worker starts its Spark Connect server in a bubblewrap sandbox
(`rai_lab.grading.worker.slotspark`), and runs its learners' kernels in a sandbox of its own slot
(`bwrap_command`): own PID, mount, IPC and UTS namespaces, an unprivileged uid, an allowlist
environment, the system and the kit read-only, a private tmpfs for /tmp and the learner's folder,
and no view of the course, the other learners, the grades or the instructor's home. Inside, the
kernel also refuses, in Python, every connection that is not to the loopback, so that a learner who
tries the network reads why (`rai_lab.grading.sandboxed.guard`).
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rai_lab.messages import say

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def bring_loopback_up() -> None:
    """A new network namespace starts with `lo` down; Spark and py4j need it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


# -- the bubblewrap sandbox -------------------------------------------------------------------------
SANDBOX_UID = 65534  # what a sandboxed process is inside (nobody); outside it is UID_BASE + n
UID_BASE = 61000  # outside: a batch's Spark servers are its block's first uid (each in its own PID namespace), slot n the next
UID_BLOCK = 128  # uids of one batch: its Spark servers' and one per slot (a batch has at most UID_BLOCK - 1 workers)
UID_BLOCKS = 16  # batches that can run on one machine at once, each with uids no other batch uses (61000-63047)
UID_ENV = "RAI_LAB_UID_BASE"  # the first uid of the block its grader claimed, in a worker's environment


def uid_base() -> int:
    """The first uid of this batch's block (its Spark servers'; slot n is uid_base() + 1 + n), as its grader said."""
    return int(os.environ.get(UID_ENV, UID_BASE))


SCRATCH = "/home/learner"  # the learner's private writable folder (a tmpfs of its own)
SPARK_STATE = "/srv/spark"  # where a Spark server sees its own state folder
HOSTNAME = "rai-lab-sandbox"  # every sandbox's host name (the JVM resolves its own name)


@dataclass
class Limits:
    """What one sandboxed kernel may use."""

    memory: int = 3 << 30  # address space of the kernel (RLIMIT_AS); 0: none (embedded Spark's JVM)
    processes: int = 256  # processes and threads of the slot's uid (RLIMIT_NPROC)
    file_size: int = 64 << 20  # the largest file it may write (RLIMIT_FSIZE)
    scratch: int = 256 << 20  # the tmpfs of SCRATCH, and of /tmp
    output: int = 20 << 20  # what the grader keeps of a notebook's outputs



def base_environment(lang: str) -> dict[str, str]:
    """The whole environment of a sandboxed process: an allowlist, nothing of the grader's but these."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": SCRATCH,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "RAI_LAB_LANG": lang,
    }
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.isdir(java_home):
        env["JAVA_HOME"] = java_home
    return env


def _system_view() -> list[str]:
    """A read-only view of the system and of the kit's Python: no /root, /home, /work, /srv, /var, /run…"""
    args, bound = [], ["/usr", "/etc"]
    for top in bound:
        args += ["--ro-bind", top, top]
    for top in ("/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    args += ["--ro-bind-try", "/sys", "/sys", "--dev", "/dev", "--proc", "/proc"]
    import rai_lab
    from rai_lab import paths  # the text catalogues may live beside the kit (RAI_LAB_I18N): read-only too

    for folder in (sys.prefix, sys.base_prefix, str(Path(rai_lab.__file__).resolve().parent), str(paths.I18N), os.environ.get("JAVA_HOME") or ""):
        folder = os.path.realpath(folder) if folder else ""
        if folder and os.path.isdir(folder) and not _inside(folder, bound):
            args += ["--ro-bind", folder, folder]
            bound.append(folder)
    return args


def _walkable(args: list[str]) -> list[str]:
    """bubblewrap makes the folders it creates above a mount 0700: let the sandbox's uid walk through them."""
    bound = [args[i + 2] for i, a in enumerate(args) if a in ("--bind", "--ro-bind", "--ro-bind-try")]
    tmpfs = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]  # 1777 already: left as they are
    above = sorted({str(p) for m in bound + tmpfs for p in Path(m).parents
                    if str(p) != "/" and not _inside(str(p), bound) and str(p) not in tmpfs}, key=len)
    return [arg for folder in above for arg in ("--chmod", "0755", folder)]


def _inside(folder: str, bound: list[str]) -> bool:
    return any(folder == b or folder.startswith(b + "/") for b in bound)


def _world_readable(folder: str, names: list[str]) -> set[str]:
    """shutil.copytree's ignore: what the sandbox's uid could not read in the host's /etc anyway (shadow, keys…)."""
    skipped = set()
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        if stat.S_ISLNK(mode):
            continue
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            skipped.add(name)
    return skipped


def passwd_file(folder: Path, uids: dict[int, str]) -> Path:
    """The sandboxes' own /etc, in `folder`/etc: a copy of the host's (what any user may read of it), with a passwd
    and group naming their uids (Java and getpass want a name) and a hosts file naming the sandbox.

    A copy, not the host's /etc with these three files mounted over it: a file mounted over another is unmounted
    when the host replaces that file (useradd renames a new /etc/passwd into place), and a sandbox would then
    lose its names in the middle of a batch (Java: "basedir must be absolute: ?/.ivy2")."""
    etc = folder / "etc"
    if not etc.is_dir():
        shutil.copytree("/etc", etc, symlinks=True, ignore=_world_readable)
        os.chmod(etc, 0o755)
    lines = ["root:x:0:0:root:/root:/usr/sbin/nologin", *(f"{name}:x:{uid}:{uid}:{name}:{SCRATCH}:/usr/sbin/nologin"
                                                          for uid, name in uids.items()),
             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"]
    groups = ["root:x:0:", *(f"{name}:x:{uid}:" for uid, name in uids.items()), "nogroup:x:65534:"]
    hosts = [f"127.0.0.1 localhost {HOSTNAME}", "::1 localhost ip6-localhost"]  # the JVM resolves its own name
    for name, text in (("passwd", lines), ("group", groups), ("hosts", hosts)):
        (etc / name).unlink(missing_ok=True)  # a symbolic link in the host's /etc is replaced, not followed
        (etc / name).write_text("\n".join(text) + "\n", encoding="utf-8")
        os.chmod(etc / name, 0o644)
    return folder


def bwrap_command(uid: int | None, *, network: bool, binds: list[str], env: dict[str, str], chdir: str,
                  scratch: int, info_fd: int | None = None, etc: Path | None = None) -> list[str]:
    """The command prefix of a bubblewrap sandbox.

    Own PID, mount, IPC and UTS namespaces (and network, unless `network`: then the caller's);
    the allowlist environment `env`; the system and the kit read-only; a private tmpfs for /tmp and
    SCRATCH of `scratch` bytes each, plus `binds`. Run by root, the sandbox is built as root and its
    command then runs as `uid` with no capability left (setpriv); run by anybody else, bubblewrap
    maps the caller's own uid (a user namespace) and `uid` is not used.
    """
    root = os.geteuid() == 0
    command = [shutil.which("bwrap") or "bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--die-with-parent", "--new-session", "--hostname", HOSTNAME,
               "--clearenv"]
    if not root:
        command += ["--unshare-user", "--disable-userns"]
    if not network:
        command += ["--unshare-net"]
    for name, value in env.items():
        command += ["--setenv", name, value]
    # The private tmpfs first: the kit (a clone under /tmp, say) is then mounted over them, not hidden by them.
    for folder in ("/tmp", SCRATCH):
        command += ["--size", str(scratch), "--tmpfs", folder, "--chmod", "1777", folder]
    command += _system_view()
    if etc is not None:  # the sandboxes' own /etc (passwd_file), over the host's
        command += ["--ro-bind", str(etc / "etc"), "/etc"]
    command += binds
    command += _walkable(command)
    if info_fd is not None:
        command += ["--info-fd", str(info_fd)]
    command += ["--chdir", chdir, "--"]
    if root and uid is not None:
        command += [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return command


def hidden_args(command: list[str]) -> tuple[list[str], int]:
    """`command` (a bwrap_command + what runs inside) as `bwrap --args FD`: the sandbox's PID 1 is bubblewrap, and
    its command line (readable inside) must not show the grader's folders. Pass the fd (pass_fds), close it after."""
    split = command.index("--")
    read, write = os.pipe()
    os.write(write, b"".join(arg.encode() + b"\0" for arg in command[1:split]))
    os.close(write)
    return [command[0], "--args", str(read), *command[split:]], read


@functools.cache
def unavailable(lang: str = "en") -> str | None:
    """Why the grading sandbox cannot be built here (None when it can): tried for real, once."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform}): " + say("sandbox.fix_it", lang)
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed: " + say("sandbox.fix_it", lang)
    if os.geteuid() != 0:
        # Built by root, each sandbox runs its kernels as a uid of their own, and the workers join the batch's
        # network namespace; without root neither holds (and that path is untested), so it is not offered.
        return ("rai-lab grade builds its sandbox as root, to run each learner's kernel as an unprivileged uid of its "
                "own: run it as root (sudo, or a Linux container or virtual machine of your own); " + say("sandbox.fix_it", lang))
    import rai_lab

    probe = bwrap_command(UID_BASE, network=False, binds=[], env=base_environment(lang), chdir=SCRATCH, scratch=1 << 20)
    try:
        done = subprocess.run([*probe, sys.executable, "-c", "import rai_lab.grading.sandboxed.forkserver"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap did not run ({err}): " + say("sandbox.fix_it", lang)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["?"])[-1][:300]
        return (f"bubblewrap could not build the sandbox ({detail}); the kit's folders must be readable by others "
                f"(chmod o+rx on every folder above {Path(rai_lab.__file__).resolve().parents[1]}): " + say("sandbox.fix_it", lang))
    return None


BATCH_PREFIX = "rai-lab-batch-"
BATCH_OWNER = "owner"  # in a batch folder: "<pid> <start time>" of the process that made it (the grader)


def batch_folder() -> Path:
    """A private folder for a batch's sockets and Spark state, outside the course tree and out of /tmp
    (a sandbox's /tmp is its own tmpfs, emptied between learners).

    It records its owner (this process), and the folders of graders that are gone are removed first: a grader
    killed outright (SIGKILL, a power cut) could not remove its own."""
    import tempfile

    base = "/run" if os.geteuid() == 0 and os.access("/run", os.W_OK) else os.environ.get("XDG_RUNTIME_DIR")
    base = base if base and os.path.isdir(base) else None
    remove_stale_batch_folders(Path(base or tempfile.gettempdir()))
    folder = Path(tempfile.mkdtemp(prefix=BATCH_PREFIX, dir=base))
    os.chmod(folder, 0o711)
    (folder / BATCH_OWNER).write_text(_process_mark(os.getpid()) or str(os.getpid()), encoding="utf-8")
    return folder


def _process_mark(pid: int) -> str | None:
    """"<pid> <start time>" of a live process (the start time tells a reused pid apart), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if stat[0] in ("Z", "X") else f"{pid} {stat[19]}"  # state, then field 22: start time in clock ticks


def remove_stale_batch_folders(base: Path) -> list[Path]:
    """Remove the batch folders under `base` whose owner is gone; return them.

    Only a folder whose owner file names a process that no longer runs (or a pid now reused by another process)
    is removed: a folder without one (made by an older kit, or being made this instant) is left alone, as is the
    folder of any grader still running (another batch beside this one)."""
    removed = []
    for folder in base.glob(BATCH_PREFIX + "*"):
        try:
            owner = (folder / BATCH_OWNER).read_text(encoding="utf-8").split()
            pid = int(owner[0])
        except (OSError, ValueError, IndexError):
            continue
        mark = _process_mark(pid)
        if mark is not None and (len(owner) < 2 or mark.split()[1] == owner[1]):
            continue  # its grader still runs
        if folder.is_symlink() or not folder.is_dir():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def die_with_parent() -> None:
    """This process ends as soon as the one that started it is gone, however it went (SIGKILL included); called
    first thing by the processes `rai-lab grade` starts (its workers). What they start in bubblewrap goes with
    them (--die-with-parent, and the end of the sandbox's PID namespace).

    A watching thread, not PR_SET_PDEATHSIG: the kernel sends that signal when the *thread* that started the
    process ends, and the grader starts a replacement worker from a grading thread that ends before the batch
    does. If the grader (RAI_LAB_GRADER_PID) is already gone by the time this runs, this process leaves at once."""
    import threading
    import time

    parent = os.getppid()
    grader = os.environ.get("RAI_LAB_GRADER_PID", "")
    if grader.isdigit() and _process_mark(int(grader)) is None:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:  # an orphan is handed to init (or a subreaper): the parent is gone
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
