"""`rai-lab classroom ...`: its arguments and what each action prints (the library prints nothing itself)."""

from __future__ import annotations

import sys
from pathlib import Path

from rai_lab import paths
from rai_lab.classroom import roster
from rai_lab.errors import RaiLabError


def add_parser(sub) -> None:
    cls = sub.add_parser("classroom", help="a JupyterHub for a roster on this machine: accounts, nbgrader's exchange, "
                                           "the course released, sealed grading and feedback (needs root)")
    actions = cls.add_subparsers(dest="action", required=True)
    state = {"default": str(roster.DEFAULT_STATE),
             "help": f"the classroom's folder: its Hub, exchange and grading (default: {roster.DEFAULT_STATE})"}

    start = actions.add_parser("start", help="create the roster's accounts (passwords printed once), the exchange and "
                                             "the released course, then run the Hub until Ctrl-C or `classroom stop`")
    start.add_argument("roster", help="CSV with the header login,name,language (language: fr or en)")
    start.add_argument("--state", **state)
    start.add_argument("--port", type=int, default=8000, help="the Hub's port on 127.0.0.1 (default: 8000)")
    start.add_argument("--prefix", default=roster.DEFAULT_PREFIX,
                       help=f"prefix of the Unix accounts, so they clash with no one's (default: {roster.DEFAULT_PREFIX})")
    start.add_argument("--instructor", default="instructor", help="the instructor's login (default: instructor)")
    start.add_argument("--instructor-lang", choices=sorted(paths.ASSIGNMENTS), default="fr",
                       help="the course the instructor's formgrader opens (default: fr)")
    start.add_argument("--lab-option", action="append", default=[], metavar="OPTION",
                       help="an extra option for every user's JupyterLab (repeatable)")
    start.add_argument("--prepare-only", action="store_true", help="set everything up, do not run the Hub")

    stop = actions.add_parser("stop", help="stop a running classroom's Hub (accounts and course stay)")
    stop.add_argument("--state", **state)

    due = actions.add_parser("due", help="set an assignment's due date (UTC); later submissions are late by nbgrader's rule")
    due.add_argument("assignment", choices=sorted(paths.ASSIGNMENTS.values()))
    due.add_argument("date", help="e.g. '2026-12-08 18:00:00' (UTC)")
    due.add_argument("--state", **state)

    grade = actions.add_parser("grade", help="collect, grade with the sealed grader, and release the feedback "
                                             "(what the instructor's grading page does)")
    grade.add_argument("assignment", choices=sorted(paths.ASSIGNMENTS.values()))
    grade.add_argument("--state", **state)

    password = actions.add_parser("password", help="give an account of the classroom a new password (printed once)")
    password.add_argument("account", help="the Unix account, e.g. rl-alice")
    password.add_argument("--state", **state)

    remove = actions.add_parser("remove", help="stop the classroom and delete its accounts (their homes and work), "
                                               "exchange and grading, after confirming")
    remove.add_argument("--state", **state)
    remove.add_argument("--yes", action="store_true", help="do not ask")
    cls.set_defaults(func=run)


def run(args) -> int:
    from rai_lab.classroom import course, grading, hub
    from rai_lab.classroom.roster import Classroom

    state = Path(args.state)
    if args.action == "start":
        classroom, passwords = hub.prepare(Path(args.roster), state, args.prefix, args.instructor,
                                           args.instructor_lang, args.port, args.lab_option)
        if passwords:
            print("new accounts and their passwords, shown this once (write them down; nothing keeps them; "
                  "`rai-lab classroom password ACCOUNT` sets a new one):")
            for user, password in passwords.items():
                print(f"  {user}\t{password}")
        released = hub.publish(classroom)
        print(f"classroom: {len(classroom.learners)} learners, instructor {classroom.instructor.user}; released: "
              f"{', '.join(released)}; exchange: {classroom.exchange}", flush=True)
        print(f"the Hub: http://127.0.0.1:{classroom.port}/ (log in with the account and its password); grading: "
              f"http://127.0.0.1:{classroom.port}/services/rai-lab-grading/ (the instructor)", flush=True)
        if args.prepare_only:
            return 0
        return hub.serve(classroom)
    if args.action == "stop":
        print("classroom stopped" if hub.stop(state) else "no classroom was running")
        return 0
    classroom = Classroom.load(state)
    if args.action == "due":
        course.set_due(classroom, args.assignment, args.date)
        print(f"{args.assignment} is due {args.date} UTC")
        return 0
    if args.action == "password":
        from rai_lab.classroom import accounts

        accounts.require_root("rai-lab classroom password")
        user = classroom.person(args.account).user
        if user not in classroom.created:
            raise RaiLabError(f"{user} was not created by this classroom: its password is not the classroom's to set")
        print(f"{user}\t{accounts.set_password(user)}")
        return 0
    if args.action == "grade":
        rows = grading.grade_class(classroom, args.assignment, log=sys.stderr)
        for name, row in sorted(rows.items()):
            late = float(row["late_seconds"])
            print(f"{name}: {row['score']}/{row['max_score']} bonus {row['bonus']}/{row['bonus_max']} {row['status']}"
                  f"{' late ' + grading.late_text(late) if late else ''}")
        print(f"feedback released; grades: {classroom.home / 'grades' / (args.assignment + '.csv')}")
        return 0
    if args.action == "remove":
        users = ", ".join(classroom.created) or "none"
        if not args.yes:
            answer = input(f"delete the accounts {users} with their homes and work, and {state}? type yes: ")
            if answer.strip() != "yes":
                raise RaiLabError("nothing removed")
        removed = hub.remove(state)
        print(f"removed: {', '.join(removed) or 'no account'} and {state}")
        return 0
    return 2
