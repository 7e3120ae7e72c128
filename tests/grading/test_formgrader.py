"""Regrading a class, and the instructor's formgrader (`rai-lab formgrader`) on it: the next `rai-lab grade`
keeps unchanged submissions without running them, grades newcomers, and exports the scores adjusted by hand
in the formgrader; the formgrader itself cannot autograde (there is no sandbox there)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, free_port, rai_lab_command

pytestmark = [pytest.mark.notebook, pytest.mark.spark]

SUBMISSIONS = ROOT / "tests" / "submissions"
TOKEN = "rai-lab-formgrader-test"


def api(url: str, method: str = "GET", body: dict | None = None):
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {TOKEN}"},
                                     data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read() or b"null")


def grades(out):
    with open(out / "grades.csv", encoding="utf-8") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def test_regrading_keeps_grades_grades_newcomers_and_exports_scores_adjusted_in_the_formgrader(tmp_path):
    class_dir, out, work = tmp_path / "class", tmp_path / "out", tmp_path / "work"
    class_dir.mkdir()
    shutil.copy(SUBMISSIONS / "solution.ipynb", class_dir / "ana.ipynb")
    shutil.copy(SUBMISSIONS / "key-placeholder.ipynb", class_dir / "ben.ipynb")
    args = ["grade", str(class_dir), "--out", str(out), "--work", str(work), "--no-progress", "--workers", "1"]
    first = rai_lab_command(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    first_grades = grades(out)
    before = first_grades["ben"]
    assert before["env_key_set"] == "0"
    logs_before = {p.name: p.stat().st_mtime_ns for p in (work / "logs").glob("*.log")}

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "rai_lab", "formgrader", "--out", str(out), "--work", str(work),
                               "--port", str(port), "--token", TOKEN, "--no-browser"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                api(f"{url}/api/status")
                break
            except (OSError, urllib.error.URLError):
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                time.sleep(0.5)
        # What the formgrader's pages do: find ben's notebook, its grades, and set one by hand.
        submissions = api(f"{url}/formgrader/api/submitted_notebooks/responsible-ai-fr/responsible_ai")
        ben = next(item for item in submissions if item["student"] == "ben")
        found = {g["name"]: g for g in api(f"{url}/formgrader/api/grades?submission_id={ben['id']}")}
        changed = api(f"{url}/formgrader/api/grade/{found['env_key_set']['id']}", "PUT", {"manual_score": 1})
        assert changed["manual_score"] == 1 and changed["auto_score"] == 0
        # Its Autograde button would run ben's code outside the sandbox: refused, with the way to grade.
        refused = api(f"{url}/formgrader/api/submission/responsible-ai-fr/ben/autograde", "POST", {})
        assert refused["success"] is False and "rai-lab grade" in json.dumps(refused)
        pages = urllib.request.urlopen(urllib.request.Request(f"{url}/formgrader", headers={
            "Authorization": f"token {TOKEN}"}), timeout=60).read().decode()
        assert "formgrader" in pages.lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    shutil.copy(SUBMISSIONS / "api-version-latest.ipynb", class_dir / "cleo.ipynb")  # a newcomer
    again = rai_lab_command(*args)  # ana and ben unchanged: kept, not run again; ben's manual score exported
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 graded now, 2 kept from the last run" in again.stdout
    second = grades(out)
    assert second["ana"] == first_grades["ana"] and second["cleo"]["score"] == "14"
    assert len(second) == 3 and len(list((out / "feedback").iterdir())) == 3
    logs_after = {p.name: p.stat().st_mtime_ns for p in (work / "logs").glob("*.log")}
    assert {k: logs_after[k] for k in logs_before} == logs_before  # unchanged submissions were not re-run
    after = second["ben"]
    assert after["env_key_set"] == "1" and float(after["score"]) == float(before["score"]) + 1
    assert "Note ajustée à la main dans le formgrader : env_key_set 1." in after["notes"]
    assert grades(out)["ana"]["score"] == "15" and "à la main" not in grades(out)["ana"]["notes"]
    with open(out / "nbgrader_grades.csv", encoding="utf-8") as handle:
        nbgrader_rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert float(nbgrader_rows["ben"]["raw_score"]) == float(before["score"]) + float(before["bonus"]) + 1
