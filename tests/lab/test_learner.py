"""What a learner gets before handing in: visible checks, nbgrader's Validate, `rai-lab check`, and
errors that say what to do (real kernels, real nbgrader, replay mode). The same journey in JupyterLab
and Chromium (the unfilled and the filled lab, the exercise's placeholders, English) is tests/test_browser.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import rai_lab_command

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: make_submissions
import make_submissions as subs  # noqa: E402

from rai_lab import tables, tracebacks  # noqa: E402

pytestmark = [pytest.mark.notebook, pytest.mark.spark]

NBGRADER = [sys.executable, "-m", "nbgrader", "validate"]


def place(tmp_path: Path, nb, lang: str = "fr", name: str = "responsible_ai.ipynb") -> Path:
    path = tmp_path / f"responsible-ai-{lang}" / name
    subs.write(nb, path)
    return path


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*NBGRADER, path.name], cwd=path.parent, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learner")
    return {
        "unfilled": place(tmp / "unfilled", subs.released("fr")),
        "filled": place(tmp / "filled", subs.filled("fr")),
        "exercise_only": place(tmp / "exercise-only", subs.exercise_only()),
    }


def test_validate_passes_on_a_notebook_done_without_the_optional_part(notebooks):
    """Its four optional checks say ○ and fail nothing (the browser test validates the unfilled and the whole lab)."""
    done = validate(notebooks["exercise_only"])
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout + done.stderr


def test_rai_lab_check_reports_every_step_in_the_terminal(notebooks):
    """The same verdicts as the check cells, in a terminal; exit 1 while something is ✗."""
    done = rai_lab_command("check", str(notebooks["unfilled"]))
    assert done.returncode == 1
    assert "0/10 vérifications réussies" in done.stdout
    assert "✗ cellule de code n° 4 : Cette cellule est à vous" in done.stdout  # the env cell, unfilled
    assert "○ bonus : samples_df" in done.stdout
    filled = rai_lab_command("check", str(notebooks["filled"]))
    assert filled.returncode == 0, filled.stdout + filled.stderr
    assert "14/14 vérifications réussies" in filled.stdout and "✗" not in filled.stdout
    assert filled.stdout.count("✓") == 14
    # The learner's notebook is run in a copy: the file keeps no output.
    assert all(not c.get("outputs") for c in nbformat.read(notebooks["filled"], 4).cells if c.cell_type == "code")


def test_rai_lab_check_stops_a_cell_over_its_limit_and_goes_on(tmp_path):
    """Does `rai-lab check --cell-timeout` interrupt a cell stuck in time.sleep, report it, and finish? (It used to wait
    forever: a blocking kernel manager stalled nbclient's event loop.)"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(3600)"), nbformat.v4.new_code_cell("print('after')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "sleeps.ipynb"
    nbformat.write(nb, path)
    done = rai_lab_command("check", str(path), "--cell-timeout", "5", timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "n° 1 : KeyboardInterrupt" in done.stdout and "n° 2" not in done.stdout  # the next cell ran, cleanly


def test_an_error_deep_in_a_library_shows_the_learners_line_and_what_was_hidden(tmp_path):
    """A replay miss raised inside openai/httpx/vcr: the learner's cell line, one line for the rest."""
    nb = subs.filled("fr", generate=subs.GENERATE_OK.replace("max_tokens=100", "max_tokens=50", 1))
    path = place(tmp_path, nb)
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    executed = nbformat.read(path, 4)
    with pytest.raises(CellExecutionError):  # stops at that cell, as Run All does
        NotebookClient(executed, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    cell = next(c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "generate_answers")
    error = next(o for o in cell.outputs if o.output_type == "error")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))
    assert error.ename == "CassetteMissError"
    assert "max_tokens: 50 ≠ 100" in shown  # the field that differs
    assert "completion = client.chat.completions.create(" in shown  # the learner's own line
    assert "site-packages" not in shown and "httpx" not in shown.split("CassetteMissError")[0]
    assert len(shown.splitlines()) < 40


def test_unfilled_cell_and_library_frames_are_explained():
    def cell():
        raise NotImplementedError()

    try:
        exec(compile("cell()", "/tmp/ipykernel_1/123.py", "exec"), {"cell": cell})
    except NotImplementedError as err:
        tb = err.__traceback__
    # Frames before the first cell are IPython's; frames after it are the library's (here, this file).
    chain, hidden = tracebacks.learner_frames(tb)
    assert chain.tb_frame.f_code.co_filename == "/tmp/ipykernel_1/123.py" and chain.tb_next is None
    assert hidden == ["test_learner"]
    assert tracebacks.explain(NotImplementedError(), chain, "en").startswith("This cell is yours to fill")
    assert tracebacks.explain(NotImplementedError("mine"), chain, "en") is None


def test_tables_round_numbers_left_align_text_and_shorten_links():
    assert tables.number(0.19999999999999998) == "0.2" and tables.number(0.1234567) == "0.123"
    assert tables.number(-0.0001) == "0" and tables.number(float("nan")) == "nan"
    html = tables.render(["profession", "p_female", "source"],
                         [["nurse", 0.8666666666666667, "see https://www.bls.gov/cps/cpsaat11.htm <b>"]], more=False)
    assert '<td style="text-align:left;' in html and '<td style="text-align:right;' in html
    assert ">0.867<" in html and ">www.bls.gov</a>" in html and "&lt;b&gt;" in html
    assert "0.8666666666666667" not in html


@pytest.mark.parametrize(("mode", "key", "endpoint", "grading", "stops"), [
    ("replay", "your_openai_api_key", "https://x.openai.azure.com/", False, None),  # the key is never sent
    ("replay", "k", "http://x.openai.azure.com/", False, None),  # replayed all the same; its check cell says ✗
    ("replay", "k", "your_openai_endpoint", False, "AZURE_OPENAI_ENDPOINT"),  # no URL to call
    ("live", "your_openai_api_key", "https://x.openai.azure.com/", False, "AZURE_OPENAI_API_KEY"),
    ("live", "k", "http://x.openai.azure.com/", False, "https URL"),
    ("replay", "k", "your_openai_endpoint", True, None),  # grading: the checks alone judge the variables
])
def test_the_client_cell_stops_only_on_values_that_break_the_calls(monkeypatch, mode, key, endpoint, grading, stops):
    from rai_lab import kit
    from rai_lab.errors import RaiLabError

    monkeypatch.setattr(kit, "_current", kit.KitSession(mode=mode, deployment="gpt-35-turbo", cassette_path=Path("x"),
                                                        lang="en"))
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2023-03-15-preview")
    if grading:
        monkeypatch.setenv(kit.GRADING_ENV, "1")
    else:
        monkeypatch.delenv(kit.GRADING_ENV, raising=False)
    if stops is None:
        kit.require_azure_variables()
    else:
        with pytest.raises(RaiLabError, match=stops):
            kit.require_azure_variables()
