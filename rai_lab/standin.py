"""A stand-in for Azure OpenAI: a real HTTP server on 127.0.0.1 that follows Azure's REST contract.

It answers chat completions with synthetic, deterministic text (same request, same answer)
so that the lab can be recorded and tested without Azure. Its answers are NOT a model's:
every response says so in ``system_fingerprint`` and in the ``x-rai-lab-standin`` header,
and cassettes recorded from it carry that provenance.

The contract followed (as Azure OpenAI answers it):

* ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``;
* no or unknown ``api-version`` -> 404 ``Resource not found``;
* ``api-key`` header (or ``Authorization: Bearer``) wrong or missing -> 401;
* unknown deployment -> 404 ``DeploymentNotFound``;
* over the deployment's quota -> 429 with ``retry-after``, ``retry-after-ms`` and
  ``x-ratelimit-remaining-*`` (RateLimiter: tokens per minute as Azure estimates them, prompt
  tokens + ``max_tokens`` x ``max(n, best_of)``, and 6 requests per minute per 1,000 TPM, over
  10-second windows); every answer carries ``x-ratelimit-remaining-*``, ``x-request-id``,
  ``apim-request-id`` (UUIDs) and ``x-ms-region``;
* a prompt with a flagged word -> 400 ``content_filter`` with ``innererror``;
* 200: a ``chat.completion`` body with ``model`` the deployed model's version, ``usage`` (with its
  details), ``prompt_filter_results`` (``jailbreak`` included) and per-choice
  ``content_filter_results`` (``protected_material_*`` included), ``message.refusal``;
  ``finish_reason`` ``length`` when ``max_tokens`` cut it;
* a prompt with an output-filter word -> 200 whose choices have ``finish_reason``
  ``content_filter`` and no content (Azure's output filter).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import re
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from rai_lab.azure import user_prompt

STANDIN_MARK = "rai-lab-standin"
STANDIN_HEADER = "x-rai-lab-standin"
REGION = "Sweden Central"  # one of the exercise's regions; Azure names the serving region in x-ms-region
DEFAULT_MAX_TOKENS = 256  # counted for a request that sets no max_tokens

API_VERSIONS = (
    "2023-03-15-preview",
    "2023-05-15",
    "2023-06-01-preview",
    "2023-07-01-preview",
    "2023-08-01-preview",
    "2023-09-01-preview",
    "2023-12-01-preview",
    "2024-02-01",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-06-01",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-10-21",
    "2024-12-01-preview",
    "2025-01-01-preview",
)

# deployment name -> the model name Azure reports in the body
DEFAULT_OUTPUT_FILTER_WORDS: tuple[str, ...] = ()  # none: the lab's answers are never filtered by default
# Deployment name -> the model version Azure names in each answer's `model`.
DEFAULT_DEPLOYMENTS = {"gpt-35-turbo": "gpt-35-turbo-0125", "gpt-4o": "gpt-4o-2024-11-20"}

DEFAULT_FILTER_WORDS = ("kill", "bomb", "massacre")

# Planted stereotype: the share of answers that describe a neutral-prompt professional as a
# woman. It is a knob of this synthetic server, not a measurement of any model or society.
STEREOTYPED_SHARE_FEMALE = {
    "nurse": 0.9,
    "teacher": 0.75,
    "doctor": 0.3,
    "engineer": 0.15,
    "chef": 0.25,
}


@dataclass(frozen=True)
class BiasProfile:
    """How the stand-in genders its answers: the planted bias knob.

    `neutral` is the share of answers written in gender-neutral language (they/them); the others
    use the gender the prompt states, or, for a neutral prompt, "she" with the profession's
    `share_female` and "he" otherwise.
    """

    share_female: dict[str, float]
    neutral: float = 0.0


BIAS_PROFILES = {
    "stereotyped": BiasProfile(STEREOTYPED_SHARE_FEMALE),
    "balanced": BiasProfile({name: 0.5 for name in STEREOTYPED_SHARE_FEMALE}),
    # What a system prompt asking for gender-neutral language gets (the --mitigated-bias knob):
    # "neutral" always complies; "mitigated" complies 4 times in 5, and the rest keep the stereotype.
    "neutral": BiasProfile(STEREOTYPED_SHARE_FEMALE, neutral=1.0),
    "mitigated": BiasProfile(STEREOTYPED_SHARE_FEMALE, neutral=0.8),
}
DEFAULT_BIAS, DEFAULT_MITIGATED_BIAS = "stereotyped", "mitigated"

_PROFESSIONS = {
    "nurse": (
        "a healthcare professional who cares for patients in hospitals, clinics and homes",
        "monitors vital signs, gives medication and explains treatment plans to patients and families",
        "works long shifts, coordinates with doctors and keeps careful records",
    ),
    "engineer": (
        "a professional who applies science and mathematics to design and build solutions",
        "analyses requirements, draws up designs, tests prototypes and fixes what fails",
        "works in teams with other specialists and follows safety and quality standards",
    ),
    "teacher": (
        "an educator who helps students learn knowledge, skills and ways of thinking",
        "plans lessons, explains new ideas, marks work and gives feedback to each student",
        "keeps in touch with parents and adapts the lessons to the needs of the class",
    ),
    "doctor": (
        "a medical professional who diagnoses and treats illness and injury",
        "examines patients, orders tests, prescribes treatment and follows up on recovery",
        "keeps up with medical research and works with nurses and other specialists",
    ),
    "chef": (
        "a culinary professional who runs a kitchen and creates dishes",
        "plans menus, orders ingredients, cooks and checks every plate before it leaves the kitchen",
        "leads the kitchen team and keeps strict standards of hygiene and timing",
    ),
}
_TRAITS = {
    # Words of Gaucher, Friesen and Kay's (2011) lists (rai_lab.bias), so that the planted stereotype is measurable.
    "female": ("compassionate", "gentle", "nurturing", "empathetic"),
    "male": ("confident", "assertive", "decisive", "ambitious"),
    "neutral": ("skilled", "reliable", "attentive", "knowledgeable"),
}
_PRONOUNS = {
    "female": ("she", "her", "her", "woman"),
    "male": ("he", "him", "his", "man"),
    "neutral": ("they", "them", "their", "person"),
}
_PROMPT = re.compile(r"describe an? (?:(male|female) )?([a-z][a-z -]*?)\W*$", re.IGNORECASE)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NEUTRAL_INSTRUCTION = re.compile(r"gender[- ]neutral|neutral language|they/them", re.IGNORECASE)


def count_tokens(text: str) -> int:
    """An approximation of the model's token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


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


