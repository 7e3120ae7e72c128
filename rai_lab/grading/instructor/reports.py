"""What grading writes for the instructor and the learners: grades.csv, nbgrader's export, feedback pages."""

from __future__ import annotations

import csv
import html
import shutil
from pathlib import Path

from rai_lab.azure.cassette.scrub import redact
from rai_lab.grading.instructor import intake
from rai_lab.grading.instructor.course import CourseTree
from rai_lab.grading.instructor.rubric import Outcome, rubric
from rai_lab.messages import say


class Reports:
    """A batch's outputs in `out_dir`, in the learners' language `lang`, from the course tree `tree`; what fails to be
    written is said in the batch's log folder `logs`."""

    def __init__(self, out_dir: Path, lang: str, tree: CourseTree, logs: Path):
        self.out_dir, self.lang, self.tree, self.logs = out_dir, lang, tree, logs

    def write(self, outcomes: list[Outcome], submissions: dict[str, intake.Submission]) -> None:
        """grades.csv, nbgrader's export and each learner's feedback page."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        feedback_root = self.out_dir / "feedback"
        shutil.rmtree(feedback_root, ignore_errors=True)
        for outcome in outcomes:
            sub = submissions.get(outcome.learner)
            secrets = sub.secrets if sub else []
            target = feedback_root / outcome.learner / "responsible_ai.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            generated = self.tree.folder("feedback", outcome.learner) / "responsible_ai.html"
            body = generated.read_text(encoding="utf-8") if generated.exists() and outcome.status == "graded" else None
            target.write_text(redact(self._feedback_page(outcome, body), secrets), encoding="utf-8")
        self._export_nbgrader_csv(self.out_dir / "nbgrader_grades.csv")
        self._write_csv(outcomes)

    def _export_nbgrader_csv(self, target: Path) -> None:
        """What `nbgrader export` writes, with its own plugin, in this process (no 2 s start-up)."""
        from nbgrader.api import Gradebook
        from nbgrader.plugins import CsvExportPlugin

        try:
            with Gradebook(f"sqlite:///{self.tree.course / 'gradebook.db'}") as gb:
                CsvExportPlugin(to=str(target)).export(gb)
        except Exception as err:  # noqa: BLE001 - grades.csv is still written; say why this one is not
            self.logs.mkdir(parents=True, exist_ok=True)
            (self.logs / "export.log").write_text(f"nbgrader export failed: {err!r}\n", encoding="utf-8")

    def _feedback_page(self, outcome: Outcome, body: str | None) -> str:
        title, score, bonus = (say(f"grading.feedback_{key}", self.lang) for key in ("title", "score", "bonus"))
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in outcome.notes)
        banner = (
            f'<div id="rai-lab-summary" style="border:2px solid #c60;padding:1em;margin:1em;font-family:sans-serif">'
            f"<h2>{title} — {html.escape(outcome.learner)}</h2>"
            f"<p><b>{score} {outcome.score:g} / {outcome.max_score:g}</b> · {bonus} {outcome.bonus:g} / {outcome.bonus_max:g}</p>"
            f"{self._checks_table(outcome)}"
            f"{f'<ul>{notes}</ul>' if notes else ''}</div>"
        )
        if body and "<body" in body:
            start = body.index(">", body.index("<body")) + 1
            return body[:start] + banner + body[start:]
        return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>{banner}</body></html>"

    def _checks_table(self, outcome: Outcome) -> str:
        rows = []
        for name, item in rubric().items():
            got = outcome.checks.get(name, 0.0)
            mark = "✓" if got >= item["points"] else "✗"
            label = html.escape(say(f"rubric.{name}", self.lang))
            rows.append(f"<tr><td>{mark}</td><td>{label}</td><td>{got:g} / {item['points']}</td></tr>")
        return "<table>" + "".join(rows) + "</table>"

    def _write_csv(self, outcomes: list[Outcome]) -> None:
        names = list(rubric())
        with open(self.out_dir / "grades.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["learner", "file", "score", "max_score", "bonus", "bonus_max", *names, "status", "sandbox",
                             "notes"])
            for o in sorted(outcomes, key=lambda item: item.learner):
                writer.writerow([o.learner, o.source, f"{o.score:g}", f"{o.max_score:g}", f"{o.bonus:g}", f"{o.bonus_max:g}",
                                 *(f"{o.checks.get(n, 0):g}" for n in names),
                                 o.status, o.sandbox, " | ".join(o.notes)])
