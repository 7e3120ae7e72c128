"""Azure OpenAI, the one provider of the lab: everything that is Azure's and not the kit's.

- the environment-variable contract (AZURE_OPENAI_API_KEY, _ENDPOINT, _API_VERSION), the exercise's
  example values, and what stops a run or a client before any request (`live_problems`, `calls_problem`);
- the REST routes (/openai/deployments/<deployment>/chat/completions behind any gateway prefix),
  the deployment of a path, the user prompt of a request;
- what is secret (the key, the endpoint and its host; the api-key and Authorization headers) and
  what a key looks like (to mask one pasted into a notebook);
- what Azure's errors mean for a learner (`explain`) and how long Azure asks to wait (`retry_seconds`);
- how an answer of the rai-lab stand-in says it is synthetic (`STANDIN_MARK`, `STANDIN_HEADER`).
The stand-in server (rai_lab.azure.standin) implements the same contract; the learner's kernel imports this
module, never the server. Another provider (OpenAI's own API, say) is another module with these names.
"""

from __future__ import annotations

import json
import math
import os
import re
from urllib.parse import urlsplit

from rai_lab.messages import say

# -- the environment-variable contract -----------------------------------------------------------
API_KEY, ENDPOINT, API_VERSION = "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION"
VARIABLES = (API_KEY, ENDPOINT, API_VERSION)
DEFAULT_API_VERSION = "2023-03-15-preview"  # the exercise's
# The exercise's example values, copied literally by learners.
EXAMPLE_VALUES = {API_KEY: "your_openai_api_key", ENDPOINT: "your_openai_endpoint"}
PLACEHOLDERS = ("your_openai_api_key", "your_openai_endpoint", "your-resource", "<")


def live_problems(environ, lang: str = "fr") -> list[str]:
    """What keeps a live run from starting: each AZURE_OPENAI_* variable missing or placeholder-valued,
    an endpoint that is not https (plain http only to a loopback address: the stand-in)."""
    problems = []
    for name in VARIABLES[:2]:
        value = (environ.get(name) or "").strip()
        if not value:
            problems.append(say("live_missing", lang, name=name))
        elif any(mark in value.lower() for mark in PLACEHOLDERS):
            problems.append(say("live_placeholder", lang, name=name, value=value if name.endswith("ENDPOINT") else "…"))
        elif name.endswith("ENDPOINT"):
            url = urlsplit(value)
            loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
            if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and loopback)):
                problems.append(say("live_not_https", lang, name=name))
    return problems



def calls_problem(live: bool, lang: str, environ=None) -> str | None:
    """Why the client's calls would break, with what to do (None: they will go): a variable unset, the
    exercise's example endpoint (a relative URL no cassette holds), or, in live mode, the example key
    or a plain-http endpoint. What a replayed call survives (the example key, http://) is left to the
    check cells."""
    environ = os.environ if environ is None else environ
    what = say("azure_what_live" if live else "azure_what_replay", lang)
    for name in VARIABLES:
        value = environ.get(name)
        if value is None or not value.strip():
            return say("azure_missing", lang, name=name, what=what)
    key, endpoint = environ[API_KEY].strip(), environ[ENDPOINT].strip()
    if endpoint == EXAMPLE_VALUES[ENDPOINT]:
        return say("azure_placeholder", lang, name=ENDPOINT, value=endpoint, what=what)
    if live and key == EXAMPLE_VALUES[API_KEY]:
        return say("azure_placeholder", lang, name=API_KEY, value=key, what=what)
    secure = re.match(r"https://[^/\s]+", endpoint) or re.match(r"http://127\.0\.0\.1[:/]", endpoint)
    if not re.match(r"https?://[^/\s]+", endpoint) or (live and not secure):
        return say("azure_not_https", lang, value=endpoint, what=what)
    return None


# -- routes and requests ---------------------------------------------------------------------------
CHAT_ROUTE = re.compile(r"/openai/deployments/[^/]+/chat/completions")


def normal_path(path: str) -> str:
    """A request path as the kit records it: repeated slashes folded (an endpoint with a trailing slash
    gives //openai), and whatever an API gateway puts before /openai/ dropped
    (https://gw.example.net/contoso-aoai/openai/deployments/... -> /openai/deployments/...)."""
    folded = re.sub(r"/{2,}", "/", path)
    found = re.search(r"/openai/.*$", folded)
    return found.group(0) if found else folded


def deployment_of(path: str) -> str:
    parts = normal_path(path).strip("/").split("/")
    return parts[2] if len(parts) > 2 and parts[:2] == ["openai", "deployments"] else "?"


