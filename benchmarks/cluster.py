"""Grading on a Spark cluster: the cluster path against a local batch on this machine, and a model of the time a
large course takes on a real cluster.

    .venv/bin/python benchmarks/cluster.py                  # 100 learners, both ways, on 2 workers of 1 core
    .venv/bin/python benchmarks/cluster.py --count 12       # a quicker look
    .venv/bin/python benchmarks/cluster.py --model-only --per-learner 4.0 --task-start 12

Generates the class benchmarks/grading.py grades (about half correct, the rest with one of the sample class's
faults), grades it (a) locally, `rai-lab grade --workers W`, and (b) on a Spark standalone cluster started here from
the installed pyspark (a master and W workers of one core on 127.0.0.1; `rai-lab grade --master`); compares the two
grades.csv row for row (order aside) and prints both wall times, the cluster path's overhead, where its time goes
(the cluster's start, the host checks, the course and learners shipped, each task's worker start, the learners),
what shipping a learner to a task costs, and then (c) a model of the time for 10,000 learners on 10, 50 and 100
workers of 4 cores, from the per-learner and per-task costs just measured (or given). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from grading import make_class  # noqa: E402 - benchmarks/grading.py, the same generated class

from rai_lab.grading.cluster.driver import learners_per_task  # noqa: E402
from rai_lab.grading.cluster.standalone import Cluster  # noqa: E402


def rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def grade(class_dir: Path, out: Path, work: Path, *options: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rai_lab", "grade", str(class_dir), "--out", str(out), "--work",
                           str(work), "--no-progress", *options], capture_output=True, text=True,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    if done.returncode != 0:
        raise SystemExit(f"rai-lab grade {' '.join(options)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def model(learners: int, hosts: int, cores: int, per_learner: float, task_start: float, driver: float,
          per_learner_driver: float, merge: float) -> float:
    """Seconds to grade `learners` on `hosts` workers of `cores` cores, one task slot per core.

    Assumes: the learners are spread evenly (rai-lab's default task size, `learners_per_task`); every slot grades at
    the per-learner cost measured here (one grading worker per core, as a local batch has); each task pays its
    worker's start once; the driver merges answers while the tasks grade (`merge` per learner, one thread: it is
    the bound when it is slower than the cluster) and its fixed costs (`driver`: the course, the reference run) and
    serial per-learner costs (`per_learner_driver`: intake before, reports after) add up; no straggler, no executor
    lost, the cluster already up."""
    slots = hosts * cores
    size = learners_per_task(learners, slots)
    tasks = math.ceil(learners / size)
    waves = math.ceil(tasks / slots)
    return driver + learners * per_learner_driver + max(waves * (task_start + size * per_learner), learners * merge)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="learners to generate (default: 100)")
    parser.add_argument("--workers", type=int, default=2, help="local --workers, and the cluster's workers of 1 core")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--model-only", action="store_true", help="only (c), from --per-learner and --task-start")
    parser.add_argument("--per-learner", type=float, default=4.0, help="with --model-only: seconds per learner")
    parser.add_argument("--task-start", type=float, default=12.0, help="with --model-only: a task's worker start")
    parser.add_argument("--driver", type=float, default=30.0, help="with --model-only: the driver's fixed seconds")
    parser.add_argument("--driver-per-learner", type=float, default=0.02,
                        help="with --model-only: the driver's serial seconds per learner (intake, reports)")
    parser.add_argument("--merge", type=float, default=0.02,
                        help="with --model-only: the driver's seconds to merge one learner's answer")
    args = parser.parse_args()

    per_learner, task_start = args.per_learner, args.task_start
    driver, per_learner_driver, merge = args.driver, args.driver_per_learner, args.merge
    if not args.model_only:
        root = Path(tempfile.mkdtemp(prefix="rai-lab-cluster-bench-"))
        os.chmod(root, 0o755)
        try:
            class_dir = root / "class"
            make_class(class_dir, args.count)
            # The reference run is timed once per course and machine: both runs below find it in the cache.
            local_s = grade(class_dir, root / "local", root / "local-work", "--workers", str(args.workers))
            started = time.monotonic()
            with Cluster(root / "cluster", workers=args.workers, cores=1, memory="1g") as cluster:
                cluster_start_s = time.monotonic() - started
                cluster_s = grade(class_dir, root / "cluster-out", root / "cluster-work", "--master", cluster.url)
            local, remote = rows(root / "local"), rows(root / "cluster-out")
            same = local == remote
            timings = json.loads((root / "cluster-work" / "logs" / "batch" / "timings.json").read_text())
            info = timings["cluster"]
            tasks = info["tasks"]
            notebooks = [v["total"] for v in timings["notebooks"].values() if v.get("total")]
            starts = [s for task in tasks for s in task.get("worker_start_s", [])]
            per_learner = statistics.median(notebooks)
            task_start = statistics.median(starts) if starts else task_start
            payload = statistics.median(info["payload_bytes"]) if info["payload_bytes"] else 0
            write_s = [task["write_submissions_s"] / max(1, len(task["learners"])) for task in tasks]
            print(f"class: {args.count} learners; local --workers {args.workers}; "
                  f"cluster: {args.workers} workers of 1 core")
            print(f"local batch: {local_s:.1f} s")
            print(f"cluster: {cluster_s:.1f} s (+ {cluster_start_s:.1f} s to start the master and workers); "
                  f"overhead {cluster_s - local_s:+.1f} s ({cluster_s / local_s:.2f}x)")
            print(f"same grades.csv, row for row: {same}")
            if not same:
                for learner in sorted(set(local) | set(remote)):
                    if local.get(learner) != remote.get(learner):
                        print(f"  differs: {learner}: local {local.get(learner)} cluster {remote.get(learner)}")
            print(f"where the cluster's time went: host checks {info.get('check_hosts_s', 0):.1f} s, course prepared "
                  f"for the executors {info.get('prepare_course_s', 0):.1f} s ({info['course_bytes'] / 1024:.0f} KiB), "
                  f"{len(tasks)} tasks of {info['learners_per_task']} learners, "
                  f"a task's worker start {task_start:.1f} s "
                  f"(median), a learner {per_learner:.1f} s (median, in its task), {info['rounds']} round(s), "
                  f"{info['doubled']} answer(s) that came twice")
            print(f"shipping a learner: {payload / 1024:.0f} KiB (median notebook and cassette), read and packed by "
                  f"the driver in {1000 * info['payloads_s'] / max(1, args.count):.1f} ms, written by its task in "
                  f"{1000 * statistics.median(write_s):.2f} ms; the course: {info['course_bytes'] / 1024:.0f} KiB once "
                  f"per task, unpacked in {1000 * statistics.median(t['unpack_course_s'] for t in tasks):.0f} ms")
            merge = info["merge_s"] / max(1, len(info["graded_where"]))
            per_learner_driver = (timings.get("outputs_s", 0.0) + info["payloads_s"]) / args.count
            driver = max(0.0, timings["total_s"] - timings.get("grading_s", 0.0) - timings.get("outputs_s", 0.0))
            print(f"the driver: {driver:.1f} s before and after grading, "
                  f"{1000 * per_learner_driver:.1f} ms per learner "
                  f"(shipping, reports), {1000 * merge:.1f} ms to merge one answer")
        finally:
            if args.keep:
                print(f"kept: {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)

    print(f"\nmodel (10,000 learners, workers of 4 cores; a learner {per_learner:.1f} s, a task's start "
          f"{task_start:.1f} s, the driver's fixed {driver:.0f} s, {1000 * per_learner_driver:.0f} ms per learner and "
          f"{1000 * merge:.0f} ms per merge):")
    for hosts in (10, 50, 100):
        seconds = model(10_000, hosts, 4, per_learner, task_start, driver, per_learner_driver, merge)
        print(f"  {hosts:>3} workers ({hosts * 4} slots): {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
