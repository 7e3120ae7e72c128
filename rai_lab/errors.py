"""The kit's exceptions: one base class, and the replay miss that must not be swallowed."""


class RaiLabError(Exception):
    """Base class of every error the kit raises on purpose (bad cassette, no Java, bad option...)."""


class CassetteError(RaiLabError):
    """A cassette file is missing, unreadable or unsafe."""


class JavaMissingError(RaiLabError):
    """Embedded Spark needs Java 17 and none was found."""


class CassetteMissError(BaseException):
    """A request that the cassette holds no answer for, in replay mode.

    It derives from BaseException on purpose, as pytest's outcome exceptions do: the
    ``openai`` client catches every ``Exception`` raised by its HTTP transport, retries it
    twice and re-raises it as ``APIConnectionError: Connection error.``, which hides the
    cause from the learner (measured with openai 1.42.0). A BaseException goes straight through,
    at once, with a message that names the prompt and the cassette.
    """
