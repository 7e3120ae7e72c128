"""The learner's language, the text catalogues, and the grader's environment scrubbing."""

from __future__ import annotations

import re
import string

import pytest

from conftest import ROOT
from rai_lab import paths
from rai_lab.grading import clean_environment
from rai_lab.messages import catalogue, detect_lang, say

EMPTY_ON_PURPOSE = {"check.rows_same"}


@pytest.mark.parametrize(
    ("explicit", "env", "session", "lang"),
    [
        ("en", "fr", "", "en"),
        (None, "en", "", "en"),
        (None, None, "/home/agent-enzo/lab/responsible-ai-fr/responsible_ai.ipynb", "fr"),
        (None, None, "/home/ana/lab/responsible-ai-en/responsible_ai.ipynb", "en"),
        (None, None, "", "fr"),
        ("de", None, "", "fr"),
    ],
)
def test_language_of_the_learner(monkeypatch, explicit, env, session, lang):
    """Explicit, else RAI_LAB_LANG, else the notebook JupyterLab opened, else French (the lab's own)."""
    for name, value in (("RAI_LAB_LANG", env), ("JPY_SESSION_NAME", session)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert detect_lang(explicit) == lang


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_language_has_every_text_with_the_same_placeholders():
    """One catalogue per language (rai_lab/i18n): the same keys, each with the same {placeholders}."""
    assert paths.LANGS[0] == "fr" and set(paths.LANGS) >= {"fr", "en"}
    reference = catalogue("en")
    assert len(reference) > 100
    for lang in paths.LANGS:
        texts = catalogue(lang)
        assert set(texts) == set(reference), lang
        for key, value in texts.items():
            assert isinstance(value, str) and (value or key in EMPTY_ON_PURPOSE), (lang, key)
            assert placeholders(value) == placeholders(reference[key]), (lang, key)
    assert say("bad_mode", "en", mode="x").startswith("Unknown mode")
    assert say("bad_mode", "de", mode="x").startswith("Mode inconnu")  # an unknown language: French


def test_every_text_the_code_asks_for_is_in_the_catalogue():
    """Each literal key passed to say()/table() in the kit, the checks and the config exists (typos fail here)."""
    sources = [*(ROOT / "rai_lab").rglob("*.py"), *(ROOT / "graders").glob("*.py")]  # the whole package
    asked = set()
    for path in sources:
        text = path.read_text(encoding="utf-8")
        asked |= set(re.findall(r'\bsay\("([a-z_.]+)"', text))
        asked |= {f"check.{key}" for key in re.findall(r'\b_t\("([a-z_]+)"', text)}
        asked |= {f"check.{key}" for key in re.findall(r'\b_fail\("([a-z_]+)"', text)}
        for section in re.findall(r'\btable\("([a-z_]+)"', text):
            assert any(key.startswith(section + ".") for key in catalogue("fr")), section
    assert asked and asked <= set(catalogue("fr")), sorted(asked - set(catalogue("fr")))
    # Every check has its line in the rubric section.
    import tomllib

    rubric = tomllib.loads((ROOT / "graders" / "rubric.toml").read_text(encoding="utf-8"))["checks"]
    assert {f"rubric.{name}" for name in rubric} == {key for key in catalogue("fr") if key.startswith("rubric.")}


def test_grading_environment_holds_no_secret(monkeypatch):
    for name in ("AZURE_OPENAI_API_KEY", "DATABRICKS_HOST", "OPENAI_API_KEY", "GITHUB_TOKEN", "MY_DB_PASSWORD",
                 "SERVICE_SECRET", "AWS_ACCESS_KEY_ID", "HF_TOKEN"):
        monkeypatch.setenv(name, "secret-value")
    monkeypatch.setenv("JAVA_HOME", "/usr/lib/jvm/java-17")
    env = clean_environment({"RAI_LAB_LANG": "fr"})
    assert "secret-value" not in env.values()
    assert env["JAVA_HOME"] == "/usr/lib/jvm/java-17" and env["RAI_LAB_LANG"] == "fr"
