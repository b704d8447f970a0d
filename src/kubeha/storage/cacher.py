"""The watch cache: one etcd watch per resource, lists, gets and watches served from memory.

A :class:`Cacher` lists its prefix once, then follows one etcd watch from the list's revision.
It keeps every current object (for lists and gets) and a ring buffer of the latest events (so
watches can start at a recent resourceVersion), and fans each event out to many
:class:`CacheWatcher` s, each with its own bounded queue: a client that cannot keep up is cut off
(:class:`WatcherTooSlow`) instead of slowing the others down.

When the etcd watch breaks, the cacher resumes it from the next revision, so watchers notice
nothing. When that revision is gone (compaction), the cacher re-lists and ends every watcher with
:class:`Compacted`: their clients re-watch, get 410 Expired and re-list, as upstream.

Objects handed out (by :meth:`Cacher.get`, :meth:`Cacher.list` and in events) are the cache's own:
callers must copy before changing them (copying every object on every list would be slow).
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable

from kubeha.api import errors
from kubeha.storage.interface import Compacted, StorageError, Unavailable
from kubeha.storage.store import Obj, ObjEvent, Store, closing, resource_version

log = logging.getLogger(__name__)

Predicate = Callable[[Obj], bool]

# keys per etcd Range while (re)listing: keeps single responses small for big resources
LIST_PAGE = 1000
# how often to ask etcd for a progress notification while someone waits for freshness
PROGRESS_INTERVAL = 0.1
# pause before retrying a broken watch or a failed list (doubling up to RETRY_MAX)
RETRY_INITIAL = 0.1
RETRY_MAX = 2.0


class WatcherTooSlow(StorageError):
    """The watcher's queue overflowed; it was terminated so others keep flowing."""


def filter_event(ev: ObjEvent, predicate: Predicate | None) -> ObjEvent | None:
    """``ev`` as seen through ``predicate`` (upstream semantics).

    An object entering the predicate is ADDED, one leaving it is DELETED (carrying its new
    state), one staying is MODIFIED; changes outside it are dropped.
    """
    if predicate is None:
        return ev
    if ev.type == "ADDED":
        return ev if predicate(ev.obj) else None
    if ev.type == "DELETED":
        return ev if predicate(ev.prev if ev.prev is not None else ev.obj) else None
    if ev.type != "MODIFIED":
        return ev
    now = predicate(ev.obj)
    before = ev.prev is not None and predicate(ev.prev)
    if now and before:
        return ev
    if now:
        return ObjEvent("ADDED", ev.obj, ev.prev, ev.revision, ev.key)
    if before:
        return ObjEvent("DELETED", ev.obj, ev.prev, ev.revision, ev.key)
    return None


