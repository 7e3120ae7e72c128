"""The learner's language, and the grader's environment scrubbing."""

from __future__ import annotations

import pytest

from rai_lab.grading import clean_environment
from rai_lab.messages import detect_lang, say


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


def test_every_message_exists_in_both_languages():
    from rai_lab.messages import _MESSAGES

    for key, entry in _MESSAGES.items():
        assert set(entry) == {"fr", "en"}, key
    assert say("bad_mode", "en", mode="x").startswith("Unknown mode")


def test_grading_environment_holds_no_secret(monkeypatch):
    for name in ("AZURE_OPENAI_API_KEY", "DATABRICKS_HOST", "OPENAI_API_KEY", "GITHUB_TOKEN", "MY_DB_PASSWORD",
                 "SERVICE_SECRET", "AWS_ACCESS_KEY_ID", "HF_TOKEN"):
        monkeypatch.setenv(name, "secret-value")
    monkeypatch.setenv("JAVA_HOME", "/usr/lib/jvm/java-17")
    env = clean_environment({"RAI_LAB_LANG": "fr"})
    assert "secret-value" not in env.values()
    assert env["JAVA_HOME"] == "/usr/lib/jvm/java-17" and env["RAI_LAB_LANG"] == "fr"
