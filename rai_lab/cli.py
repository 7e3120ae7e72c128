"""`rai-lab`: the command line. It parses arguments, calls the library and prints its results."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rai_lab import paths
from rai_lab.errors import RaiLabError
from rai_lab.messages import table

LAB_PROMPTS = 10


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_summary(result) -> None:
    from rai_lab.azure.cassette.files import provenance_line
    from rai_lab.azure.provider import user_prompt

    text = table("summary", result.lang)
    answered = [call for call in result.calls if call.get("status") == 200 and call.get("answer") is not None]
    # The going-further part asks for several answers per prompt (n); the exercise's calls do not.
    sampled = [call for call in answered if _sampled(call)]
    answered = [call for call in answered if not _sampled(call)]
    loaded = sum(1 for call in answered if any(w in _prompt(call) for w in (" male ", " female ")))
    lines = [text["title"].format(assignment=paths.ASSIGNMENTS[result.lang], mode=result.mode, deployment=result.deployment)]
    if result.cassette:
        lines.append(text["cassette"].format(cassette=result.cassette))
        if result.mode == "replay":
            lines.append(provenance_line(result.provenance, result.lang))
    lines.append(
        text["prompts"].format(
            answered=len(answered), expected=LAB_PROMPTS, neutral=len(answered) - loaded, loaded=loaded
        )
    )
    if sampled:
        lines.append(text["further"].format(calls=len(sampled), answers=sum(len(c.get("answers") or []) for c in sampled)))
    filtered = [call for call in result.calls if call.get("filtered")]
    if filtered:
        lines.append(text["filtered"].format(
            count=sum(len(call["filtered"]) for call in filtered),
            prompts="; ".join(f"{user_prompt(call.get('request'))} ({', '.join(dict.fromkeys(call['filtered']))})"
                              for call in filtered)))
    if result.quota_waits:
        lines.append(text["quota"].format(count=len(result.quota_waits),
                                          seconds=round(sum(seconds for _, seconds in result.quota_waits))))
    frames = ", ".join(text["rows"].format(name=name, rows=rows) for name, rows in result.dataframes.items())
    lines.append(text["frames"].format(frames=frames or text["none"]))
    if result.spark:
        lines.append(text["spark"].format(spark=result.spark))
    lines.append(text["output"].format(output=_relative(result.output)))
    if result.ok:
        root = "--allow-root " if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        lines.append(text["open"].format(root=root, output=_relative(result.output)))
    else:
        lines.append(text["failed"].format(error=result.error))
        if result.hint:
            lines.append(result.hint)
    print("\n".join(lines), flush=True)


def _sampled(call: dict) -> bool:
    request = call.get("request")
    return isinstance(request, dict) and (request.get("n") or 1) > 1


def _prompt(call: dict) -> str:
    from rai_lab.azure.provider import user_prompt

    return " " + user_prompt(call.get("request")).lower() + " "


def cmd_run(args) -> int:
    from rai_lab import runner

    # A notebook of the kit's says its language (metadata rai_lab.lang, or its folder); else --lang, else French.
    lang = args.lang or (paths.notebook_lang(args.notebook) if args.notebook else None) or "fr"
    result = runner.run(
        lang=lang, mode=args.mode, deployment=args.deployment, out_dir=args.out,
        notebook=args.notebook, cassette=args.cassette, progress=not args.no_progress, checks=args.checks,
        spark=args.spark, tpm=args.tpm,
    )
    print_summary(result)
    return 0 if result.ok else 1


def cmd_check(args) -> int:
    from rai_lab import selfcheck

    result = selfcheck.run(Path(args.notebook), timeout=args.cell_timeout)
    print(result.text(_relative(Path(args.notebook))))
    return 0 if result.ok else 1


def cmd_jupyter(args) -> int:
    from rai_lab import jupyterlab

    argv, env, cwd = jupyterlab.learner(args.port, args.ip, token=args.token, browser=not args.no_browser)
    return jupyterlab.run(argv, env, cwd)


def cmd_formgrader(args) -> int:
    from rai_lab import jupyterlab

    course = jupyterlab.course_of(Path(args.out), args.assignment, Path(args.work) if args.work else None)
    print(f"formgrader on {_relative(course)}: adjust a score by hand there, then run `rai-lab grade` again "
          f"(unchanged submissions are not regraded) to export it to {args.out}/grades.csv")
    argv, env, cwd = jupyterlab.formgrader(course, args.port, args.ip, token=args.token, browser=not args.no_browser)
    return jupyterlab.run(argv, env, cwd)


def cmd_record(args) -> int:
    from rai_lab import runner
    from rai_lab.azure.cassette.files import display_path, provenance, provenance_line

    # Everything `record` prints is in the lab's language (--lang, default fr): the summary, then the cassette.
    lang = args.lang
    if args.teaching:
        target = runner.record_teaching(args.out)
        print(table("summary", lang)["recorded_teaching"].format(cassette=display_path(target)))
        print(provenance_line(provenance(target), lang))
        return 0
    result = runner.record(deployment=args.deployment, target=args.out, standin=args.standin, progress=not args.no_progress,
                           tpm=args.tpm, keep_errors=args.keep_errors, lang=lang, spark=args.spark)
    print_summary(result)
    if not result.ok:
        return 1
    target = Path(args.out) if args.out else paths.reference_cassette(args.deployment)
    print(table("summary", lang)["recorded"].format(cassette=display_path(target), count=len(result.calls)))
    print(provenance_line(provenance(target), lang))
    return 0


def cmd_grade(args) -> int:
    from rai_lab import grading
    from rai_lab.grading.instructor import stop

    # Ctrl-C, SIGTERM (timeout, a scheduler) and SIGHUP (a closed terminal) stop the batch in order: every process
    # it started is killed, its /run folder removed, the grades already made kept; the same command resumes.
    previous = stop.install()
    grader = None
    try:
        options = dict(work_dir=Path(args.work) if args.work else None, timeout=args.timeout,
                       cell_timeout=args.cell_timeout, spark=args.batch_spark, illustrations=args.run_illustrations,
                       trusted=args.trusted, regrade=args.regrade)
        if args.master:  # on a Spark cluster (rai_lab/grading/cluster/, docs/cluster.md)
            from rai_lab.grading.cluster.driver import ClusterGrader

            grader = ClusterGrader(args.assignment, Path(args.out), args.master,
                                   learners_per_task=args.learners_per_task, **options)
        else:
            grader = grading.Grader(args.assignment, Path(args.out), workers=args.workers, **options)
        grader.outcomes = grader.run(Path(args.submissions), progress=not args.no_progress)
    except stop.Stopped as stopped:
        graded = len(getattr(grader, "saved_now", []))
        again = "the same command again" + (" without --regrade" if args.regrade else "")
        try:
            print(f"\nrai-lab: stopped by {stopped.name}: {graded} learner{'s' if graded != 1 else ''} graded and kept; "
                  f"run {again} to grade the rest", file=sys.stderr, flush=True)
        except OSError:
            pass  # the terminal is gone (SIGHUP)
        return stopped.exit_status
    finally:
        stop.restore(previous)
    outcomes = grader.outcomes
    width = max([len(o.learner) for o in outcomes] + [7])
    print(f"{'learner':<{width}}  score    bonus  status   first note")
    for o in sorted(outcomes, key=lambda item: item.learner):
        first = (o.notes[0][:70] + "…") if o.notes and len(o.notes[0]) > 70 else (o.notes[0] if o.notes else "")
        print(f"{o.learner:<{width}}  {o.score:>4g}/{o.max_score:<3g} {o.bonus:>2g}/{o.bonus_max:<3g} {o.status:<8} {first}")
    limits = grader.limits_used
    graded, kept = grader.timings.get("graded", 0), grader.timings.get("kept", 0)
    print(f"sandbox: {grader.sandbox_summary}")
    if graded:
        print(f"spark: {grader.spark_summary}")
    again = grader.timings.get("graded_again") or {}
    if again:
        print(f"graded again, alone: {len(again)} ({', '.join(f'{name}: {why}' for name, why in sorted(again.items()))})")
    if limits:
        print(f"time limits: {limits['cell']:g} s per cell, {limits['notebook']:g} s per notebook "
              f"(the solution ran in {limits['reference']['total_s']:.1f} s, its slowest cell "
              f"{limits['reference']['slowest_cell_s']:.1f} s)")
    from rai_lab.grading.instructor.databricks_mapping import count_formats

    print(f"formats: {count_formats(grader.formats)}")
    print(f"{len(outcomes)} submissions: {graded} graded now, {kept} kept from the last run (unchanged), "
          f"{len(outcomes) - graded - kept} not runnable; "
          f"grades: {_relative(Path(args.out) / 'grades.csv')}; feedback: {_relative(Path(args.out) / 'feedback')}/<learner>/")
    return 0


def cmd_spark(args) -> int:
    from rai_lab.spark import server as spark_server

    if args.action == "start":
        state = spark_server.start(port=args.port)
        print(f"Spark Connect server running at {state.url} (pid {state.pid}); log: {state.log}")
        print(f"use it: SPARK_REMOTE={state.url}  or  rai-lab run --spark {state.url}")
    elif args.action == "stop":
        print("Spark Connect server stopped" if spark_server.stop() else "no Spark Connect server was running")
    else:
        state = spark_server.status()
        print(f"running at {state.url} (pid {state.pid})" if state.running else "not running")
        return 0 if state.running else 3
    return 0


def cmd_export(args) -> int:
    from rai_lab import databricks

    for path in databricks.export(Path(args.databricks)):
        print(f"exported: {_relative(path)}")
    print("import them into your workspace (Workspace > Import), or with: databricks workspace import-dir")
    return 0


def cmd_release(args) -> int:
    from rai_lab import release

    from rai_lab import databricks

    if args.check:
        stale = release.stale() + [f"databricks/{name}" for name in databricks.stale()]
        if stale:
            print("lab/ or databricks/ is stale (run `rai-lab release`): " + ", ".join(stale), file=sys.stderr)
            return 1
        print("lab/ and databricks/ are up to date with solutions/")
        return 0
    for path in release.release():
        print(f"released: {_relative(path)}")
    for path in databricks.export(paths.ROOT / "databricks"):
        print(f"exported for Databricks: {_relative(path)}")
    return 0


def cmd_standin(args) -> int:
    from rai_lab.azure import standin

    return standin.run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    from rai_lab import __version__
    from rai_lab.azure import standin

    parser = argparse.ArgumentParser(prog="rai-lab", description="Jupyter teaching kit for the Responsible AI lab (AI-06).")
    parser.add_argument("--version", action="version", version=f"rai-lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the lab headless with papermill")
    run.add_argument("--lang", choices=sorted(paths.ASSIGNMENTS), default=None,
                     help="the lab's language: which solution notebook runs and the summary's language (default: the "
                          "--notebook's own language, else fr)")
    run.add_argument("--mode", choices=("replay", "live"), default="replay",
                     help="replay: recorded answers, offline; live: your Azure OpenAI resource, from the "
                          "AZURE_OPENAI_* variables (default: replay)")
    run.add_argument("--deployment", default="gpt-35-turbo",
                     help="the Azure OpenAI deployment, and in replay the reference cassette to use (default: gpt-35-turbo)")
    run.add_argument("--out", default="out", help="output folder (default: out)")
    run.add_argument("--notebook", help="a notebook to run instead of the solution (e.g. a learner's)")
    run.add_argument("--cassette", help="cassette to replay from (replay) or record to (live)")
    run.add_argument("--spark", help="'local' (embedded Spark), a Spark Connect URL sc://host:port, or 'databricks' "
                                     "(Databricks Connect, from .venv-databricks; DATABRICKS_HOST, DATABRICKS_TOKEN, "
                                     "DATABRICKS_CLUSTER_ID) (default: SPARK_REMOTE when set, else local)")
    run.add_argument("--tpm", type=int, help="live mode: the deployment's tokens per minute, to pace the calls to "
                                            "(default: the notebook's, 5000 as in the exercise; 0: no pacing)")
    run.add_argument("--checks", action="store_true", help="also run the notebook's check cells (they stop the run at the first ✗)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    chk = sub.add_parser("check", help="run a learner's notebook from the top and report its checks (✓/✗), as "
                                       "nbgrader's Validate does; the notebook is not modified")
    chk.add_argument("notebook", help="the notebook, e.g. lab/responsible-ai-fr/responsible_ai.ipynb")
    chk.add_argument("--cell-timeout", type=int, default=180, help="seconds per cell (default: 180)")
    chk.set_defaults(func=cmd_check)

    jup = sub.add_parser("jupyter", help="the learner's JupyterLab on lab/: the notebooks, their check cells and "
                                         "nbgrader's Validate (no instructor tools)")
    jup.add_argument("--port", type=int, default=8888, help="port (default: 8888)")
    jup.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    jup.add_argument("--token", help="the login token (default: a new random one, printed by JupyterLab)")
    jup.add_argument("--no-browser", action="store_true", help="do not open a browser")
    jup.set_defaults(func=cmd_jupyter)

    fgr = sub.add_parser("formgrader", help="nbgrader's formgrader on a class graded by `rai-lab grade`: browse "
                                            "submissions and feedback, adjust scores by hand")
    fgr.add_argument("--out", default="grades", help="the --out of `rai-lab grade` (default: grades)")
    fgr.add_argument("--assignment", choices=sorted(paths.ASSIGNMENTS.values()), default="responsible-ai-fr",
                     help="the graded assignment (default: responsible-ai-fr)")
    fgr.add_argument("--work", help="the --work of `rai-lab grade`, if it was given")
    fgr.add_argument("--port", type=int, default=8889, help="port (default: 8889)")
    fgr.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    fgr.add_argument("--token", help="the login token (default: a new random one, printed by JupyterLab)")
    fgr.add_argument("--no-browser", action="store_true", help="do not open a browser")
    fgr.set_defaults(func=cmd_formgrader)

    rec = sub.add_parser("record", help="re-record a cassette by running the lab live")
    rec.add_argument("--deployment", default="gpt-35-turbo", help="the deployment to record (default: gpt-35-turbo)")
    rec.add_argument("--out", help="cassette to write (default: the reference cassette of the deployment)")
    rec.add_argument("--standin", action="store_true", help="record from the rai-lab stand-in instead of Azure")
    rec.add_argument("--keep-errors", action="store_true",
                     help="also record Azure's error answers (401, 404, 429, content filter), scrubbed the same way")
    rec.add_argument("--teaching", action="store_true",
                     help="record the teaching cassette from the stand-in: one exchange per error Azure can give")
    rec.add_argument("--tpm", type=int, help="the deployment's tokens per minute, to pace the calls to (default 5000; "
                                             "the stand-in has no quota)")
    rec.add_argument("--lang", choices=sorted(paths.ASSIGNMENTS), default="fr",
                     help="which solution notebook runs, and the language of what is printed (default: fr)")
    rec.add_argument("--spark", help="where the notebook's Spark lives, as for `rai-lab run --spark` (default: SPARK_REMOTE "
                                     "when set, else local)")
    rec.add_argument("--no-progress", action="store_true", help="no progress bar")
    rec.set_defaults(func=cmd_record)

    rel = sub.add_parser("release", help="generate lab/ from solutions/ with nbgrader")
    rel.add_argument("--check", action="store_true", help="only check that lab/ is up to date")
    rel.set_defaults(func=cmd_release)

    grd = sub.add_parser("grade", help="autograde a folder of submissions with nbgrader, offline")
    grd.add_argument("submissions", help="folder of <learner>.ipynb, <learner>/ folders or .zip files")
    grd.add_argument("--assignment", choices=sorted(paths.ASSIGNMENTS.values()), default="responsible-ai-fr",
                     help="the assignment graded: its language is the feedback's (default: responsible-ai-fr)")
    grd.add_argument("--out", default="grades", help="where grades.csv and feedback/ go (default: grades)")
    grd.add_argument("--work", help="nbgrader's course tree (default: under ~/.cache/rai-lab/grading)")
    grd.add_argument("--timeout", type=float, default=None,
                     help="seconds per notebook (default: 10x the solution's run, at least 30; timed once per course)")
    grd.add_argument("--cell-timeout", type=float, default=None,
                     help="seconds per cell (default: 10x the solution's slowest cell, at least 10)")
    grd.add_argument("--trusted", action="store_true",
                     help="grade without the bubblewrap sandbox (trusted submissions only; grades.csv says so)")
    grd.add_argument("--regrade", action="store_true", help="grade every submission again, even unchanged ones")
    grd.add_argument("--run-illustrations", action="store_true",
                     help="also run the cells no check reads (the going-further tables and chart), for the feedback")
    grd.add_argument("--workers", type=int, default=None,
                     help="notebooks graded at the same time (default: the number of cores)")
    grd.add_argument("--batch-spark", choices=("shared", "local"), default="shared",
                     help="the kernels' Spark: shared, a Spark Connect server per worker that its learners use one after "
                          "another (checked between them); local, an embedded Spark "
                          "per notebook (rai-lab run's --spark names a target, this a batch layout) (default: shared)")
    grd.add_argument("--master", metavar="URL",
                     help="grade on a Spark cluster: its master URL (spark://HOST:PORT, yarn, k8s://..., any that "
                          "spark-submit takes); every executor host needs the kit and bubblewrap (docs/cluster.md)")
    grd.add_argument("--learners-per-task", type=int, default=None,
                     help="with --master: learners per Spark task (default: the class over twice the cluster's cores, "
                          "at most 16)")
    grd.add_argument("--no-progress", action="store_true", help="no progress bar")
    grd.set_defaults(func=cmd_grade)

    spk = sub.add_parser("spark", help="a local Spark Connect server from the installed pyspark")
    spk.add_argument("action", choices=("start", "stop", "status"))
    spk.add_argument("--port", type=int, default=15002, help="port on 127.0.0.1 (default: 15002)")
    spk.set_defaults(func=cmd_spark)

    exp = sub.add_parser("export", help="write the lab notebooks as Databricks source notebooks")
    exp.add_argument("--databricks", required=True, metavar="DIR", help="folder to write them to")
    exp.set_defaults(func=cmd_export)

    std = sub.add_parser("standin", help="run the Azure OpenAI stand-in server on 127.0.0.1")
    standin.add_arguments(std)
    std.set_defaults(func=cmd_standin)

    from rai_lab.classroom import commands as classroom

    classroom.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RaiLabError as err:
        print(f"rai-lab: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
