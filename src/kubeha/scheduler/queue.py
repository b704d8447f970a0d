"""The scheduling queue: activeQ, backoffQ and unschedulablePods (kube-scheduler's PriorityQueue).

- activeQ: a heap ordered by the profile's QueueSort plugin (PrioritySort: priority, then age);
  ``pop`` waits on it.
- backoffQ: pods that failed and wait ``initial * 2**(attempts-1)`` seconds (1 s → 10 s cap);
  one timer wakes at the earliest expiry, none runs while the queue is empty.
- unschedulablePods: pods no node could take. They come back when a cluster event that one of
  the plugins that rejected them registered for happens (queueing hints, lite), or after
  ``unschedulable_timeout`` (5 min) at the latest.
- An event during a pod's scheduling cycle sends the pod, if it then fails, to backoffQ rather
  than unschedulablePods: it may already fit the changed cluster (upstream's moveRequestCycle).

Clocks and timers are injectable: unit tests drive ``flush_backoff_completed`` and
``flush_unschedulable_leftover`` by hand with a fake clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

from kubeha.scheduler.framework import UNSCHEDULABLE_TIMEOUT, ClusterEvent, QueuedPodInfo
from kubeha.scheduler.nodeinfo import PodInfo

Less = Callable[[QueuedPodInfo, QueuedPodInfo], bool]

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_UNSCHEDULABLE_TIMEOUT = 300.0


class QueueClosed(Exception):
    pass


class _Entry:
    __slots__ = ("less", "qpi", "removed")

    def __init__(self, qpi: QueuedPodInfo, less: Less) -> None:
        self.qpi = qpi
        self.less = less
        self.removed = False

    def __lt__(self, other: _Entry) -> bool:
        return self.less(self.qpi, other.qpi)


def _priority_less(a: QueuedPodInfo, b: QueuedPodInfo) -> bool:
    pa, pb = a.pod_info.priority, b.pod_info.priority
    return pa > pb or (pa == pb and a.timestamp < b.timestamp)


class SchedulingQueue:
    def __init__(
        self,
        less: Less | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        unschedulable_timeout: float = DEFAULT_UNSCHEDULABLE_TIMEOUT,
        events_by_plugin: dict[str, list[ClusterEvent]] | None = None,
        gated: Callable[[PodInfo], bool] | None = None,
        timers: bool = True,
    ) -> None:
        self.less = less or _priority_less
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.events_by_plugin = events_by_plugin or {}
        self.gated = gated or (lambda pi: False)
        self.timers = timers
        self._active: list[_Entry] = []
        self._active_map: dict[str, _Entry] = {}
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_map: dict[str, tuple[float, QueuedPodInfo]] = {}
        self.unschedulable: dict[str, QueuedPodInfo] = {}
        self.in_flight: set[str] = set()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._seq = itertools.count()
        self._wakeup: asyncio.Event | None = None
        self._backoff_timer: asyncio.TimerHandle | None = None
        self._backoff_timer_at = float("inf")
        self._leftover_timer: asyncio.TimerHandle | None = None
        self.closed = False

    # -- sizes -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._active_map) + len(self._backoff_map) + len(self.unschedulable)

    def pending(self) -> dict[str, int]:
        return {
            "active": len(self._active_map),
            "backoff": len(self._backoff_map),
            "unschedulable": len(self.unschedulable),
        }

    def where(self, key: str) -> str:
        if key in self._active_map:
            return "active"
        if key in self._backoff_map:
            return "backoff"
        if key in self.unschedulable:
            return "unschedulable"
        if key in self.in_flight:
            return "in-flight"
        return ""

    # -- internals --------------------------------------------------------------------------------

    def _signal(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        old = self._active_map.get(qpi.key)
        if old is not None:
            old.removed = True
        e = _Entry(qpi, self.less)
        self._active_map[qpi.key] = e
        heapq.heappush(self._active, e)
        self._signal()

    def _backoff_expiry(self, qpi: QueuedPodInfo) -> float:
        n = max(qpi.attempts, 1)
        delay = min(self.initial_backoff * (2 ** min(n - 1, 32)), self.max_backoff)
        return qpi.timestamp + delay

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        expiry = self._backoff_expiry(qpi)
        self._backoff_map[qpi.key] = (expiry, qpi)
        heapq.heappush(self._backoff, (expiry, next(self._seq), qpi.key))
        self._arm_backoff_timer()

    def _arm_backoff_timer(self) -> None:
        if not self.timers or not self._backoff:
            return
        at = self._backoff[0][0]
        if self._backoff_timer is not None and self._backoff_timer_at <= at:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._backoff_timer is not None:
            self._backoff_timer.cancel()
        self._backoff_timer_at = at
        self._backoff_timer = loop.call_later(max(at - self.clock(), 0.0), self._on_backoff_timer)

    def _on_backoff_timer(self) -> None:
        self._backoff_timer = None
        self._backoff_timer_at = float("inf")
        self.flush_backoff_completed()

    def _arm_leftover_timer(self) -> None:
        if not self.timers or self._leftover_timer is not None or not self.unschedulable:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        oldest = min(q.timestamp for q in self.unschedulable.values())
        delay = max(oldest + self.unschedulable_timeout - self.clock(), 0.0) + 0.01
        self._leftover_timer = loop.call_later(delay, self._on_leftover_timer)

    def _on_leftover_timer(self) -> None:
        self._leftover_timer = None
        self.flush_unschedulable_leftover()
        self._arm_leftover_timer()

    def _in_backoff(self, qpi: QueuedPodInfo) -> bool:
        return self._backoff_expiry(qpi) > self.clock()

    def _requeue(self, qpi: QueuedPodInfo) -> None:
        """From unschedulable to backoffQ (still backing off) or activeQ."""
        self.unschedulable.pop(qpi.key, None)
        if qpi.attempts and self._in_backoff(qpi):
            self._push_backoff(qpi)
        else:
            self._push_active(qpi)

    def _remove_everywhere(self, key: str) -> QueuedPodInfo | None:
        e = self._active_map.pop(key, None)
        if e is not None:
            e.removed = True
            return e.qpi
        b = self._backoff_map.pop(key, None)
        if b is not None:
            return b[1]  # its heap entry is skipped lazily
        return self.unschedulable.pop(key, None)

    # -- pods coming and going --------------------------------------------------------------------

    def add(self, pi: PodInfo) -> None:
        """A new pending pod."""
        now = self.clock()
        qpi = QueuedPodInfo(pi, timestamp=now, initial_attempt_timestamp=now)
        self._remove_everywhere(pi.key)
        if self.gated(pi):
            qpi.gated = True
            self.unschedulable[pi.key] = qpi
            return
        self._push_active(qpi)

    def update(self, pi: PodInfo, spec_changed: bool = True) -> None:
        """A pending pod changed. A pod parked as unschedulable gets another chance when its
        spec or labels changed (it may fit now), or at once when its last gate was removed."""
        key = pi.key
        e = self._active_map.get(key)
        if e is not None:
            e.qpi.pod_info = pi
            return
        b = self._backoff_map.get(key)
        if b is not None:
            b[1].pod_info = pi
            return
        qpi = self.unschedulable.get(key)
        if qpi is not None:
            qpi.pod_info = pi
            if qpi.gated:
                if not self.gated(pi):
                    qpi.gated = False
                    qpi.timestamp = self.clock()
                    self.unschedulable.pop(key)
                    self._push_active(qpi)
                return
            if spec_changed:
                self._requeue(qpi)
            return
        if key in self.in_flight:
            return  # the running cycle's outcome decides where it goes
        self.add(pi)

    def delete(self, key: str) -> None:
        self._remove_everywhere(key)

    # -- the scheduling loop's side ----------------------------------------------------------------

    def pop_nowait(self) -> QueuedPodInfo | None:
        while self._active:
            e = heapq.heappop(self._active)
            if e.removed:
                continue
            del self._active_map[e.qpi.key]
            qpi = e.qpi
            self.scheduling_cycle += 1
            qpi.scheduling_cycle = self.scheduling_cycle
            qpi.attempts += 1
            self.in_flight.add(qpi.key)
            return qpi
        return None

    async def pop(self) -> QueuedPodInfo:
        while True:
            qpi = self.pop_nowait()
            if qpi is not None:
                return qpi
            if self.closed:
                raise QueueClosed()
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        self.in_flight.discard(key)

    def add_unschedulable_if_not_present(self, qpi: QueuedPodInfo, backoff_only: bool = False) -> None:
        """A pod whose cycle failed. ``backoff_only``: an error, not a verdict (retry after backoff)."""
        key = qpi.key
        self.in_flight.discard(key)
        if key in self._active_map or key in self._backoff_map or key in self.unschedulable:
            return
        qpi.timestamp = self.clock()
        if backoff_only or not qpi.unschedulable_plugins or self.move_request_cycle >= qpi.scheduling_cycle:
            self._push_backoff(qpi)
        else:
            self.unschedulable[key] = qpi
            self._arm_leftover_timer()

    def activate(self, qpi: QueuedPodInfo) -> None:
        """Put a pod straight back into activeQ (e.g. a binding failed for a transient reason)."""
        self.in_flight.discard(qpi.key)
        if self.where(qpi.key):
            return
        qpi.timestamp = self.clock()
        self._push_active(qpi)

    # -- cluster events ----------------------------------------------------------------------------

    def _interested(self, qpi: QueuedPodInfo, event: ClusterEvent) -> bool:
        if event is UNSCHEDULABLE_TIMEOUT:
            return True
        plugins = qpi.unschedulable_plugins | qpi.pending_plugins
        if not plugins:
            return True
        for name in plugins:
            registered = self.events_by_plugin.get(name)
            if registered is None:
                return True  # a plugin that says nothing may be helped by anything
            for ev in registered:
                if ev.covers(event):
                    return True
        return False

    def move_all_to_active_or_backoff(
        self, event: ClusterEvent, pred: Callable[[QueuedPodInfo], bool] | None = None
    ) -> int:
        """A cluster event: pods it may help leave unschedulablePods. Returns how many moved."""
        self.move_request_cycle = self.scheduling_cycle
        moved = 0
        for qpi in list(self.unschedulable.values()):
            if qpi.gated:
                continue
            if self._interested(qpi, event) and (pred is None or pred(qpi)):
                self._requeue(qpi)
                moved += 1
        return moved

    def flush_backoff_completed(self) -> int:
        now = self.clock()
        moved = 0
        while self._backoff and self._backoff[0][0] <= now:
            expiry, _, key = heapq.heappop(self._backoff)
            cur = self._backoff_map.get(key)
            if cur is None or cur[0] != expiry:
                continue  # stale heap entry
            del self._backoff_map[key]
            self._push_active(cur[1])
            moved += 1
        self._arm_backoff_timer()
        return moved

    def flush_unschedulable_leftover(self) -> int:
        now = self.clock()
        moved = 0
        for qpi in list(self.unschedulable.values()):
            if not qpi.gated and now - qpi.timestamp >= self.unschedulable_timeout:
                self._requeue(qpi)
                moved += 1
        return moved

    def close(self) -> None:
        self.closed = True
        for t in (self._backoff_timer, self._leftover_timer):
            if t is not None:
                t.cancel()
        self._backoff_timer = self._leftover_timer = None
        self._signal()

    def debug(self) -> dict[str, Any]:
        return {"cycle": self.scheduling_cycle, **self.pending()}
