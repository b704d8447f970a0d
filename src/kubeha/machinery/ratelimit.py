"""Rate limiters for work queues (client-go ``util/workqueue`` semantics).

A rate limiter answers "how long should this item wait before it is processed again?".
``when(item)`` records one more attempt and returns the delay in seconds; ``forget(item)``
clears the item's history once it succeeded; ``num_requeues(item)`` reports its attempts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from kubeha.client.flowcontrol import TokenBucket

Clock = Callable[[], float]


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float: ...

    def forget(self, item: Hashable) -> None: ...

    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """Per-item backoff: ``base * 2**failures``, capped at ``cap`` seconds."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        # Past ~1000 doublings the float overflows; anything that large is the cap anyway.
        if exp > 1000:
            return self.cap
        backoff = self.base * math.pow(2, exp)
        return min(backoff, self.cap)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(TokenBucket):
    """Overall token bucket as a rate limiter: ``qps`` tokens a second, at most ``burst`` saved
    up; every ``when`` reserves a token (see :meth:`TokenBucket.reserve`)."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = time.monotonic) -> None:
        if qps <= 0 or burst <= 0:
            raise ValueError("qps and burst must be positive")
        super().__init__(qps, burst, clock)

    def when(self, item: Hashable) -> float:
        return self.reserve()

    def forget(self, item: Hashable) -> None:
        pass  # the bucket is shared by all items; nothing per item to forget

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The worst (longest) delay of several limiters; every limiter records every attempt."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        # Call all of them (not max() over a generator that could short-circuit): each keeps state.
        delays = [limiter.when(item) for limiter in self.limiters]
        return max(delays)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = time.monotonic) -> MaxOfRateLimiter:
    """client-go's default: per-item 5 ms → 1000 s exponential, and 10 qps / 100 burst overall."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
