"""Azure OpenAI's quota, written once: how Azure counts a request, the sliding windows it applies, and
the live calls paced to them, so that a learner at the exercise's 5,000 tokens per minute never meets a 429.

Azure OpenAI counts each request it receives as an estimate: the prompt's tokens plus
``max_tokens`` x ``max(n, best_of)``, over a minute; and it allows 6 requests per minute per 1,000
TPM, over 10-second windows. At 5,000 TPM the going-further part (30 calls with ``n=10`` and
``max_tokens=100``: about 1,050 tokens each) needs about six minutes, while the openai client
retries a 429 only twice before it raises. The kit paces its own calls instead (``Pacer``): before
each chat request it waits, when it must, until the request fits the quota, and shows the wait. A
request larger than the whole quota never fits: Azure answers it with a 429 that asks to retry after
a day (86,400 s), so the pacer refuses it at once, saying how large it is and what to change.

The pacer keeps its own account of what it sent; it does not share the server's. Before the first
answer it estimates prompt tokens from the characters (3 per token, an upper bound for English);
then it learns the server's own count from each answer's ``usage.prompt_tokens``, corrects what it
recorded, and estimates the next prompts at that rate. The stand-in server (rai_lab.azure.standin) applies
the same ``Quota`` to what it receives, with its own token count.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from rai_lab.messages import say

MINUTE, SHORT = 60.0, 10.0
DEFAULT_MAX_TOKENS = 256  # counted for a request that sets no max_tokens (as the rai-lab stand-in does)
MARGIN = 1.0  # seconds of quota time added to each expiry: the request reaches the server after it left here
# Tests run the quota's clock faster (the stand-in's --time-scale): 60 makes a minute last a second.
TIME_SCALE_ENV = "RAI_LAB_TIME_SCALE"


class RequestTooLarge(BaseException):
    """A chat request larger than the deployment's whole per-minute quota: Azure would refuse it every
    time (a 429 that asks to retry after a day), so the pacer refuses it at once, before sending it.

    A BaseException, as rai_lab.errors.CassetteMissError is, for the same reason: the ``openai`` client
    catches every ``Exception`` its HTTP transport raises, retries it and re-raises it as
    ``APIConnectionError: Connection error.``, which would hide this message from the learner.
    """


# -- Azure's count of a request --------------------------------------------------------------------
def _characters(body: dict) -> int:
    messages = body.get("messages") or []
    return sum(len(json.dumps(m.get("content", ""), ensure_ascii=False)) for m in messages if isinstance(m, dict))


def choices(body: dict) -> int:
    """How many completions Azure counts for a request: max(n, best_of), at least 1."""
    return max(1, int(body.get("n") or 1), int(body.get("best_of") or 1))


def completion_budget(body: dict) -> int:
    """The completion part of Azure's estimate: max_tokens x max(n, best_of)."""
    return int(body.get("max_tokens") or DEFAULT_MAX_TOKENS) * choices(body)


def cost(prompt_tokens: int, body: dict) -> int:
    """Azure's estimate of a chat request: its prompt tokens + max_tokens x max(n, best_of)."""
    return prompt_tokens + completion_budget(body)


def estimate(body: dict, tokens_per_character: float = 1 / 3) -> int:
    """Azure's estimate of a chat request, from its JSON body, its prompt tokens counted from characters."""
    messages = body.get("messages") or []
    return cost(math.ceil(_characters(body) * tokens_per_character) + 4 * len(messages), body)


# -- the quota: one account of what was sent, for the pacer and the stand-in -------------------------
@dataclass
class Decision:
    """What the quota says of one request: `wait` 0 when it may pass, else the seconds (quota time) to
    wait; `limit` says which limit refused it: "tokens", "requests", or "too_large" (never: `wait` is
    infinite) for a request larger than the whole quota."""

    wait: float
    remaining_tokens: int
    remaining_requests: int
    limit: str = ""


