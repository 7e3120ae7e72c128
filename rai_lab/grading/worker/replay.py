"""The grader's replay service: it answers a learner's Azure OpenAI calls from outside the sandbox.

While grading, a learner's kernel holds no cassette. The kit in the kernel sends each HTTP request
to this service, which runs in the grading worker (outside the learner's sandbox) on the batch's
loopback, finds the recorded answer in the instructor's cassette (or in the learner's own, scrubbed
at intake) and keeps its own log of what it served. That log is the evidence the checks read: a
kernel that forges its in-kernel log, or goes around the kit, made no call here.

Each learner gets a session under a random token (``/<token>/...``), so a kernel cannot make calls
for another learner. The kernel's side is `rai_lab.grading.sandboxed.replay`: it routes httpx's requests here.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vcr.record_mode import RecordMode
from vcr.serializers import yamlserializer

from rai_lab import paths
from rai_lab.azure.cassette.calls import call_record
from rai_lab.azure.cassette.files import display_path, load_safely, provenance_of
from rai_lab.azure.cassette.player import MATCH_ON, KitCassette
from rai_lab.azure.cassette.scrub import KEPT_REQUEST_HEADERS, SCRUBBED_ORIGIN
from rai_lab.errors import CassetteError, CassetteMissError
from rai_lab.grading.sandboxed.replay import MISS_HEADER
from rai_lab.messages import say

MAX_BODY = 1 << 20  # a chat request of the lab is a few kB


@dataclass
class Session:
    """One learner's replay: which cassettes it may use, and what it served."""

    lang: str
    own: Path | None = None  # the learner's own cassette (scrubbed at intake), else the reference ones
    deployment: str = "gpt-35-turbo"
    cassette: KitCassette | None = None
    calls: list[dict] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)  # serve() may start() under it

    def start(self, deployment: str) -> dict:
        """Pick the cassette for the kernel's `deployment` (the kit cell); its provenance and size."""
        with self.lock:
            self.deployment = str(deployment)[:100]
            path = self.own or paths.reference_cassette(self.deployment)
            if not self.own and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.deployment)
                                 or path.resolve().parent != paths.CASSETTES.resolve()):
                self.cassette = None  # a name, never a path: the kernel picks among the course's cassettes only
                return {"error": say("replay_no_cassette", self.lang, deployment=self.deployment)}
            try:
                load_safely(path)
            except CassetteError as err:
                self.cassette = None
                return {"error": str(err).replace(str(path), path.name)}
            self.cassette = KitCassette.load(
                path=str(path), serializer=yamlserializer, record_mode=RecordMode.NONE,
                match_on=MATCH_ON, allow_playback_repeats=True)
            self.cassette.lang = self.lang
            self.cassette.display_name = path.name if self.own else display_path(path)
            return {"provenance": provenance_of(self.cassette),
                    "count": len(self.cassette.data), "cassette": self.cassette.display_name}

    def serve(self, method: str, target: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        from vcr.request import Request

        with self.lock:
            problem = self.start(self.deployment).get("error") if self.cassette is None else None
            if self.cassette is None:
                return 599, {MISS_HEADER: "1", "content-type": "text/plain; charset=utf-8"}, str(problem).encode()
            request = Request(method, SCRUBBED_ORIGIN + target, body or None,
                              {k: v for k, v in headers.items() if k.lower() in KEPT_REQUEST_HEADERS})
            try:
                self.cassette.can_play_response_for(request)
            except CassetteMissError as miss:
                return 599, {MISS_HEADER: "1", "content-type": "text/plain; charset=utf-8"}, str(miss).encode()
            response = self.cassette.play_response(request)
            self.calls.append(call_record(request, response, "replay"))
        raw = response["body"]["string"]
        raw = raw.encode() if isinstance(raw, str) else raw
        kept = {k: (v[0] if isinstance(v, list) else v) for k, v in response.get("headers", {}).items()
                if k.lower() == "content-type"}
        return response["status"]["code"], kept, raw


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A learner's kernel that drops its connection is its own business: no traceback in the worker's log."""


class ReplayService:
    """An HTTP server on 127.0.0.1 (the batch's loopback) with one session per learner token."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # no access log: it would name learners' prompts
                pass

            def _handle(self) -> None:
                token, _, rest = self.path.lstrip("/").partition("/")
                session = service.sessions.get(token)
                size = int(self.headers.get("content-length") or 0)
                if session is None or size > MAX_BODY:
                    self._reply(403 if session is None else 413, {}, b"refused")
                    return
                body = self.rfile.read(size) if size else b""
                if rest.startswith("rai-lab/start"):
                    try:
                        deployment = json.loads(body or b"{}").get("deployment", "gpt-35-turbo")
                    except (ValueError, AttributeError):
                        deployment = "gpt-35-turbo"
                    self._reply(200, {"content-type": "application/json"}, json.dumps(session.start(deployment)).encode())
                    return
                status, headers, payload = session.serve(self.command, "/" + rest, dict(self.headers), body)
                self._reply(status, headers, payload)

            def _reply(self, status: int, headers: dict, payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def open(self, lang: str, own: Path | None = None) -> tuple[str, Session]:
        token = secrets.token_urlsafe(24)
        session = Session(lang=lang, own=own)
        self.sessions[token] = session
        return f"http://127.0.0.1:{self.port}/{token}", session

    def close(self, url: str) -> None:
        self.sessions.pop(url.rsplit("/", 1)[-1], None)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
