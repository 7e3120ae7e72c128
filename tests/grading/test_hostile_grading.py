"""Hostile submissions, graded in one batch: what a determined learner tries against the grader, and what holds.

Each hostile notebook is built here from the released lab (filled like the sample class's solution)
plus the attack, in a cell of the learner's own. The batch runs with canary secrets in the grader's
environment. Then: no canary in anything the grader wrote, no sentinel file changed, no process of
the batch left, every honest learner given every point of their work and no note, and no cheater above the honest
learner who did the same real work. The class also holds DataFrames the grader must re-run within
its limits (a UDF that sleeps, 30 million rows), one that kills its own Spark server, the same answers
built other ways (a temporary view, pandas, Rows, toDF), answers typed by hand with no call, and
entries that are not a notebook of the class's own (links, a zip member that is a link, a .py file).
A second batch grades the honest learners with the most disruptive hostile ones in another order.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import textwrap
import tomllib
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import ROOT, rai_lab_command
from make_submissions import DATAFRAMES_OK, exercise_only, filled, reference_answers, write

from rai_lab.grading.worker import sandbox
from rai_lab.grading.instructor.intake import learner_id

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


SPARK_HEAD = """from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
"""
LOADED_DF = 'loaded_df = spark.createDataFrame([(answer,) for answer in loaded_answers], ["loaded_answer"])'

# neutral_df is never evaluated in the kernel (no display, no collect): only the grader's re-run of its plan
# meets the UDF, which sleeps an hour per row. loaded_df is built and shown as the lab asks.
SLOW_UDF_FRAMES = SPARK_HEAD + """from pyspark.sql import functions as F


@F.udf("string")
def slowly(answer):
    import time

    time.sleep(3600)
    return answer


neutral_df = spark.createDataFrame([(answer,) for answer in neutral_answers], ["neutral_answer"]).select(
    slowly("neutral_answer").alias("neutral_answer"))
""" + LOADED_DF + """

display(loaded_df)"""

# 30 million rows, lazily: never collected in the kernel.
HUGE_PLAN_FRAMES = SPARK_HEAD + """
neutral_df = spark.range(30_000_000).selectExpr("cast(id as string) as neutral_answer")
""" + LOADED_DF + """

display(loaded_df)"""

# A UDF evaluated in the kernel (collect) that SIGKILLs every process it may signal: it runs where Spark runs the
# learner's Python (on the grader, the learner's own Spark server's sandbox). Then the lab's frames, as usual.
SPARK_KILLER_FRAMES = SPARK_HEAD + """from pyspark.sql import functions as F


@F.udf("int")
def kill_everything(_):
    import os
    import signal

    killed = 0
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


try:
    print("killed:", spark.range(1).select(kill_everything("id")).collect())
except Exception as err:
    print("the Spark server is gone:", type(err).__name__)

""" + DATAFRAMES_OK.split("spark = SparkSession.builder.getOrCreate()\n", 1)[1]

# The right answers in temporary views of the learner's session, read back with SQL.
TEMP_VIEW_FRAMES = SPARK_HEAD + """
neutral = spark.createDataFrame([(answer,) for answer in neutral_answers], ["neutral_answer"])
neutral.createOrReplaceTempView("my_neutral")
loaded = spark.createDataFrame([(answer,) for answer in loaded_answers], ["loaded_answer"])
loaded.createOrReplaceTempView("my_loaded")
neutral_df = spark.sql("SELECT neutral_answer FROM my_neutral")
loaded_df = spark.sql("SELECT loaded_answer FROM my_loaded")

display(neutral_df)
display(loaded_df)"""

PANDAS_FRAMES = SPARK_HEAD + """import pandas as pd

neutral_df = spark.createDataFrame(pd.DataFrame({"neutral_answer": neutral_answers}))
loaded_df = spark.createDataFrame(pd.DataFrame({"loaded_answer": loaded_answers}))

display(neutral_df)
display(loaded_df)"""

ROWS_AND_TODF_FRAMES = SPARK_HEAD + """from pyspark.sql import Row

neutral_df = spark.createDataFrame([Row(neutral_answer=answer) for answer in neutral_answers])
loaded_df = spark.createDataFrame([(answer,) for answer in loaded_answers]).toDF("loaded_answer")

