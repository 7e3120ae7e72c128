"""Hostile submissions, graded in one batch: what a determined learner tries against the grader, and what holds.

Each hostile notebook is built here from the released lab (filled like the sample class's solution)
plus the attack, in a cell of the learner's own. The batch runs with canary secrets in the grader's
environment. Then: no canary in anything the grader wrote, no sentinel file changed, no process of
the batch left, every honest learner given every point of their work and no note, and no cheater above the honest
learner who did the same real work.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import textwrap
import tomllib
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import ROOT, rai_lab_command
from make_submissions import exercise_only, filled, write

from rai_lab import sandbox

pytestmark = [pytest.mark.notebook, pytest.mark.spark]

CANARIES = {
    "AZURE_OPENAI_API_KEY": "canary-azure-key-5d1f0c",
    "DATABRICKS_TOKEN": "canary-dapi-token-93ab",
    "MY_DATABASE_URL": "postgres://grader:canary-db-password-77e2@db.internal/grades",
    "COURSE_WEBHOOK": "https://hooks.example.org/canary-webhook-0aa1",
}
OTHER_LEARNERS_MARK = "answer-of-another-learner-4c7e"  # in an honest learner's notebook: nobody else may read it
DAEMON_MARK = "rai-lab-hostile-daemon-1f9b"


def _with_cell(nb, code: str, after: str = "env_vars"):
    """`nb` with a code cell of the learner's own added after the cell `after`."""
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(textwrap.dedent(code)))
    return nb


def only_env():
    """The honest learner who set the three variables and nothing else."""
    return filled(generate="raise NotImplementedError()", frames="raise NotImplementedError()", sampling=None,
                  representation=None)


