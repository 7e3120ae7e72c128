"""The learner's side of the quota: each live chat request waits until it fits the deployment's quota
(rai_lab.azure.quota's account, a little longer than the server's), with a bar that says how long; a request
larger than the whole quota is refused at once (RequestTooLarge), saying how large it is and what to change.
`install` paces every request the openai client sends in the kernel; `plan` says how long a run will wait."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from rai_lab.azure.quota import DEFAULT_MAX_TOKENS, Quota, characters, choices, completion_budget, cost, estimate
from rai_lab.messages import say

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
            length = characters(body)
            if length:
                self.tokens_per_character = max(0.05, (prompt - 4 * len(body.get("messages") or [])) / length)

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


# What the openai client sends with: httpx (the openai the kit pins, 1.42.0), httpx2 (httpx's API; the newest openai).
HTTP_CLIENTS = ("httpx", "httpx2")


def _client_classes() -> list:
    """The `Client` class of each HTTP library of HTTP_CLIENTS that this Python has."""
    import importlib

    found = []
    for name in HTTP_CLIENTS:
        try:
            found.append(importlib.import_module(name).Client)
        except ImportError:
            continue
    return found


def install(pacer: Pacer) -> None:
    """Pace every chat-completions request the HTTP clients of this process send (the openai client's)."""
    for client in _client_classes():
        _pace(client, pacer)


def _pace(client, pacer: Pacer) -> None:
    original = getattr(client.send, "_rai_lab_original", client.send)

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
    client.send = send


def uninstall() -> None:
    for client in _client_classes():
        original = getattr(client.send, "_rai_lab_original", None)
        if original is not None:
            client.send = original
