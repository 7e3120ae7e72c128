"""JupyterHub's configuration for a classroom: PAM login for the roster's accounts, one JupyterLab per user running
as that user (a learner's with the Assignment List of their language's course and Validate, the instructor's with
the formgrader), configurable-http-proxy from the project's npm prefix, and the instructor's grading service.

<state>/hub/jupyterhub_config.py holds two lines that call `configure` here; all else is read from classroom.json.
"""

from __future__ import annotations

import os
import pwd
import socket
import sys
from pathlib import Path

from rai_lab import paths
from rai_lab.classroom import course
from rai_lab.classroom.roster import Classroom
from rai_lab.errors import RaiLabError

PROXY = paths.ROOT / ".classroom-node" / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE = "rai-lab-grading"
LOCAL_CONFIG = "jupyterhub_config.local.py"  # the instructor's own settings, loaded after the classroom's
INSTRUCTOR_ROLE = "rai-lab-instructor"
# What a user's JupyterLab and a Hub service get from the Hub's environment (JupyterHub passes on nothing else).
PASSED_ON = ("LANG", "LC_ALL", "JAVA_HOME", "TZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_dir(state: Path) -> Path:
    return state / "hub"


def write(classroom: Classroom) -> Path:
    """<state>/hub/ (root only: the Hub's database, cookie secret, pids) and its jupyterhub_config.py."""
    folder = hub_dir(classroom.state)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    config = folder / "jupyterhub_config.py"
    local = folder / LOCAL_CONFIG
    config.write_text('"""Written by rai-lab classroom: the configuration is rai_lab/classroom/hubconfig.py; yours goes in '
                      f'{LOCAL_CONFIG} beside this file (another authenticator, TLS...)."""\n'
                      "import os\n\nfrom rai_lab.classroom.hubconfig import configure\n\n"
                      f"configure(c, {str(classroom.state)!r})  # noqa: F821 - c is JupyterHub's config\n"
                      f"if os.path.exists({str(local)!r}):\n"
                      f"    load_subconfig({str(local)!r})  # noqa: F821 - JupyterHub's\n")
    return config


def user_environment(classroom: Classroom, user: str) -> dict[str, str]:
    person = classroom.person(user)
    role = "instructor" if person.user == classroom.instructor.user else "learner"
    bin_dir = str(course.user_bin())
    env = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
    home = Path(pwd.getpwnam(person.user).pw_dir)
    env.update({
        "PATH": os.pathsep.join([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"]),
        # JupyterLab's settings and workspaces in the user's home (not in the shared, read-only JUPYTER_CONFIG_DIR)
        "JUPYTERLAB_SETTINGS_DIR": str(home / ".jupyter" / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / ".jupyter" / "lab" / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(classroom.state / "jupyter" / f"{role}-{person.lang}"),
        "RAI_LAB_LANG": person.lang,
    })
    if role == "instructor":
        env["RAI_LAB_FORMGRADER"] = "1"  # the formgrader's Autograde is refused (rai_lab's sealed Execute)
    return env


def configure(c, state: str) -> None:
    classroom = Classroom.load(Path(state))
    folder = hub_dir(classroom.state)
    if not PROXY.exists():
        raise RaiLabError(f"configurable-http-proxy is missing ({PROXY}): run `make classroom-deps` (npm install "
                          f"into .classroom-node)")
    c.JupyterHub.bind_url = f"http://127.0.0.1:{classroom.port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{free_port()}"
    c.JupyterHub.db_url = f"sqlite:///{folder / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(folder / "cookie_secret")
    c.JupyterHub.pid_file = str(folder / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.command = [str(PROXY)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{free_port()}"
    c.ConfigurableHTTPProxy.pid_file = str(folder / "proxy.pid")
    c.JupyterHub.cleanup_servers = True  # stopping the Hub stops every JupyterLab
    c.JupyterHub.cleanup_proxy = True

    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.open_sessions = False
    c.Authenticator.allowed_users = {person.user for person in classroom.people}
    c.Authenticator.admin_users = set()  # nobody can open another's server

    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.cmd = [str(course.user_bin() / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 180  # two cores may be busy
    c.Spawner.http_timeout = 180

    def per_user(spawner) -> None:
        env = user_environment(classroom, spawner.user.name)
        spawner.environment = env
        spawner.args = [f"--LabApp.app_settings_dir={Path(env['JUPYTER_CONFIG_DIR']) / 'lab-settings'}",
                        *classroom.lab_args]

    c.Spawner.pre_spawn_hook = per_user

    service_env = {key: os.environ[key] for key in (*PASSED_ON, "XDG_CACHE_HOME", "RAI_LAB_HOME", "PATH")
                   if key in os.environ}
    c.JupyterHub.services = [{
        "name": SERVICE, "url": f"http://127.0.0.1:{free_port()}", "oauth_no_confirm": True,
        "command": [sys.executable, "-m", "rai_lab.classroom.service", str(classroom.state)],
        "environment": service_env,
    }]
    c.JupyterHub.load_roles = [{"name": INSTRUCTOR_ROLE, "users": [classroom.instructor.user],
                                "scopes": [f"access:services!service={SERVICE}", "self"]}]