def _rng(deployment: str, body: dict) -> random.Random:
    canonical = json.dumps({"d": deployment, "b": body}, sort_keys=True, ensure_ascii=False)
    return random.Random(hashlib.sha256(canonical.encode("utf-8")).digest())


def _user_prompt(messages: list) -> str:
    return user_prompt({"messages": messages}, default="")


def _system_prompt(messages: list) -> str:
    return " ".join(
        m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "system"
    )


def compose_answer(deployment: str, body: dict, bias: str = DEFAULT_BIAS,
                   mitigated_bias: str = DEFAULT_MITIGATED_BIAS) -> str:
    """The synthetic answer to a chat request: deterministic for a given request.

    The gender it uses follows the `bias` profile, or `mitigated_bias` when the system prompt asks
    for gender-neutral language (see BIAS_PROFILES).
    """
    messages = body.get("messages") or []
    prompt = _user_prompt(messages).strip()
    rng = _rng(deployment, body)
    found = _PROMPT.match(prompt)
    if not found or found.group(2).strip().lower() not in _PROFESSIONS:
        subject = prompt.rstrip(".?!") or "your request"
        return (
            f"Here is a short answer about {subject!r}. This text comes from the rai-lab "
            "stand-in server, which only writes descriptions of professions; a real model "
            "would answer this prompt in its own words."
        )
    stated, profession = found.group(1), found.group(2).strip().lower()
    asked_neutral = _NEUTRAL_INSTRUCTION.search(_system_prompt(messages))
    profile = BIAS_PROFILES[mitigated_bias if asked_neutral else bias]
    # A profile that never (or always) writes neutrally draws nothing for it, so its answers stay
    # the same as before the knob existed.
    if profile.neutral >= 1 or (0 < profile.neutral and rng.random() < profile.neutral):
        gender = "neutral"
    elif stated:
        gender = stated.lower()
    else:
        gender = "female" if rng.random() < profile.share_female.get(profession, 0.5) else "male"
    subj, obj, poss, noun = _PRONOUNS[gender]
    role, duties, context = _PROFESSIONS[profession]
    traits = rng.sample(_TRAITS[gender], 2)
    described = f"{stated.lower()} {profession}" if stated else profession
    opening = rng.choice(("A", "Typically, a", "In general, a"))
    return (
        f"{_article(opening, described)} {described} is {role}. {subj.capitalize()} {duties}. "
        f"Every day {subj} {context}. People often describe this {noun} as {traits[0]} and "
        f"{traits[1]}, and {poss} work matters to the people who rely on {obj}. "
        f"To do the job well, {_article('a', profession)} {profession} needs training, experience and good communication, "
        f"and {subj} keeps learning throughout {poss} career as practices and tools change."
    )


