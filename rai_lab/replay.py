"""The grader's replay service: it answers a learner's Azure OpenAI calls from outside the sandbox.

While grading, a learner's kernel holds no cassette. The kit in the kernel sends each HTTP request
to this service, which runs in the grading worker (outside the learner's sandbox) on the batch's
loopback, finds the recorded answer in the instructor's cassette (or in the learner's own, scrubbed
at intake) and keeps its own log of what it served. That log is the evidence the checks read: a
kernel that forges its in-kernel log, or goes around the kit, made no call here.

Each learner gets a session under a random token (``/<token>/...``), so a kernel cannot make calls
for another learner. `RemoteReplay` is the kernel's side: it routes httpx's requests to the service.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

from rai_lab import cassette as cassettes
from rai_lab import events, paths
from rai_lab.errors import CassetteError, CassetteMissError
from rai_lab.messages import LANGS, say, text

MAX_BODY = 1 << 20  # a chat request of the lab is a few kB
MISS_HEADER = "x-rai-lab-miss"
REPLAY_ENV = "RAI_LAB_REPLAY"  # http://127.0.0.1:PORT/TOKEN, set for the learner's kernel by the grader


@dataclass
class Session:
    """One learner's replay: which cassettes it may use, and what it served."""

    lang: str
    own: Path | None = None  # the learner's own cassette (scrubbed at intake), else the reference ones
    deployment: str = "gpt-35-turbo"
    cassette: cassettes.KitCassette | None = None
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
                cassettes.load_safely(path)
            except CassetteError as err:
                self.cassette = None
                return {"error": str(err).replace(str(path), path.name)}
            self.cassette = cassettes.KitCassette.load(
                path=str(path), serializer=cassettes.yamlserializer, record_mode=cassettes.RecordMode.NONE,
                match_on=[cassettes.route, cassettes.body], allow_playback_repeats=True)
            self.cassette.lang = self.lang
            self.cassette.display_name = path.name if self.own else cassettes.display_path(path)
            return {"provenance": cassettes.provenance_of(self.cassette),
                    "count": len(self.cassette.data), "cassette": self.cassette.display_name}

    def serve(self, method: str, target: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        from vcr.request import Request

        with self.lock:
            problem = self.start(self.deployment).get("error") if self.cassette is None else None
            if self.cassette is None:
                return 599, {MISS_HEADER: "1", "content-type": "text/plain; charset=utf-8"}, str(problem).encode()
            request = Request(method, cassettes.SCRUBBED_ORIGIN + target, body or None,
                              {k: v for k, v in headers.items() if k.lower() in cassettes.KEPT_REQUEST_HEADERS})
            try:
                self.cassette.can_play_response_for(request)
            except CassetteMissError as miss:
                return 599, {MISS_HEADER: "1", "content-type": "text/plain; charset=utf-8"}, str(miss).encode()
            response = self.cassette.play_response(request)
            self.calls.append(cassettes.call_record(request, response, "replay"))
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


# -- the kernel's side ------------------------------------------------------------------------------
class RemoteReplay:
    """While grading: every httpx request of the kernel goes to the grader's replay service."""

    def __init__(self, url: str, lang: str):
        parts = urlsplit(url)
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self.lang = lang
        self._original = None

    def _post(self, method: str, target: str, body: bytes, content_type: str | None) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            headers = {"content-type": content_type} if content_type else {}
            connection.request(method, self.prefix + target, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        finally:
            connection.close()

    def start(self, deployment: str) -> dict:
        status, _, payload = self._post("POST", "/rai-lab/start", json.dumps({"deployment": deployment}).encode(),
                                        "application/json")
        return json.loads(payload) if status == 200 else {"error": payload.decode("utf-8", "replace")}

    def __enter__(self) -> RemoteReplay:
        import httpx

        remote = self
        original = self._original = httpx.HTTPTransport.handle_request

        def handle_request(transport, request):
            target = cassettes.normal_path(request.url.path) + (f"?{request.url.query.decode()}" if request.url.query else "")
            status, headers, payload = remote._post(request.method, target, request.read(),
                                                    request.headers.get("content-type"))
            if MISS_HEADER in headers:
                said = payload.decode("utf-8", "replace")
                if _refused_in_replay(said):  # it names the URL: the learner's host, not the recorded one
                    said = said.replace(cassettes.SCRUBBED_ORIGIN, f"{request.url.scheme}://{request.url.host}")
                raise CassetteMissError(said)
            sent = SimpleNamespace(body=request.content, path=request.url.path)  # what call_record reads of a request
            events.emit("call", **cassettes.call_record(sent, {"status": {"code": status}, "body": {"string": payload}},
                                                        "replay"))
            return httpx.Response(status, headers=headers, content=payload, request=request)

        handle_request.__wrapped__ = original
        httpx.HTTPTransport.handle_request = handle_request
        return self

    def __exit__(self, *exc_info) -> None:
        import httpx

        if self._original is not None:
            httpx.HTTPTransport.handle_request = self._original
            self._original = None


def _refused_in_replay(said: str) -> bool:
    """Whether a miss is the kit's "request refused in replay mode" (a call to another service), in any language."""
    return any(said.startswith(text("replay_other", lang).split("{", 1)[0]) for lang in LANGS)