class CacheWatcher:
    """One client's watch: an async iterator of :class:`ObjEvent` s.

    The iterator ends (StopAsyncIteration) after :meth:`close` or when the cacher stops; it raises
    :class:`WatcherTooSlow` when the client fell too far behind, and :class:`Compacted` when the
    cache had to re-list (the REST layer answers both the way upstream does: end the stream /
    410 Expired).
    """

    def __init__(
        self,
        cacher: Cacher,
        initial: list[ObjEvent],
        after_revision: int,
        predicate: Predicate | None,
        key_prefix: str | None,
        capacity: int,
    ) -> None:
        self._cacher = cacher
        self._initial = initial
        self._pos = 0
        self._after = after_revision  # live events at or below this revision were already covered
        self._predicate = predicate
        self._key_prefix = key_prefix
        self._capacity = capacity
        self._queue: deque[ObjEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closed = False
        self.last_revision = after_revision  # revision of the last event handed out

    # -- fed by the cacher --------------------------------------------------------------------

    def _offer(self, ev: ObjEvent) -> None:
        if self._closed or self._error is not None or ev.revision <= self._after:
            return
        if self._key_prefix is not None and not ev.key.startswith(self._key_prefix):
            return
        out = filter_event(ev, self._predicate)
        if out is None:
            return
        if len(self._queue) >= self._capacity:
            self._queue.clear()
            self._terminate(WatcherTooSlow(f"watcher fell {self._capacity} events behind"))
            return
        self._queue.append(out)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _terminate(self, error: BaseException | None) -> None:
        """End the stream; with ``error``, after the queued events, raise it."""
        if error is not None and self._error is None and not self._closed:
            self._error = error
        self._closed = True
        self._cacher._watchers.discard(self)
        self._wake()

    # -- used by the REST layer ---------------------------------------------------------------

    def close(self) -> None:
        """Stop watching; the iterator ends at once and queued events are dropped."""
        self._queue.clear()
        self._initial = []
        self._terminate(None)

    @property
    def bookmark_revision(self) -> int:
        """The revision a BOOKMARK may carry now: the cache's revision when this watcher has been
        handed everything it has, else the last revision handed out."""
        if self._pos >= len(self._initial) and not self._queue:
            return max(self.last_revision, self._cacher.applied_revision)
        return self.last_revision

    @property
    def pending(self) -> int:
        return len(self._initial) - self._pos + len(self._queue)

    def __aiter__(self) -> CacheWatcher:
        return self

    async def __anext__(self) -> ObjEvent:
        ev = await self.next()
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def next(self, timeout: float | None = None) -> ObjEvent | None:  # noqa: ASYNC109
        """The next event; None when the watch ended or ``timeout`` passed (then check
        :attr:`done` to tell which: the REST layer sends a BOOKMARK on a timeout)."""
        while True:
            if self._pos < len(self._initial):
                ev = self._initial[self._pos]
                self._pos += 1
                if self._pos == len(self._initial):
                    self._initial = []
                    self._pos = 0
                self.last_revision = max(self.last_revision, ev.revision)
                return ev
            if self._queue:
                ev = self._queue.popleft()
                self.last_revision = max(self.last_revision, ev.revision)
                return ev
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                if timeout is None:
                    await self._waiter
                else:
                    done, _ = await asyncio.wait([self._waiter], timeout=timeout)
                    if not done:
                        return None
            finally:
                self._waiter = None

    @property
    def done(self) -> bool:
        return self._closed and not self._queue and self._error is None and self._pos >= len(self._initial)


class Cacher:
    """Watch cache of the objects under one key prefix (e.g. ``/registry/pods/``)."""

    def __init__(
        self,
        store: Store,
        prefix: str,
        *,
        capacity: int = 10_000,
        key_func: Callable[[Obj], str] | None = None,
        watcher_queue: int = 1_000,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.capacity = capacity
        self.key_func = key_func  # not needed by the cache itself (etcd events carry keys)
        self.watcher_queue = watcher_queue
        self.ready = asyncio.Event()
        self.revision = 0  # newest revision seen (events and progress notifications)
        # Newest revision whose changes are in the cache (lists and events only). etcd 3.4 may
        # report progress past events it has not delivered yet (etcd#15220), so watchers start
        # after this revision, never after a progress-only one, or they could miss those events.
        self.applied_revision = 0
        self._objects: dict[str, Obj] = {}
        self._sorted: list[str] | None = None  # sorted keys, rebuilt lazily after adds/removes
        self._events: deque[ObjEvent] = deque()
        self._window_start = 0  # the buffer holds every event with revision > this
        self._watchers: set[CacheWatcher] = set()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # heap of (revision, seq, future)
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._progress_task: asyncio.Task[None] | None = None
        self.relists = 0  # how many times the cache had to re-list (for metrics and tests)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """List, start following the watch, and return once the cache is ready."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cacher {self.prefix}")
        ready = asyncio.create_task(self.ready.wait())
        try:
            await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self.ready.is_set() and self._task.done():
            self._task.result()  # re-raise what killed the loop

    async def stop(self) -> None:
        for t in (self._task, self._progress_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._task = self._progress_task = None
        for w in list(self._watchers):
            w._terminate(None)
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(Unavailable("watch cache stopped"))
        self._waiters.clear()
        self.ready.clear()

    async def _run(self) -> None:
        backoff = RETRY_INITIAL
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                # aclosing: close the etcd stream at once when we stop, not when GC finds it
                async with closing(self.store.watch(self.prefix, self.revision + 1, progress=True)) as evs:
                    async for ev in evs:
                        backoff = RETRY_INITIAL
                        self._apply(ev)
                raise Unavailable("etcd watch ended")
            except Compacted as e:
                log.warning("watch cache %s: %s; re-listing", self.prefix, e)
                need_list = True
            except StorageError as e:
                # resume from the next revision (or retry the list) after a short pause
                log.warning("watch cache %s: %s; retrying in %.1fs", self.prefix, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX)

    async def _relist(self) -> None:
        page = await self.store.list(self.prefix, limit=LIST_PAGE)
        revision = page.revision
        objects: dict[str, Obj] = {}
        while True:
            for obj, key in zip(page.items, page.keys, strict=True):
                objects[key] = obj
            if not page.more or page.last_key is None:
                break
            page = await self.store.list(self.prefix, revision=revision, limit=LIST_PAGE, start=page.last_key + "\0")
        first = not self.ready.is_set()
        self._objects = objects
        self._sorted = None
        self._events.clear()
        self._window_start = revision
        if not first:
            self.relists += 1
            # events between the old state and this list are lost: clients must re-list (410)
            for w in list(self._watchers):
                w._terminate(Compacted(w.last_revision, revision))
        self.revision = max(self.revision, revision) if first else revision
        self.applied_revision = revision
        self._resolve_waiters()
        self.ready.set()

    # -- applying events ----------------------------------------------------------------------

    def _apply(self, ev: ObjEvent) -> None:
        if ev.type == "BOOKMARK":
            self._advance(ev.revision)
            return
        prev = self._objects.get(ev.key)
        if ev.type == "DELETED":
            if prev is None:
                self._advance(ev.revision)
                return
            del self._objects[ev.key]
            self._sorted = None
            ev.prev = prev
        else:
            if prev is None:
                self._sorted = None
                ev.type = "ADDED"
            elif ev.type == "ADDED":  # a re-create we saw no delete for: still a change to watchers
                ev.type = "MODIFIED"
            self._objects[ev.key] = ev.obj
            ev.prev = prev
        if len(self._events) >= self.capacity:
            self._window_start = self._events.popleft().revision
        self._events.append(ev)
        self.applied_revision = max(self.applied_revision, ev.revision)
        for w in list(self._watchers):
            w._offer(ev)
        self._advance(ev.revision)

    def _advance(self, revision: int) -> None:
        if revision > self.revision:
            self.revision = revision
            self._resolve_waiters()

    def _resolve_waiters(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.revision:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    # -- reads --------------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._objects.get(key)

    def __len__(self) -> int:
        return len(self._objects)

    def _keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self._objects)
        return self._sorted

    def _key_prefix(self, prefix: str | None) -> str | None:
        """Accept a full key prefix or a bare namespace name."""
        if not prefix:
            return None
        if prefix.startswith("/"):
            return prefix
        return f"{self.prefix}{prefix}/"

    def any_under(self, namespace_prefix: str | None) -> bool:
        """Whether the cache holds any object under the prefix (or bare namespace name)."""
        return bool(self._keys_under(self._key_prefix(namespace_prefix)))

    def _keys_under(self, prefix: str | None) -> list[str]:
        keys = self._keys()
        if prefix is None:
            return keys
        lo = bisect.bisect_left(keys, prefix)
        hi = bisect.bisect_left(keys, prefix + "\U0010ffff", lo)
        return keys[lo:hi]

    async def wait_fresh(self, revision: int, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Return once the cache has seen ``revision``; 504 "Too large resource version" after
        ``timeout``, as upstream."""
        if self.revision >= revision and self.ready.is_set():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._seq), fut))
        if self.ready.is_set():
            self._resolve_waiters()
        self._ensure_progress_requests()
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise errors.StatusError(
                504,
                "Timeout",
                f"Too large resource version: {revision}, current: {self.revision}",
                {
                    "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    "retryAfterSeconds": 1,
                },
            ) from None
        finally:
            if not fut.done():  # timed out or cancelled: forget it
                self._waiters = [w for w in self._waiters if w[2] is not fut]
                heapq.heapify(self._waiters)

    def _ensure_progress_requests(self) -> None:
        if self._progress_task is None or self._progress_task.done():
            self._progress_task = asyncio.create_task(self._request_progress(), name=f"progress {self.prefix}")

    async def _request_progress(self) -> None:
        # Our prefix may see no event at the wanted revision (it was a write elsewhere): etcd's
        # progress notification tells us the watch has caught up with it anyway.
        while self._waiters:
            with contextlib.suppress(StorageError):
                await self.store.kv.request_progress(self.prefix)
            await asyncio.sleep(PROGRESS_INTERVAL)

    async def list(
        self,
        *,
        predicate: Predicate | None = None,
        namespace_prefix: str | None = None,
        min_revision: int = 0,
    ) -> tuple[list[Obj], int]:
        """Current objects (sorted by key), optionally under a namespace (a key prefix such as
        ``/registry/pods/default/``, or the bare namespace name) and matching ``predicate``;
        and the cache revision they are at. With ``min_revision``, first wait until the cache
        has seen it."""
        if min_revision:
            await self.wait_fresh(min_revision)
        elif not self.ready.is_set():
            await self.wait_fresh(1)
        objects = self._objects
        keys = self._keys_under(self._key_prefix(namespace_prefix))
        if predicate is None:
            return [objects[k] for k in keys], self.revision
        return [o for k in keys if predicate(o := objects[k])], self.revision

    def watch(
        self,
        from_revision: int,
        *,
        predicate: Predicate | None = None,
        key_prefix: str | None = None,
        queue_size: int | None = None,
    ) -> CacheWatcher:
        """Watch from ``from_revision`` (exclusive; 0 = ADDED events for every current object,
        then changes). Raises Compacted when that revision is older than the cache keeps, and
        Unavailable before the cache is ready."""
        if not self.ready.is_set():
            raise Unavailable(f"watch cache for {self.prefix} is not ready")
        prefix = self._key_prefix(key_prefix)
        initial: builtins.list[ObjEvent] = []
        if from_revision == 0:
            for k in self._keys_under(prefix):
                o = self._objects[k]
                if predicate is None or predicate(o):
                    initial.append(ObjEvent("ADDED", o, None, _rv(o), k))
            after = self.applied_revision
        elif from_revision < self._window_start:
            raise Compacted(from_revision, self._window_start)
        else:
            for ev in self._events_after(from_revision):
                if prefix is not None and not ev.key.startswith(prefix):
                    continue
                out = filter_event(ev, predicate)
                if out is not None:
                    initial.append(out)
            after = max(self.applied_revision, from_revision)
        w = CacheWatcher(self, initial, after, predicate, prefix, queue_size or self.watcher_queue)
        w.last_revision = from_revision or self.applied_revision
        self._watchers.add(w)
        return w

    def _events_after(self, revision: int) -> builtins.list[ObjEvent]:
        out: builtins.list[ObjEvent] = []
        for ev in reversed(self._events):
            if ev.revision <= revision:
                break
            out.append(ev)
        out.reverse()
        return out

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)


def _rv(obj: Obj) -> int:
    try:
        return int(resource_version(obj))
    except ValueError:
        return 0