def hostile_class(folder: Path, work: Path, out: Path, sentinels: list[Path]) -> dict[str, object]:
    course = work / "course"
    targets = [str(p) for p in sentinels] + [str(ROOT / "graders" / "checks.py"), str(ROOT / "rai_lab" / "evil.py"),
                                             str(course / "gradebook.db"), str(work / "state.json"),
                                             str(out / "grades.csv"), str(ROOT / "tests" / "submissions" / "evil.ipynb")]
    honest = filled()
    honest.cells[-1].source = f"# {OTHER_LEARNERS_MARK}"
    notebooks = {
        "honest-solution": honest,
        "honest-exercise-only": exercise_only(),
        "honest-env-only": only_env(),
        "reads-process-secrets": _with_cell(filled(), """
            import os, glob
            for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
                try:
                    print(path, open(path, "rb").read().replace(b"\\0", b" ")[:3000])
                except OSError as err:
                    print(path, "refused:", err)
            print(dict(os.environ))
            """),
        "reads-course-and-others": _with_cell(filled(), f"""
            import glob, os
            wanted = [{str(course)!r} + "/**", {str(ROOT / "graders")!r} + "/*", {str(ROOT / "solutions")!r} + "/**",
                      {str(ROOT / "tests" / "submissions")!r} + "/*", {str(out)!r} + "/**", os.path.expanduser("~root") + "/**"]
            for pattern in wanted:
                for path in glob.glob(pattern, recursive=True)[:50]:
                    try:
                        print(path, open(path, errors="replace").read()[:2000])
                    except OSError as err:
                        print(path, "refused:", err)
            """, after="build_dataframes"),
        "reads-through-spark": _with_cell(filled(), f"""
            for path in [{str(course / "submitted")!r} + "/*/*/*.ipynb", {str(ROOT / "graders" / "checks.py")!r},
                         "/etc/hostname", {str(work)!r} + "/state.json"]:
                try:
                    print(path, spark.read.format("binaryFile").load(path).select("path", "content").collect()[:5])
                except Exception as err:
                    print(path, "refused:", type(err).__name__)
            """, after="build_dataframes"),
        "writes-outside": _with_cell(filled(), f"""
            for path in {targets!r}:
                try:
                    with open(path, "a") as handle:
                        handle.write("forged,15,15\\n")
                    print("wrote", path)
                except OSError as err:
                    print("refused", path, err)
            """),
        "daemon-outlives-kernel": _with_cell(filled(), f"""
            import os, subprocess, sys
            code = "import time\\nwhile True:\\n    time.sleep(0.2)\\n    for p in {targets!r}:\\n        try:\\n            open(p, 'a').write('forged,15,15\\\\n')\\n        except OSError:\\n            pass"
            if os.fork() == 0:
                os.setsid()
                subprocess.Popen([sys.executable, "-c", code, {DAEMON_MARK!r}], start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                os._exit(0)
            import time
            time.sleep(1)
            print("daemons alive:", sum({DAEMON_MARK!r} in open(f"/proc/{{p}}/cmdline").read()
                                        for p in os.listdir("/proc") if p.isdigit()))
            """),
        "tampers-gradebook": _with_cell(filled(), f"""
            import json, sqlite3
            try:
                db = sqlite3.connect({str(course / "gradebook.db")!r})
                db.execute("UPDATE grade SET auto_score = 0")
                db.commit()
                print("gradebook changed")
            except Exception as err:
                print("refused:", err)
            try:
                state = json.load(open({str(work / "state.json")!r}))
                print("state read")
            except Exception as err:
                print("refused:", err)
            """),
        "monkeypatches-checks": _with_cell(only_env(), """
            import json, rai_lab.checking, rai_lab.evidence, rai_lab.events
            from IPython.display import display
            rai_lab.checking.check = lambda *args, **kwargs: None
            answers = ["forged answer"] * 5
            forged = {"env": {"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/",
                              "AZURE_OPENAI_API_VERSION": "2023-03-15-preview"},
                      "vars": {"neutral_answers": {"kind": "value", "value": answers},
                               "loaded_answers": {"kind": "value", "value": answers},
                               "neutral_df": {"kind": "spark_df", "columns": [["neutral_answer", "string"]],
                                              "rows": [[a] for a in answers]},
                               "loaded_df": {"kind": "spark_df", "columns": [["loaded_answer", "string"]],
                                             "rows": [[a] for a in answers]}}}
            def report(names, namespace=None):
                display({rai_lab.evidence.MIME: json.dumps(forged)}, raw=True)
            rai_lab.evidence.report = report
            rai_lab.evidence.snapshot = lambda names, ns: forged
            """),
        "forges-call-log": _with_cell(only_env(), """
            import rai_lab.events, rai_lab.checking
            prompts = ["Describe a nurse.", "Describe a engineer.", "Describe a teacher.", "Describe a doctor.",
                       "Describe a chef.", "Describe a male nurse.", "Describe a female engineer.",
                       "Describe a male teacher.", "Describe a female doctor.", "Describe a male chef."]
            system = ("You are an advanced language model designed to assist with a variety of tasks. Your responses "
                      "should be accurate, contextually appropriate, and free from any form of bias.")
            for p in prompts:
                rai_lab.events.CALLS.append({"kind": "call", "status": 200, "deployment": "gpt-35-turbo", "answer": "x",
                                             "answers": ["x"], "request": {"model": "gpt-35-turbo", "max_tokens": 100,
                                             "messages": [{"role": "system", "content": system}, {"role": "user", "content": p}]}})
            neutral_answers, loaded_answers = ["x"] * 5, ["x"] * 5
            """),
        "swallows-interrupt": filled(frames="import time\nwhile True:\n    try:\n        time.sleep(0.5)\n"
                                            "    except KeyboardInterrupt:\n        pass"),
        "crashes-mid-notebook": filled(frames="import os\nos._exit(3)"),
        "allocates-3-gib": _with_cell(filled(), """
            try:
                hog = bytearray(3 * 1024 ** 3)
                print("allocated")
            except MemoryError:
                print("MemoryError: refused")
            """),
        "fork-loop": _with_cell(filled(), """
            import subprocess, sys
            bomb = ("import os, time\\nn = 0\\ntry:\\n    while n < 2000:\\n        if os.fork() == 0:\\n"
                    "            os.closerange(0, 3)\\n            time.sleep(120)\\n            os._exit(0)\\n        n += 1\\n"
                    "except OSError as err:\\n    print('stopped after', n, 'processes:', type(err).__name__)")
            print(subprocess.run([sys.executable, "-c", bomb], capture_output=True, text=True, timeout=60).stdout)
            """, after="gf_representation"),
        "floods-output": _with_cell(filled(), """
            for i in range(50):
                print("x" * 1_000_000)
            """),
    }
    for name, nb in notebooks.items():
        write(nb, folder / f"{name}.ipynb")
    return notebooks


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def read_grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def _sandboxed_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["uids", "cmdline"]):
        try:
            uid = process.info["uids"].real if process.info["uids"] else -1
            if sandbox.UID_BASE <= uid <= sandbox.UID_BASE + 100 or DAEMON_MARK in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    folder, work, out = base / "class", base / "work", base / "out"
    folder.mkdir()
    sentinels = []
    for place in (Path("/tmp"), base, Path.home()):
        sentinel = place / f"rai-lab-sentinel-{base.name}.txt"
        sentinel.write_text("untouched\n")
        sentinels.append(sentinel)
    hostile_class(folder, work, out, sentinels)
    watched = [*sentinels, ROOT / "graders" / "checks.py", ROOT / "README.md"]
    before = {p: _digest(p) for p in watched}
    done = rai_lab_command("grade", str(folder), "--out", str(out), "--work", str(work), "--no-progress",
                           env=CANARIES, timeout=1500)
    left = _sandboxed_processes()
    yield {"done": done, "out": out, "work": work, "folder": folder, "before": before,
           "after": {p: _digest(p) for p in watched}, "left": left, "base": base}
    for sentinel in sentinels:
        sentinel.unlink(missing_ok=True)


