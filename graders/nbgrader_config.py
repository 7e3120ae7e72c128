"""nbgrader configuration of rai-lab: the one place the instructor's tools are configured.

`rai-lab release` and `rai-lab grade` load this file; RAI_LAB_LANG (fr or en) chooses the
language of the stubs that the released notebook shows the learner.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

LANG = os.environ.get("RAI_LAB_LANG", "fr")
STUBS = {
    "fr": ("# VOTRE CODE ICI\nraise NotImplementedError()", "VOTRE RÉPONSE ICI"),
    "en": ("# YOUR CODE HERE\nraise NotImplementedError()", "YOUR ANSWER HERE"),
}
code_stub, text_stub = STUBS.get(LANG, STUBS["fr"])

c.ClearSolutions.code_stub = {"python": code_stub}
c.ClearSolutions.text_stub = text_stub
