"""A learner's whole journey, in the learner's JupyterLab (`rai-lab jupyter`) and Debian's headless Chromium.

Playwright drives /usr/lib/chromium/chromium (`make browser-deps` installs it; no browser is
downloaded). Chromium may resolve 127.0.0.1 only. Each scenario works on its own copy of the lab
notebooks; code goes into the cells by keyboard, as a learner pastes it. Screenshots land in
out/browser/. What JupyterLab needs for this: `?reset` in the URL (no restored workspace), and
notebook windowing off in the test's own settings folder (with it on, cells outside the viewport
are not in the page at all), and reading cells with textContent.
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


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
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
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])  # loopback only
        try:
            yield {"root": root, "url": url, "browser": browser, "log": root / "jupyter.log"}
        finally:
            browser.close()
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def shut_down_kernels(url: str) -> None:
    request = urllib.request.Request(f"{url}/api/kernels?token={TOKEN}")
    for kernel in json.loads(urllib.request.urlopen(request, timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/kernels/{kernel['id']}?token={TOKEN}", method="DELETE"),
                               timeout=30)


def open_notebook(jupyter, scenario: str, lang: str):
    page = jupyter["browser"].new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{jupyter['url']}/lab/tree/{scenario}/responsible-ai-{lang}/responsible_ai.ipynb?reset&token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length > 40", timeout=60_000)
    # Its kernel started and idle: before that, Run All can be clicked and do nothing (seen with both cores busy).
    page.wait_for_selector(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=120_000)
    return page


def cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")


def grade_ids(scenario_path: Path) -> list[str | None]:
    nb = nbformat.read(scenario_path, 4)
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def type_into(page, index: int, code: str) -> None:
    """Replace a cell's text as a learner does: click into it, select all, paste."""
    cell = cells(page).nth(index)
    cell.scroll_into_view_if_needed()  # its editor is created once it is in view
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")


def run_all(page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # With both cores busy, a click on Run All sometimes ran nothing (no cell queued, the notebook saved
    # unrun two minutes later): click again until a cell has started or run.
    for attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')]
                    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""", timeout=30_000, polling=500)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            assert attempt < 2, "Run All started no cell, three times"
    # Done: no cell queued or running, and the kernel idle, for a moment.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')]
                .map(p => p.textContent);
            const busy = prompts.some(t => t.includes('*'));
            const ran = prompts.some(t => /\\[\\d+\\]/.test(t));
            if (busy || !ran) { window.__raiIdleSince = undefined; return false; }
            window.__raiIdleSince = window.__raiIdleSince || Date.now();
            return Date.now() - window.__raiIdleSince > 1500;
        }""", timeout=240_000, polling=500)


def save(page) -> None:
    page.keyboard.press("Control+s")
    page.wait_for_function("!document.querySelector('.jp-mod-current.jp-mod-dirty')", timeout=30_000)


def validate(page) -> str:
    page.locator(".validate-button").first.click()
    dialog = page.locator(".validation-success, .validation-failed")
    dialog.wait_for(timeout=240_000)
    text = dialog.first.text_content()
    return ("success: " if "validation-success" in (dialog.first.get_attribute("class") or "") else "failed: ") + text


def output_text(page, index: int) -> str:
    return cells(page).nth(index).locator(".jp-Cell-outputWrapper").text_content() or ""


def shoot(page, name: str, index: int | None = None) -> None:
    """A screenshot for out/browser/, the cell at `index` in view."""
    if index is not None:
        cells(page).nth(index).scroll_into_view_if_needed()
        page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / name))