class Quota:
    """A deployment's quota as Azure applies it: `tpm` tokens per minute, each request counted as its
    estimate over the last minute; and 6 requests per minute per 1,000 TPM, over 10-second windows
    (RPM/6 requests in any 10 s). A `tpm` of 0 or less is no limit.

    `margin` (seconds of quota time) lengthens each window: the pacer counts a request a little longer
    than the server does, since it reaches the server after it left the learner's machine. Times are
    the caller's (quota time); `sent` holds [time, tokens] entries, which the pacer corrects once the
    server has said its own count."""

    def __init__(self, tpm: int, margin: float = 0.0):
        self.tpm = tpm
        self.margin = margin
        self.per_short_window = max(1, (tpm * 6 // 1000) // 6)
        self.sent: deque[list] = deque()
        self._lock = threading.Lock()

    def fits(self, tokens: int) -> bool:
        """Whether a request of `tokens` can ever pass: no larger than the whole quota."""
        return self.tpm <= 0 or tokens <= self.tpm

    def decide(self, tokens: int, now: float) -> Decision:
        """Whether a request of `tokens` may pass at `now`, given what was sent; nothing is counted."""
        if self.tpm <= 0:
            return Decision(0.0, -1, -1)  # no limit, no remaining counts to tell
        minute, short = MINUTE + self.margin, SHORT + self.margin
        live = [(stamp, n) for stamp, n in self.sent if now - stamp < minute]
        used = sum(n for _, n in live)
        recent = [stamp for stamp, _ in live if now - stamp < short]
        remaining_tokens, remaining_requests = max(0, self.tpm - used), max(0, self.per_short_window - len(recent))
        if not self.fits(tokens):
            return Decision(math.inf, remaining_tokens, remaining_requests, "too_large")
        token_wait = request_wait = 0.0
        if used + tokens > self.tpm:
            freed = used
            for stamp, n in live:
                freed -= n
                if freed + tokens <= self.tpm:
                    token_wait = minute - (now - stamp)
                    break
        if len(recent) >= self.per_short_window:
            request_wait = short - (now - recent[len(recent) - self.per_short_window])
        if token_wait > 0 or request_wait > 0:
            limit = "tokens" if token_wait >= request_wait else "requests"
            return Decision(max(token_wait, request_wait), remaining_tokens, remaining_requests, limit)
        return Decision(0.0, self.tpm - used - tokens, self.per_short_window - len(recent) - 1)

    def record(self, tokens: int, now: float) -> list:
        """Count a request of `tokens` as sent at `now`; returns its entry ([time, tokens])."""
        while self.sent and now - self.sent[0][0] >= MINUTE + self.margin:
            self.sent.popleft()
        entry = [now, tokens]
        self.sent.append(entry)
        return entry

    def take(self, tokens: int, now: float) -> Decision:
        """Count a request of `tokens` at `now` if it may pass; in any case say what the quota decided."""
        with self._lock:
            decision = self.decide(tokens, now)
            if not decision.wait and self.tpm > 0:
                self.record(tokens, now)
            return decision


# -- the learner's side: each live request waits until it fits -------------------------------------
@dataclass
class Pacer:
    """Waits before each request until it fits `tpm` tokens and 6 requests per 1,000 TPM per minute;
    refuses at once a request larger than the whole quota (RequestTooLarge)."""

    tpm: int
    lang: str = "fr"
    time_scale: float = 1.0
    clock: object = time.monotonic
    sleep: object = time.sleep
    show: object = None  # called with (waited, wait) while waiting; None: a line that updates itself
    waits: list = field(default_factory=list)  # (request number, seconds of quota time)
    requests: int = 0
    tokens_per_character: float = 1 / 3  # until an answer tells the server's own count
    report: bool = True  # each wait as a kit event (read by `rai-lab run`)

    def __post_init__(self) -> None:
        self.quota = Quota(self.tpm, margin=MARGIN)
        self._lock = threading.Lock()

    @property
    def sent(self) -> deque:
        """What this pacer sent: [quota time, tokens] entries."""
        return self.quota.sent

    @property
    def per_short_window(self) -> int:
        return self.quota.per_short_window

    def now(self) -> float:
        return self.clock() * self.time_scale

    def delay(self, tokens: int, now: float) -> float:
        """Seconds (quota time) before a request of `tokens` fits, given what was sent."""
        return self.quota.decide(tokens, now).wait

    def before_request(self, body: dict) -> list:
        """Wait until the chat request `body` fits; returns its entry in the account (for `after_answer`)."""
        return self._wait_and_count(estimate(body, self.tokens_per_character), body)[1]

    def after_answer(self, entry: list, body: dict, answer: dict) -> None:
        """Correct the account with the server's own prompt count (`usage.prompt_tokens`) and learn its rate."""
        prompt = (answer.get("usage") or {}).get("prompt_tokens") if isinstance(answer, dict) else None
        if not isinstance(prompt, int) or prompt <= 0:
            return
        with self._lock:
            entry[1] = cost(prompt, body)
            characters = _characters(body)
            if characters:
                self.tokens_per_character = max(0.05, (prompt - 4 * len(body.get("messages") or [])) / characters)

    def before(self, tokens: int) -> float:
        """Wait until a request of `tokens` fits, then count it as sent; returns the wait (quota time).
        A request larger than the whole quota never fits: RequestTooLarge at once, nothing counted."""
        return self._wait_and_count(tokens)[0]

    def _wait_and_count(self, tokens: int, body: dict | None = None) -> tuple[float, list]:
        if not self.quota.fits(tokens):
            raise RequestTooLarge(too_large(tokens, self.tpm, self.lang, body))
        with self._lock:
            self.requests += 1
            waited = 0.0
            while True:
                wait = self.delay(tokens, self.now())
                if wait <= 0:
                    break
                self._show(waited, wait)
                step = min(wait, 5.0 * self.time_scale)  # the bar moves every 5 seconds
                self.sleep(step / self.time_scale)
                waited += step
            if waited:
                self.waits.append((self.requests, waited))
                self._show(waited, 0.0)
            entry = self.quota.record(tokens, self.now())
            if waited and self.report:
                _report(self.requests, waited)
            return waited, entry

    @property
    def waited(self) -> float:
        return sum(seconds for _, seconds in self.waits)

    def _show(self, waited: float, remaining: float) -> None:
        if self.show is not None:
            self.show(waited, remaining)
            return
        total = waited + remaining
        filled = 20 if not total else round(20 * waited / total)
        line = say("quota_wait", self.lang, bar="█" * filled + "░" * (20 - filled), left=math.ceil(remaining),
                   tpm=_number(self.tpm, self.lang), call=self.requests)
        print("\r" + line, end="" if remaining > 0 else "\n", flush=True)


def _number(value: int, lang: str) -> str:
    return f"{value:,}".replace(",", say("thousands_separator", lang))


def too_large(tokens: int, tpm: int, lang: str, body: dict | None = None) -> str:
    """What the learner reads when a request of `tokens` is larger than the whole quota of `tpm`: how
    large it is (and of what, when the request is known), the quota, and what to change."""
    if isinstance(body, dict):
        detail = say("quota_too_large_detail", lang, prompt=_number(tokens - completion_budget(body), lang),
                     max_tokens=int(body.get("max_tokens") or DEFAULT_MAX_TOKENS), n=choices(body))
    else:
        detail = say("quota_too_large_rule", lang)
    return say("quota_too_large", lang, tokens=_number(tokens, lang), tpm=_number(tpm, lang), detail=detail)


def plan(costs: list[int], tpm: int) -> float:
    """Seconds of waiting the pacer needs for requests of these estimated `costs`, sent back to back. A
    request larger than the whole quota adds nothing: the pacer refuses it at once."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pacer = Pacer(tpm, clock=lambda: clock[0], sleep=sleep, show=lambda waited, remaining: None, report=False)
    for tokens in costs:
        if pacer.quota.fits(tokens):
            pacer.before(tokens)
    return pacer.waited


def _report(request: int, seconds: float) -> None:
    from rai_lab import events

    events.emit("quota_wait", request=request, seconds=round(seconds, 3))


def time_scale() -> float:
    try:
        return float(os.environ.get(TIME_SCALE_ENV) or 1.0)
    except ValueError:
        return 1.0


def install(pacer: Pacer) -> None:
    """Pace every chat-completions request the httpx clients of this process send (the openai client's)."""
    import httpx

    original = getattr(httpx.Client.send, "_rai_lab_original", httpx.Client.send)

    def send(self, request, *args, **kwargs):
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return original(self, request, *args, **kwargs)
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            pacer.before(DEFAULT_MAX_TOKENS)
            return original(self, request, *args, **kwargs)
        entry = pacer.before_request(body)
        response = original(self, request, *args, **kwargs)
        if response.status_code == 200 and not kwargs.get("stream") and not body.get("stream"):
            try:
                pacer.after_answer(entry, body, response.json())
            except Exception:  # noqa: BLE001 - an unreadable answer leaves the estimate as it was
                pass
        return response

    send._rai_lab_original = original  # type: ignore[attr-defined]
    httpx.Client.send = send


def uninstall() -> None:
    import httpx

    original = getattr(httpx.Client.send, "_rai_lab_original", None)
    if original is not None:
        httpx.Client.send = original
