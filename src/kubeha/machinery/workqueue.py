"""A rate-limiting, delaying work queue with client-go semantics.

Guarantees the controllers rely on:

- a key waiting in the queue is there once, however often it is added (``add`` dedupes);
- a key being processed is never handed to a second worker: adds while it is processed mark it
  dirty, and ``done(key)`` puts it back in the queue once;
- ``add_after`` delays an add; all delayed keys share one timer task over a heap (a key already
  waiting keeps the earlier of its two ready times);
- ``add_rate_limited`` delays by the rate limiter's answer (per-key backoff, overall bucket);
- after ``shutdown`` adds are ignored, queued keys are still handed out, then ``get`` raises
  ``ShutDown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from kubeha.machinery.ratelimit import Clock, RateLimiter, default_controller_rate_limiter

log = logging.getLogger(__name__)


class ShutDown(Exception):
    """The queue was shut down and has nothing left to hand out."""


@dataclass
class QueueMetrics:
    """Counters a metrics exporter can read; ``on_change`` is called after each change if set."""

    adds: int = 0
    retries: int = 0
    processed: int = 0
    on_change: Callable[[QueueMetrics, int], None] | None = field(default=None, repr=False)


class RateLimitingQueue:
    def __init__(
        self,
        rate_limiter: RateLimiter | None = None,
        name: str = "",
        *,
        clock: Clock = time.monotonic,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.name = name
        self.rate_limiter: RateLimiter = rate_limiter if rate_limiter is not None else default_controller_rate_limiter()
        self.metrics = metrics if metrics is not None else QueueMetrics()
        self._clock = clock
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()  # keys wanting processing: queued, or re-added while processing
        self._processing: set[Hashable] = set()
        self._shutting_down = False
        self._getters: deque[asyncio.Future[None]] = deque()
        self._idle: asyncio.Event | None = None  # set when nothing is processing (for drain)
        # Delayed adds: heap of (ready_at, seq, key); _waiting maps key -> its current ready_at so a
        # re-add can move it earlier. Stale heap entries are skipped when popped.
        self._heap: list[tuple[float, int, Hashable]] = []
        self._waiting: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._timer: asyncio.Task[None] | None = None
        self._timer_wake: asyncio.Event | None = None

    # -- basic queue -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: Hashable) -> None:
        if self._shutting_down:
            return
        if key in self._dirty:
            return
        self.metrics.adds += 1
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._wake_one()
        self._changed()

    async def get(self) -> Hashable:
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # If we were woken and cancelled at once, pass the wake-up on so no key is stranded.
                if fut.done() and not fut.cancelled():
                    self._wake_one()
                else:
                    with contextlib.suppress(ValueError):
                        self._getters.remove(fut)
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if self._idle is not None:
            self._idle.clear()
        self._changed()
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        self.metrics.processed += 1
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()
        if not self._processing and self._idle is not None:
            self._idle.set()
        self._changed()

    def shutdown(self) -> None:
        self._shutting_down = True
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._waiting.clear()

    async def shutdown_with_drain(self) -> None:
        """Stop accepting work and wait until every key handed out so far is ``done``."""
        self.shutdown()
        if self._processing:
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()

    # -- delayed adds ------------------------------------------------------------------------

    def add_after(self, key: Hashable, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock() + delay
        current = self._waiting.get(key)
        if current is not None and current <= ready_at:
            return  # already due no later than this
        self._waiting[key] = ready_at
        heapq.heappush(self._heap, (ready_at, next(self._seq), key))
        self._ensure_timer()

    def process_delayed(self) -> int:
        """Move every delayed key whose time has come into the queue; returns how many.

        The timer task calls this; tests with a fake clock call it directly instead of sleeping.
        """
        now = self._clock()
        moved = 0
        while self._heap and self._heap[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) != ready_at:
                continue  # superseded by an earlier add_after for the same key
            del self._waiting[key]
            self.add(key)
            moved += 1
        return moved

    def next_ready_in(self) -> float | None:
        """Seconds until the earliest delayed key is due, or None when none is waiting."""
        while self._heap and self._waiting.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # drop stale entries
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock())

    def waiting(self) -> int:
        """Number of keys waiting for a delayed add."""
        return len(self._waiting)

    def _ensure_timer(self) -> None:
        if self._timer_wake is not None:
            self._timer_wake.set()  # a new earliest deadline may need a shorter sleep
        if self._timer is not None and not self._timer.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (synchronous test): process_delayed() drives it
        self._timer_wake = asyncio.Event()
        self._timer = loop.create_task(self._run_timer(), name=f"workqueue-timer-{self.name}")

    async def _run_timer(self) -> None:
        assert self._timer_wake is not None
        wake = self._timer_wake
        while not self._shutting_down:
            self.process_delayed()
            wait = self.next_ready_in()
            wake.clear()
            if wait is None:
                await wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=wait)

    # -- rate limiting -----------------------------------------------------------------------

    def add_rate_limited(self, key: Hashable) -> None:
        if self._shutting_down:
            return
        self.metrics.retries += 1
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.rate_limiter.num_requeues(key)

    # -- internals ---------------------------------------------------------------------------

    def _wake_one(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _changed(self) -> None:
        if self.metrics.on_change is not None:
            try:
                self.metrics.on_change(self.metrics, len(self._queue))
            except Exception:  # a broken exporter must not break the queue
                log.exception("workqueue %s: metrics hook failed", self.name)
