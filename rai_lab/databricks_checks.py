"""The visible checks on Databricks, without the kit: `databricks/rai_lab_checks.py`, written from the kit's own parts.

On a cluster the kit is not installed, so the Databricks notebooks' check cells call `rai_lab_checks.check(name,
globals(), lang)`, a module beside the notebooks (the bundle syncs it, as it syncs rai_lab_bias.py). It is generated,
never edited: graders/checks.py as it is (the same checks, the same messages), the catalogues' texts of the checks
in every language, the exercise's prompts, the rubric, the snapshot of rai_lab/evidence.py, the verdict of
rai_lab/checking.py (✓, ✗ on stderr, ○ for a going-further check not started), and a recorder of the openai
client's chat-completion calls, which the kit records itself elsewhere. Grading never runs it: the grader's checks
are the ones that count.
"""

from __future__ import annotations

import inspect
import re

from rai_lab import bias, evidence, exercise, paths
from rai_lab.azure import provider
from rai_lab.cells import rubric
from rai_lab.messages import LANGS, catalogue

HEADER = '''"""rai-lab's visible checks for the Databricks notebooks (the kit is not installed on a cluster).

Written by `rai-lab release` from graders/checks.py, rai_lab/evidence.py, rai_lab/checking.py and the
catalogues (rai_lab/i18n): edit those, not this file. These checks are for learning; the grader's verdict
is the one that counts.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from urllib.parse import urlsplit
'''

RECORDER = '''

# -- the calls the checks read: each chat completion of the openai client, as the kit records it -----------------
CALLS: list[dict] = []


def _record(kwargs: dict, completion) -> None:
    request = json.loads(json.dumps({k: v for k, v in kwargs.items() if not k.startswith("extra_")}, default=str))
    answers = [choice.message.content for choice in completion.choices]
    CALLS.append({"source": "live", "deployment": kwargs.get("model"), "request": request, "status": 200,
                  "answer": answers[0] if answers else None, "answers": answers,
                  "filtered": [choice.finish_reason for choice in completion.choices if choice.finish_reason == "content_filter"]})


def record_calls() -> None:
    """Record every chat completion the openai client returns from now on (once, however often it is called)."""
    from openai.resources.chat.completions import Completions

    if getattr(Completions.create, "rai_lab_records", False):
        return
    original = Completions.create

    def create(self, *args, **kwargs):
        completion = original(self, *args, **kwargs)
        try:
            _record(kwargs, completion)
        except Exception:  # noqa: BLE001 - a stream or an odd answer: not recorded, the learner's call goes on
            pass
        return completion

    create.rai_lab_records = True
    Completions.create = create


# -- the verdict, as rai_lab/checking.py gives it in JupyterLab -------------------------------------------------------
def check(name: str, namespace: dict, lang: str) -> bool:
    """Run check `name`: ✓ or ○ on stdout, or ✗ and what to do on stderr. Whether it did not fail."""
    label = say(f"rubric.{name}", lang)
    context = {"lang": lang, "deployment": namespace.get("deployment", "gpt-35-turbo"), "calls": list(CALLS)}
    if RUBRIC[name].get("bonus") and not (any(n in namespace for n in BONUS_NAMES) or _sampled_calls(context)):
        print(say("check_not_started", lang, label=label), flush=True)
        return True
    try:
        run(name, snapshot(NEEDS.get(name, ()), namespace), context)
    except CheckFailed as failed:
        message = str(failed)
    except Exception as err:  # noqa: BLE001 - an odd value of the learner's becomes feedback, never a crash
        message = f"{type(err).__name__}: {str(err)[:300]}"
    else:
        print(say("check_passed", lang, label=label), flush=True)
        return True
    print(say("check_failed", lang, label=label, message=message), file=sys.stderr, flush=True)
    return False
'''


def _texts() -> dict[str, dict[str, str]]:
    keys = ("check_passed", "check_failed", "check_not_started")
    return {lang: {k: v for k, v in catalogue(lang).items() if k in keys or k.startswith(("check.", "rubric."))}
            for lang in LANGS}


def _checks_source() -> str:
    """graders/checks.py without its docstring and its imports of the kit (the module defines what they gave)."""
    text = (paths.GRADERS / "checks.py").read_text(encoding="utf-8")
    text = re.sub(r'\A""".*?"""\n', "", text, flags=re.S)
    dropped = ("from __future__ import", "import re", "from urllib.parse import", "from rai_lab.", "    from rai_lab.bias import")
    return "\n".join(line for line in text.splitlines() if not line.startswith(dropped)).strip("\n") + "\n"


def module() -> str:
    """The text of rai_lab_checks.py."""
    from rai_lab import checking  # the kit's check cells (imported here only: it imports the kit)

    data = [
        "# -- what the kit would give: texts, the exercise's prompts, the rubric, the measures' words -----------------",
        f"TEXTS = {_texts()!r}",
        f"SYSTEM_PROMPT = {exercise.SYSTEM_PROMPT!r}",
        f"NEUTRAL = {exercise.NEUTRAL!r}",
        f"LOADED = {exercise.LOADED!r}",
        f"MIRRORED = {exercise.MIRRORED!r}",
        f"RUBRIC = {rubric()!r}",
        f"CLITICS = {bias.CLITICS!r}",
        f"FEMALE_TERMS = {bias.FEMALE_TERMS!r}",
        f"MALE_TERMS = {bias.MALE_TERMS!r}",
        f"BONUS_NAMES = {checking.BONUS_NAMES!r}",
        f"ENV_NAMES = {evidence.ENV_NAMES!r}",
        f"MAX_ROWS = {evidence.MAX_ROWS!r}",
        "",
        "",
        "def say(key: str, lang: str, **values) -> str:",
        '    return TEXTS[lang if lang in TEXTS else "fr"][key].format(**values)',
        "",
        "",
        inspect.getsource(provider.user_prompt),
        "",
        "# -- the snapshot (rai_lab/evidence.py) ------------------------------------------------------------------------",
        *(inspect.getsource(function) + "\n" for function in (evidence.plain, evidence.is_spark_frame, evidence.describe,
                                                              evidence.snapshot)),
        "# -- the checks (graders/checks.py) ---------------------------------------------------------------------------",
        _checks_source(),
    ]
    return HEADER + "\n" + "\n".join(data) + RECORDER


SETUP = '''# rai-lab : les vérifications visibles sur Databricks (rai_lab_checks.py, à côté de ce notebook) / the visible checks
import os, sys

sys.path += [os.path.abspath(".."), os.path.abspath("../..")]
try:
    import rai_lab_checks
except ImportError:  # le notebook importé seul / the notebook imported alone
    rai_lab_checks = None
    print("rai-lab : rai_lab_checks.py n'est pas à côté de ce notebook, les vérifications ne s'afficheront pas : importez "
          "tout le dossier databricks/ / rai_lab_checks.py is not beside this notebook, the checks will not show: import "
          "the whole databricks/ folder")
else:
    rai_lab_checks.record_calls()  # les appels du client openai, pour les vérifications / the client's calls, for the checks'''


def check_cell(source: str, grade_id: str, lang: str) -> str:
    """A check cell of lab/ as the Databricks notebook has it: its first line, then the call of rai_lab_checks."""
    return (source.splitlines()[0] + "\n"
            + f'if rai_lab_checks:\n    rai_lab_checks.check("{grade_id}", globals(), "{lang}")')
