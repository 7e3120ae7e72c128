"""The deployment's quota on the stand-in's side: rai_lab.azure.quota's one implementation, on the server's
clock, and the 429s and headers it answers with.

Each request counts as Azure's estimate (rai_lab.azure.quota.cost): the stand-in's count of its prompt
tokens + max_tokens x max(n, best_of). A request larger than the whole quota is answered at once with
Azure's 429 that asks to retry after a day; one over what is left of the minute, with a 429 that
says when it will fit.
"""

from __future__ import annotations

import time

from rai_lab.azure import quota
from rai_lab.azure.provider import NEVER_RETRY_SECONDS
from rai_lab.azure.standin import shapes


class RateLimiter(quota.Quota):
    """A deployment's quota (rai_lab.azure.quota.Quota) as the stand-in applies it to each request it
    receives. `time_scale` runs the quota's clock faster: at 60 a minute lasts a second (for tests);
    waits are in the quota's (simulated) seconds."""

    def __init__(self, tokens_per_minute: int, time_scale: float = 1.0, clock=time.monotonic):
        super().__init__(tokens_per_minute)
        self.time_scale = time_scale
        self._clock = clock

    def now(self) -> float:
        return self._clock() * self.time_scale

    def take(self, tokens: int, now: float | None = None) -> quota.Decision:
        """Count a request of `tokens` estimated tokens, or say how long to wait before it may pass."""
        return super().take(tokens, self.now() if now is None else now)


def remaining_headers(decision: quota.Decision) -> dict[str, str]:
    """Azure's x-ratelimit-remaining-* headers (none when the stand-in has no quota)."""
    if decision.remaining_tokens < 0:
        return {}
    return {"x-ratelimit-remaining-tokens": str(decision.remaining_tokens),
            "x-ratelimit-remaining-requests": str(decision.remaining_requests)}


def refusal(decision: quota.Decision, limiter: RateLimiter, tokens: int, version: str) -> tuple[dict, dict]:
    """The body and headers of the 429 for a request the quota refused."""
    if decision.limit == "too_large":
        seconds, milliseconds = NEVER_RETRY_SECONDS, NEVER_RETRY_SECONDS * 1000
        payload = shapes.too_large(version, tokens, limiter.tpm)
    else:
        waited = decision.wait / limiter.time_scale  # what the client waits, on its own clock
        seconds, milliseconds = max(1, int(waited + 0.999)), max(1, int(waited * 1000 + 0.999))
        payload = shapes.rate_limited(version, decision.limit, seconds)
    return payload, {"retry-after": str(seconds), "retry-after-ms": str(milliseconds), **remaining_headers(decision)}
