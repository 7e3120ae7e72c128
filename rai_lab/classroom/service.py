"""The instructor's grading page, a service of the Hub (/services/rai-lab-grading/): per assignment, how many
learners handed in, and one button that collects, grades with the kit's sealed grader and releases the feedback.
It runs as root (the sealed grader needs it) and answers only the classroom's instructor (Hub login)."""

from __future__ import annotations

import html
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from rai_lab import paths
from rai_lab.classroom import grading
from rai_lab.classroom.roster import Classroom


class Runs:
    """One grading at a time; what each assignment's last one said."""

    def __init__(self, state: Path):
        self.state, self.lock, self.status = state, threading.Lock(), {}

    def start(self, assignment: str) -> bool:
        with self.lock:
            if any(s.get("running") for s in self.status.values()):
                return False
            self.status[assignment] = {"running": True, "started": time.time()}
        threading.Thread(target=self._run, args=(assignment,), daemon=True).start()
        return True

    def _run(self, assignment: str) -> None:
        classroom = Classroom.load(self.state)
        log = grading.work_dir(classroom, assignment).parent / f"{assignment}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(log.parent, 0o700)
        try:
            with open(log, "w", encoding="utf-8") as handle:
                rows = grading.grade_class(classroom, assignment, log=handle)
            result = {"rows": rows}
        except Exception as err:  # noqa: BLE001 - shown to the instructor, the service goes on
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            result = {"error": str(err)}
        with self.lock:
            self.status[assignment] = {"running": False, "took": time.time() - self.status[assignment]["started"],
                                       **result}


def page(classroom: Classroom, runs: Runs, xsrf: str, user: str) -> str:
    out = [f"<h1>rai-lab classroom: grading</h1><p>Signed in as {html.escape(user)}. "
           f"<a href='/user/{html.escape(user)}/formgrader' target='_blank' id='formgrader'>Open the formgrader "
           f"in its own tab</a> (review the sealed grader's grades and feedback).</p>"]
    for assignment in paths.ASSIGNMENTS.values():
        inbound = classroom.exchange / assignment / "inbound"
        handed = sorted({entry.split("+")[0] for entry in os.listdir(inbound)}) if inbound.is_dir() else []
        status = runs.status.get(assignment, {})
        due = classroom.due.get(assignment)
        out.append(f"<section id='{assignment}'><h2>{assignment}</h2><p>due: {html.escape(due or 'none')}; handed in: "
                   f"<span class='handed'>{len(handed)}</span> ({html.escape(', '.join(handed))})</p>")
        out.append(f"<form method='post' action='grade/{assignment}'>{xsrf}<button class='grade' "
                   f"{'disabled' if status.get('running') else ''}>Collect, grade (sealed) and release feedback"
                   f"</button></form>")
        if status.get("running"):
            out.append("<p class='status running'>grading…</p>")
        elif "error" in status:
            out.append(f"<p class='status failed'>failed: {html.escape(status['error'])}</p>")
        elif "rows" in status:
            out.append(f"<p class='status done'>graded in {status['took']:.0f} s; feedback released</p><table>"
                       "<tr><th>learner</th><th>score</th><th>bonus</th><th>status</th><th>late</th></tr>")
            for name, row in sorted(status["rows"].items()):
                late = float(row.get("late_seconds") or 0)
                out.append(f"<tr class='learner' data-learner='{html.escape(name)}'><td>{html.escape(name)}</td>"
                           f"<td class='score'>{row['score']}/{row['max_score']}</td><td>{row['bonus']}/{row['bonus_max']}"
                           f"</td><td>{html.escape(row['status'])}</td><td class='late'>"
                           f"{'late: ' + grading.late_text(late) if late else 'on time'}</td></tr>")
            out.append("</table>")
        out.append("</section>")
    refresh = "<meta http-equiv='refresh' content='3'>" if any(s.get("running") for s in runs.status.values()) else ""
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'>{refresh}<title>rai-lab grading</title></head><body>" \
           + "".join(out) + "</body></html>"


def main(state: str) -> None:
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
    from jupyterhub.utils import url_path_join
    from tornado import ioloop, web

    runs = Runs(Path(state))
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]

    class Instructor(HubOAuthenticated, web.RequestHandler):
        def instructor(self) -> str:
            user = self.get_current_user()
            if user is None:
                raise web.HTTPError(403)
            if user["name"] != Classroom.load(Path(state)).instructor.user:
                raise web.HTTPError(403, "only the classroom's instructor grades")
            return user["name"]

    class Home(Instructor):
        @web.authenticated
        def get(self):
            user = self.instructor()
            self.write(page(Classroom.load(Path(state)), runs, self.xsrf_form_html(), user))

    class Grade(Instructor):
        @web.authenticated
        def post(self, assignment):
            self.instructor()
            if assignment not in paths.ASSIGNMENTS.values():
                raise web.HTTPError(404)
            runs.start(assignment)
            self.redirect(prefix)

    app = web.Application([
        (prefix, Home), (url_path_join(prefix, "grade/([a-z-]+)"), Grade),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32), xsrf_cookies=True)
    url = os.environ["JUPYTERHUB_SERVICE_URL"].rstrip("/")
    host, port = url.rsplit(":", 1)
    app.listen(int(port), address=host.split("//")[-1])

    def stop(signum, frame):  # the Hub stops its services with SIGINT, then SIGTERM: a grading under way stops in order
        for grader in list(grading.RUNNING):
            grader.terminate()
            grader.wait(60)
        os._exit(0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main(sys.argv[1])
