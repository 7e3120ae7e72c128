"""Adding a language is a catalogue and a notebook: a throw-away language built from the English one is
released, run and graded, and speaks its own text everywhere (README: "Adding a language")."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, rai_lab_command

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: make_submissions
import make_submissions as subs  # noqa: E402

pytestmark = [pytest.mark.notebook, pytest.mark.spark]

MARK = "[xx] "


def throwaway_language(tmp: Path) -> dict[str, str]:
    """RAI_LAB_I18N with xx.toml (every English text, marked) and RAI_LAB_HOME with responsible-ai-xx."""
    i18n = tmp / "i18n"
    i18n.mkdir()
    for path in (ROOT / "rai_lab" / "i18n").glob("*.toml"):
        shutil.copy(path, i18n)
    english = (i18n / "en.toml").read_text(encoding="utf-8")
    # Mark each text: every string value starts with "[xx] " (the keys and placeholders stay).
    marked = re.sub(r'^([a-z_]+ = ")', lambda m: m.group(1) + MARK, english, flags=re.M)
    # The code stub stays Python: its mark goes inside the comment.
    marked = marked.replace('code = "[xx] # YOUR CODE HERE', 'code = "# [xx] YOUR CODE HERE')
    (i18n / "xx.toml").write_text(marked, encoding="utf-8")
    home = tmp / "home"
    for folder in ("graders", "cassettes"):
        (home / folder).parent.mkdir(parents=True, exist_ok=True)
        (home / folder).symlink_to(ROOT / folder)
    for lang in ("fr", "en"):
        shutil.copytree(ROOT / "solutions" / f"responsible-ai-{lang}", home / "solutions" / f"responsible-ai-{lang}")
    nb = nbformat.read(ROOT / "solutions" / "responsible-ai-en" / "responsible_ai.ipynb", 4)
    nb.metadata["rai_lab"] = {"lang": "xx"}
    (home / "solutions" / "responsible-ai-xx").mkdir()
    nbformat.write(nb, home / "solutions" / "responsible-ai-xx" / "responsible_ai.ipynb")
    return {"RAI_LAB_I18N": str(i18n), "RAI_LAB_HOME": str(home)}


def test_a_new_language_is_released_run_and_graded_in_its_own_words(tmp_path):
    env = throwaway_language(tmp_path)
    home = Path(env["RAI_LAB_HOME"])
    listed = subprocess.run([sys.executable, "-c", "from rai_lab import paths; print(paths.LANGS)"],
                            env={**os.environ, **env}, capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == "('fr', 'en', 'xx')"
    # Released with nbgrader: the stubs speak xx.
    released = subprocess.run([sys.executable, "-c", "from pathlib import Path; from rai_lab import release; "
                               f"print(release.generate('xx', Path({str(home / 'lab')!r})))"],
                              env={**os.environ, **env}, capture_output=True, text=True)
    assert released.returncode == 0, released.stderr
    lab = nbformat.read(home / "lab" / "responsible-ai-xx" / "responsible_ai.ipynb", 4)
    assert sum("# [xx] YOUR CODE HERE" in c.source for c in lab.cells) == 5

    # Run headless: the summary is xx's (the language read from the notebook's metadata).
    out = tmp_path / "out"
    done = rai_lab_command("run", "--notebook", str(home / "solutions" / "responsible-ai-xx" / "responsible_ai.ipynb"),
                           "--checks", "--no-progress", "--out", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert MARK + "rai-lab · responsible-ai-xx · mode replay" in done.stdout
    ran = json.dumps(nbformat.read(out / "responsible-ai-xx" / "responsible_ai.ipynb", 4).cells, ensure_ascii=False)
    assert "✓ " + MARK in ran and MARK + "rai-lab · mode replay" in ran  # the check cells and the kit's banner

    # Graded: a filled learner notebook, in the sandbox; feedback and notes in xx.
    learner = subs.filled("en", generate=subs.GENERATE_OK.replace("for row in loaded_input:", "for row in loaded_input[:4]:"))
    learner.metadata["rai_lab"] = {"lang": "xx"}
    class_dir = tmp_path / "class"
    subs.write(learner, class_dir / "zoe.ipynb")
    graded = rai_lab_command("grade", str(class_dir), "--assignment", "responsible-ai-xx", "--out", str(tmp_path / "grades"),
                             "--work", str(tmp_path / "work"), "--no-progress", env=env, timeout=900)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    with open(tmp_path / "grades" / "grades.csv", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["learner"] == "zoe" and row["calls_ten_made"] == "0" and row["env_key_set"] == "1"
    feedback = (tmp_path / "grades" / "feedback" / "zoe" / "responsible_ai.html").read_text(encoding="utf-8")
    assert MARK + "Grading feedback" in feedback
    assert MARK + "Expected: 10 calls to client.chat.completions.create" in feedback
    assert MARK + "the ten chat-completion calls were made" in feedback
