"""The cassette in use: `use` gives the vcrpy context of a replay or a live run, `KitCassette` finds and plays a
recorded answer (by route and body, the least-played first) or saves a live exchange as it happens."""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from vcr.cassette import Cassette
from vcr.matchers import requests_match
from vcr.record_mode import RecordMode
from vcr.serializers import yamlserializer

from rai_lab import events
from rai_lab.azure.cassette.files import SOURCE_AZURE, SOURCE_STANDIN, describe_source, display_path, load_safely
from rai_lab.azure.cassette.calls import body_json, call_record, response_json
from rai_lab.azure.cassette.scrub import redact_interaction, response_scrubber, scrub_request
from rai_lab.azure.provider import CHAT_ROUTE, STANDIN_HEADER, STANDIN_MARK, deployment_of, normal_path, user_prompt
from rai_lab.errors import CassetteMissError
from rai_lab.messages import say

# Set by `rai-lab record --keep-errors` for the kernel: live mode records Azure's error answers too.
KEEP_ERRORS_ENV = "RAI_LAB_KEEP_ERRORS"


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
    if body_json(r1) != body_json(r2):
        raise AssertionError("different request body")


MATCH_ON = (route, body)  # how the kit finds a recorded answer: never by host or api-version


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
        data = response_json(response)
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
        wanted = body_json(request)
        prompt = user_prompt(wanted)
        diffs = []
        for stored, _ in self.data:
            stored_json = body_json(stored)
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
        before_record_response=response_scrubber(keep_errors or mode == "replay"),
        before_save_interaction=redact_interaction,
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
