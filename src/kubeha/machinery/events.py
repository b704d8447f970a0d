"""Event recorder: core/v1 Events with client-go's correlation (so ``kubectl describe`` shows
``x5 over 3m`` rather than five lines).

Per event, in the background sender, in this order (client-go ``EventCorrelator``):

1. aggregation: events that differ only in message (same object, type, reason, source) are
   counted per ``aggregate_window`` (10 min); past ``max_similar`` (10) distinct messages they are
   folded into one event whose message starts ``(combined from similar events): ``;
2. dedupe: an event identical to one already sent (same message too) PATCHes that event's
   ``count``, ``lastTimestamp`` and ``message`` instead of creating another;
3. spam filter: a token bucket per (source, object) — 25 burst, one token per 5 minutes — drops
   the excess.

``event()`` never blocks and never raises: it puts the event in a bounded queue and returns; when
the queue is full the event is dropped with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kubeha.api.errors import StatusError
from kubeha.client.resources import EVENTS
from kubeha.machinery.ratelimit import BucketRateLimiter

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"
COMBINED_PREFIX = "(combined from similar events): "
MAX_SIMILAR = 10
AGGREGATE_WINDOW = 600.0
CACHE_SIZE = 4096
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0


class EventClient(Protocol):
    """The part of ``kubeha.client.rest.ApiClient`` the recorder uses."""

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj: ...

    async def patch(
        self, res: Any, name: str, patch: Any, namespace: str | None = None, *, patch_type: str = ...
    ) -> Obj: ...


def format_time(dt: datetime) -> str:
    """metav1.Time's JSON form: RFC 3339, seconds precision, UTC."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Obj, field_path: str = "") -> Obj:
    """An ObjectReference to ``obj`` (kind and apiVersion from the object itself)."""
    meta = obj.get("metadata") or {}
    ref: Obj = {
        "kind": obj.get("kind", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v}


def _ref_key(ref: Obj) -> tuple[str, ...]:
    return tuple(str(ref.get(k, "")) for k in ("kind", "namespace", "name", "uid", "apiVersion"))


class _LRU(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class _Similar:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


@dataclass
class _Sent:
    name: str
    count: int
    first_timestamp: str


class EventRecorder:
    def __init__(
        self,
        client: EventClient,
        component: str,
        host: str | None = None,
        *,
        queue_size: int = 1000,
        max_similar: int = MAX_SIMILAR,
        aggregate_window: float = AGGREGATE_WINDOW,
        spam_burst: int = SPAM_BURST,
        spam_qps: float = SPAM_QPS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self.max_similar = max_similar
        self.aggregate_window = aggregate_window
        self.spam_burst = spam_burst
        self.spam_qps = spam_qps
        self.dropped = 0  # events lost to a full queue, the spam filter or failed writes
        self._clock = clock
        self._now = now
        self._retry_sleep = retry_sleep
        self._pending: asyncio.Queue[Obj] | None = None
        self._queue_size = queue_size
        self._task: asyncio.Task[None] | None = None
        self._similar = _LRU(CACHE_SIZE)  # aggregate key -> _Similar
        self._sent = _LRU(CACHE_SIZE)  # full event key -> _Sent
        self._spam = _LRU(CACHE_SIZE)  # (source, object) -> BucketRateLimiter
        self._last_nanos = 0

    # -- the caller's side ---------------------------------------------------------------------

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        """Record an event about ``obj``; returns at once (sending happens in the background)."""
        if type not in (NORMAL, WARNING):
            log.warning("event %s with unsupported type %r not sent", reason, type)
            return
        ev = self._make_event(object_reference(obj), type, reason, message)
        queue = self._queue()
        try:
            queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full, dropping event %s %s for %s", type, reason, ev["involvedObject"])
            return
        self._ensure_task()

    def eventf(self, obj: Obj, type: str, reason: str, fmt: str, *args: Any) -> None:
        self.event(obj, type, reason, fmt % args if args else fmt)

    def _queue(self) -> asyncio.Queue[Obj]:
        if self._pending is None:
            self._pending = asyncio.Queue(self._queue_size)
        return self._pending

    def _ensure_task(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: flush() or the first event inside the loop starts sending
        self._task = loop.create_task(self._run(), name=f"event-recorder-{self.component}")

    def _make_event(self, ref: Obj, type: str, reason: str, message: str) -> Obj:
        when = self._now()
        stamp = format_time(when)
        ns = ref.get("namespace") or "default"  # events about cluster-scoped objects live in "default"
        # Upstream names: <object name>.<unix nanoseconds in hex>.
        nanos = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
        # Our clock has microseconds only: keep names unique within this recorder.
        nanos = self._last_nanos = max(nanos, self._last_nanos + 1)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.get('name', '')}.{nanos:x}", "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }

    # -- the sender ------------------------------------------------------------------------------

    async def _run(self) -> None:
        queue = self._queue()
        while True:
            ev = await queue.get()
            try:
                await self._send(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.dropped += 1
                log.exception("event recorder: unexpected error sending %s", ev.get("reason"))
            finally:
                queue.task_done()

    async def flush(self) -> None:
        """Send everything queued so far (tests, and graceful shutdown)."""
        queue = self._queue()
        if self._task is not None and not self._task.done():
            await queue.join()
            return
        while not queue.empty():
            ev = queue.get_nowait()
            try:
                await self._send(ev)
            finally:
                queue.task_done()

    async def stop(self, flush: bool = True) -> None:
        if flush:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), 5.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def correlate(self, ev: Obj) -> tuple[Obj, tuple[Any, ...], _Sent | None] | None:
        """Apply aggregation, dedupe and the spam filter; None when the event is filtered.

        Returns (event to write, its dedupe key, what was sent for that key before if anything).
        """
        ref_key = _ref_key(ev["involvedObject"])
        source = (ev["source"]["component"], ev["source"]["host"])
        now = self._clock()
        agg_key = (source, ref_key, ev["type"], ev["reason"])
        similar = self._similar.get_fresh(agg_key)
        if similar is None or now - similar.last > self.aggregate_window:
            similar = _Similar()
            self._similar.put(agg_key, similar)
        similar.last = now
        similar.messages.add(ev["message"])
        if len(similar.messages) > self.max_similar:
            ev = {**ev, "message": COMBINED_PREFIX + ev["message"]}
            key: tuple[Any, ...] = (*agg_key, COMBINED_PREFIX)  # all combined events share one object
        else:
            key = (*agg_key, ev["message"])
        spam_key = (source, ref_key)
        bucket = self._spam.get_fresh(spam_key)
        if bucket is None:
            bucket = BucketRateLimiter(qps=self.spam_qps, burst=self.spam_burst, clock=self._clock)
            self._spam.put(spam_key, bucket)
        if not bucket.try_take():
            return None
        return ev, key, self._sent.get_fresh(key)

    async def _send(self, ev: Obj) -> None:
        correlated = self.correlate(ev)
        if correlated is None:
            self.dropped += 1
            log.debug("event %s for %s filtered as spam", ev["reason"], ev["involvedObject"])
            return
        ev, key, previous = correlated
        for attempt in range(3):
            try:
                if previous is not None:
                    count = previous.count + 1
                    patch = {"count": count, "lastTimestamp": ev["lastTimestamp"], "message": ev["message"]}
                    try:
                        await self.client.patch(
                            EVENTS, previous.name, patch, ev["metadata"]["namespace"], patch_type="merge"
                        )
                        self._sent.put(key, _Sent(previous.name, count, previous.first_timestamp))
                        return
                    except StatusError as err:
                        if err.code != 404:
                            raise
                        previous = None  # the event expired (TTL) or was deleted: start a new one
                created = await self.client.create(EVENTS, ev, ev["metadata"]["namespace"])
                name = (created.get("metadata") or {}).get("name") or ev["metadata"]["name"]
                self._sent.put(key, _Sent(name, int(created.get("count") or 1), ev["firstTimestamp"]))
                return
            except StatusError as err:
                if err.code in (400, 403, 404, 409, 422):  # will not get better by retrying (404: namespace gone)
                    log.warning("event %s for %s rejected: %s", ev["reason"], ev["involvedObject"], err)
                    self.dropped += 1
                    return
                log.info("event %s: write failed (%s), retrying", ev["reason"], err)
            except (OSError, ConnectionError) as err:
                log.info("event %s: write failed (%r), retrying", ev["reason"], err)
            await self._retry_sleep(0.5 * 2**attempt)
        self.dropped += 1
        log.warning("event %s for %s dropped after 3 tries", ev["reason"], ev["involvedObject"])
