"""Grading speed: plain `nbgrader autograde` with local Spark per notebook, against `rai-lab grade`.

    .venv/bin/python benchmarks/grading.py                 # 100 submissions, both ways
    .venv/bin/python benchmarks/grading.py --count 20      # a quicker look
    .venv/bin/python benchmarks/grading.py --baseline-count 20   # baseline on the first 20 only

Generates N submissions (about half correct, the rest with one of the sample class's faults),
grades them (a) the plain way: one nbgrader course, `nbgrader autograde` of every student in one
process, nbgrader's own python3 kernel, each notebook starting its own local Spark, then
`generate_feedback` and `export`; (b) with `rai-lab grade` (a shared Spark Connect server, warm
kernels, --workers in parallel, each worker's kernels in a bubblewrap sandbox, checks judged outside
the kernel). Both use the same notebook, checks and cassette replay, so their grades must be
identical. Prints both wall times, the ratio, the peak memory of each (PSS of the whole process
tree, the Spark JVMs included), whether the grades agree, and where (b)'s time goes. Then (c) the
same class with `--trusted` (no sandbox): the difference per notebook is the sandbox's cost; and
(d) the sample class's endless-loop learner alone: what it costs the class.
Nothing here asserts a time: it prints numbers.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "submissions"
ASSIGNMENT = "responsible-ai-fr"
# The sample class's single-notebook learners that finish on their own (no endless loop, which
# would only measure the cell time limit), correct first; most did the going-further part too.
MIX = ["solution", "key-placeholder", "solution", "endpoint-http", "solution", "api-version-latest", "solution",
       "loaded-first", "solution", "nine-calls", "solution", "answers-uppercased", "solution", "neutral-column-renamed",
       "solution", "loaded-pandas", "solution", "unfilled", "solution", "tries-network", "exercise-only",
       "representation-all-prompts"]


def make_class(folder: Path, count: int) -> dict[str, str]:
    """N submissions named learner-NNN; returns learner -> the sample it copies."""
    folder.mkdir(parents=True)
    made = {}
    for index in range(count):
        sample = MIX[index % len(MIX)]
        learner = f"learner-{index:03d}"
        shutil.copy(SAMPLES / f"{sample}.ipynb", folder / f"{learner}.ipynb")
        made[learner] = sample
    return made


class PeakMemory:
    """Samples the proportional set size (PSS) of this process's whole tree, daemons included."""

    def __init__(self, interval: float = 1.0):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the Spark server's daemonized JVM stays ours

    def _sample(self) -> int:
        total = 0
        for process in psutil.Process().children(recursive=True):
            try:
                if process.ppid() == os.getpid() and process.pid not in RUNNING and process.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(process.pid, os.WNOHANG)  # an orphan we adopted as subreaper (the JVM) has exited
                    continue
                total += process.memory_full_info().pss
            except (psutil.Error, ChildProcessError):
                pass
        return total

    def __enter__(self):
        self.peak = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._sample())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


RUNNING: set[int] = set()  # our own subprocesses: subprocess reaps them, not the memory sampler


def run(command: list[str], cwd: Path, env: dict, log: Path) -> float:
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        RUNNING.add(process.pid)
        process.wait()
        RUNNING.discard(process.pid)
    done = process
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    return time.monotonic() - started