def test_a_learner_fills_the_french_lab_runs_it_and_validates(jupyter):
    path = jupyter["root"] / "filled" / "responsible-ai-fr" / "responsible_ai.ipynb"
    ids = grade_ids(path)
    page = open_notebook(jupyter, "filled", "fr")
    # Opened, nothing changed: the notebook is not marked modified (complete metadata).
    page.wait_for_timeout(3000)
    assert page.locator(".jp-mod-current.jp-mod-dirty").count() == 0
    assert page.get_by_text("Would you like to get notified").count() == 0  # no news prompt (lab-settings)
    for grade_id, code in FILL.items():
        type_into(page, ids.index(grade_id), code)
    run_all(page)
    save(page)
    shoot(page, "filled-fr.png", ids.index("build_dataframes"))
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
    shown = page.locator(".jp-NotebookPanel:visible").text_content()
    assert shown.count("✓") == 14 and "✗" not in shown
    assert cells(page).nth(ids.index("build_dataframes")).locator("td[style*='text-align:left']").count() == 10
    result = validate(page)
    shoot(page, "validate-filled-fr.png")
    assert result.startswith("success: ") and "Success! Your notebook passes all the tests." in result
    page.close()
    shut_down_kernels(jupyter["url"])


def test_the_unfilled_lab_says_whose_cell_it_is_and_validate_names_the_failing_steps(jupyter):
    ids = grade_ids(jupyter["root"] / "unfilled" / "responsible-ai-fr" / "responsible_ai.ipynb")
    page = open_notebook(jupyter, "unfilled", "fr")
    run_all(page)
    env_out = output_text(page, ids.index("env_vars"))
    assert "Cette cellule est à vous" in env_out and "NotImplementedError" in env_out
    shoot(page, "unfilled-fr.png", ids.index("env_vars"))
    result = validate(page)
    shoot(page, "validate-unfilled-fr.png")
    assert result.startswith("failed: ")
    for step in ("env_key_set", "calls_ten_made", "answers_lists", "neutral_df_built", "loaded_df_built"):
        assert step in result
    assert "✗ les dix appels de complétion de conversation ont été faits" in result
    assert "Attendu : 10 appels à client.chat.completions.create" in result
    assert "bonus_" not in result  # the optional part, not started, fails nothing (its checks say ○)
    page.close()
    shut_down_kernels(jupyter["url"])


def test_the_exercise_placeholders_typed_literally_get_the_learner_message(jupyter):
    ids = grade_ids(jupyter["root"] / "placeholders" / "responsible-ai-fr" / "responsible_ai.ipynb")
    page = open_notebook(jupyter, "placeholders", "fr")
    type_into(page, ids.index("env_vars"), EXERCISE_ENV)
    run_all(page)
    check = output_text(page, ids.index("env_key_set"))
    assert "✗ AZURE_OPENAI_API_KEY est définie" in check and "valeur d'exemple 'your_openai_api_key'" in check
    client = output_text(page, ids.index("create_client"))
    assert "AZURE_OPENAI_ENDPOINT vaut encore « your_openai_endpoint »" in client
    assert "n'importe quel point de terminaison https" in client and "CassetteMiss" not in client
    assert len(client) < 2000  # a few lines, not 200 lines of traceback
    shoot(page, "placeholders-fr.png", ids.index("create_client"))
    page.close()
    shut_down_kernels(jupyter["url"])


def test_the_english_lab_checks_speak_english(jupyter):
    ids = grade_ids(jupyter["root"] / "english" / "responsible-ai-en" / "responsible_ai.ipynb")
    page = open_notebook(jupyter, "english", "en")
    type_into(page, ids.index("env_vars"), subs.ENV_OK)
    type_into(page, ids.index("generate_answers"), subs.GENERATE_OK.replace("for row in loaded_input:",
                                                                             "for row in loaded_input[:4]:"))
    run_all(page)
    assert "✓ AZURE_OPENAI_API_KEY is set (not the example value)" in output_text(page, ids.index("env_key_set"))
    calls = output_text(page, ids.index("calls_ten_made"))
    assert "✗ the ten chat-completion calls were made" in calls
    assert "Expected: 10 calls to client.chat.completions.create (5 neutral, 5 loaded); found: 9" in calls
    assert "This cell is yours to fill" in output_text(page, ids.index("build_dataframes"))
    shoot(page, "english.png", ids.index("env_key_set"))
    page.close()
    shut_down_kernels(jupyter["url"])
    log = jupyter["log"].read_text()
    assert "No nbgrader_config.py file found" not in log and "exchange directory" not in log.lower()
