"""What the call log keeps of one exchange (rai_lab.events' "call" events): the request as sent, the status, every
answer, and what Azure's output filter withheld."""

from __future__ import annotations

import json

from rai_lab.azure.provider import deployment_of


def body_json(request) -> object:
    """A request's JSON body (its text when it is not JSON, None when empty)."""
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body


def response_json(response: dict) -> object:
    """A recorded response's JSON body, None when it is not JSON."""
    raw = response["body"]["string"]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except ValueError:
        return None


def answers(response: dict) -> list[str | None]:
    """The content of every choice of a chat completion (several with `n`), in order."""
    data = response_json(response)
    try:
        return [choice["message"]["content"] for choice in data["choices"]]  # type: ignore[index]
    except (TypeError, KeyError):
        return []


def filtered_answers(response: dict) -> list[str]:
    """Azure's output filter: for each choice it emptied (finish_reason content_filter), the categories."""
    data = response_json(response)
    found = []
    for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
        if isinstance(choice, dict) and choice.get("finish_reason") == "content_filter":
            verdict = choice.get("content_filter_results") or {}
            found.append(", ".join(k for k, v in verdict.items() if isinstance(v, dict) and v.get("filtered")) or "?")
    return found


def call_record(request, response, source: str) -> dict:
    """What the call log keeps of one exchange: the request as sent, the status, every answer, and
    the categories of the answers Azure's output filter emptied."""
    payload = body_json(request)
    given = answers(response)
    return {
        "source": source,
        "deployment": deployment_of(request.path),
        "request": payload if isinstance(payload, dict) else None,
        "status": response["status"]["code"],
        "answer": given[0] if given else None,
        "answers": given,
        "filtered": filtered_answers(response),
    }