display(neutral_df)
display(loaded_df)"""


def typed_answers() -> str:
    """The generate cell of a learner who calls nothing: the reference cassette's answers, typed by hand."""
    neutral, loaded = reference_answers()
    return "\n\n".join(f"{name} = [\n" + "".join(f"    {answer!r},\n" for answer in answers) + "]"
                        for name, answers in (("neutral_answers", neutral), ("loaded_answers", loaded)))


def attack_notebooks(work: Path, out: Path, sentinels: list[Path]) -> dict[str, object]:
    """The class's notebooks by learner: the honest ones and each attack, aimed at this batch's paths."""
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
        "slow-udf": filled(frames=SLOW_UDF_FRAMES),
        "spark-server-killer": filled(frames=SPARK_KILLER_FRAMES),
        "huge-lazy-plan": filled(frames=HUGE_PLAN_FRAMES),
        "temp-view": filled(frames=TEMP_VIEW_FRAMES),
        "pandas-frames": filled(frames=PANDAS_FRAMES),
        "rows-and-todf": filled(frames=ROWS_AND_TODF_FRAMES),
        "typed-rows": filled(generate=typed_answers(), sampling=None, representation=None),
    }
    return notebooks


def hostile_class(folder: Path, work: Path, out: Path, sentinels: list[Path]) -> dict[str, object]:
    """The hostile class: every notebook of attack_notebooks, and entries that are no notebook of the class's own."""
    notebooks = attack_notebooks(work, out, sentinels)
    for name, nb in notebooks.items():
        write(nb, folder / f"{name}.ipynb")
    honest = folder / "honest-solution.ipynb"
    (folder / "linked-notebook.ipynb").symlink_to(honest.name)  # another learner's notebook, in the class
    outside = folder.parent / "outside-class"  # a full solution outside the class folder
    write(filled(), outside / "responsible_ai.ipynb")
    (folder / "linked-folder").symlink_to(outside, target_is_directory=True)
    with zipfile.ZipFile(folder / "zip-with-link.zip", "w") as zf:
        member = zipfile.ZipInfo("zip-with-link/responsible_ai.ipynb")
        member.create_system = 3  # Unix: external_attr holds the mode
        member.external_attr = 0o120777 << 16  # a symbolic link, whose data is its target
        zf.writestr(member, str(honest))
    (folder / "notes.py").write_text("# my answers\n" + DATAFRAMES_OK + "\n", encoding="utf-8")
    return notebooks


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def read_grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def _sandboxed_processes(work: Path) -> list[psutil.Process]:
    """The processes left running with one of this batch's uids (another batch may run beside it, with its own), or
    marked by the daemon learner."""
    try:
        first, last = json.loads((work / "logs" / "batch" / "timings.json").read_text())["uids"]
    except (OSError, ValueError, KeyError):
        first, last = sandbox.UID_BASE, sandbox.UID_BASE + sandbox.UID_BLOCKS * sandbox.UID_BLOCK - 1  # every batch's
    found = []
    for process in psutil.process_iter(["uids", "cmdline"]):
        try:
            uid = process.info["uids"].real if process.info["uids"] else -1
            if first <= uid <= last or DAEMON_MARK in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


# A cell limit of 20 s, 4 times the solution's slowest cell on a loaded 2-core machine: two learners reach it twice
# (beside the others, then alone: a sleeping UDF, an interrupt swallowed), which
# the limit from the solution's run (5 times its slowest cell, about 35 s here) made 3 minutes of the test suite. An
# honest learner the load slows past it is graded again alone, as in any batch (test_grading's test_time_limits
# checks the limits scaled from the solution's run).
HOSTILE_LIMITS = ("--cell-timeout", "20")


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
                           *HOSTILE_LIMITS, env=CANARIES, timeout=2700)
    left = _sandboxed_processes(work)
    yield {"done": done, "out": out, "work": work, "folder": folder, "before": before,
           "after": {p: _digest(p) for p in watched}, "left": left, "base": base}
    for sentinel in sentinels:
        sentinel.unlink(missing_ok=True)


