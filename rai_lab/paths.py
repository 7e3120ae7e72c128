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
ASSIGNMENTS = {"fr": "responsible-ai-fr", "en": "responsible-ai-en"}


def reference_cassette(deployment: str) -> Path:
    """The shipped cassette for a deployment name."""
    return CASSETTES / f"{deployment}.yaml"


def solution_notebook(lang: str) -> Path:
    return SOLUTIONS / ASSIGNMENTS[lang] / NOTEBOOK


def lab_notebook(lang: str) -> Path:
    return LAB / ASSIGNMENTS[lang] / NOTEBOOK
