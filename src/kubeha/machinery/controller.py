"""The controller runner: informer events → keys in a work queue → N workers → ``reconcile(key)``.

A reconcile function gets a key (``namespace/name``), reads the current state from informer
caches and writes through the API with resourceVersion checks. It signals the outcome by:

- returning normally: done, the key's backoff is forgotten;
- raising (any exception): retried with the queue's per-key backoff;
- returning or raising ``Requeue()``: retried with backoff, without an error log;
- returning or raising ``Requeue(after=s)``: backoff forgotten, looked at again in ``s`` seconds.

The queue guarantees one key is never reconciled by two workers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol

from kubeha.api.errors import StatusError
from kubeha.machinery.indexer import meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue, ShutDown

log = logging.getLogger(__name__)

Obj = dict[str, Any]
KeyFunc = Callable[[Obj], str]


class Requeue(Exception):  # a result more than an error: raising it is allowed for convenience
    """Reconcile result (return or raise): look at the key again, after ``after`` s or with backoff."""

    def __init__(self, after: float | None = None) -> None:
        super().__init__(f"requeue after {after}s" if after is not None else "requeue")
        self.after = after


Reconcile = Callable[[str], Awaitable["Requeue | None"]]


class EventSource(Protocol):
    """What ``enqueue_on`` needs from an informer."""

    def add_event_handler(
        self,
        on_add: Callable[[Any], None] | None = None,
        on_update: Callable[[Any, Any], None] | None = None,
        on_delete: Callable[[Any], None] | None = None,
    ) -> Any: ...


class Syncable(Protocol):
    async def wait_for_sync(self) -> Any: ...


def object_of(obj: Any) -> Obj | None:
    """The object itself, or the last known state inside a deletion tombstone (None if unknown)."""
    if isinstance(obj, dict):
        return obj
    inner = getattr(obj, "obj", None)
    return inner if isinstance(inner, dict) else None


def key_of(obj: Any, key_func: KeyFunc = meta_namespace_key) -> str | None:
    """The key of an object or of a deletion tombstone (which carries its key)."""
    if isinstance(obj, dict):
        return key_func(obj)
    key = getattr(obj, "key", None)
    if isinstance(key, str):
        return key
    inner = object_of(obj)
    return key_func(inner) if inner is not None else None


def enqueue_on(source: EventSource, queue: RateLimitingQueue, key_func: KeyFunc = meta_namespace_key) -> None:
    """Add the key of every added, updated or deleted object to ``queue``."""

    def add(obj: Any) -> None:
        key = key_of(obj, key_func)
        if key is not None:
            queue.add(key)

    source.add_event_handler(on_add=add, on_update=lambda old, new: add(new), on_delete=add)


def controller_ref(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def owner_key(obj: Obj, owner_kind: str, owner_group: str | None = None) -> str | None:
    """The key of ``obj``'s controlling owner if it is of ``owner_kind`` (and ``owner_group``)."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != owner_kind:
        return None
    if owner_group is not None and _group(str(ref.get("apiVersion") or "")) != owner_group:
        return None
    ns = (obj.get("metadata") or {}).get("namespace")
    name = ref.get("name") or ""
    return f"{ns}/{name}" if ns else str(name)


def enqueue_owner(
    source: EventSource, queue: RateLimitingQueue, owner_kind: str, owner_group: str | None = None
) -> None:
    """Enqueue the controlling owner of every changed dependent (e.g. a ReplicaSet for its pods).

    On update both the old and the new owner are enqueued when the controller reference moved,
    so the old owner notices it lost a dependent.
    """

    def add(obj: Any) -> None:
        inner = object_of(obj)
        key = owner_key(inner, owner_kind, owner_group) if inner is not None else None
        if key is not None:
            queue.add(key)

    def update(old: Any, new: Any) -> None:
        add(new)
        old_obj, new_obj = object_of(old), object_of(new)
        if old_obj is not None and (new_obj is None or controller_ref(old_obj) != controller_ref(new_obj)):
            add(old_obj)

    source.add_event_handler(on_add=add, on_update=update, on_delete=add)


class Controller:
    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        queue: RateLimitingQueue | None = None,
        workers: int = 1,
        *,
        max_retries: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.reconcile = reconcile
        self.queue = queue if queue is not None else RateLimitingQueue(name=name)
        self.workers = workers
        self.max_retries = max_retries  # None: retry forever (with capped backoff)

    async def run(self, wait_for: Iterable[Syncable] = ()) -> None:
        """Wait for the informers' first lists, then work until cancelled or the queue shuts down."""
        for informer in wait_for:
            await informer.wait_for_sync()
        log.info("controller %s: starting %d workers", self.name, self.workers)
        loop = asyncio.get_running_loop()
        tasks: Sequence[asyncio.Task[None]] = [
            loop.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            log.info("controller %s: stopped", self.name)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: Hashable) -> None:
        """Reconcile one key and file the outcome with the queue (the caller calls ``done``)."""
        try:
            result = await self.reconcile(str(key))
        except Requeue as r:
            result = r
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._retry(key, err)
            return
        if result is None:
            self.queue.forget(key)
        elif result.after is not None:
            self.queue.forget(key)
            self.queue.add_after(key, result.after)
        else:
            self.queue.add_rate_limited(key)

    def _retry(self, key: Hashable, err: Exception) -> None:
        retries = self.queue.num_requeues(key)
        if self.max_retries is not None and retries >= self.max_retries:
            log.warning("controller %s: dropping %s after %d retries: %s", self.name, key, retries, err)
            self.queue.forget(key)
            return
        # API errors are expected (conflicts, not found); anything else is a bug worth a traceback.
        log.warning(
            "controller %s: error syncing %s (retry %d): %s",
            self.name,
            key,
            retries + 1,
            err,
            exc_info=not isinstance(err, StatusError),
        )
        self.queue.add_rate_limited(key)
