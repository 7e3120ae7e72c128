"""The command line as users meet it: one clear line and a non-zero exit on error."""

from __future__ import annotations

import pytest
import yaml
from conftest import rai_lab_command


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["run", "--notebook", "nowhere.ipynb"], {}, "rai-lab: notebook not found: nowhere.ipynb"),
        (["record"], {"AZURE_OPENAI_ENDPOINT": "", "AZURE_OPENAI_API_KEY": ""},
         "rai-lab: recording from Azure needs AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT in the environment"),
        (["run", "--mode", "offline"], {}, "invalid choice: 'offline'"),
        (["standin"], {}, "the following arguments are required: --key"),
    ],
)
def test_errors_are_one_clear_line(args, env, message):
    done = rai_lab_command(*args, env=env)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.notebook
@pytest.mark.spark
def test_record_from_the_standin_writes_a_scrubbed_cassette(tmp_path):
    """`rai-lab record --standin`: the lab run live, its ten calls and the 30 going-further ones saved with provenance, no key."""
    target = tmp_path / "cassettes" / "gpt-4o.yaml"
    done = rai_lab_command("record", "--standin", "--deployment", "gpt-4o", "--out", str(target), "--no-progress",
                           "--lang", "en")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(40 exchanges)" in done.stdout and "NOT a real model's answers" in done.stdout
    assert "déploiement" not in done.stdout and "enregistr" not in done.stdout  # one language, all through
    data = yaml.safe_load(target.read_text())
    assert len(data["interactions"]) == 40
    assert data["metadata"]["provenance"]["source"] == "rai-lab-standin"
    assert data["metadata"]["provenance"]["deployment"] == "gpt-4o"
    text = target.read_text()
    assert "standin-" not in text.replace("chatcmpl-standin-", "").replace("rai-lab-standin", "")  # the throwaway key
    assert "127.0.0.1" not in text
    assert not target.with_suffix(".recording.yaml").exists()


@pytest.mark.parametrize("command", ["run", "record", "check", "grade", "jupyter", "formgrader"])
def test_every_option_says_what_it_does(command):
    """`rai-lab <command> --help`: no bare option (each has help text, defaults stated)."""
    import argparse

    from rai_lab.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    bare = [a.option_strings for a in sub._actions if a.option_strings and not a.help]
    assert bare == []
    for action in sub._actions:
        if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings != ["--no-progress"]:
            assert f"default: {action.default}" in action.help, action.option_strings