# The second batch: the honest learners under the same names, the most disruptive hostile ones renamed so that each
# is graded on the other side of the honest ones (in the first batch slow-udf, spark-server-killer and huge-lazy-plan
# sort after them, daemon-outlives-kernel before).
REORDERED = {"slow-udf": "a-slow-udf", "spark-server-killer": "a-spark-server-killer",
             "huge-lazy-plan": "a-huge-lazy-plan", "daemon-outlives-kernel": "z-daemon-outlives-kernel"}
HONEST = ("honest-solution", "honest-exercise-only", "honest-env-only")


@pytest.fixture(scope="module")
def reordered(hostile, tmp_path_factory):
    """The same honest learners graded again beside the most disruptive hostile ones, in another order, 2 workers."""
    base = tmp_path_factory.mktemp("hostile-reordered")
    folder, work, out = base / "class", base / "work", base / "out"
    folder.mkdir()
    sentinel = base / "rai-lab-sentinel.txt"
    sentinel.write_text("untouched\n")
    notebooks = attack_notebooks(work, out, [sentinel])
    for name in HONEST:
        write(notebooks[name], folder / f"{name}.ipynb")
    for name, renamed in REORDERED.items():
        write(notebooks[name], folder / f"{renamed}.ipynb")
    order = sorted(p.name for p in folder.iterdir())
    first = sorted(p.name for p in hostile["folder"].iterdir() if p.stem in HONEST or p.stem in REORDERED)
    for name, renamed in REORDERED.items():  # each disruptive learner is on the other side of the honest ones
        assert (first.index(f"{name}.ipynb") < first.index("honest-env-only.ipynb")) != \
            (order.index(f"{renamed}.ipynb") < order.index("honest-env-only.ipynb")), name
    done = rai_lab_command("grade", str(folder), "--out", str(out), "--work", str(work), "--no-progress",
                           "--workers", "2", *HOSTILE_LIMITS, timeout=1800)
    yield {"done": done, "out": out, "work": work, "left": _sandboxed_processes(work), "sentinel": _digest(sentinel)}


def _outputs(work: Path, learner: str) -> str:
    """Every output of a learner's graded notebook, as text."""
    return json.dumps([c.get("outputs") for c in nbformat.read(
        work / "course" / "autograded" / learner / "responsible-ai-fr" / "responsible_ai.ipynb", 4).cells],
        ensure_ascii=False)


def _check_output(work: Path, learner: str, check: str) -> str:
    """What the grader wrote as a check cell's output in a learner's graded notebook (its verdict's message)."""
    nb = nbformat.read(work / "course" / "autograded" / learner / "responsible-ai-fr" / "responsible_ai.ipynb", 4)
    return json.dumps([c.get("outputs") for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == check],
                      ensure_ascii=False)