def plain_nbgrader(class_dir: Path, learners: list[str], work: Path) -> tuple[float, dict[str, float]]:
    """(a) The usual way: one nbgrader course, nbgrader's python3 kernel, local Spark in each notebook."""
    course = work / "course"
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    shutil.copy(ROOT / "graders" / "nbgrader_config.py", course / "nbgrader_config.py")
    for learner in learners:
        target = course / "submitted" / learner / ASSIGNMENT
        target.mkdir(parents=True)
        shutil.copy(class_dir / f"{learner}.ipynb", target / "responsible_ai.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "RAI_LAB_KERNEL", "RAI_LAB_IPC")}
    # The kit replays the shipped cassette when grading; 180 s per cell, as a classic Spark cell needs.
    env.update(RAI_LAB_GRADING="1", RAI_LAB_LANG="fr", RAI_LAB_CELL_TIMEOUT="180",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    run([*nbgrader, "generate_assignment", ASSIGNMENT, "--force"], course, env, work / "generate.log")
    started = time.monotonic()
    run([*nbgrader, "autograde", ASSIGNMENT, "--force"], course, env, work / "autograde.log")
    run([*nbgrader, "generate_feedback", ASSIGNMENT, "--force"], course, env, work / "feedback.log")
    run([*nbgrader, "export", f"--to={work / 'grades.csv'}"], course, env, work / "export.log")
    elapsed = time.monotonic() - started
    with open(work / "grades.csv", encoding="utf-8") as handle:
        scores = {row["student_id"]: float(row["raw_score"] or 0) for row in csv.DictReader(handle)}
    return elapsed, scores


def rai_lab_grade(class_dir: Path, work: Path, workers: int | None, *options: str) -> tuple[float, dict[str, float], dict]:
    """(b) `rai-lab grade`, as an instructor runs it."""
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "rai_lab", "grade", str(class_dir), "--assignment", ASSIGNMENT,
               "--out", str(work / "out"), "--work", str(work / "work"), "--no-progress", *options]
    if workers:
        command += ["--workers", str(workers)]
    elapsed = run(command, ROOT, dict(os.environ), work / "rai-lab.log")
    with open(work / "out" / "grades.csv", encoding="utf-8") as handle:
        # nbgrader counts every point; grades.csv keeps the exercise's and the bonus apart
        scores = {row["learner"]: float(row["score"]) + float(row["bonus"]) for row in csv.DictReader(handle)}
    timings = json.loads((work / "work" / "logs" / "batch" / "timings.json").read_text())
    return elapsed, scores, timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="submissions to generate (default: 100)")
    parser.add_argument("--baseline-count", type=int, help="grade only the first K with plain nbgrader "
                        "(its time is then scaled to --count, and says so; 0: skip the baseline)")
    parser.add_argument("--workers", type=int, help="rai-lab grade --workers (default: its own, the cores)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--no-trusted", action="store_true", help="skip (c), the same class without the sandbox")
    args = parser.parse_args()
    base_count = args.count if args.baseline_count is None else min(args.baseline_count, args.count)
    work = Path(tempfile.mkdtemp(prefix="rai-lab-bench-"))
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB; work: {work}")
    made = make_class(work / "class", args.count)
    print(f"{args.count} submissions: {sum(s == 'solution' for s in made.values())} correct, "
          f"{sum(s != 'solution' for s in made.values())} with one fault")
    meter = PeakMemory()

    with meter:
        b_time, b_scores, timings = rai_lab_grade(work / "class", work / "b", args.workers)
    b_peak = meter.peak
    print(f"(b) rai-lab grade: {b_time:.1f} s ({b_time / args.count:.2f} s per notebook), peak {b_peak / 2**30:.2f} GiB; "
          f"sandbox: {timings.get('sandbox')}; limits {timings['limits']['cell']:g} s per cell, "
          f"{timings['limits']['notebook']:g} s per notebook (reference run {timings.get('reference_s', 0):.1f} s)")

    if base_count:
        baseline(work, made, base_count, args.count, b_time, b_scores, meter)
    report_b(timings, args, work, b_time, b_scores, b_peak, meter)
    return 0


def baseline(work: Path, made: dict, base_count: int, count: int, b_time: float, b_scores: dict, meter) -> None:
    """(a): plain nbgrader on the first `base_count` learners, compared with (b)."""
    base_dir = work / "class-a"
    base_dir.mkdir()
    learners = sorted(made)[:base_count]
    for learner in learners:
        shutil.copy(work / "class" / f"{learner}.ipynb", base_dir / f"{learner}.ipynb")
    (work / "a").mkdir()
    with meter:
        a_time, a_scores = plain_nbgrader(base_dir, learners, work / "a")
    a_peak = meter.peak
    scaled = a_time * count / base_count
    note = "" if base_count == count else f" for {base_count}; scaled to {count}: {scaled:.1f} s"
    print(f"(a) plain nbgrader, local Spark per notebook: {a_time:.1f} s ({a_time / base_count:.2f} s per notebook)"
          f"{note}, peak {a_peak / 2**30:.2f} GiB")

    differ = {n: (a_scores.get(n), b_scores.get(n)) for n in learners if a_scores.get(n) != b_scores.get(n)}
    print(f"speed-up (a)/(b): {scaled / b_time:.1f}x" + ("" if not note else " (a scaled)"))
    print(f"grades identical on the {len(learners)} graded both ways: {'yes' if not differ else 'NO'}")
    for learner, (a, b) in sorted(differ.items()):
        print(f"  {learner} ({made[learner]}): nbgrader {a}, rai-lab {b}")


