"""In-kernel entry point of the hidden tests: run one check of graders/checks.py on the notebook."""

from __future__ import annotations

import importlib.util
import sys
import warnings

from rai_lab import events, kit, paths
from rai_lab.messages import detect_lang

_MODULE = "rai_lab_graders_checks"


def _checks():
    """graders/checks.py, loaded from its path (a file of the learner's can't stand in for it)."""
    if _MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(_MODULE, paths.GRADERS / "checks.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[_MODULE] = module
    return sys.modules[_MODULE]


def check(name: str, namespace: dict) -> None:
    """Run check `name`; an AssertionError with the learner's feedback when it fails."""
    session = kit.current()
    context = {
        "lang": session.lang if session else detect_lang(),
        "deployment": session.deployment if session else namespace.get("deployment", "gpt-35-turbo"),
        "calls": list(events.CALLS),
    }
    function = getattr(_checks(), name)
    with warnings.catch_warnings():
        # A warning goes to stderr, and nbgrader scores a cell 0 for anything on stderr.
        warnings.simplefilter("ignore")
        try:
            function(namespace, context)
        except AssertionError:
            raise
        except Exception as err:  # noqa: BLE001 - a learner's odd value must become feedback
            raise AssertionError(f"{type(err).__name__}: {err}") from None