def test_the_batch_ran_in_the_sandbox(hostile):
    """Does every entry of the class folder get a row, a notebook or not, a link or not?"""
    done = hostile["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    first, _ = json.loads((hostile["work"] / "logs" / "batch" / "timings.json").read_text())["uids"]
    assert f"sandbox: bubblewrap, uid {first + 1}+, loopback only" in done.stdout
    entries = [p for p in hostile["folder"].iterdir() if not p.name.startswith(".")]
    assert {"linked-notebook.ipynb", "linked-folder", "zip-with-link.zip", "notes.py"} <= {p.name for p in entries}
    assert set(read_grades(hostile["out"])) == {learner_id(p.stem) for p in entries}


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
        if row["status"] == "graded" or name in theirs:  # an entry never run is no submission of nbgrader's
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
    # the grader's re-run of neutral_df stopped at its time limit (slow-udf), at its row limit (huge-lazy-plan):
    # that check alone scores 0
    "slow-udf": (13, 4, "graded", None),
    "huge-lazy-plan": (13, 4, "graded", None),
    # its own Spark server killed: both DataFrame checks and the Spark bonuses (samples_df, representation_df) 0;
    # the calls and the lists were made before, and the two bonuses on calls read the replay service's log
    # its Spark client then fails at once (a grading kernel's client gives up on a server that is gone in about a
    # second: guard.spark_fails_fast): the bonuses on calls stay, those on Spark DataFrames are 0
    "spark-server-killer": (11, 2, "graded", "Spark"),
    # the same answers, other ways to a DataFrame
    "temp-view": (15, 4, "graded", None),
    "pandas-frames": (15, 4, "graded", None),
    "rows-and-todf": (15, 4, "graded", None),
    "typed-rows": (3, 0, "graded", None),  # = honest-env-only: answers typed by hand, no call behind them
    # entries that are no notebook of the class's own: a row each, nothing run, nothing followed
    "linked-notebook": (0, 0, "not run", "lien"),
    "linked-folder": (0, 0, "not run", "lien"),
    "zip-with-link": (0, 0, "not run", "lien"),
    "notes": (0, 0, "not run", ".ipynb"),
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
    for cheater in ("monkeypatches-checks", "forges-call-log", "typed-rows"):
        assert float(grades[cheater]["score"]) + float(grades[cheater]["bonus"]) <= \
            float(grades["honest-env-only"]["score"]) + float(grades["honest-env-only"]["bonus"])


def test_limits_hold_and_say_so(hostile):
    work = hostile["work"]

    def outputs(learner: str) -> str:
        return _outputs(work, learner)

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


def _full_marks(rubric: dict, but: set[str]) -> dict[str, float]:
    """Every check's points, but 0 for the checks `but`."""
    return {name: 0.0 if name in but else float(item["points"]) for name, item in rubric.items()}


@pytest.mark.parametrize("learner, words", [("slow-udf", "limite"), ("huge-lazy-plan", "lignes")])
def test_a_dataframe_the_grader_cannot_read_within_its_limits_loses_that_check_alone(hostile, learner, words):
    """Does a learner whose neutral_df the grader stops re-running (a UDF that sleeps an hour a row, 30 million rows)
    lose neutral_df_built alone, told which limit stopped it, and keep every other point?"""
    rubric = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"]
    row = read_grades(hostile["out"])[learner]
    assert {name: float(row[name]) for name in rubric} == _full_marks(rubric, {"neutral_df_built"}), row["notes"]
    said = row["notes"] + _check_output(hostile["work"], learner, "neutral_df_built")
    assert words in said, said


def test_a_learner_who_kills_its_own_spark_server_loses_its_own_spark_steps_only(hostile):
    """Does a learner whose UDF SIGKILLs every process it can signal (where Spark runs its Python) lose its own
    DataFrame checks and the Spark steps that follow (samples_df, representation_df), and those only, told that its
    Spark server stopped, its notebook run to the end (its Spark client fails at once with Spark's own error instead
    of waiting on the server until the cell limit)? (That nobody else's row changes: EXPECTED, the honest learners'
    test, and the two orders.)"""
    rubric = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"]
    row = read_grades(hostile["out"])["spark-server-killer"]
    lost = {"neutral_df_built", "loaded_df_built", "bonus_samples_df", "bonus_representation"}
    assert {name: float(row[name]) for name in rubric} == _full_marks(rubric, lost), row["notes"]
    assert "serveur Spark" in row["notes"] and "noté seul" in row["notes"]
    assert " | " not in row["notes"] and "Limite de temps" not in row["notes"]  # no cell was stopped
    assert "StatusCode.UNAVAILABLE" in _check_output(hostile["work"], "spark-server-killer", "build_dataframes")


@pytest.mark.parametrize("learner", ["temp-view", "pandas-frames", "rows-and-todf"])
def test_the_same_answers_built_another_way_get_every_point_and_no_note(hostile, learner):
    """Does a learner who builds the right DataFrames another way (SQL on a temporary view, pandas, Rows, toDF) get
    every point and no note, as the honest solution does?"""
    rubric = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"]
    grades = read_grades(hostile["out"])
    row = grades[learner]
    mine = {name: float(row[name]) for name in rubric}
    assert mine == {name: float(grades["honest-solution"][name]) for name in rubric} == _full_marks(rubric, set()), \
        row["notes"]
    assert (row["notes"], row["status"]) == ("", "graded")


def test_answers_typed_by_hand_score_no_dataframe_check(hostile):
    """Does a learner who makes no call and types the recorded answers by hand get nothing for its DataFrames (they
    hold no answer it received), only the three variables?"""
    rubric = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text())["checks"]
    row = read_grades(hostile["out"])["typed-rows"]
    assert {name: float(row[name]) for name in rubric} == \
        _full_marks(rubric, {name for name in rubric if not name.startswith("env_")}), row["notes"]