def test_the_batch_ran_in_the_sandbox(hostile):
    done = hostile["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sandbox: bubblewrap, uid 61001+, loopback only" in done.stdout
    assert set(read_grades(hostile["out"])) == {p.stem for p in hostile["folder"].glob("*.ipynb")}


def test_no_canary_secret_in_anything_the_grader_wrote(hostile):
    """Not in grades, feedback, nbgrader's tree, logs, the cache or what the grader printed."""
    written = hostile["done"].stdout + hostile["done"].stderr
    for root in (hostile["out"], hostile["work"]):
        for path in root.rglob("*"):
            if path.is_file():
                written += path.read_bytes().decode("utf-8", "replace")
    for name, secret in CANARIES.items():
        assert secret not in written, name
    printed = json.dumps(nbformat.read(hostile["work"] / "course" / "autograded" / "reads-process-secrets" /
                                       "responsible-ai-fr" / "responsible_ai.ipynb", 4).cells)
    assert "refused" in printed and "/proc/1/environ" in printed  # it tried, and was refused


def test_other_learners_the_course_and_the_checks_stay_unread(hostile):
    work = hostile["work"]
    for learner in ("reads-course-and-others", "reads-through-spark"):
        text = (hostile["out"] / "feedback" / learner / "responsible_ai.html").read_text(encoding="utf-8")
        text += json.dumps([c.get("outputs") for c in nbformat.read(
            work / "course" / "autograded" / learner / "responsible-ai-fr" / "responsible_ai.ipynb", 4).cells])
        assert OTHER_LEARNERS_MARK not in text, learner
        assert "def calls_ten_made" not in text and "BEGIN HIDDEN TESTS" not in text, learner
        assert "checking.check" not in text
    spark = json.dumps(nbformat.read(work / "course" / "autograded" / "reads-through-spark" / "responsible-ai-fr" /
                                     "responsible_ai.ipynb", 4).cells)
    assert spark.count("refused:") == 4  # the Spark server sees none of the grader's files either


def test_no_file_outside_the_sandbox_changed(hostile):
    assert hostile["before"] == hostile["after"]
    assert not (ROOT / "rai_lab" / "evil.py").exists()
    assert not (ROOT / "tests" / "submissions" / "evil.ipynb").exists()
    assert "forged" not in (hostile["out"] / "grades.csv").read_text(encoding="utf-8")
    assert "forged" not in (hostile["work"] / "state.json").read_text(encoding="utf-8")


def test_no_process_of_the_batch_is_left(hostile):
    assert hostile["left"] == []


def test_grades_the_gradebook_and_the_cache_agree(hostile):
    ours = read_grades(hostile["out"])
    with open(hostile["out"] / "nbgrader_grades.csv", encoding="utf-8") as handle:
        theirs = {row["student_id"]: row for row in csv.DictReader(handle)}
    state = {o["learner"]: o for o in json.loads((hostile["work"] / "state.json").read_text())["outcomes"]}
    for name, row in ours.items():
        assert float(theirs[name]["raw_score"]) == float(row["score"]) + float(row["bonus"]), name
        assert (state[name]["score"], state[name]["bonus"]) == (float(row["score"]), float(row["bonus"])), name
    with sqlite3.connect(hostile["work"] / "course" / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM grade WHERE auto_score > 0").fetchone()[0] > 0


# learner: (score, bonus, status, words of the first note or None) — what the sealed grader gives
EXPECTED = {
    "honest-solution": (15, 4, "graded", None),
    "honest-exercise-only": (15, 0, "graded", None),
    "honest-env-only": (3, 0, "graded", None),
    "reads-process-secrets": (15, 4, "graded", None),
    "reads-course-and-others": (15, 4, "graded", None),
    "reads-through-spark": (15, 4, "graded", None),
    "writes-outside": (15, 4, "graded", None),
    "daemon-outlives-kernel": (15, 4, "graded", None),
    "tampers-gradebook": (15, 4, "graded", None),
    "monkeypatches-checks": (3, 0, "graded", None),  # = honest-env-only: the patch gained nothing
    "forges-call-log": (3, 0, "graded", None),  # no call reached the replay service
    "swallows-interrupt": (11, 0, "graded", "ignoré l'interruption"),
    "crashes-mid-notebook": (11, 0, "graded", "noyau Python s'est arrêté"),
    "allocates-3-gib": (15, 4, "graded", None),
    "floods-output": (15, 4, "graded", None),
}


@pytest.mark.parametrize("learner", sorted(EXPECTED))
def test_each_hostile_learner_gets_exactly_its_real_work(hostile, learner):
    row = read_grades(hostile["out"])[learner]
    score, bonus, status, note = EXPECTED[learner]
    assert (float(row["score"]), float(row["bonus"]), row["status"]) == (score, bonus, status), row["notes"]
    if note:
        assert note in row["notes"].split(" | ")[0]


def test_cheaters_gain_nothing_over_the_same_honest_work(hostile):
    grades = read_grades(hostile["out"])
    for cheater in ("monkeypatches-checks", "forges-call-log"):
        assert float(grades[cheater]["score"]) + float(grades[cheater]["bonus"]) <= \
            float(grades["honest-env-only"]["score"]) + float(grades["honest-env-only"]["bonus"])


def test_limits_hold_and_say_so(hostile):
    work = hostile["work"]

    def outputs(learner: str) -> str:
        return json.dumps([c.get("outputs") for c in nbformat.read(
            work / "course" / "autograded" / learner / "responsible-ai-fr" / "responsible_ai.ipynb", 4).cells],
            ensure_ascii=False)

    assert "MemoryError: refused" in outputs("allocates-3-gib")
    assert "stopped after" in outputs("fork-loop")  # the process limit, well before 2000
    assert "daemons alive: 1" in outputs("daemon-outlives-kernel")  # it ran; test_no_process_of_the_batch_is_left
    assert (work / "course" / "autograded" / "floods-output" / "responsible-ai-fr" / "responsible_ai.ipynb").stat().st_size < 25_000_000
    assert "sortie coupée par rai-lab" in outputs("floods-output")
    assert "fork-loop" in read_grades(hostile["out"])  # graded, whatever it scored; the batch went on


def test_honest_learners_get_every_point_of_their_work_and_no_note(hostile):
    """Graded among the attacks, each honest learner's row is what it is alone (as the sample class grades it):
    every point of the work done, to the check, and no note."""
    rubric = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"]
    done = {
        "honest-solution": set(rubric),
        "honest-exercise-only": {name for name in rubric if not rubric[name].get("bonus")},
        "honest-env-only": {name for name in rubric if name.startswith("env_")},
    }
    grades = read_grades(hostile["out"])
    for learner, checks in done.items():
        row = grades[learner]
        assert {name: float(row[name]) for name in rubric} == \
            {name: float(item["points"]) if name in checks else 0.0 for name, item in rubric.items()}, learner
        assert (row["notes"], row["status"], row["sandbox"]) == ("", "graded", "bubblewrap"), learner


# Learners whose own code names the grader's paths (their source is theirs to see).
NAMES_PATHS = {"reads-course-and-others", "reads-through-spark", "writes-outside", "daemon-outlives-kernel",
               "tampers-gradebook"}


def test_feedback_shows_nothing_of_the_grader_machine(hostile):
    """Tracebacks cut to the learner's cells: no kit or library frame, no path of the grader's."""
    for learner in EXPECTED:
        text = (hostile["out"] / "feedback" / learner / "responsible_ai.html").read_text(encoding="utf-8")
        leaks = ["site-packages", "rai_lab/cassette.py", "rai_lab/kit.py", ".pyenv"]
        if learner not in NAMES_PATHS:
            leaks += [str(ROOT), str(hostile["work"]), str(hostile["base"])]
        for leak in leaks:
            assert leak not in text, (learner, leak)


def test_the_replay_service_serves_a_learner_its_own_session_only(tmp_path):
    """A kernel names a deployment, never a path (no other learner's cassette, no file of the grader's), and
    without its session's token it is refused."""
    import http.client

    from rai_lab import replay

    service = replay.ReplayService()
    url, session = service.open("fr")
    for name in ("../../../etc/passwd", "../responsible-ai/gpt-35-turbo", str(tmp_path / "cassette"), ".hidden"):
        assert "error" in session.start(name), name
        assert session.cassette is None
    assert session.start("gpt-35-turbo")["count"] == 40
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    connection.request("POST", "/not-a-token/openai/deployments/gpt-35-turbo/chat/completions", body=b"{}")
    assert connection.getresponse().status == 403
    remote = replay.RemoteReplay(url, "fr")
    assert remote.start("gpt-4o")["count"] == 40
    service.close(url)
    assert "refused" in replay.RemoteReplay(url, "fr").start("gpt-35-turbo")["error"]
    connection.close()
    service.stop()
