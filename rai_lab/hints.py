"""What an Azure OpenAI error means for the learner, in their language."""

from __future__ import annotations

import math

from rai_lab.messages import say


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
        return say("hint_429", lang, retry_after=retry_seconds(error.response.headers if error.response else {}))
    if status == 400 and code == "content_filter":
        verdict = (payload.get("innererror") or {}).get("content_filter_result") or {}
        categories = ", ".join(k for k, v in verdict.items() if isinstance(v, dict) and v.get("filtered"))
        return say("hint_content_filter", lang, categories=categories or "?")
    message = str(payload.get("message") or error.message)[:300]
    return say("hint_other", lang, status=status, message=message)
