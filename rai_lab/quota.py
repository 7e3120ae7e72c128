"""Live calls paced to the deployment's quota, so that a learner at the exercise's 5,000 tokens per
minute never meets a 429.

Azure OpenAI counts each request it receives as an estimate: the prompt's tokens plus
``max_tokens`` x ``max(n, best_of)``, over a minute; and it allows 6 requests per minute per 1,000
TPM, over 10-second windows. At 5,000 TPM the going-further part (30 calls with ``n=10`` and
``max_tokens=100``: about 1,050 tokens each) needs about six minutes, while the openai client
retries a 429 only twice before it raises. The kit paces its own calls instead (``Pacer``): before
each chat request it waits, when it must, until the request fits the quota, and shows the wait.

The pacer keeps its own account of what it sent; it does not share the server's. Before the first
answer it estimates prompt tokens from the characters (3 per token, an upper bound for English);
then it learns the server's own count from each answer's ``usage.prompt_tokens``, corrects what it
recorded, and estimates the next prompts at that rate.
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


def _characters(body: dict) -> int:
    messages = body.get("messages") or []
    return sum(len(json.dumps(m.get("content", ""), ensure_ascii=False)) for m in messages if isinstance(m, dict))


def _completion_budget(body: dict) -> int:
    choices = max(1, int(body.get("n") or 1), int(body.get("best_of") or 1))
    return int(body.get("max_tokens") or DEFAULT_MAX_TOKENS) * choices


def estimate(body: dict, tokens_per_character: float = 1 / 3) -> int:
    """Azure's estimate of a chat request, from its JSON body: prompt tokens + max_tokens x max(n, best_of)."""
    messages = body.get("messages") or []
    return math.ceil(_characters(body) * tokens_per_character) + 4 * len(messages) + _completion_budget(body)


@dataclass
class Pacer:
    """Waits before each request until it fits `tpm` tokens and 6 requests per 1,000 TPM per minute."""

    tpm: int
    lang: str = "fr"
    time_scale: float = 1.0
    clock: object = time.monotonic
    sleep: object = time.sleep
    show: object = None  # called with (waited, wait) while waiting; None: a line that updates itself
    sent: deque = field(default_factory=deque)  # (quota time, tokens)
    waits: list = field(default_factory=list)  # (request number, seconds of quota time)
    requests: int = 0
    tokens_per_character: float = 1 / 3  # until an answer tells the server's own count
    report: bool = True  # each wait as a kit event (read by `rai-lab run`)

    def __post_init__(self) -> None:
        self.per_short_window = max(1, (self.tpm * 6 // 1000) // 6)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.clock() * self.time_scale

    def delay(self, tokens: int, now: float) -> float:
        """Seconds (quota time) before a request of `tokens` fits, given what was sent."""
        live = [(stamp, n) for stamp, n in self.sent if now - stamp < MINUTE + MARGIN]
        used = sum(n for _, n in live)
        wait = 0.0
        if used + tokens > self.tpm:
            freed, wait = used, MINUTE + MARGIN
            for stamp, n in live:
                freed -= n
                if freed + tokens <= self.tpm:
                    wait = MINUTE + MARGIN - (now - stamp)
                    break
        recent = [stamp for stamp, _ in live if now - stamp < SHORT + MARGIN]
        if len(recent) >= self.per_short_window:
            wait = max(wait, SHORT + MARGIN - (now - recent[len(recent) - self.per_short_window]))
        return max(0.0, wait)

    def before_request(self, body: dict) -> list:
        """Wait until the chat request `body` fits; returns its entry in the account (for `after_answer`)."""
        self.before(estimate(body, self.tokens_per_character))
        return self.sent[-1]

    def after_answer(self, entry: list, body: dict, answer: dict) -> None:
        """Correct the account with the server's own prompt count (`usage.prompt_tokens`) and learn its rate."""
        prompt = (answer.get("usage") or {}).get("prompt_tokens") if isinstance(answer, dict) else None
        if not isinstance(prompt, int) or prompt <= 0:
            return
        with self._lock:
            entry[1] = prompt + _completion_budget(body)
            characters = _characters(body)
            if characters:
                self.tokens_per_character = max(0.05, (prompt - 4 * len(body.get("messages") or [])) / characters)

    def before(self, tokens: int) -> float:
        """Wait until a request of `tokens` fits, then count it as sent; returns the wait (quota time)."""
        with self._lock:
            self.requests += 1
            waited = 0.0
            while True:
                now = self.now()
                wait = self.delay(tokens, now)
                if wait <= 0:
                    break
                self._show(waited, wait)
                step = min(wait, 5.0 * self.time_scale)  # the bar moves every 5 seconds
                self.sleep(step / self.time_scale)
                waited += step
            if waited:
                self.waits.append((self.requests, waited))
                self._show(waited, 0.0)
            now = self.now()
            while self.sent and now - self.sent[0][0] >= MINUTE + MARGIN:
                self.sent.popleft()
            self.sent.append([now, tokens])
            if waited and self.report:
                _report(self.requests, waited)
            return waited

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
                   tpm=f"{self.tpm:,}".replace(",", say("thousands_separator", self.lang)), call=self.requests)
        print("\r" + line, end="" if remaining > 0 else "\n", flush=True)


def plan(costs: list[int], tpm: int) -> float:
    """Seconds of waiting the pacer needs for requests of these estimated `costs`, sent back to back."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pacer = Pacer(tpm, clock=lambda: clock[0], sleep=sleep, show=lambda waited, remaining: None, report=False)
    for tokens in costs:
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