def user_prompt(request_json: object, default: str | None = "?") -> str | None:
    """The last user message of a chat request (`default` when it has none)."""
    if isinstance(request_json, dict):
        for message in reversed(request_json.get("messages") or []):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
    return default



# -- the rai-lab stand-in --------------------------------------------------------------------------
# How the stand-in server's answers say they are synthetic: in their system_fingerprint and in a
# response header. A cassette recorded from it reads them for its provenance (rai_lab.azure.cassette.player).
STANDIN_MARK = "rai-lab-standin"
STANDIN_HEADER = "x-rai-lab-standin"


# -- secrets ---------------------------------------------------------------------------------------
# What an Azure OpenAI key looks like: 32 hex digits (classic keys) or 84 letters and digits.
KEY_SHAPES = re.compile(r"(?<![A-Za-z0-9])(?:[0-9a-fA-F]{32}|[A-Za-z0-9]{84})(?![A-Za-z0-9])")
# A literal assigned to AZURE_OPENAI_API_KEY in code (os.environ[...] = "..." or api_key="...").
KEY_ASSIGNMENT = re.compile(
    r"""(?:AZURE_OPENAI_API_KEY["']\s*\]\s*=|api_key\s*=)\s*["']([^"'\\]{16,})["']"""
)


def secret_values() -> list[str]:
    """Azure's values that must never be written: the learner's key, endpoint and host."""
    found = []
    key = os.environ.get(API_KEY, "")
    if len(key) >= 6:
        found.append(key)
    endpoint = os.environ.get(ENDPOINT, "")
    host = urlsplit(endpoint).hostname if "://" in endpoint else None
    if host:
        found.extend([endpoint.rstrip("/"), host])
    return found


# -- errors ----------------------------------------------------------------------------------------
# Azure's answer to a request larger than the deployment's whole per-minute quota: a 429 that asks to
# retry after a day ("Please retry after 86400 seconds"; seen at API versions 2023-05-15 to
# 2024-08-01-preview in Azure OpenAI users' reports, e.g. github.com/vanderschaarlab/climb issue 1).
NEVER_RETRY_SECONDS = 86400


def retry_seconds(headers) -> int:
    """How long Azure asks to wait, in whole seconds: retry-after-ms (which openai itself reads first),
    retry-after, or the time until the tokens or requests reset; 60 when none says."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0), ("x-ratelimit-reset-tokens", 1.0),
                        ("x-ratelimit-reset-requests", 1.0)):
        value = headers.get(name)
        try:
            seconds = float(str(value).rstrip("s")) * scale if value is not None else None
        except ValueError:
            continue
        if seconds is not None and seconds >= 0:
            return max(1, math.ceil(seconds))
    return 60


def explain(error: BaseException, lang: str = "fr") -> str | None:
    """A one-paragraph hint for an `openai` error, or None when there is nothing to add."""
    import openai

    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        return say("hint_connection", lang, cause=type(cause).__name__ if cause else "Connection error")
    if not isinstance(error, openai.APIStatusError):
        return None
    payload = error.body if isinstance(error.body, dict) else {}
    if "error" in payload and isinstance(payload["error"], dict):
        payload = payload["error"]
    code = str(payload.get("code") or "")
    status = error.status_code
    if status == 401:
        return say("hint_401", lang)
    if status == 404 and code == "DeploymentNotFound":
        parts = error.request.url.path.strip("/").split("/") if error.request else []
        deployment = parts[2] if len(parts) > 2 else "?"
        return say("hint_deployment", lang, deployment=deployment)
    if status == 404:
        return say("hint_404", lang)
    if status == 429:
        wait = retry_seconds(error.response.headers if error.response else {})
        if wait >= NEVER_RETRY_SECONDS:  # larger than the whole quota: waiting will not help
            return say("hint_429_too_large", lang, retry_after=wait, tokens=_estimate(error.request, lang))
        return say("hint_429", lang, retry_after=wait)
    if status == 400 and code == "content_filter":
        verdict = (payload.get("innererror") or {}).get("content_filter_result") or {}
        categories = ", ".join(k for k, v in verdict.items() if isinstance(v, dict) and v.get("filtered"))
        return say("hint_content_filter", lang, categories=categories or "?")
    message = str(payload.get("message") or error.message)[:300]
    return say("hint_other", lang, status=status, message=message)


def _estimate(request, lang: str) -> str:
    """Azure's estimate of the request an error answered, as the learner reads a number ("?" if unreadable)."""
    from rai_lab.azure import quota

    try:
        body = json.loads(request.content)
        tokens = quota.estimate(body) if isinstance(body, dict) else None
    except Exception:  # noqa: BLE001 - no request, or not JSON: the hint says "?"
        tokens = None
    return "?" if tokens is None else f"{tokens:,}".replace(",", say("thousands_separator", lang))
