"""The two JupyterLabs of the kit: the learner's (`make jupyter`) and the instructor's formgrader (`make formgrader`).

Each role has its own Jupyter configuration folder under jupyter/ (JUPYTER_CONFIG_DIR):
- learner: the lab notebooks, nbgrader's Validate button and nothing else of nbgrader (no
  formgrader, course list, assignment list or exchange); an nbgrader_config.py for Validate;
- instructor: nbgrader's formgrader on the course tree of a graded class (`rai-lab grade`), to
  browse submissions, read feedback and adjust a score by hand (`rai-lab grade` then exports it).
  Autograding from the formgrader is refused: it would run learners' code outside the sandbox.
Both listen on 127.0.0.1 only, with a token, and write JupyterLab's settings and workspaces where
JupyterLab usually does (~/.jupyter/lab), never into the repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rai_lab import paths
from rai_lab.errors import RaiLabError

CONFIG = paths.ROOT / "jupyter"
# Set in the formgrader's server: nbgrader's autograde stops there (rai_lab.grading.worker.sealed.SealedExecute).
FORMGRADER_ENV = "RAI_LAB_FORMGRADER"


def environment(role: str, base: dict | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    home = Path(env.get("HOME") or Path.home())
    env["JUPYTER_CONFIG_DIR"] = str(CONFIG / role)
    env.setdefault("JUPYTERLAB_SETTINGS_DIR", str(home / ".jupyter" / "lab" / "user-settings"))
    env.setdefault("JUPYTERLAB_WORKSPACES_DIR", str(home / ".jupyter" / "lab" / "workspaces"))
    # The kernels find this environment's tools (nbgrader runs `alembic` by name).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if role == "instructor":
        env[FORMGRADER_ENV] = "1"
    else:
        env.pop(FORMGRADER_ENV, None)
    return env


def command(role: str, root: Path, port: int, ip: str = "127.0.0.1", token: str | None = None, browser: bool = True,
            default_url: str | None = None) -> list[str]:
    # lab-settings/overrides.json: JupyterLab's defaults for the role (no news or update prompts).
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", f"--ip={ip}", f"--port={port}",
            "--ServerApp.port_retries=0", f"--LabApp.app_settings_dir={CONFIG / role / 'lab-settings'}"]
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if not browser:
        argv.append("--no-browser")
    if default_url:
        argv.append(f"--ServerApp.default_url={default_url}")
    if os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def learner(port: int, ip: str = "127.0.0.1", token: str | None = None, browser: bool = True,
            root: Path | None = None) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working folder) of the learner's JupyterLab on lab/."""
    root = (root or paths.LAB).resolve()
    return command("learner", root, port, ip, token, browser), environment("learner"), root


def course_of(out_dir: Path, assignment: str, work: Path | None = None) -> Path:
    """The nbgrader course tree that `rai-lab grade --out OUT_DIR` graded into."""
    from rai_lab.grading import default_work_dir

    course = (work or default_work_dir(assignment, out_dir)).resolve() / "course"
    if not (course / "gradebook.db").exists():
        raise RaiLabError(f"no graded class for {assignment} behind {out_dir}: no {course / 'gradebook.db'}. Grade it "
                          f"first: rai-lab grade SUBMISSIONS --assignment {assignment} --out {out_dir}")
    return course


def formgrader(course: Path, port: int, ip: str = "127.0.0.1", token: str | None = None,
               browser: bool = True) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working folder) of the instructor's JupyterLab, opened on the formgrader."""
    return command("instructor", course, port, ip, token, browser, default_url="/formgrader"), environment("instructor"), course


def run(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Start JupyterLab in the foreground (Ctrl-C stops it)."""
    os.chdir(cwd)
    os.execvpe(argv[0], argv, env)
    return 0  # not reached
