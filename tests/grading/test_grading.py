"""`rai-lab grade`: the sample class under tests/submissions, graded for real with nbgrader."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from conftest import INSTRUCTOR_SECRETS, LAB, ROOT, SAMPLE_CLASS_LEFT_OUT, SOLUTIONS, SUBMISSIONS, rai_lab_command


pytestmark = [pytest.mark.notebook, pytest.mark.spark]

RUBRIC = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"]
ALL = list(RUBRIC)
CALLS = ["calls_ten_made", "calls_prompts_in_order", "calls_system_prompt", "calls_deployment_max_tokens", "answers_lists"]
FRAMES = ["neutral_df_built", "loaded_df_built"]
BONUS = [name for name in ALL if RUBRIC[name].get("bonus")]
CORE = [name for name in ALL if name not in BONUS]
FAKE_KEY = "0123456789abcdef0123456789abcdef"

# learner: (score /15, bonus /4, status, checks failed, a words of the first relevant note or None)
EXPECTED = {
    "solution": (15, 4, "graded", [], None),
    "unfilled": (0, 0, "graded", ALL, None),
    "exercise-only": (15, 0, "graded", BONUS, None),
    "key-placeholder": (14, 4, "graded", ["env_key_set"], None),
    "endpoint-http": (14, 4, "graded", ["env_endpoint_https"], None),
    "api-version-latest": (14, 4, "graded", ["env_api_version"], None),
    "loaded-first": (13, 4, "graded", ["calls_prompts_in_order"], None),
    "nine-calls": (11, 4, "graded", ["calls_ten_made", "calls_prompts_in_order"], None),
    # the DataFrames hold the uppercased lists, not the answers received: they score 0 too
    "answers-uppercased": (9, 4, "graded", ["answers_lists", "neutral_df_built", "loaded_df_built"], None),
    "no-system-prompt": (14, 0, "graded", ["calls_system_prompt", *BONUS], "depuis votre propre cassette"),
    "max-tokens-50": (14, 0, "graded", ["calls_deployment_max_tokens", *BONUS], "depuis votre propre cassette"),
    "neutral-column-renamed": (13, 4, "graded", ["neutral_df_built"], None),
    "loaded-pandas": (13, 4, "graded", ["loaded_df_built"], None),
    "no-mitigation-run": (15, 3, "graded", ["bonus_mitigation_run"], None),
    "representation-all-prompts": (15, 3, "graded", ["bonus_representation"], None),
    "invalid-json": (0, 0, "not run", ALL, "n'est pas un notebook lisible"),
    "path-traversal": (0, 0, "not run", ALL, "illisible ou dangereuse"),
    # the loop never lets `spark` be defined: the calls are made, the DataFrames are not
    "endless-loop": (11, 2, "graded", [*FRAMES, "bonus_samples_df", "bonus_representation"],
                     "Limite de temps par cellule atteinte"),
    # the checks before the crash keep their points; the note names the cell
    "kernel-crash": (11, 0, "graded", [*FRAMES, *BONUS], "noyau Python s'est arrêté (plantage, mémoire épuisée ou sortie forcée) dans la cellule de code n° 16"),
    "huge-output": (15, 4, "graded", [], None),
    "tries-network": (3, 0, "graded", CALLS + FRAMES + BONUS, None),
    "prints-environment": (15, 4, "graded", [], None),
    "pasted-key": (15, 4, "graded", [], "vraie clé Azure OpenAI"),
    "edited-check-cell": (15, 4, "graded", [], "version d'origine a été rétablie"),
    "deleted-check-cell": (13, 4, "graded", ["loaded_df_built"], "cellules de vérification ont été supprimées"),
    "with-own-cassette": (15, 4, "graded", [], "votre cassette contenait une clé"),
    "unsafe-cassette": (15, 4, "graded", [], "Votre cassette n'a pas été utilisée"),
    "zipped": (15, 4, "graded", [], None),
}
IN_BATCH = {learner: row for learner, row in EXPECTED.items() if learner not in SAMPLE_CLASS_LEFT_OUT}


def read_grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def test_the_class_is_graded_in_parallel_each_worker_with_its_own_spark_server(graded_class):
    """The default batch: --workers = the cores, each with its own Spark Connect server and warm kernels in its
    sandbox."""
    _, work, stdout = graded_class
    timings = json.loads((work / "logs" / "batch" / "timings.json").read_text())
    assert (timings["workers"], timings["spark"]) == (os.cpu_count(), "shared")
    first, last = timings["uids"]  # a block of uids of this batch's own (another batch may run beside it)
    assert (first - 61000) % 128 == 0 and last == first + 127 and 61000 <= first < 61000 + 16 * 128
    assert timings["sandbox"] == f"bubblewrap, uid {first + 1}+, loopback only" and "sandbox: bubblewrap" in stdout
    assert timings["graded"] == len(IN_BATCH) - 2  # the two unreadable submissions never reach nbgrader
    servers = {path.parent.name for path in (work / "logs" / "batch").glob("spark-*/*SparkConnectServer*.out")}
    assert servers == {f"spark-{index}" for index in range(os.cpu_count())}  # each worker's own server ran
    assert_batch_gone(Path(timings["batch_dir"]))


def assert_batch_gone(batch_dir: Path) -> None:
    """A batch's /run folder (its sockets and state) is gone, and no process names it any more. Only this batch's:
    another batch may run beside it, and a grader killed outright leaves its folder to the next one."""
    import psutil

    assert batch_dir.parent == Path("/run") and batch_dir.name.startswith("rai-lab-batch-")
    assert not batch_dir.exists()
    left = []
    for process in psutil.process_iter():
        try:
            if any(str(batch_dir) in text for text in [*process.cmdline(), *process.environ().values()]):
                left.append(process.cmdline())
        except psutil.Error:
            pass
    assert not left


ONE_BY_ONE = ["kernel-crash", "with-own-cassette"]  # a crash, and a whole lab on its own cassette


def test_parallel_shared_grades_are_the_one_by_one_grades(graded_class, tmp_path):
    """The same learners graded one at a time, each kernel cold with its own embedded Spark: same rows."""
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    for learner in ONE_BY_ONE:
        source = SUBMISSIONS / learner
        if source.is_dir():
            shutil.copytree(source, class_dir / learner)
        else:
            shutil.copy(SUBMISSIONS / f"{learner}.ipynb", class_dir)
    out = tmp_path / "out"
    done = rai_lab_command("grade", str(class_dir), "--out", str(out), "--work", str(tmp_path / "work"),
                           "--workers", "1", "--batch-spark", "local", "--cell-timeout", "60", "--no-progress", timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    timings = json.loads((tmp_path / "work" / "logs" / "batch" / "timings.json").read_text())
    assert (timings["workers"], timings["spark"]) == (1, "local")
    one_by_one, parallel = read_grades(out), read_grades(graded_class[0])
    for learner in ONE_BY_ONE:
        assert one_by_one[learner] == parallel[learner], learner


def test_every_sample_is_in_the_grades(graded_class):
    out, _, stdout = graded_class
    assert set(read_grades(out)) == set(IN_BATCH) and set(EXPECTED) - set(IN_BATCH) == {"endless-loop"}
    assert f"{len(IN_BATCH)} submissions: {len(IN_BATCH) - 2} graded now, 0 kept" in stdout


@pytest.mark.parametrize("learner", sorted(IN_BATCH))
def test_each_submission_gets_its_exact_grade(graded_class, learner):
    """Score, status, which checks failed, and the reason a learner reads."""
    out, _, _ = graded_class
    assert_exact_grade(read_grades(out)[learner], learner)


def assert_exact_grade(row: dict, learner: str) -> None:
    score, bonus, status, failed, note = EXPECTED[learner]
    assert (float(row["score"]), float(row["max_score"]), row["status"]) == (score, 15, status)
    assert (float(row["bonus"]), float(row["bonus_max"])) == (bonus, 4)
    assert [name for name in ALL if float(row[name]) < RUBRIC[name]["points"]] == failed
    if note:
        assert note in row["notes"]
    assert sum(float(row[name]) for name in CORE) == score
    assert sum(float(row[name]) for name in BONUS) == bonus


def test_feedback_explains_without_showing_hidden_tests(graded_class):
    """Each learner has feedback; it says what was expected and found, never the test's code."""
    out, _, _ = graded_class
    for learner in IN_BATCH:
        text = (out / "feedback" / learner / "responsible_ai.html").read_text(encoding="utf-8")
        assert "rai-lab-summary" in text and "/ 15" in text
        assert "checking.check" not in text and "HIDDEN TESTS" not in text and "rai_lab_graders_checks" not in text
    uppercased = (out / "feedback" / "answers-uppercased" / "responsible_ai.html").read_text(encoding="utf-8")
    assert "neutral_answers contient les réponses du modèle" in uppercased
    # Going further: the bonus is shown apart, and a wrong measure says what it should be computed on.
    wrong = (out / "feedback" / "representation-all-prompts" / "responsible_ai.html").read_text(encoding="utf-8")
    assert "bonus (aller plus loin) : 3 / 4" in wrong
    assert "réponses aux prompts neutres" in wrong and "sur 100 réponses, trouvé 10 lignes sur 300 réponses" in wrong
    skipped = (out / "feedback" / "no-mitigation-run" / "responsible_ai.html").read_text(encoding="utf-8")
    assert "exécution d&#x27;atténuation" in skipped or "exécution d'atténuation" in skipped


