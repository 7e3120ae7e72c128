"""Azure OpenAI's quota, written once: how Azure counts a request and the sliding windows it applies, one
account for the kernel's pacer (rai_lab.azure.pacing, so that a learner at the exercise's 5,000 tokens per
minute never meets a 429) and for the stand-in server.

Azure OpenAI counts each request it receives as an estimate: the prompt's tokens plus
``max_tokens`` x ``max(n, best_of)``, over a minute; and it allows 6 requests per minute per 1,000
TPM, over 10-second windows. At 5,000 TPM the going-further part (30 calls with ``n=10`` and
``max_tokens=100``: about 1,050 tokens each) needs about six minutes, while the openai client
retries a 429 only twice before it raises. The kit paces its own calls instead (rai_lab.azure.pacing): before
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
import threading
from collections import deque
from dataclasses import dataclass

MINUTE, SHORT = 60.0, 10.0
DEFAULT_MAX_TOKENS = 256  # counted for a request that sets no max_tokens (as the rai-lab stand-in does)


# -- Azure's count of a request --------------------------------------------------------------------
def characters(body: dict) -> int:
    """The characters of a request's messages, as JSON strings (what the pacer estimates tokens from)."""
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
    return cost(math.ceil(characters(body) * tokens_per_character) + 4 * len(messages), body)


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
