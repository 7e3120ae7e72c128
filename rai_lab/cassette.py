"""vcrpy cassettes of the Azure OpenAI calls: replay offline, record live, scrubbed of secrets."""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml
from vcr.cassette import Cassette
from vcr.matchers import requests_match
from vcr.record_mode import RecordMode
from vcr.serializers import yamlserializer

from rai_lab import azure, events, paths
from rai_lab.azure import CHAT_ROUTE, deployment_of, normal_path, user_prompt  # noqa: F401 - re-exported
from rai_lab.azure import STANDIN_HEADER, STANDIN_MARK
from rai_lab.errors import CassetteError, CassetteMissError
from rai_lab.messages import say

# Recorded requests keep the path and query of the call, never the learner's host.
SCRUBBED_ORIGIN = "https://azure-openai.invalid"
KEPT_REQUEST_HEADERS = ("content-type",)
KEPT_RESPONSE_HEADERS = ("content-type",)
# An error keeps what tells a learner how to act on it: how long Azure asks to wait, and what is left.
KEPT_ERROR_HEADERS = ("content-type", "retry-after", "retry-after-ms", "x-ratelimit-remaining-requests",
                      "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
REDACTED = "<redacted>"
# Set by `rai-lab record --keep-errors` for the kernel: live mode records Azure's error answers too.
KEEP_ERRORS_ENV = "RAI_LAB_KEEP_ERRORS"

SOURCE_STANDIN = "rai-lab-standin"
SOURCE_AZURE = "azure-openai"


def _body_json(request) -> object:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body


# A vcrpy matcher says "no match" by returning False or by raising AssertionError (vcrpy 9.4.2,
# vcr.matchers._evaluate_matcher, which keeps the error's message for find_requests_with_most_matches).
# These raise it, for that message, and explicitly: `python -O` removes `assert` statements, and every
# request would then match every recorded one.
def route(r1, r2) -> None:
    """vcrpy matcher: same HTTP method and path (the deployment); host and api-version ignored."""
    if r1.method != r2.method:
        raise AssertionError(f"method {r1.method} != {r2.method}")
    if normal_path(r1.path) != normal_path(r2.path):
        raise AssertionError(f"path {r1.path} != {r2.path}")


def body(r1, r2) -> None:
    """vcrpy matcher: the same JSON request (model, messages, max_tokens...), key order ignored."""
    if _body_json(r1) != _body_json(r2):
        raise AssertionError("different request body")


MATCH_ON = (route, body)  # how the kit finds a recorded answer: never by host or api-version


def scrub_request(request):
    """A copy of the request without headers (api-key, Authorization...) nor the real host."""
    request = copy.deepcopy(request)
    request.headers = {k: v for k, v in request.headers.items() if k.lower() in KEPT_REQUEST_HEADERS}
    parts = urlsplit(request.uri)
    origin = urlsplit(SCRUBBED_ORIGIN)
    request.uri = urlunsplit((origin.scheme, origin.netloc, normal_path(parts.path), parts.query, ""))
    return request


def secret_values() -> list[str]:
    """Values that must never be written: the provider's (key, endpoint, host) and Databricks' tokens."""
    found = azure.secret_values()
    for name in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET"):  # `rai-lab run --spark databricks`
        if len(os.environ.get(name, "")) >= 6:
            found.append(os.environ[name])
    return found


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every secret value replaced by <redacted>."""
    for secret in sorted(secrets if secrets is not None else secret_values(), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _redact_interaction(request, response):
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


def _response_json(response: dict) -> object:
    raw = response["body"]["string"]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _answers(response: dict) -> list[str | None]:
    """The content of every choice of a chat completion (several with `n`), in order."""
    data = _response_json(response)
    try:
        return [choice["message"]["content"] for choice in data["choices"]]  # type: ignore[index]
    except (TypeError, KeyError):
        return []


def filtered_answers(response: dict) -> list[str]:
    """Azure's output filter: for each choice it emptied (finish_reason content_filter), the categories."""
    data = _response_json(response)
    found = []
    for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
        if isinstance(choice, dict) and choice.get("finish_reason") == "content_filter":
            verdict = choice.get("content_filter_results") or {}
            found.append(", ".join(k for k, v in verdict.items() if isinstance(v, dict) and v.get("filtered")) or "?")
    return found


def call_record(request, response, source: str) -> dict:
    """What the call log keeps of one exchange: the request as sent, the status, every answer, and
    the categories of the answers Azure's output filter emptied."""
    payload = _body_json(request)
    answers = _answers(response)
    return {
        "source": source,
        "deployment": deployment_of(request.path),
        "request": payload if isinstance(payload, dict) else None,
        "status": response["status"]["code"],
        "answer": answers[0] if answers else None,
        "answers": answers,
        "filtered": filtered_answers(response),
    }


def display_path(path: str | os.PathLike) -> str:
    """A path as a learner should read it: relative to the kit or the working folder when inside."""
    path = Path(path).resolve()
    for base in (paths.ROOT, Path.cwd()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


class KitCassette(Cassette):
    """A vcrpy cassette as the lab needs it.

    Replay: an answer is found by route and body (never host or api-version); the least-played
    matching answer is given, so re-running a cell replays the same answers and several samples
    of one request come back in their recorded order; a request with no answer raises
    CassetteMissError at once. Live: each 200 exchange is scrubbed and saved as it happens.
    """

    lang = "fr"
    display_name: str | None = None  # how a miss names the cassette (default: its path, shortened)

    def __init__(self, *args, match_on=MATCH_ON, **kwargs):
        super().__init__(*args, match_on=match_on, **kwargs)
        self.matchers = tuple(match_on)
        self.loaded = False  # True once the file is read: what is appended after that was exchanged now

    @classmethod
    def load(cls, **kwargs):
        cassette = super().load(**kwargs)  # reading the file appends each stored exchange
        cassette.loaded = True
        return cassette

    def can_play_response_for(self, request):
        playable = super().can_play_response_for(request)
        if not playable and self.write_protected:
            raise CassetteMissError(self.explain_miss(request))
        return playable

    def play_response(self, request):
        wanted = self.filter_request(request)
        matches = [index for index, (stored, _) in enumerate(self.data)
                   if wanted and requests_match(wanted, stored, self.matchers)]
        if not matches:
            return super().play_response(request)
        # The least-played answer (vcrpy's own gives the first one again and again with allow_playback_repeats).
        index = min(matches, key=lambda i: (self.play_counts[i], i))
        self.play_counts[index] += 1
        response = self.data[index][1]
        self._log_call(request, response, "replay")
        return response

    def append(self, request, response):
        before = len(self.data)
        super().append(request, response)
        if self.loaded and len(self.data) > before and self.record_mode != RecordMode.NONE:
            self._log_call(request, response, "live")
            self._note_source(response)
            # Saved as it happens, so that a kernel that dies keeps the calls it paid for. vcrpy 9.4.2
            # has no public way to write a cassette before its context exits: Cassette._save is what that
            # exit calls (and still does, at the end).
            self._save(force=True)

    def _log_call(self, request, response, source: str) -> None:
        record = call_record(request, response, source)
        events.emit("call", **record)
        if record["filtered"]:  # a 200 with no content: say so where the learner looks, now
            print(say("hint_output_filter", self.lang, prompt=user_prompt(record["request"]),
                      count=len(record["filtered"]), categories="; ".join(dict.fromkeys(record["filtered"]))))

    def _note_source(self, response) -> None:
        data = _response_json(response)
        fingerprint = data.get("system_fingerprint") if isinstance(data, dict) else None
        headers = {k.lower() for k in response.get("headers", {})}
        from_standin = fingerprint == STANDIN_MARK or STANDIN_HEADER in headers
        provenance = self.get_metadata("provenance", {})  # vcrpy's metadata, saved beside the interactions
        sources = set(provenance.get("sources", []))
        sources.add(SOURCE_STANDIN if from_standin else SOURCE_AZURE)
        provenance.update(describe_source(sources))
        provenance["sources"] = sorted(sources)
        provenance["recorded_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")

    def explain_miss(self, request) -> str:
        if not CHAT_ROUTE.fullmatch(normal_path(request.path)):
            return say("replay_other", self.lang, method=request.method, url=request.uri.split("?")[0])
        wanted = _body_json(request)
        prompt = user_prompt(wanted)
        diffs = []
        for stored, _ in self.data:
            stored_json = _body_json(stored)
            if user_prompt(stored_json) != prompt or not isinstance(stored_json, dict):
                continue
            keys = sorted(set(stored_json) | set(wanted if isinstance(wanted, dict) else {}))
            for key in keys:
                mine = wanted.get(key) if isinstance(wanted, dict) else None
                theirs = stored_json.get(key)
                if mine != theirs:
                    label = "system prompt" if key == "messages" else key
                    shown = (
                        f"{label}: {_short(mine)} ≠ {_short(theirs)}"
                        if key != "messages"
                        else f"{label} ≠ {_short(_system_of(theirs))}"
                    )
                    diffs.append((label, shown))
            if normal_path(stored.path) != normal_path(request.path):
                diffs.append(("deployment", f"deployment: {deployment_of(request.path)} ≠ {deployment_of(stored.path)}"))
            break
        detail = ""
        if diffs:
            detail = say(
                "miss_differs",
                self.lang,
                fields=", ".join(dict.fromkeys(label for label, _ in diffs)),
                diffs="; ".join(shown for _, shown in diffs),
            )
        return say(
            "cassette_miss",
            self.lang,
            prompt=prompt,
            deployment=deployment_of(request.path),
            cassette=self.display_name or display_path(self.path),
            detail=detail,
        )


def _system_of(messages) -> str | None:
    for message in messages or []:
        if isinstance(message, dict) and message.get("role") == "system":
            return message.get("content")
    return None


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_source(sources: set[str]) -> dict:
    if sources == {SOURCE_STANDIN}:
        return {
            "source": SOURCE_STANDIN,
            "note": "Synthetic answers from the rai-lab Azure OpenAI stand-in server, "
            "NOT a real model's output. Re-record from a real deployment with `rai-lab record`.",
        }
    if SOURCE_STANDIN in sources:
        return {"source": "mixed", "note": "Some answers come from the rai-lab stand-in (synthetic)."}
    return {"source": SOURCE_AZURE, "note": "Answers recorded from an Azure OpenAI deployment."}


def _scrubbed(keep_errors: bool):
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


def provenance_of(cassette) -> dict:
    """A loaded cassette's provenance (vcrpy's metadata), or {} when it has none."""
    from vcr.errors import MissingMetadataError

    try:
        return dict(cassette.get_metadata("provenance", {}) or {})
    except MissingMetadataError:  # a replayed cassette is write-protected: no default is stored
        return {}


def load_safely(path: str | os.PathLike) -> dict:
    """Parse a cassette file with the safe YAML loader; CassetteError when it is not a cassette."""
    path = Path(path)
    if not path.is_file():
        raise CassetteError(say("cassette_not_found", None, cassette=display_path(path)))
    try:
        data = yamlserializer.deserialize(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
            raise ValueError("no 'interactions' list")
        for item in data["interactions"]:
            if not isinstance(item, dict) or "request" not in item or "response" not in item:
                raise ValueError("an interaction without request or response")
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0][:200]
        raise CassetteError(say("cassette_unreadable", None, cassette=display_path(path), reason=reason)) from err
    return data


def provenance(path: str | os.PathLike) -> dict:
    """The provenance a cassette carries (empty when it has none)."""
    data = load_safely(path)
    return dict((data.get("metadata") or {}).get("provenance") or {})


def provenance_line(prov: dict, lang: str) -> str:
    recorded_at = str(prov.get("recorded_at", "?"))[:10]
    if prov.get("source") == SOURCE_STANDIN:
        return say("provenance_standin", lang, recorded_at=recorded_at)
    if prov.get("source") in (SOURCE_AZURE, "mixed"):
        return say("provenance_azure", lang, deployment=prov.get("deployment", "?"), recorded_at=recorded_at)
    return say("provenance_unknown", lang)


def use(mode: str, path: str | os.PathLike, lang: str = "fr", fresh: bool = False, extra: dict | None = None,
        keep_errors: bool = False):
    """A vcrpy context for `mode` ("replay" or "live") on the cassette at `path`.

    Replay checks the file first (missing or unsafe -> CassetteError with the reason).
    Live records to `path` (created, or extended; `fresh` starts it anew); only successful
    exchanges, unless `keep_errors` (scrubbed the same way). Replay plays every recorded exchange,
    errors included: a recorded 429 replays as that 429.
    """
    path = Path(path)
    if mode == "replay":
        load_safely(path)
        record_mode = RecordMode.NONE
    else:
        if fresh and path.exists():
            path.unlink()
        record_mode = RecordMode.ALL
    context = KitCassette.use(
        path=str(path),
        serializer=yamlserializer,
        record_mode=record_mode,
        match_on=MATCH_ON,
        before_record_request=scrub_request,
        before_record_response=_scrubbed(keep_errors or mode == "replay"),
        before_save_interaction=_redact_interaction,
        allow_playback_repeats=True,
    )
    return _Configured(context, lang, extra or {})


class _Configured:
    """Enters a vcrpy cassette context and sets the kit's fields on the cassette."""

    def __init__(self, context, lang: str, extra: dict):
        self._context, self._lang, self._extra = context, lang, extra
        self.cassette: KitCassette | None = None

    def __enter__(self) -> KitCassette:
        self.cassette = self._context.__enter__()
        self.cassette.lang = self._lang
        if self.cassette.record_mode != RecordMode.NONE:
            self.cassette.get_metadata("provenance", {}).update(self._extra)
        return self.cassette

    def __exit__(self, *exc_info):
        return self._context.__exit__(*exc_info)
