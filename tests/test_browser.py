"""A learner's whole journey, in the learner's JupyterLab (`rai-lab jupyter`) and Debian's headless Chromium.

Playwright drives /usr/lib/chromium/chromium (`make browser-deps` installs it; no browser is
downloaded). Chromium may resolve 127.0.0.1 only. Each scenario works on its own copy of the lab
notebooks; code goes into the cells by keyboard, as a learner pastes it. Screenshots land in
out/browser/. What JupyterLab needs for this: `?reset` in the URL (no restored workspace), and
notebook windowing off in the test's own settings folder (with it on, cells outside the viewport
are not in the page at all), and reading cells with textContent.

The test waits on JupyterLab's own state, never on time. Its server exposes the app to the page
(`--LabApp.expose_app_in_browser`); Run All is the notebook's command and Save its document
context's, and every wait polls the notebook's session, kernel and model. A notebook counts as open
once its kernel is connected and idle: the toolbar's kernel indicator says "idle" before any kernel
exists, and a Run All then runs nothing or brings up JupyterLab's "Select Kernel" dialog (seen with
both cores busy). A dialog nobody expects ends a wait at once, named with its title and text. A
failing test keeps a screenshot, the JupyterLab server log, the dialogs the page showed and its
console in `<the test's tmp_path>/evidence/`, and its report says where.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from conftest import LAB, ROOT, free_port

sys.path.insert(0, str(Path(__file__).parent))
import make_submissions as subs  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.spark]

CHROMIUM = Path("/usr/lib/chromium/chromium")
SHOTS = ROOT / "out" / "browser"
TOKEN = "rai-lab-browser-test"
EXERCISE_ENV = '''import os

os.environ["AZURE_OPENAI_API_KEY"] = "your_openai_api_key"
os.environ["AZURE_OPENAI_ENDPOINT"] = "your_openai_endpoint"
os.environ["AZURE_OPENAI_API_VERSION"] = "2023-03-15-preview"'''
FILL = {"env_vars": subs.ENV_OK, "generate_answers": subs.GENERATE_OK, "build_dataframes": subs.DATAFRAMES_OK,
        "gf_sampling": subs.SAMPLING_OK, "gf_representation": subs.REPRESENTATION_OK}
VALIDATION = ".validation-success, .validation-failed"  # nbgrader's Validate result: the one dialog the tests expect

# In every page, before JupyterLab loads: window.__rai reads the app's state (window.jupyterapp) and
# notes every dialog that comes up, with its title and text.
PAGE_HELPER = """
(() => {
  const text = el => (el ? el.textContent : '').replace(/\\s+/g, ' ').trim();
  const describe = d => ({title: text(d.querySelector('.jp-Dialog-header')),
                          body: text(d.querySelector('.jp-Dialog-body')).slice(0, 2000)});
  const seen = [];
  window.__rai = {
    seen,
    dialogs(expected) {
      return [...document.querySelectorAll('.jp-Dialog')].filter(d => !(expected && d.querySelector(expected)))
        .map(describe);
    },
    panel(path) {
      const app = window.jupyterapp;
      if (!app) return null;
      for (const w of app.shell.widgets('main')) {
        if (w.context && w.sessionContext && w.context.path === path) return w;
      }
      return null;
    },
    state(path) {
      const p = this.panel(path);
      if (!p) return {panel: false, app: !!window.jupyterapp};
      const s = p.sessionContext, k = s.session && s.session.kernel;
      const cells = p.model ? [...p.model.cells] : [];
      const code = cells.filter(c => c.type === 'code');
      const prompts = [...p.node.querySelectorAll('.jp-InputPrompt')].map(e => e.textContent);
      return {
        panel: true, ready: p.context.isReady && s.isReady, kernel: k ? k.status : null,
        connection: k ? k.connectionStatus : null, display: s.kernelDisplayStatus,
        cells: cells.length, shown: p.node.querySelectorAll('.jp-Cell').length,
        code: code.length, ran: code.filter(c => c.executionCount !== null).length,
        running: code.filter(c => c.executionState === 'running').length + prompts.filter(t => t.includes('*')).length,
        dirty: p.model ? p.model.dirty : null, run: window.__raiRun || null, save: window.__raiSave || null,
        errors: cells.flatMap((c, i) => c.type !== 'code' ? [] : [...Array(c.outputs.length).keys()]
          .map(j => c.outputs.get(j).toJSON()).filter(o => o.output_type === 'error')
          .map(o => `cell ${i}: ${o.ename}: ${String(o.evalue).slice(0, 300)}`)),
      };
    },
  };
  new MutationObserver(() => {  // its title and text may come after the dialog itself: noted again while it is open
    for (const d of document.querySelectorAll('.jp-Dialog')) {
      if (!d.__rai) seen.push(d.__rai = {at: new Date().toISOString()});
      Object.assign(d.__rai, describe(d));
    }
  }).observe(document, {childList: true, subtree: true, characterData: true});
})();
"""


class KeepEvidence:
    """A test failing elsewhere than in a Notebook wait (a plain assert, a click) keeps its evidence too; its report
    says what JupyterLab showed and where the evidence is."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        lab = getattr(item, "funcargs", {}).get("lab")
        if report.failed and report.when == "call" and isinstance(lab, Lab) and not lab.kept:
            report.sections.append(("JupyterLab at the failure", lab.describe(lab.keep_evidence())))
        return report


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory, request):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make browser-deps` (apt-get install chromium)")
    from rai_lab import jupyterlab

    root = tmp_path_factory.mktemp("learner-lab")
    for scenario in ("filled", "unfilled", "placeholders", "english"):
        for lang in ("fr", "en"):
            target = root / scenario / f"responsible-ai-{lang}"
            target.mkdir(parents=True)
            shutil.copy(LAB / f"responsible-ai-{lang}" / "responsible_ai.ipynb", target)
    settings = tmp_path_factory.mktemp("lab-settings")
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    port = free_port()
    argv, env, cwd = jupyterlab.learner(port, token=TOKEN, browser=False, root=root)
    argv.append("--LabApp.expose_app_in_browser=True")  # window.jupyterapp: the test reads JupyterLab's state
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path_factory.mktemp("ws")))
    log = open(root / "jupyter.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("JupyterLab did not start: " + (root / "jupyter.log").read_text()[-2000:])
            time.sleep(0.5)
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    evidence = KeepEvidence()
    request.config.pluginmanager.register(evidence, "rai-lab-browser-evidence")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])  # loopback only
        try:
            yield {"root": root, "url": url, "browser": browser, "log": root / "jupyter.log"}
        finally:
            request.config.pluginmanager.unregister(evidence)
            browser.close()
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


@pytest.fixture
def lab(jupyter, tmp_path):
    lab = Lab(jupyter, tmp_path / "evidence")
    yield lab
    if lab.notebook is not None and not lab.notebook.page.is_closed():  # the test stopped before closing it
        lab.notebook.close()


def shut_down_kernels(url: str) -> None:
    request = urllib.request.Request(f"{url}/api/kernels?token={TOKEN}")
    for kernel in json.loads(urllib.request.urlopen(request, timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels/{kernel['id']}?token={TOKEN}", method="DELETE"),
                               timeout=30)


class Lab:
    """The learner's JupyterLab in one test: opens its notebook; keeps the evidence when something fails."""

    def __init__(self, jupyter, evidence: Path):
        self.jupyter, self.evidence = jupyter, evidence
        self.notebook: Notebook | None = None
        self.console: list[str] = []
        self.kept = False  # the failure message already names the evidence

    def open(self, scenario: str, lang: str) -> Notebook:
        page = self.jupyter["browser"].new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(PAGE_HELPER)
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        path = f"{scenario}/responsible-ai-{lang}/responsible_ai.ipynb"
        self.notebook = Notebook(self, page, path)
        page.goto(f"{self.jupyter['url']}/lab/tree/{path}?reset&token={TOKEN}")
        # Every cell in the page, and its kernel connected and idle: a Run All before that runs nothing or asks
        # to select a kernel.
        self.notebook.wait("s.panel && s.ready && s.shown > 40 && s.shown === s.cells && s.kernel === 'idle'"
                           " && s.connection === 'connected'", f"{path} open, its kernel connected and idle", 120)
        return self.notebook

    def keep_evidence(self) -> Path:
        """Into the test's tmp folder: a screenshot, JupyterLab's server log, the page's state, dialogs and console."""
        self.evidence.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.jupyter["log"], self.evidence / "jupyter.log")
        (self.evidence / "console.log").write_text("\n".join(self.console[-500:]))
        if self.notebook is not None and not self.notebook.page.is_closed():
            page = self.notebook.page
            try:
                page.screenshot(path=str(self.evidence / "page.png"))
                found = {"state": page.evaluate("p => window.__rai.state(p)", self.notebook.path),
                         "open": page.evaluate("() => window.__rai.dialogs()"),
                         "seen": page.evaluate("() => window.__rai.seen")}
            except Exception as error:  # noqa: BLE001 - the page itself may be what broke
                found = {"error": repr(error)}
            (self.evidence / "state.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))
        return self.evidence

    @staticmethod
    def describe(kept: Path) -> str:
        found = json.loads((kept / "state.json").read_text()) if (kept / "state.json").exists() else {}
        lines = [f"dialog open: {d['title']!r}: {d['body']!r}" for d in found.get("open", [])]
        lines += [f"dialog shown at {d['at']}: {d['title']!r}: {d['body'][:300]!r}" for d in found.get("seen", [])]
        lines.append(f"notebook: {json.dumps(found.get('state', found.get('error')))}")
        lines.append(f"screenshot (page.png), JupyterLab server log (jupyter.log), dialogs and console kept in {kept}")
        return "\n".join(lines)


class Notebook:
    """A notebook open in the learner's JupyterLab, driven by JupyterLab's commands and read from its state."""

    def __init__(self, lab: Lab, page, path: str):
        self.lab, self.page, self.path = lab, page, path

    def fail(self, what: str):
        self.lab.kept = True
        pytest.fail(f"{what}\n{self.lab.describe(self.lab.keep_evidence())}")

    def wait(self, condition: str, what: str, timeout: float, arg=None, expected_dialog: str | None = None) -> dict:
        """Poll `condition` (JavaScript over `s`, the notebook's state, `p`, its panel, and `arg`) until it holds.
        A dialog comes up (other than `expected_dialog`): the wait fails at once and names it."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            found = self.page.wait_for_function(f"""([path, arg, expected]) => {{
                if (!window.__rai) return false;
                const dialogs = window.__rai.dialogs(expected);
                if (dialogs.length) return {{dialogs}};
                const s = window.__rai.state(path), p = window.__rai.panel(path);
                return ({condition}) ? {{state: s}} : false;
            }}""", arg=[self.path, arg, expected_dialog], timeout=timeout * 1000, polling=250).json_value()
        except PlaywrightTimeout:
            self.fail(f"Waiting for {what}: not within {timeout:.0f} s")
        if "dialogs" in found:
            named = "; ".join(f"{d['title']!r}: {d['body']!r}" for d in found["dialogs"])
            self.fail(f"Waiting for {what}: a JupyterLab dialog came up: {named}")
        return found["state"]

    def cells(self):
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")

    def type_into(self, index: int, code: str) -> None:
        """Replace a cell's text as a learner does: click into it, select all, paste."""
        self.wait("true", f"no dialog in the way of typing into cell {index}", 10)
        cell = self.cells().nth(index)
        cell.scroll_into_view_if_needed()  # its editor is created once it is in view
        cell.locator(".cm-content").click()
        self.wait("p.content.widgets[arg].editor && p.content.widgets[arg].editor.hasFocus()",
                  f"cell {index}'s editor to have the focus", 30, arg=index)
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Escape")
        self.wait("p.model.cells.get(arg.index).sharedModel.getSource() === arg.code",
                  f"cell {index} to hold the code typed", 30, arg={"index": index, "code": code})

    def run_all(self) -> None:
        """JupyterLab's Run All (notebook:run-all-cells) on this notebook, until every cell ran or an error stopped
        the run, and the kernel is idle. No retry: a Run All that runs nothing fails, with the evidence."""
        self.wait("s.kernel === 'idle' && s.running === 0", "the kernel idle before Run All", 120)
        self.page.evaluate("""path => {
            window.__raiRun = {done: false};
            window.jupyterapp.commands.execute('notebook:run-all-cells', {widgetId: window.__rai.panel(path).id})
              .then(ok => { window.__raiRun = {done: true, ok}; },
                    e => { window.__raiRun = {done: true, error: String(e)}; });
        }""", self.path)
        state = self.wait("s.run.done && (s.run.error || (s.kernel === 'idle' && s.running === 0))",
                          "Run All to finish (every cell run or an error stopping the run, the kernel idle)", 240)
        if state["run"].get("error") or not state["ran"]:
            self.fail(f"Run All failed or ran no cell: {json.dumps(state)}")

    def save(self) -> None:
        """Save (the document context's save, what Ctrl+S does), until the notebook is no longer modified."""
        self.page.evaluate("""path => {
            window.__raiSave = {done: false};
            window.__rai.panel(path).context.save()
              .then(() => { window.__raiSave = {done: true}; },
                    e => { window.__raiSave = {done: true, error: String(e)}; });
        }""", self.path)
        state = self.wait("s.save.done && (s.save.error || !s.dirty)", "the notebook saved", 60)
        if state["save"].get("error"):
            self.fail(f"Saving the notebook failed: {state['save']['error']}")

    def validate(self) -> str:
        """nbgrader's Validate button (a toolbar button: nbgrader registers no command for it), and its result."""
        self.wait("true", "no dialog in the way of Validate", 10)
        self.page.locator(".jp-NotebookPanel:visible .validate-button").first.click()
        self.wait("document.querySelector(arg)", "nbgrader's Validate result", 240, arg=VALIDATION,
                  expected_dialog=VALIDATION)
        dialog = self.page.locator(VALIDATION)
        text = dialog.first.text_content()
        passed = "validation-success" in (dialog.first.get_attribute("class") or "")
        return ("success: " if passed else "failed: ") + text

    def output_text(self, index: int) -> str:
        self.wait("p.content.widgets[arg].node.querySelectorAll('.jp-OutputArea-child').length"
                  " >= p.model.cells.get(arg).outputs.length", f"cell {index}'s outputs in the page", 30, arg=index)
        return self.cells().nth(index).locator(".jp-Cell-outputWrapper").text_content() or ""

    def shoot(self, name: str, index: int | None = None) -> None:
        """A screenshot for out/browser/, the cell at `index` in view."""
        if index is not None:
            self.cells().nth(index).scroll_into_view_if_needed()
            self.page.wait_for_timeout(300)  # for the picture only: nothing is read from it
        self.page.screenshot(path=str(SHOTS / name))

    def close(self) -> None:
        self.page.close()
        shut_down_kernels(self.lab.jupyter["url"])


def grade_ids(scenario_path: Path) -> list[str | None]:
    nb = nbformat.read(scenario_path, 4)
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def test_a_learner_fills_the_french_lab_runs_it_and_validates(jupyter, lab):
    path = jupyter["root"] / "filled" / "responsible-ai-fr" / "responsible_ai.ipynb"
    ids = grade_ids(path)
    notebook = lab.open("filled", "fr")
    # Opened, nothing changed: the notebook is not marked modified (complete metadata).
    notebook.page.wait_for_timeout(3000)
    assert notebook.page.locator(".jp-mod-current.jp-mod-dirty").count() == 0
    assert notebook.page.get_by_text("Would you like to get notified").count() == 0  # no news prompt (lab-settings)
    for grade_id, code in FILL.items():
        notebook.type_into(ids.index(grade_id), code)
    notebook.run_all()
    notebook.save()
    notebook.shoot("filled-fr.png", ids.index("build_dataframes"))
    nb = nbformat.read(path, 4)
    errors = [(c.metadata.get("nbgrader", {}).get("grade_id"), o.get("ename"), o.get("evalue"))
              for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")]
    assert errors == []
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    # The kit cell returns before Spark is up; the first cell that uses Spark waits for it and says where it is.
    said = {grade_id: "".join(o.get("text", "") for o in cell.outputs) for grade_id, cell in by_id.items()
            if cell.cell_type == "code"}
    assert "Spark : démarrage en arrière-plan" in said["kit_start"] and "Spark : local[1]" not in said["kit_start"]
    assert "Spark : local[1] (embedded" in "".join(said.values())
    assert [c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in FILL] == list(FILL.values())
    tables = [o["data"]["text/html"] for o in by_id["build_dataframes"].outputs if o.output_type == "display_data"]
    assert len(tables) == 2 and all(t.count("<tr>") == 6 for t in tables)  # a header and 5 rows each
    checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]
    assert len(checks) == 14
    assert all("".join(o.get("text", "") for o in c.outputs).startswith("✓") for c in checks)
    # What the learner sees: the checks and a table with text left-aligned.
    shown = notebook.page.locator(".jp-NotebookPanel:visible").text_content()
    assert shown.count("✓") == 14 and "✗" not in shown
    assert notebook.cells().nth(ids.index("build_dataframes")).locator("td[style*='text-align:left']").count() == 10
    result = notebook.validate()
    notebook.shoot("validate-filled-fr.png")
    assert result.startswith("success: ") and "Success! Your notebook passes all the tests." in result
    notebook.close()


def test_the_unfilled_lab_says_whose_cell_it_is_and_validate_names_the_failing_steps(jupyter, lab):
    ids = grade_ids(jupyter["root"] / "unfilled" / "responsible-ai-fr" / "responsible_ai.ipynb")
    notebook = lab.open("unfilled", "fr")
    notebook.run_all()
    env_out = notebook.output_text(ids.index("env_vars"))
    assert "Cette cellule est à vous" in env_out and "NotImplementedError" in env_out
    notebook.shoot("unfilled-fr.png", ids.index("env_vars"))
    result = notebook.validate()
    notebook.shoot("validate-unfilled-fr.png")
    assert result.startswith("failed: ")
    for step in ("env_key_set", "calls_ten_made", "answers_lists", "neutral_df_built", "loaded_df_built"):
        assert step in result
    assert "✗ les dix appels de complétion de conversation ont été faits" in result
    assert "Attendu : 10 appels à client.chat.completions.create" in result
    assert "bonus_" not in result  # the optional part, not started, fails nothing (its checks say ○)
    notebook.close()


def test_the_exercise_placeholders_typed_literally_get_the_learner_message(jupyter, lab):
    ids = grade_ids(jupyter["root"] / "placeholders" / "responsible-ai-fr" / "responsible_ai.ipynb")
    notebook = lab.open("placeholders", "fr")
    notebook.type_into(ids.index("env_vars"), EXERCISE_ENV)
    notebook.run_all()
    check = notebook.output_text(ids.index("env_key_set"))
    assert "✗ AZURE_OPENAI_API_KEY est définie" in check and "valeur d'exemple 'your_openai_api_key'" in check
    client = notebook.output_text(ids.index("create_client"))
    assert "AZURE_OPENAI_ENDPOINT vaut encore « your_openai_endpoint »" in client
    assert "n'importe quel point de terminaison https" in client and "CassetteMiss" not in client
    assert len(client) < 2000  # a few lines, not 200 lines of traceback
    notebook.shoot("placeholders-fr.png", ids.index("create_client"))
    notebook.close()


def test_the_english_lab_checks_speak_english(jupyter, lab):
    ids = grade_ids(jupyter["root"] / "english" / "responsible-ai-en" / "responsible_ai.ipynb")
    notebook = lab.open("english", "en")
    notebook.type_into(ids.index("env_vars"), subs.ENV_OK)
    notebook.type_into(ids.index("generate_answers"),
                       subs.GENERATE_OK.replace("for row in loaded_input:", "for row in loaded_input[:4]:"))
    notebook.run_all()
    assert "✓ AZURE_OPENAI_API_KEY is set (not the example value)" in notebook.output_text(ids.index("env_key_set"))
    calls = notebook.output_text(ids.index("calls_ten_made"))
    assert "✗ the ten chat-completion calls were made" in calls
    assert "Expected: 10 calls to client.chat.completions.create (5 neutral, 5 loaded); found: 9" in calls
    assert "This cell is yours to fill" in notebook.output_text(ids.index("build_dataframes"))
    notebook.shoot("english.png", ids.index("env_key_set"))
    notebook.close()
    log = jupyter["log"].read_text()
    assert "No nbgrader_config.py file found" not in log and "exchange directory" not in log.lower()
