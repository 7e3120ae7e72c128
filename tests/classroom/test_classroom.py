"""A classroom in one command (`rai-lab classroom`, issue 25), its whole loop in Debian's headless Chromium.

One real JupyterHub for the module (configurable-http-proxy from .classroom-node, PAM login, LocalProcessSpawner)
with two learners and an instructor, real Unix accounts named with a random prefix (rlt????-), an nbgrader exchange
in a folder of its own under /tmp. Each person logs in through the Hub's login form with the password the command
printed. Ana fetches the French lab from the Assignment List, fills it, saves it, passes Validate and submits; the
due date is set; Ben fetches, fills one step and submits, late. From Ana's own session (her kernel runs as her
account) the test tries to read Ben's home, list the exchange's inbound and feedback folders, and open Ben's server.
The instructor collects and grades from the classroom's grading page (the kit's sealed grader, `rai-lab grade`),
which releases the feedback; the formgrader opens in its own tab on the graded class. Each learner fetches the
feedback and reads it. Then `rai-lab classroom stop` leaves no process, and `remove` deletes accounts and exchange.

The tests run in file order, each on what the one before did. On a failure, screenshots of every open page and the
Hub's log are kept in out/classroom/ and the report says so. Whatever happens, the module's teardown stops the Hub
and removes the accounts and the exchange it made.
"""

from __future__ import annotations

import json
import os
import pwd
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import ROOT, free_port

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
# The learner's browser test (its page helper and Notebook driver), wherever tests/ keeps it.
sys.path.insert(0, str(next(TESTS.rglob("test_browser.py")).parent))
import make_submissions as subs  # noqa: E402
from test_browser import CHROMIUM, PAGE_HELPER, Notebook  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.spark]

ASSIGNMENT = "responsible-ai-fr"
NOTEBOOK_PATH = f"{ASSIGNMENT}/responsible_ai.ipynb"
EVIDENCE = ROOT / "out" / "classroom"
ROSTER = "login,name,language\nana,Ana Lima,fr\nben,Ben Okafor,fr\n"
ANA_FILLS = {"env_vars": subs.ENV_OK, "generate_answers": subs.GENERATE_OK, "build_dataframes": subs.DATAFRAMES_OK}
BEN_FILLS = {"env_vars": subs.ENV_OK}


def classroom_command(*args: str, state: Path, input: str | None = None, timeout: int = 600):
    return subprocess.run([sys.executable, "-m", "rai_lab", "classroom", *args, "--state", str(state)], cwd=ROOT,
                          capture_output=True, text=True, input=input, timeout=timeout)


