"""The learner's kernel's side of grading's replay: every httpx request goes to the grader's replay service.

While grading, a learner's kernel holds no cassette: the kit (`rai_lab.kit`) routes each Azure OpenAI call to
the replay service of its grading worker (`rai_lab.grading.worker.replay`), at the URL the grader sets in
`REPLAY_ENV`; a call the service cannot answer comes back as a cassette miss.
"""

from __future__ import annotations

import http.client
import json
from types import SimpleNamespace
from urllib.parse import urlsplit

from rai_lab import events
from rai_lab.azure.cassette.calls import call_record
from rai_lab.azure.cassette.scrub import SCRUBBED_ORIGIN
from rai_lab.azure.provider import normal_path
from rai_lab.errors import CassetteMissError
from rai_lab.messages import LANGS, text

MISS_HEADER = "x-rai-lab-miss"
REPLAY_ENV = "RAI_LAB_REPLAY"  # http://127.0.0.1:PORT/TOKEN, set for the learner's kernel by the grader


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
            target = normal_path(request.url.path) + (f"?{request.url.query.decode()}" if request.url.query else "")
            status, headers, payload = remote._post(request.method, target, request.read(),
                                                    request.headers.get("content-type"))
            if MISS_HEADER in headers:
                said = payload.decode("utf-8", "replace")
                if _refused_in_replay(said):  # it names the URL: the learner's host, not the recorded one
                    said = said.replace(SCRUBBED_ORIGIN, f"{request.url.scheme}://{request.url.host}")
                raise CassetteMissError(said)
            sent = SimpleNamespace(body=request.content, path=request.url.path)  # what call_record reads of a request
            events.emit("call", **call_record(sent, {"status": {"code": status}, "body": {"string": payload}},
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
