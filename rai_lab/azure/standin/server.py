"""The stand-in's HTTP server: its routes, in the order Azure OpenAI checks a request, and its options."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from rai_lab.azure import quota
from rai_lab.azure.provider import STANDIN_HEADER, STANDIN_MARK, user_prompt
from rai_lab.azure.standin import shapes
from rai_lab.azure.standin.limits import RateLimiter, refusal, remaining_headers
from rai_lab.azure.standin.text import (BIAS_PROFILES, DEFAULT_BIAS, DEFAULT_MITIGATED_BIAS, compose_answer,
                                        count_tokens, prompt_text, prompt_tokens, truncate)

DEFAULT_FILTER_WORDS = ("kill", "bomb", "massacre")
DEFAULT_OUTPUT_FILTER_WORDS: tuple[str, ...] = ()  # none: the lab's answers are never filtered by default
# Deployment name -> the model version Azure names in each answer's `model`.
DEFAULT_DEPLOYMENTS = {"gpt-35-turbo": "gpt-35-turbo-0125", "gpt-4o": "gpt-4o-2024-11-20"}


@dataclass
class StandinConfig:
    """What the stand-in accepts and how it behaves."""

    api_key: str
    deployments: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DEPLOYMENTS))
    tokens_per_minute: int = 0  # 0: no limit
    time_scale: float = 1.0  # the quota's clock: 60 makes a minute last a second
    filter_words: tuple[str, ...] = DEFAULT_FILTER_WORDS
    output_filter_words: tuple[str, ...] = DEFAULT_OUTPUT_FILTER_WORDS  # the answer to a prompt with one is filtered
    bias: str = DEFAULT_BIAS  # the profile for any system prompt...
    mitigated_bias: str = DEFAULT_MITIGATED_BIAS  # ...but one that asks for gender-neutral language


def _mentions(words: tuple[str, ...], text: str) -> bool:
    return any(re.search(rf"\b{re.escape(word)}", text, re.I) for word in words)


class StandinHandler(BaseHTTPRequestHandler):
    """One HTTP exchange with the stand-in."""

    server_version = "rai-lab-standin"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def config(self) -> StandinConfig:
        return self.server.config  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if getattr(self.server, "verbose", False):
            # The request line never holds the key (it travels in a header).
            sys.stderr.write("standin: " + (format % args) + "\n")

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(STANDIN_HEADER, "synthetic")
        self.send_header("apim-request-id", str(uuid.uuid4()))
        self.send_header("x-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-region", shapes.REGION)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._send(404, shapes.RESOURCE_NOT_FOUND)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        raw_path, _, query = self.path.partition("?")
        # An endpoint written with a trailing slash gives //openai/...: Azure accepts both.
        route = re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions", re.sub(r"/{2,}", "/", raw_path))
        version = parse_qs(query).get("api-version", [None])[0]
        if not route or version not in shapes.API_VERSIONS:
            return self._send(404, shapes.RESOURCE_NOT_FOUND)
        if not self._authorised():
            return self._send(401, shapes.UNAUTHORIZED)
        deployment = route.group(1)
        if deployment not in self.config.deployments:
            return self._send(404, shapes.DEPLOYMENT_NOT_FOUND)
        try:
            body = json.loads(raw or b"null")
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._send(400, shapes.MESSAGES_REQUIRED)
        prompt = prompt_tokens(messages)
        estimate = quota.cost(prompt, body)
        limiter: RateLimiter = self.server.limiter  # type: ignore[attr-defined]
        decision = limiter.take(estimate)
        self.server.log_request(deployment, estimate, 429 if decision.wait else 200)  # type: ignore[attr-defined]
        if decision.wait:
            return self._send(429, *refusal(decision, limiter, estimate, version))
        if _mentions(self.config.filter_words, prompt_text(messages)):
            return self._send(400, shapes.prompt_filtered())
        self._complete(deployment, body, prompt, version, remaining_headers(decision))

    def _authorised(self) -> bool:
        given = self.headers.get("api-key") or ""
        bearer = self.headers.get("Authorization") or ""
        if not given and bearer.lower().startswith("bearer "):
            given = bearer[7:]
        return hmac.compare_digest(given.encode(), self.config.api_key.encode())

    def _complete(self, deployment: str, body: dict, prompt: int, version: str, headers: dict[str, str]) -> None:
        count = max(1, int(body.get("n") or 1))
        # At temperature 0 the n choices are the same answer (near enough what a model does).
        greedy = body.get("temperature") == 0
        # Azure's output filter: a 200 whose choices have no content.
        withheld = _mentions(self.config.output_filter_words, user_prompt(body, default=""))
        choices, completion_tokens = [], 0
        for index in range(count):
            variant = body if index == 0 or greedy else {**body, "_choice": index}
            text = compose_answer(deployment, variant, self.config.bias, self.config.mitigated_bias)
            text, finish = truncate(text, body.get("max_tokens"))
            completion_tokens += count_tokens(text)
            choices.append(shapes.filtered_choice(index, version) if withheld
                           else shapes.choice(index, text, finish, version))
        digest = hashlib.sha256(json.dumps([deployment, body], sort_keys=True).encode()).hexdigest()
        answer = shapes.completion(f"chatcmpl-standin-{digest[:24]}", self.config.deployments[deployment], STANDIN_MARK,
                                   choices, prompt, completion_tokens, int(time.time()), version)
        self._send(200, answer, headers)


class StandinServer(ThreadingHTTPServer):
    """The stand-in, bound to 127.0.0.1 only."""

    daemon_threads = True

    def __init__(self, config: StandinConfig, port: int = 0, verbose: bool = False, log: str | None = None):
        super().__init__(("127.0.0.1", port), StandinHandler)
        self.config = config
        self.limiter = RateLimiter(config.tokens_per_minute, config.time_scale)
        self.verbose = verbose
        self._log = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115 - open while serving
        self._log_lock = threading.Lock()

    def log_request(self, deployment: str, estimate: int, status: int) -> None:
        """With --log: one JSON line per chat request that reached the quota (its clock, estimate, status)."""
        if self._log is None:
            return
        line = json.dumps({"t": self.limiter.now(), "deployment": deployment, "tokens": estimate, "status": status})
        with self._log_lock:
            self._log.write(line + "\n")
            self._log.flush()

    def server_close(self) -> None:
        super().server_close()
        if self._log is not None:
            self._log.close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--key", required=True, help="the api-key the stand-in accepts (use a throwaway value)")
    parser.add_argument(
        "--deployment",
        action="append",
        dest="deployments",
        metavar="NAME",
        help="a deployment the stand-in serves (repeatable; default: gpt-35-turbo and gpt-4o)",
    )
    parser.add_argument("--tpm", type=int, default=0,
                        help="the deployment's tokens per minute (and 6 requests per minute per 1,000); 429 past it (0: none)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="run the quota's clock faster: 60 makes a minute last a second (default 1)")
    parser.add_argument("--log", metavar="FILE", help="append one JSON line per chat request: quota time, estimate, status")
    parser.add_argument(
        "--filter-word",
        action="append",
        dest="filter_words",
        metavar="WORD",
        help="a word that triggers 400 content_filter (repeatable; default: kill, bomb, massacre)",
    )
    parser.add_argument(
        "--output-filter-word",
        action="append",
        dest="output_filter_words",
        metavar="WORD",
        help="a word in a prompt whose answer the output filter removes: 200, finish_reason content_filter, no content",
    )
    parser.add_argument("--bias", choices=sorted(BIAS_PROFILES), default=DEFAULT_BIAS,
                        help=f"planted bias for any system prompt (default: {DEFAULT_BIAS})")
    parser.add_argument("--mitigated-bias", choices=sorted(BIAS_PROFILES), default=DEFAULT_MITIGATED_BIAS,
                        help="planted bias when the system prompt asks for gender-neutral language "
                        f"(default: {DEFAULT_MITIGATED_BIAS}: they/them in 4 answers out of 5)")
    parser.add_argument("--verbose", action="store_true", help="log each request line to stderr")


def run_from_args(args: argparse.Namespace) -> int:
    deployments = ({name: DEFAULT_DEPLOYMENTS.get(name, name) for name in args.deployments} if args.deployments
                   else dict(DEFAULT_DEPLOYMENTS))
    config = StandinConfig(
        api_key=args.key,
        deployments=deployments,
        tokens_per_minute=args.tpm,
        time_scale=args.time_scale,
        filter_words=tuple(args.filter_words) if args.filter_words else DEFAULT_FILTER_WORDS,
        output_filter_words=tuple(args.output_filter_words or ()),
        bias=args.bias,
        mitigated_bias=args.mitigated_bias,
    )
    server = StandinServer(config, port=args.port, verbose=args.verbose, log=args.log)
    # The first line on stdout is the endpoint: tests and scripts read it to find the port.
    print(f"rai-lab stand-in listening on {server.endpoint}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
