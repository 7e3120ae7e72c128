"""rai-lab: a Jupyter teaching kit with automated grading for the Responsible AI lab (AI-06)."""

from rai_lab.errors import CassetteError, CassetteMissError, JavaMissingError, RaiLabError

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
