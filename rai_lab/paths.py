"""Where the kit's files are: the repository (or RAI_LAB_HOME) and the folders inside it."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("RAI_LAB_HOME") or Path(__file__).resolve().parents[1])
SOLUTIONS = ROOT / "solutions"
LAB = ROOT / "lab"
GRADERS = ROOT / "graders"
CASSETTES = ROOT / "cassettes" / "responsible-ai"

NOTEBOOK = "responsible_ai.ipynb"
# The languages: one text catalogue each (rai_lab/i18n/<lang>.toml) and one assignment, responsible-ai-<lang>.
I18N = Path(os.environ.get("RAI_LAB_I18N") or Path(__file__).resolve().parent / "i18n")
LANGS = tuple(sorted((path.stem for path in I18N.glob("*.toml")), key=lambda lang: (lang != "fr", lang)))
ASSIGNMENTS = {lang: f"responsible-ai-{lang}" for lang in LANGS}


def cache_dir() -> Path:
    """The machine's rai-lab cache (grading work folders, the Spark Connect server's state, reference timings)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rai-lab"


def reference_cassette(deployment: str) -> Path:
    """The shipped cassette for a deployment name."""
    return CASSETTES / f"{deployment}.yaml"


def solution_notebook(lang: str) -> Path:
    return SOLUTIONS / ASSIGNMENTS[lang] / NOTEBOOK


def lab_notebook(lang: str) -> Path:
    return LAB / ASSIGNMENTS[lang] / NOTEBOOK


def notebook_lang(path: str | os.PathLike) -> str | None:
    """A lab notebook's language: its metadata (`rai_lab.lang`), else its folder (responsible-ai-en), else None."""
    import json
    import re

    try:
        declared = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {}).get("rai_lab", {}).get("lang")
    except (OSError, ValueError, AttributeError):
        declared = None
    if declared in ASSIGNMENTS:
        return declared
    found = re.search(r"responsible-ai-([a-z]{2})\b", str(Path(path).resolve()))
    return found.group(1) if found and found.group(1) in ASSIGNMENTS else None
