"""Client-side rate limiting (client-go's flowcontrol): a token bucket."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class TokenBucket:
    """Client-side rate limit: ``qps`` sustained, bursts of up to ``burst`` (client-go's flowcontrol).

    Each caller reserves a token and sleeps until it is due, so waiting callers are served in order.
    """

    def __init__(self, qps: float, burst: int, clock: Any = time.monotonic) -> None:
        self.qps = qps
        self.burst = max(1, burst or int(qps) or 1)
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    def reserve(self) -> float:
        """Take one token, possibly one that only exists in the future; the seconds to wait
        before using it (like ``rate.Limiter.Reserve``: a burst past capacity gets delays
        1/qps, 2/qps, ... apart)."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def try_take(self) -> bool:
        """Take a token only if one is there now (a filter, not a scheduler: never borrows)."""
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
