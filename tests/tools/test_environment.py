"""One set of pins: pyproject.toml, environment.yml and requirements.lock agree."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(parse(spec) for spec in project["dependencies"] + project["optional-dependencies"]["dev"])


def parse(spec: str) -> tuple[str, str]:
    name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]+\])?==(\S+)", spec.strip()).groups()
    return name.lower().replace("_", "-"), version


def test_environment_yml_mirrors_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "openjdk=17" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert dict(parse(s) for s in pip if s != "-e .") == pyproject_pins()
    assert "-e ." in pip


def test_lock_agrees_with_the_pins():
    lock = dict(parse(line) for line in (ROOT / "requirements.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    pins = pyproject_pins()
    assert {name: lock.get(name) for name in pins} == pins


def test_lab_pins_what_the_exercise_installs():
    pins = pyproject_pins()
    assert pins["openai"] == "1.42.0"
    assert pins["httpx"].startswith("0.27")  # openai 1.42 breaks with httpx 0.28 (it passes `proxies`, which httpx 0.28 removed)
    assert int(pins["pandas"].split(".")[0]) < 3  # pyspark 4.3 warns on stderr with pandas 3
