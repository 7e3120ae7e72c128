"""What a recorded exchange keeps: the path and query of the call, never the learner's host; no header but the
content type (and, on an error, Azure's retry and remaining-quota headers); no secret value anywhere."""

from __future__ import annotations

import copy
import os
from urllib.parse import urlsplit, urlunsplit

from rai_lab.azure import provider

# Recorded requests keep the path and query of the call, never the learner's host.
SCRUBBED_ORIGIN = "https://azure-openai.invalid"
KEPT_REQUEST_HEADERS = ("content-type",)
KEPT_RESPONSE_HEADERS = ("content-type",)
# An error keeps what tells a learner how to act on it: how long Azure asks to wait, and what is left.
KEPT_ERROR_HEADERS = ("content-type", "retry-after", "retry-after-ms", "x-ratelimit-remaining-requests",
                      "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
REDACTED = "<redacted>"


def scrub_request(request):
    """A copy of the request without headers (api-key, Authorization...) nor the real host."""
    request = copy.deepcopy(request)
    request.headers = {k: v for k, v in request.headers.items() if k.lower() in KEPT_REQUEST_HEADERS}
    parts = urlsplit(request.uri)
    origin = urlsplit(SCRUBBED_ORIGIN)
    request.uri = urlunsplit((origin.scheme, origin.netloc, provider.normal_path(parts.path), parts.query, ""))
    return request


def secret_values() -> list[str]:
    """Values that must never be written: the provider's (key, endpoint, host) and Databricks' tokens."""
    found = provider.secret_values()
    for name in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET"):  # `rai-lab run --spark databricks`
        if len(os.environ.get(name, "")) >= 6:
            found.append(os.environ[name])
    return found


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every secret value replaced by <redacted>."""
    for secret in sorted(secrets if secrets is not None else secret_values(), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_interaction(request, response):
    """vcrpy's before_save_interaction hook: every secret value redacted in the request and the response."""
    secrets = secret_values()
    if not secrets:
        return request, response
    request.uri = redact(request.uri, secrets)
    if isinstance(request.body, bytes):
        request.body = redact(request.body.decode("utf-8", "replace"), secrets).encode("utf-8")
    elif isinstance(request.body, str):
        request.body = redact(request.body, secrets)
    raw = response["body"]["string"]
    if isinstance(raw, bytes):
        response["body"]["string"] = redact(raw.decode("utf-8", "replace"), secrets).encode("utf-8")
    elif isinstance(raw, str):
        response["body"]["string"] = redact(raw, secrets)
    return request, response


def response_scrubber(keep_errors: bool):
    """The response filter: no header but the content type (and, on an error, Azure's retry and
    remaining-quota headers); errors dropped unless `keep_errors` (replay keeps what was recorded)."""

    def scrub(response):
        code = response["status"]["code"]
        if code != 200 and not keep_errors:
            return None
        kept = KEPT_RESPONSE_HEADERS if code == 200 else KEPT_ERROR_HEADERS
        response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() in kept}
        return response

    return scrub