@pytest.mark.parametrize("learner", ["linked-notebook", "linked-folder", "zip-with-link", "notes"])
def test_an_entry_that_is_no_notebook_of_the_class_is_not_run(hostile, learner):
    """Does an entry that is a link (to a notebook of the class, to a folder outside it, a zip member that is a link)
    or a file of another type get a row that says why, with nothing run and nothing of the grader's named?"""
    row = read_grades(hostile["out"])[learner]
    assert row["notes"] and row["status"] == "not run"
    assert not (hostile["work"] / "course" / "autograded" / learner).exists()
    for place in (str(hostile["base"]), str(ROOT)):
        assert place not in row["notes"], place


def test_an_honest_row_is_the_same_in_another_order_beside_other_hostile_learners(hostile, reordered):
    """Does an honest learner get the same row, every column but timing, when the most disruptive hostile learners
    (a sleeping UDF, a Spark server killer, a huge plan, a daemon) are graded on its other side, by 2 workers?"""
    done = reordered["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = read_grades(hostile["out"]), read_grades(reordered["out"])
    assert set(second) == {*HONEST, *REORDERED.values()}

    def untimed(row: dict) -> dict:
        return {k: v for k, v in row.items() if "time" not in k and "second" not in k and not k.endswith("_s")}

    for learner in HONEST:
        assert untimed(second[learner]) == untimed(first[learner]), learner
    for name, renamed in REORDERED.items():  # the hostile ones' own rows hold too
        score, bonus, status, _ = EXPECTED[name]
        row = second[renamed]
        assert (float(row["score"]), float(row["bonus"]), row["status"]) == (score, bonus, status), \
            (renamed, row["notes"])
    assert reordered["left"] == []
    assert reordered["sentinel"] == hashlib.sha256(b"untouched\n").hexdigest()  # the daemon's target, this batch
    assert "forged" not in (reordered["out"] / "grades.csv").read_text(encoding="utf-8")


# Learners whose own code names the grader's paths (their source is theirs to see).
NAMES_PATHS = {"reads-course-and-others", "reads-through-spark", "writes-outside", "daemon-outlives-kernel",
               "tampers-gradebook"}


def test_feedback_shows_nothing_of_the_grader_machine(hostile):
    """Tracebacks cut to the learner's cells: no kit or library frame, no path of the grader's."""
    for learner in EXPECTED:
        text = (hostile["out"] / "feedback" / learner / "responsible_ai.html").read_text(encoding="utf-8")
        leaks = ["site-packages", "rai_lab/azure/", "rai_lab/kit.py", ".pyenv"]
        if learner not in NAMES_PATHS:
            leaks += [str(ROOT), str(hostile["work"]), str(hostile["base"])]
        for leak in leaks:
            assert leak not in text, (learner, leak)


def test_the_replay_service_serves_a_learner_its_own_session_only(tmp_path):
    """A kernel names a deployment, never a path (no other learner's cassette, no file of the grader's), and
    without its session's token it is refused."""
    import http.client

    from rai_lab.grading.sandboxed.replay import RemoteReplay
    from rai_lab.grading.worker import replay

    service = replay.ReplayService()
    url, session = service.open("fr")
    for name in ("../../../etc/passwd", "../responsible-ai/gpt-35-turbo", str(tmp_path / "cassette"), ".hidden"):
        assert "error" in session.start(name), name
        assert session.cassette is None
    assert session.start("gpt-35-turbo")["count"] == 40
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    connection.request("POST", "/not-a-token/openai/deployments/gpt-35-turbo/chat/completions", body=b"{}")
    assert connection.getresponse().status == 403
    remote = RemoteReplay(url, "fr")
    assert remote.start("gpt-4o")["count"] == 40
    service.close(url)
    assert "refused" in RemoteReplay(url, "fr").start("gpt-35-turbo")["error"]
    connection.close()
    service.stop()