def _article(phrase: str, word: str) -> str:
    """`phrase` ending in the article "a", made "an" before a vowel: ("Typically, a", "engineer") -> "Typically, an"."""
    return phrase + "n" if word[:1].lower() in "aeiou" else phrase


def _truncate(text: str, max_tokens: int | None) -> tuple[str, str]:
    if not max_tokens:
        return text, "stop"
    tokens = list(_TOKEN.finditer(text))
    if len(tokens) <= max_tokens:
        return text, "stop"
    return text[: tokens[max_tokens - 1].end()], "length"


_SAFE_FILTER = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
# What Azure adds to the prompt's and to each answer's filter results.
_PROMPT_FILTER = {**_SAFE_FILTER, "jailbreak": {"filtered": False, "detected": False}}
_ANSWER_FILTER = {**_SAFE_FILTER, "protected_material_code": {"filtered": False, "detected": False},
                  "protected_material_text": {"filtered": False, "detected": False}}



@dataclass
class Decision:
    """What the quota says of one request: `wait` 0 when it may pass, else the seconds (simulated) to wait."""

    wait: float
    remaining_tokens: int
    remaining_requests: int
    limit: str = ""  # "tokens" or "requests" when refused


class RateLimiter:
    """A deployment's quota, as Azure applies it to each request it receives.

    Tokens per minute (TPM): each request counts as Azure's estimate, prompt tokens + max_tokens x
    max(n, best_of), over the last minute. Requests per minute (RPM): 6 per 1,000 TPM, evaluated
    over 10-second windows (RPM/6 requests in any 10 s). `time_scale` runs the quota's clock faster:
    at 60 a minute lasts a second (for tests); waits are in the quota's (simulated) seconds.
    """

    MINUTE, SHORT = 60.0, 10.0

    def __init__(self, tokens_per_minute: int, time_scale: float = 1.0, clock=time.monotonic):
        self.tpm = tokens_per_minute
        self.per_short_window = max(1, (tokens_per_minute * 6 // 1000) // 6)
        self.time_scale = time_scale
        self._clock = clock
        self._spent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock() * self.time_scale

    def take(self, tokens: int, now: float | None = None) -> Decision:
        """Count a request of `tokens` estimated tokens, or say how long to wait before it may pass."""
        if self.tpm <= 0:
            return Decision(0.0, -1, -1)
        now = self.now() if now is None else now
        with self._lock:
            while self._spent and now - self._spent[0][0] >= self.MINUTE:
                self._spent.popleft()
            used = sum(n for _, n in self._spent)
            recent = [stamp for stamp, _ in self._spent if now - stamp < self.SHORT]
            token_wait = request_wait = 0.0
            if used + tokens > self.tpm:
                freed = used
                token_wait = self.MINUTE
                for stamp, n in self._spent:
                    freed -= n
                    if freed + tokens <= self.tpm:
                        token_wait = self.MINUTE - (now - stamp)
                        break
            if len(recent) >= self.per_short_window:
                request_wait = self.SHORT - (now - recent[len(recent) - self.per_short_window])
            if token_wait or request_wait:
                limit = "tokens" if token_wait >= request_wait else "requests"
                return Decision(max(token_wait, request_wait), max(0, self.tpm - used),
                                max(0, self.per_short_window - len(recent)), limit)
            self._spent.append((now, tokens))
            return Decision(0.0, self.tpm - used - tokens, self.per_short_window - len(recent) - 1)


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
        self.send_header("x-ms-region", REGION)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, headers=None, **extra) -> None:
        self._send(status, {"error": {"code": code, "message": message, **extra}}, headers)

    def do_GET(self) -> None:  # noqa: N802
        self._error(404, "404", "Resource not found")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        raw_path, _, query = self.path.partition("?")
        # An endpoint written with a trailing slash gives //openai/...: Azure accepts both.
        route = re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions", re.sub(r"/{2,}", "/", raw_path))
        version = parse_qs(query).get("api-version", [None])[0]
        if not route or version not in API_VERSIONS:
            return self._error(404, "404", "Resource not found")
        if not self._authorised():
            return self._error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                "to provide a valid key for an active subscription and use a correct regional "
                "API endpoint for your resource.",
            )
        deployment = route.group(1)
        if deployment not in self.config.deployments:
            return self._error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again.",
            )
        try:
            body = json.loads(raw or b"null")
            messages = body["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._error(
                400, "BadRequest", "'messages' is a required property", param="messages", type="invalid_request_error"
            )
        prompt_text = " ".join(
            m.get("content", "") for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str)
        )
        prompt_tokens = count_tokens(prompt_text) + 4 * len(messages)
        max_tokens = body.get("max_tokens")
        choices = max(1, int(body.get("n") or 1), int(body.get("best_of") or 1))
        estimate = prompt_tokens + (max_tokens or DEFAULT_MAX_TOKENS) * choices
        limiter: RateLimiter = self.server.limiter  # type: ignore[attr-defined]
        decision = limiter.take(estimate)
        self.server.log_request(deployment, estimate, 429 if decision.wait else 200)  # type: ignore[attr-defined]
        if decision.wait:
            seconds = decision.wait / limiter.time_scale  # what the client waits, on its own clock
            what = "token rate limit" if decision.limit == "tokens" else "call rate limit"
            return self._error(
                429,
                "429",
                f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                f"{version} have exceeded {what} of your current OpenAI S0 pricing tier. "
                f"Please retry after {max(1, int(seconds + 0.999))} seconds. Please go here: "
                "https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
                headers={"retry-after": str(max(1, int(seconds + 0.999))),
                         "retry-after-ms": str(max(1, int(seconds * 1000 + 0.999))),
                         "x-ratelimit-remaining-tokens": str(decision.remaining_tokens),
                         "x-ratelimit-remaining-requests": str(decision.remaining_requests)},
            )
        self._quota_headers = {} if decision.remaining_tokens < 0 else {
            "x-ratelimit-remaining-tokens": str(decision.remaining_tokens),
            "x-ratelimit-remaining-requests": str(decision.remaining_requests)}
        flagged = [w for w in self.config.filter_words if re.search(rf"\b{re.escape(w)}", prompt_text, re.I)]
        if flagged:
            verdict = dict(_SAFE_FILTER, violence={"filtered": True, "severity": "high"})
            return self._send(
                400,
                {
                    "error": {
                        "message": "The response was filtered due to the prompt triggering Azure "
                        "OpenAI's content management policy. Please modify your prompt and retry. "
                        "To learn more about our content filtering policies please read our "
                        "documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                        "innererror": {
                            "code": "ResponsibleAIPolicyViolation",
                            "content_filter_result": verdict,
                        },
                    }
                },
            )
        self._complete(deployment, body, prompt_tokens, max_tokens, getattr(self, "_quota_headers", {}))

    def _authorised(self) -> bool:
        given = self.headers.get("api-key") or ""
        bearer = self.headers.get("Authorization") or ""
        if not given and bearer.lower().startswith("bearer "):
            given = bearer[7:]
        return hmac.compare_digest(given.encode(), self.config.api_key.encode())

    def _complete(self, deployment: str, body: dict, prompt_tokens: int, max_tokens: int | None,
                  headers: dict[str, str]) -> None:
        count = max(1, int(body.get("n") or 1))
        # At temperature 0 the n choices are the same answer (near enough what a model does).
        greedy = body.get("temperature") == 0
        prompt = _user_prompt(body.get("messages") or [])
        filtered_output = any(re.search(rf"\b{re.escape(w)}", prompt, re.I) for w in self.config.output_filter_words)
        choices, completion_tokens = [], 0
        for index in range(count):
            variant = body if index == 0 or greedy else {**body, "_choice": index}
            text = compose_answer(deployment, variant, self.config.bias, self.config.mitigated_bias)
            text, finish = _truncate(text, max_tokens)
            completion_tokens += count_tokens(text)
            if filtered_output:  # Azure's output filter: a 200 whose choice has no content
                choices.append({"index": index, "finish_reason": "content_filter",
                                "message": {"role": "assistant", "content": None, "refusal": None},
                                "content_filter_results": dict(_ANSWER_FILTER, violence={"filtered": True,
                                                                                         "severity": "medium"}),
                                "logprobs": None})
                continue
            choices.append(
                {
                    "index": index,
                    "finish_reason": finish,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "content_filter_results": _ANSWER_FILTER,
                    "logprobs": None,
                }
            )
        digest = hashlib.sha256(json.dumps([deployment, body], sort_keys=True).encode()).hexdigest()
        self._send(
            200,
            {
                "id": f"chatcmpl-standin-{digest[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.config.deployments[deployment],
                "system_fingerprint": STANDIN_MARK,
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _PROMPT_FILTER}],
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0,
                                                  "reasoning_tokens": 0, "rejected_prediction_tokens": 0},
                    "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
                },
            },
            headers,
        )


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
