"""rai-lab: a Jupyter teaching kit with automated grading for the Responsible AI lab (AI-06)."""

import sys as _sys

from rai_lab.errors import CassetteError, CassetteMissError, JavaMissingError, RaiLabError

# jsonschema, which nbformat loads to read any notebook, imports rfc3987_syntax when it is installed (jupyter-events
# asks for jsonschema[format-nongpl]); that module builds a Lark grammar as it is imported: about 1.2 s of CPU in each
# process that reads a notebook (the grader, its workers, nbgrader, papermill), for one format ("iri") that no schema
# the kit reads uses. Marked absent here, jsonschema leaves that format unchecked. The Makefile's environments import
# rai_lab at every Python start (a .pth file) so that their jupyter and nbgrader processes skip it too.
_sys.modules.setdefault("rfc3987_syntax", None)

__version__ = "0.1.0"


def start(mode="replay", deployment="gpt-35-turbo", cassette=None, lang=None, tpm=5000):
    """Start the kit in a notebook: replay or live calls (paced to `tpm`), and embedded Spark. See rai_lab.kit."""
    from rai_lab import kit

    return kit.start(mode=mode, deployment=deployment, cassette=cassette, lang=lang, tpm=tpm)


def require_azure_variables():
    """Stop with what to do when an Azure OpenAI variable is unset or the exercise's example value. See rai_lab.kit."""
    from rai_lab import kit

    kit.require_azure_variables()


__all__ = ["CassetteError", "CassetteMissError", "JavaMissingError", "RaiLabError", "require_azure_variables", "start", "__version__"]