def report_b(timings: dict, args, work: Path, b_time: float, b_scores: dict, b_peak: int, meter) -> None:
    """Where (b)'s time goes, (c) without the sandbox, (d) an endless loop, and the goals."""

    notebooks = timings.pop("notebooks")
    per = [v["total"] for v in notebooks.values()]
    auto = [v.get("autograde", 0) for v in notebooks.values()]
    feedback = [v.get("feedback", 0) for v in notebooks.values()]
    print("where (b)'s time goes:")
    print(f"  course, intake and Spark server start (overlapped): {timings.get('spark_server_ready_s', 0):.1f} s "
          f"(course and intake alone {timings.get('prepare_and_intake_s', 0):.1f} s)")
    print(f"  grading with {timings['workers']} workers: {timings.get('grading_s', 0):.1f} s; per notebook in a worker: "
          f"median {statistics.median(per):.2f} s (autograde {statistics.median(auto):.2f} s, feedback "
          f"{statistics.median(feedback):.2f} s), slowest {max(per):.2f} s")
    waits = [v.get("spark_wait", 0) for v in notebooks.values()]
    checks = [v.get("spark_reset", 0) + v.get("spark_forget", 0) for v in notebooks.values()]
    print(f"  the slot's Spark server between learners: checked and cleaned in {statistics.median(checks):.2f} s "
          f"(median, while the last learner's feedback is written); a learner waited for it {statistics.median(waits):.2f} s "
          f"(median), {max(waits):.1f} s at most (a server started anew)")
    again = timings.get("graded_again") or {}
    print(f"  graded again alone (a limit or a stopped service may have owed to the batch): {len(again)}"
          + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(again.items()))})" if again else ""))
    print(f"  worker start {statistics.median(timings['worker_start_s'] or [0]):.2f} s each; Spark server stop "
          f"{timings.get('spark_server_stop_s', 0):.1f} s; grades.csv, feedback pages and export {timings.get('outputs_s', 0):.1f} s")
    met = {}
    if not args.no_trusted:
        with meter:
            c_time, c_scores, c_timings = rai_lab_grade(work / "class", work / "c", args.workers, "--trusted")
        c_per = statistics.median(v["total"] for v in c_timings["notebooks"].values())
        print(f"(c) rai-lab grade --trusted (no sandbox): {c_time:.1f} s, peak {meter.peak / 2**30:.2f} GiB; "
              f"grades as (b): {'yes' if c_scores == b_scores else 'NO'}")
        print(f"  the sandbox's cost: {(b_time - c_time) / args.count:+.2f} s per notebook of the batch's wall time; "
              f"median per notebook in a worker {statistics.median(per):.2f} s sandboxed, {c_per:.2f} s not")
    loop_dir = work / "class-loop"
    loop_dir.mkdir()
    shutil.copy(SAMPLES / "endless-loop.ipynb", loop_dir / "endless-loop.ipynb")
    _, _, d_timings = rai_lab_grade(loop_dir, work / "d", args.workers)
    loop = d_timings["notebooks"]["endless-loop"]["total"]
    print(f"(d) the endless-loop learner costs {loop:.1f} s (cell limit {d_timings['limits']['cell']:g} s)")
    met["endless loop <= 30 s"] = loop <= 30
    if args.count == 100:
        met.update({"100 in <= 150 s": b_time <= 150, "<= 2 GiB": b_peak <= 2 * 2**30})
    print("goal: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in met.items()))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