def accounts_processes(users: list[str]) -> list[str]:
    from rai_lab.classroom import accounts

    found = []
    for proc in accounts.processes(users):
        try:
            found.append(f"{proc.pid} {proc.username()} {' '.join(proc.cmdline())[:120]}")
        except Exception:  # noqa: BLE001 - gone meanwhile
            continue
    return found


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the classroom test creates Unix accounts and runs JupyterHub for them: it needs root")
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make browser-deps` (apt-get install chromium)")
    from rai_lab.classroom import course, hubconfig

    if not hubconfig.PROXY.exists():
        pytest.fail(f"configurable-http-proxy is missing ({hubconfig.PROXY}): run `make classroom-deps`")
    course.user_bin()  # RaiLabError naming `make classroom-deps` when the accounts cannot run this Python
    prefix = f"rlt{secrets.token_hex(2)}-"
    users = {"ana": prefix + "ana", "ben": prefix + "ben", "teacher": prefix + "teacher"}
    # Not under pytest's tmp folder: /tmp/pytest-of-root is private, and every account must reach the exchange.
    state = Path(tempfile.mkdtemp(prefix="rai-lab-classroom-test-", dir="/tmp"))
    os.chmod(state, 0o755)
    roster = tmp_path_factory.mktemp("roster") / "roster.csv"
    roster.write_text(ROSTER)
    log_path = tmp_path_factory.mktemp("hub") / "hub.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    port = free_port()
    started = time.monotonic()
    hub = subprocess.Popen([sys.executable, "-m", "rai_lab", "classroom", "start", str(roster), "--state", str(state),
                            "--prefix", prefix, "--port", str(port), "--instructor", "teacher",
                            "--lab-option=--LabApp.expose_app_in_browser=True"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in hub.stdout], daemon=True).start()
    passwords: dict[str, str] = {}
    url = f"http://127.0.0.1:{port}"
    found = {"state": state, "users": users, "url": url, "log": log_path, "passwords": passwords, "hub": hub,
             "contexts": {}, "timings": {}}
    try:
        while True:  # the passwords, printed once, then the Hub's address
            try:
                line = lines.get(timeout=300)
            except queue.Empty:
                pytest.fail("rai-lab classroom start printed nothing for 300 s: " + log_path.read_text()[-3000:])
            if line.startswith("  ") and "\t" in line:
                user, password = line.strip().split("\t")
                passwords[user] = password
            if line.startswith("the Hub:"):
                break
        assert set(passwords) == set(users.values()), "every new account gets its own password, printed once"
        assert len(set(passwords.values())) == 3
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/hub/login", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or hub.poll() is not None:
                    pytest.fail("the Hub did not come up: " + log_path.read_text()[-3000:])
                time.sleep(1)
        found["timings"]["hub up"] = time.monotonic() - started
        for user in users.values():  # notebook windowing off, as in tests/test_browser.py (every cell in the page)
            home = Path(pwd.getpwnam(user).pw_dir)
            tracker = home / ".jupyter/lab/user-settings/@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
            tracker.parent.mkdir(parents=True)
            tracker.write_text(json.dumps({"windowingMode": "none"}))
            subprocess.run(["chown", "-R", f"{user}:{user}", str(home / ".jupyter")], check=True)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            found["browser"] = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])  # loopback only
            try:
                yield found
            finally:
                found["browser"].close()
    finally:
        if hub.poll() is None:
            classroom_command("stop", state=state, timeout=120)
            try:
                hub.wait(60)
            except subprocess.TimeoutExpired:
                hub.kill()
        if (state / "classroom.json").exists():
            classroom_command("remove", "--yes", state=state, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
        log.close()
        print("classroom timings (s):", json.dumps({k: round(v) for k, v in found["timings"].items()}))


@contextmanager
def evidence(classroom, name: str):
    """On a failure: a screenshot of every open page and the Hub's log in out/classroom/<name>/, named in the report."""
    try:
        yield
    except BaseException as error:
        kept = EVIDENCE / name
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        shutil.copy(classroom["log"], kept / "hub.log")
        for who, context in classroom["contexts"].items():
            for number, page in enumerate(context.pages):
                try:
                    page.screenshot(path=str(kept / f"{who}-{number}.png"))
                except Exception:  # noqa: BLE001 - the page itself may be what broke
                    pass
        raise AssertionError(f"{error}\n(screenshots of every open page and the Hub's log kept in {kept})") from error


def log_in(classroom, who: str, wait_for: str = "nbgrader:open-assignment-list"):
    """A new browser context for `who`, logged in through the Hub's form; their JupyterLab's page."""
    user = classroom["users"][who]
    context = classroom["browser"].new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(PAGE_HELPER)
    classroom["contexts"][who] = context
    page = context.new_page()
    page.goto(f"{classroom['url']}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", classroom["passwords"][user])
    page.click("#login_submit")
    page.wait_for_function(f"() => window.jupyterapp && window.jupyterapp.commands.hasCommand('{wait_for}')",
                           timeout=240_000)
    assert f"/user/{user}/lab" in page.url
    return page


def assignment_list(page):
    page.evaluate("() => window.jupyterapp.commands.execute('nbgrader:open-assignment-list')")
    page.wait_for_selector("#released_assignments_list_loading[hidden]", state="attached", timeout=60_000)


def fetch_and_open(classroom, who: str, page) -> Notebook:
    """Fetch the lab from the Assignment List, then open it (a new kernel, connected and idle)."""
    assignment_list(page)
    page.locator("#released_assignments_list .list_item button", has_text="Fetch").click()
    page.locator("#fetched_assignments_list .list_item button", has_text="Submit").wait_for(timeout=60_000)
    home = Path(pwd.getpwnam(classroom["users"][who]).pw_dir)
    assert (home / NOTEBOOK_PATH).exists(), "nbgrader fetched the lab into the learner's home"
    page.goto(f"{classroom['url']}/user/{classroom['users'][who]}/lab/tree/{NOTEBOOK_PATH}?reset")
    notebook = Notebook(LabStub(), page, NOTEBOOK_PATH)
    notebook.wait("s.panel && s.ready && s.shown > 40 && s.shown === s.cells && s.kernel === 'idle'"
                  " && s.connection === 'connected'", f"{who}'s notebook open, its kernel idle", 180)
    return notebook


class LabStub:
    """What tests/test_browser.py's Notebook asks of its Lab when a wait fails (the evidence is kept by `evidence`)."""

    kept = False

    def keep_evidence(self) -> Path:
        return EVIDENCE

    @staticmethod
    def describe(kept: Path) -> str:
        return f"(evidence: {kept})"


def fill_and_save(notebook: Notebook, fills: dict[str, str]) -> None:
    ids = notebook.page.evaluate("""path => [...window.__rai.panel(path).model.cells]
        .map(c => ((c.getMetadata ? c.getMetadata('nbgrader') : null) || {}).grade_id || null)""", notebook.path)
    for grade_id, code in fills.items():
        notebook.type_into(ids.index(grade_id), code)
    notebook.save()


def submit(page) -> None:
    assignment_list(page)
    page.locator("#fetched_assignments_list .list_item button", has_text="Submit").click()
    page.locator("#submitted_assignments_list .nested_list_item").first.wait_for(timeout=60_000)


def run_as_kernel(page, code: str) -> str:
    """Run `code` in a new kernel of this JupyterLab (it runs as the page's user); its printed output."""
    return page.evaluate("""async code => {
        const kernel = await window.jupyterapp.serviceManager.kernels.startNew({name: 'python3'});
        let out = '';
        const future = kernel.requestExecute({code});
        future.onIOPub = msg => { if (msg.content.text) out += msg.content.text;
                                  if (msg.content.evalue) out += 'ERROR ' + msg.content.evalue; };
        await future.done;
        await kernel.shutdown();
        return out;
    }""", code)


def probe(page, probes: dict[str, str]) -> dict[str, str]:
    """Evaluate each Python expression in a kernel of the page's user: 'READ ...' or the error's type, by name."""
    code = "import os, json\nout = {}\n" + "".join(
        f"try:\n    out[{name!r}] = 'READ ' + str({expr})[:80]\nexcept OSError as e:\n    out[{name!r}] = type(e).__name__\n"
        for name, expr in probes.items()) + "print(json.dumps({'whoami': os.getuid(), **out}))"
    return json.loads(run_as_kernel(page, code).strip().splitlines()[-1])


def test_learners_log_in_fetch_work_check_and_submit_and_cannot_read_each_other(classroom):
    users, state = classroom["users"], classroom["state"]
    started = time.monotonic()
    with evidence(classroom, "learners"):
        ana = log_in(classroom, "ana")
        notebook = fetch_and_open(classroom, "ana", ana)
        fill_and_save(notebook, ANA_FILLS)
        result = notebook.validate()
        assert result.startswith("success: "), result  # nbgrader's Validate: the visible checks all pass
        ana.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")  # her Spark goes
        ana.goto(f"{classroom['url']}/user/{users['ana']}/lab?reset")
        ana.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand("
                              "'nbgrader:open-assignment-list')", timeout=120_000)
        submit(ana)
        classroom["timings"]["ana: fetch, fill, validate, submit"] = time.monotonic() - started

        # The due date falls between the two submissions: Ben's is late by nbgrader's rule.
        due = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")  # after hers
        done = classroom_command("due", ASSIGNMENT, due, state=state)
        assert done.returncode == 0, done.stderr
        time.sleep(2)
        ben = log_in(classroom, "ben")
        notebook = fetch_and_open(classroom, "ben", ben)
        fill_and_save(notebook, BEN_FILLS)
        ben.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
        ben.goto(f"{classroom['url']}/user/{users['ben']}/lab?reset")
        ben.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand("
                              "'nbgrader:open-assignment-list')", timeout=120_000)
        submit(ben)
        classroom["timings"]["learners done"] = time.monotonic() - started

        # From Ana's session: Ben's server, home, nbgrader cache and submission are out of reach.
        other = ana.request.get(f"{classroom['url']}/user/{users['ben']}/api/contents/{ASSIGNMENT}")
        assert other.status == 403 and "responsible_ai" not in other.text(), (other.status, other.url)
        grading_page = ana.request.get(f"{classroom['url']}/services/rai-lab-grading/")
        assert grading_page.status == 403  # the grading page is the instructor's
        exchange = state / "exchange" / ASSIGNMENT
        ben_home = Path(pwd.getpwnam(users["ben"]).pw_dir)
        probes = {
            "ben's home": f"os.listdir({str(ben_home)!r})",
            "ben's notebook": f"open({str(ben_home / NOTEBOOK_PATH)!r}).read()",
            "ben's nbgrader cache": f"os.listdir({str(ben_home / '.local/share/jupyter/nbgrader_cache')!r})",
            "the inbound folder": f"os.listdir({str(exchange / 'inbound')!r})",
        }
        seen = probe(ana, probes)
        assert seen.pop("whoami") == pwd.getpwnam(users["ana"]).pw_uid  # her kernel runs as her own account
        assert seen == {name: "PermissionError" for name in probes}, seen
        # What nbgrader's exchange relies on: Ben's submission's folder name, unlistable, ends in a random string.
        names = os.listdir(exchange / "inbound")
        assert sorted(n.split("+")[0] for n in names) == sorted([users["ana"], users["ben"]])
        assert all(len(n.split("+")[-1]) == 12 for n in names)


def grading_row(page, learner: str) -> dict:
    row = page.locator(f"#{ASSIGNMENT} tr.learner[data-learner='{learner}']")
    return {"score": row.locator(".score").text_content(), "late": row.locator(".late").text_content()}


def test_the_instructor_grades_with_the_sealed_grader_reviews_in_the_formgrader_and_releases_feedback(classroom):
    users, url = classroom["users"], classroom["url"]
    started = time.monotonic()
    with evidence(classroom, "instructor"):
        lab = log_in(classroom, "teacher", wait_for="nbgrader:open-formgrader")
        page = lab.context.new_page()
        page.goto(f"{url}/services/rai-lab-grading/")
        assert page.locator(f"#{ASSIGNMENT} .handed").text_content() == "2"
        page.locator(f"#{ASSIGNMENT} button.grade").click()
        # The page reloads itself every 3 s while grading runs; a locator's wait survives the reloads.
        page.locator(f"#{ASSIGNMENT} .status.done, #{ASSIGNMENT} .status.failed").wait_for(timeout=900_000)
        status = page.locator(f"#{ASSIGNMENT} .status").text_content()
        assert "feedback released" in status, status
        classroom["timings"]["grading (collect, rai-lab grade, release feedback)"] = time.monotonic() - started
        ana, ben = grading_row(page, users["ana"]), grading_row(page, users["ben"])
        assert ana == {"score": "15/15", "late": "on time"}, ana
        assert ben["late"].startswith("late: ") and ben["score"] != "15/15" and not ben["score"].startswith("0/"), ben
        # The sealed grader's own output, not nbgrader's plain autograde: its grades.csv names the sandbox.
        grades = (Path(pwd.getpwnam(users["teacher"]).pw_dir) / "grades" / f"{ASSIGNMENT}.csv").read_text()
        assert "bubblewrap" in grades and users["ben"] in grades
        # The formgrader in its own tab (in the Hub, JupyterLab's formgrader panel is a blank iframe: nbgrader #1870).
        with page.expect_popup() as opened:
            page.locator("#formgrader").click()
        formgrader = opened.value
        formgrader.wait_for_load_state()
        assert f"/user/{users['teacher']}/formgrader" in formgrader.url
        submissions = formgrader.request.get(f"{url}/user/{users['teacher']}/formgrader/api/submissions/{ASSIGNMENT}")
        assert submissions.status == 200, submissions.status
        by_student = {s["student"]: s for s in submissions.json()}
        assert set(by_student) == {users["ana"], users["ben"]}
        assert by_student[users["ana"]]["score"] == 15 and by_student[users["ben"]]["score"] < 15
        from nbgrader.api import Gradebook

        course = Path(pwd.getpwnam(users["teacher"]).pw_dir) / "formgrader" / ASSIGNMENT
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # late in nbgrader's own gradebook too
            assert gb.find_submission(ASSIGNMENT, users["ana"]).total_seconds_late == 0
            assert gb.find_submission(ASSIGNMENT, users["ben"]).total_seconds_late > 0


def test_each_learner_fetches_and_reads_their_own_feedback(classroom):
    users, url = classroom["users"], classroom["url"]
    with evidence(classroom, "feedback"):
        for who, late in (("ana", False), ("ben", True)):
            page = classroom["contexts"][who].pages[0]
            page.goto(f"{url}/user/{users[who]}/lab?reset")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand("
                                   "'nbgrader:open-assignment-list')", timeout=120_000)
            assignment_list(page)
            page.locator("#submitted_assignments_list .list_item button", has_text="Fetch Feedback").click()
            page.locator("#submitted_assignments_list a", has_text="view feedback").first.wait_for(timeout=60_000)
            folder = Path(pwd.getpwnam(users[who]).pw_dir) / ASSIGNMENT / "feedback"
            (stamp,) = [p.name for p in folder.iterdir()]
            view = page.context.new_page()
            view.goto(f"{url}/user/{users[who]}/files/{ASSIGNMENT}/feedback/{stamp}/responsible_ai.html")
            text = view.locator("body").text_content()
            other = users["ben" if who == "ana" else "ana"]
            assert other not in text
            assert ("Rendu en retard" in text) is late, text[:500]
            if who == "ana":
                assert "15 / 15" in text or "15/15" in text, text[:1500]
            view.close()
        # The released feedback of the whole class is one folder nobody else can list (pages named by a hash of
        # each submission's secret, which only its learner's nbgrader cache holds).
        exchange = classroom["state"] / "exchange" / ASSIGNMENT
        page = classroom["contexts"]["ana"].pages[0]
        seen = probe(page, {"the feedback folder": f"os.listdir({str(exchange / 'feedback')!r})"})
        assert seen["the feedback folder"] == "PermissionError", seen


def test_stop_leaves_no_process_and_remove_deletes_accounts_and_exchange(classroom):
    users, state, hub = list(classroom["users"].values()), classroom["state"], classroom["hub"]
    started = time.monotonic()
    for context in classroom["contexts"].values():
        context.close()
    classroom["contexts"].clear()
    done = classroom_command("stop", state=state, timeout=120)
    assert done.returncode == 0 and "classroom stopped" in done.stdout, done.stdout + done.stderr
    assert hub.wait(60) == 0
    classroom["timings"]["stop"] = time.monotonic() - started
    assert accounts_processes(users) == []
    assert not (state / "hub" / "proxy.pid").exists() and not (state / "hub" / "classroom.pid").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(classroom["url"], timeout=5)
    # Accounts and course stay until `remove`, which asks first.
    assert all(pwd.getpwnam(user) for user in users) and (state / "exchange" / ASSIGNMENT / "inbound").is_dir()
    refused = classroom_command("remove", state=state, input="no\n")
    assert refused.returncode == 2 and "nothing removed" in refused.stderr
    assert pwd.getpwnam(users[0])
    done = classroom_command("remove", "--yes", state=state)
    assert done.returncode == 0, done.stderr
    for user in users:
        with pytest.raises(KeyError):
            pwd.getpwnam(user)
        assert not Path("/home", user).exists()
    assert not state.exists()
