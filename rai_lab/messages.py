"""Learner- and instructor-facing text: one catalogue per language (rai_lab/i18n/<lang>.toml), one `say`."""

from __future__ import annotations

import functools
import os
import re
import tomllib

from rai_lab import paths

LANGS = paths.LANGS
DEFAULT_LANG = "fr"  # the lab's own language: the French edition of the exercise


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """Every text of one language (rai_lab/i18n/<lang>.toml), by key ("banner", "summary.title", ...)."""
    with open(paths.I18N / f"{lang}.toml", "rb") as handle:
        return _flatten(tomllib.load(handle))


def text(key: str, lang: str | None = None) -> str:
    """The text `key` in `lang` (French when the language is unknown), unfilled."""
    return catalogue(lang if lang in LANGS else DEFAULT_LANG)[key]


def table(section: str, lang: str | None = None) -> dict[str, str]:
    """The texts of one section ("summary", "selfcheck"...) in `lang`, by their key within it."""
    prefix = section + "."
    return {key[len(prefix):]: value for key, value in catalogue(lang if lang in LANGS else DEFAULT_LANG).items()
            if key.startswith(prefix)}


def say(key: str, lang: str | None = None, **values: object) -> str:
    """The text `key` in `lang` (French when the language is unknown), filled with `values`."""
    return text(key, lang).format(**values)


def detect_lang(explicit: str | None = None) -> str:
    """The learner's language: explicit, else RAI_LAB_LANG, else the notebook's path, else French."""
    for candidate in (explicit, os.environ.get("RAI_LAB_LANG")):
        if candidate in LANGS:
            return candidate
    # JupyterLab gives a kernel its notebook's path; nbgrader validate starts it in the notebook's folder.
    for where in (os.environ.get("JPY_SESSION_NAME", ""), os.getcwd()):
        found = re.search(r"responsible-ai-([a-z]{2})\b", where)
        if found and found.group(1) in LANGS:
            return found.group(1)
    return DEFAULT_LANG