def all_text(*folders: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for f in folders for p in f.rglob("*") if p.is_file() and p.suffix != ".db")


def test_no_key_and_no_instructor_secret_in_anything_written(graded_class):
    """The learner's pasted key is masked everywhere; the instructor's secrets never reach a kernel."""
    out, work, stdout = graded_class
    written = all_text(out, work / "course" / "autograded", work / "course" / "feedback", work / "logs") + stdout
    assert FAKE_KEY not in written
    for secret in INSTRUCTOR_SECRETS.values():
        assert secret not in written
    printed = nbformat.read(work / "course" / "autograded" / "prints-environment" / "responsible-ai-fr" / "responsible_ai.ipynb", 4)
    outputs = json.dumps([c.get("outputs") for c in printed.cells])
    assert "AZURE_OPENAI_API_KEY" in outputs  # the learner's own variable, set by their cell
    assert "DATABRICKS_TOKEN" not in outputs


def test_network_is_refused_with_a_reason(graded_class):
    _, work, _ = graded_class
    nb = nbformat.read(work / "course" / "autograded" / "tries-network" / "responsible-ai-fr" / "responsible_ai.ipynb", 4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    # No cassette in the kernel while grading: the sandbox's guard says why, in the learner's language.
    assert "le réseau est coupé pendant la notation (seul 127.0.0.1 est permis) ; adresse refusée : example.com" \
        in errors[0]["evalue"]


def test_huge_output_is_cut(graded_class):
    _, work, _ = graded_class
    path = work / "course" / "autograded" / "huge-output" / "responsible-ai-fr" / "responsible_ai.ipynb"
    assert path.stat().st_size < 1_000_000
    assert "output cut by rai-lab" in path.read_text()


def test_unsafe_cassette_ran_nothing(graded_class):
    assert not Path("/tmp/rai-lab-pwned").exists()


def test_cached_grades_are_dropped_when_the_course_changes(tmp_path):
    """A grade kept for an unchanged submission is only kept while the notebook, rubric and checks are the same."""
    from rai_lab import grading

    grader = grading.Grader("responsible-ai-fr", tmp_path / "out", work_dir=tmp_path / "work")
    grader.work.mkdir(parents=True)
    kept = grading.Outcome(learner="ana", source="ana.ipynb", score=15, max_score=15, digest="d1")
    grader.state.save([kept])
    assert grader.state.load()["outcomes"]["ana"]["score"] == 15
    state = json.loads(grader.state_path.read_text())
    state["course"] = "an older course"
    grader.state_path.write_text(json.dumps(state))
    assert grader.state.load() == {}


def reference_cache(out: Path, work: Path, **options) -> Path:
    """Where this machine keeps the timing of the French course's solution, as `rai-lab grade` runs it."""
    from rai_lab import grading

    return grading.Grader("responsible-ai-fr", out, work_dir=work, **options).time_limits.cache_path()


def test_time_limits_stop_a_notebook_where_it_is_and_deterministic_stops_are_kept(tmp_path, monkeypatch):
    """Without limit options, the limits come from the solution's own run, timed once per course and machine: an
    endless loop is stopped at the cell limit, the checks before it keep their points, the reason names the
    limit, the next learner is graded. The next run keeps both outcomes without running anything. --regrade
    runs everyone again and times the solution again; here with a notebook limit, which stops the loop too.
    One worker: the loop's grading is then alone, never graded a second time (test_hostile_grading grades limits
    reached beside other workers)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # this machine's cache, as if nothing was timed yet
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    shutil.copy(SUBMISSIONS / "endless-loop.ipynb", class_dir / "a-loop.ipynb")
    shutil.copy(SUBMISSIONS / "solution.ipynb", class_dir / "b-solution.ipynb")
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["grade", str(class_dir), "--out", str(out), "--work", str(work), "--no-progress", "--workers", "1"]
    cached = reference_cache(out, work)
    assert not cached.exists()
    first = rai_lab_command(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    timings = json.loads((work / "logs" / "batch" / "timings.json").read_text())
    limits = timings["limits"]
    reference = limits["reference"]
    assert (work / "logs" / "batch" / "reference.ipynb").exists()
    assert json.loads(cached.read_text()) == {k: v for k, v in reference.items() if k != "course"}
    assert limits["cell"] == max(10, math.ceil(5 * reference["slowest_cell_s"]))
    assert limits["notebook"] == max(30, math.ceil(10 * reference["total_s"]))
    assert f"time limits: {limits['cell']:g} s per cell" in first.stdout
    assert timings["notebooks"]["a-loop"]["total"] < limits["cell"] + 15  # the loop cost its cell's limit, not minutes
    assert "graded_again" not in timings  # alone on its worker: its stop is its own
    grades = read_grades(out)
    note = f"Limite de temps par cellule atteinte ({limits['cell']:g} s) dans la cellule de code n° 16"
    assert grades["a-loop"]["notes"].startswith(note)
    # as in the sample class: stopped in its cell, the rest of the notebook still runs (two bonus checks pass)
    assert_exact_grade(grades["a-loop"], "endless-loop")
    loop = (out / "feedback" / "a-loop" / "responsible_ai.html").read_text(encoding="utf-8")
    assert f"Limite de temps par cellule atteinte ({limits['cell']:g} s)" in loop  # the limit, named with its value
    assert grades["b-solution"]["score"] == "15"

    second = rai_lab_command(*args)
    assert "0 graded now, 2 kept from the last run" in second.stdout
    assert read_grades(out) == grades
    kept = json.loads((work / "logs" / "batch" / "timings.json").read_text())
    assert "spark_server_ready_s" not in kept and kept["limits"] == limits  # nothing to run: no server, no reference

    third = rai_lab_command(*args, "--regrade", "--timeout", "20", "--cell-timeout", "600")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "2 graded now, 0 kept" in third.stdout and "time limits: 600 s per cell, 20 s per notebook" in third.stdout
    assert (work / "logs" / "batch" / "reference.ipynb").exists()  # --regrade times the solution again
    timed = json.loads((work / "logs" / "batch" / "timings.json").read_text())["limits"]["reference"]
    assert json.loads(cached.read_text()) == {k: v for k, v in timed.items() if k != "course"}
    grades = read_grades(out)
    assert (grades["a-loop"]["score"], grades["a-loop"]["bonus"], grades["a-loop"]["status"]) == ("11", "0", "graded")
    assert grades["a-loop"]["notes"].startswith("Limite de temps du notebook atteinte (20 s) dans la cellule de code n° 16")
    assert grades["b-solution"]["score"] == "15"


def _chart_outputs(work: Path, learner: str, assignment: str) -> list:
    nb = nbformat.read(work / "course" / "autograded" / learner / assignment / "responsible_ai.ipynb", 4)
    return next(c for c in nb.cells if c.id == "gf-compare").outputs


def test_illustrations_are_not_run_when_grading_by_default(graded_class):
    """The going-further tables and chart come after every check: grading skips them (the bonus is graded)."""
    out, work, _ = graded_class
    assert _chart_outputs(work, "solution", "responsible-ai-fr") == []
    assert read_grades(out)["solution"]["bonus"] == "4"


def test_english_assignment_grades_and_speaks_english(tmp_path):
    """The English class, with --run-illustrations: the feedback also holds the going-further chart."""
    out = tmp_path / "out"
    done = rai_lab_command("grade", str(ROOT / "tests" / "submissions-en"), "--assignment", "responsible-ai-en",
                           "--out", str(out), "--work", str(tmp_path / "work"), "--no-progress", "--run-illustrations",
                           "--workers", "1")  # two learners: one worker, one Spark server
    assert done.returncode == 0, done.stdout + done.stderr
    grades = read_grades(out)
    assert (grades["solution"]["score"], grades["api-version-latest"]["score"]) == ("15", "14")
    assert (grades["solution"]["bonus"], grades["api-version-latest"]["bonus"]) == ("4", "4")
    text = (out / "feedback" / "api-version-latest" / "responsible_ai.html").read_text(encoding="utf-8")
    assert "Grading feedback" in text and "must look like YYYY-MM-DD" in text
    assert "bonus (going further): 4 / 4" in text and "Score: 14 / 15" in text
    chart = [o for o in _chart_outputs(tmp_path / "work", "solution", "responsible-ai-en") if "image/png" in o.get("data", {})]
    assert len(chart) == 1
    assert "data:image/png;base64" in (out / "feedback" / "solution" / "responsible_ai.html").read_text(encoding="utf-8")


def test_rubric_points_are_the_notebooks_points():
    for lang in ("fr", "en"):
        for folder in (SOLUTIONS, LAB):
            nb = nbformat.read(folder / f"responsible-ai-{lang}" / "responsible_ai.ipynb", 4)
            points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
                      for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
            assert points == {name: item["points"] for name, item in RUBRIC.items()}


def test_sample_submissions_match_the_released_lab():
    """The samples start from today's lab/: their locked cells are the released ones (unless edited on purpose)."""
    given = nbformat.read(LAB / "responsible-ai-fr" / "responsible_ai.ipynb", 4)
    locked = {c.metadata["nbgrader"]["grade_id"]: c.source for c in given.cells if c.metadata.get("nbgrader", {}).get("locked")}
    for path in SUBMISSIONS.rglob("*.ipynb"):
        if path.stem in ("invalid-json", "edited-check-cell"):
            continue
        nb = nbformat.read(path, 4)
        mine = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
        assert {k: mine[k] for k in locked if k in mine} == {k: v for k, v in locked.items() if k in mine}, path


def test_sandbox_refuses_the_network_but_not_loopback():
    """The grading kernel's guard: loopback works, anything else is refused with a message."""
    code = (
        "import socket\nfrom rai_lab.grading.sandboxed import guard\nguard.install_guard('en')\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen()\n"
        "socket.create_connection(server.getsockname(), timeout=5).close()\n"
        "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=5)\n"
        "except guard.NetworkRefused as err:\n    print('refused:', err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "refused: rai-lab: the network is off while grading" in done.stdout, done.stderr


def test_without_a_sandbox_grading_refuses_unless_trusted(tmp_path):
    """No bubblewrap on PATH: `rai-lab grade` says why and how to fix it, and grades only with --trusted."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("java", "setpriv", "nsenter", "unshare"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    env = {"PATH": f"{Path(sys.executable).parent}:{bare}"}
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    shutil.copy(SUBMISSIONS / "solution.ipynb", class_dir / "ana.ipynb")
    args = ["grade", str(class_dir), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--no-progress"]
    refused = rai_lab_command(*args, env=env)
    assert refused.returncode == 2
    assert "bubblewrap (bwrap) is not installed" in refused.stderr and "apt-get install bubblewrap" in refused.stderr
    assert "--trusted" in refused.stderr and not (tmp_path / "out" / "grades.csv").exists()
    trusted = rai_lab_command(*args, "--trusted", env=env)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "sandbox: none (--trusted" in trusted.stdout
    row = read_grades(tmp_path / "out")["ana"]
    assert (row["score"], row["bonus"], row["sandbox"]) == ("15", "4", "none")


def test_unknown_assignment_is_a_clear_error(tmp_path):
    done = rai_lab_command("grade", str(tmp_path), "--assignment", "responsible-ai-de")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    done = rai_lab_command("grade", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w"))
    assert done.returncode == 2 and "no such folder of submissions" in done.stderr


def test_socket_module_untouched_outside_grading():
    """The guard is installed only in grading kernels, not by importing the kit."""
    import rai_lab.grading.sandboxed.guard  # noqa: F401
    import rai_lab.grading.worker.sandbox  # noqa: F401

    assert socket.socket.connect.__qualname__ == "socket.connect"


def test_nbgrader_export_agrees_with_grades_csv(graded_class):
    """nbgrader_grades.csv (nbgrader's own export) has each learner nbgrader graded, with the same score."""
    out, _, _ = graded_class
    ours = read_grades(out)
    with open(out / "nbgrader_grades.csv", encoding="utf-8") as handle:
        theirs = {row["student_id"]: row for row in csv.DictReader(handle)}
    graded = {name for name, row in ours.items() if row["status"] == "graded"}
    assert graded <= set(theirs)
    for name in graded:
        # nbgrader adds every point up; grades.csv keeps the bonus apart
        assert float(theirs[name]["raw_score"]) == float(ours[name]["score"]) + float(ours[name]["bonus"]), name
        assert float(theirs[name]["max_score"]) == 19


def test_intake_says_a_deleted_locked_cell_is_not_restored(tmp_path):
    """nbgrader restores an edited locked cell, never a deleted one: the note must say which happened."""
    from rai_lab.grading.instructor import intake

    nb = nbformat.read(LAB / "responsible-ai-fr" / "responsible_ai.ipynb", 4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "create_client"]
    folder = tmp_path / "class"
    folder.mkdir()
    nbformat.write(nb, folder / "Élodie Dupont.ipynb")
    [sub] = intake.collect(folder, tmp_path / "staging", "fr")
    assert (sub.learner, sub.source) == ("Élodie_Dupont", "Élodie Dupont.ipynb")
    assert any("ont été supprimées (create_client) : elles n'ont pas pu être rétablies" in n for n in sub.notes)
    assert not any("rétablie pour la notation" in n for n in sub.notes)


def test_grading_untrusted_notebooks_needs_root(tmp_path):
    """Not root: the sandbox could not run kernels as a uid of their own, so grading is refused, saying so."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="rai-lab-nonroot-"))
    try:
        os.chmod(folder, 0o777)
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                               "rai_lab", "grade", str(SUBMISSIONS), "--out", str(folder / "out"), "--work",
                               str(folder / "work"), "--no-progress"],
                              capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HOME": str(folder)}, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "builds its sandbox as root" in done.stderr and "--trusted" in done.stderr
        assert not (folder / "out").exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
