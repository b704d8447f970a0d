"""Shared informers: one reflector and one indexed cache per resource, many event handlers.

Changes flow reflector → indexer → notifications. The cache is updated first, so a handler (and
the reconcile it triggers) always sees a cache at least as new as the event. Notifications go
through one queue drained by one task, in order; handlers are plain callables that must not block
(they typically enqueue a key). A relist is diffed against the cache: new objects are adds,
changed ones (by resourceVersion) updates, vanished ones deletes carrying the last known state.

A :class:`SharedInformerFactory` hands every controller of a process the same informer for the
same resource and selectors, so a process watches each resource once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeha.client.resources import ResourceRef
from kubeha.client.rest import ApiClient
from kubeha.machinery.indexer import NAMESPACE_INDEX, Indexer, IndexFunc, meta_namespace_key, namespace_index
from kubeha.machinery.reflector import Reflector

log = logging.getLogger(__name__)

Obj = dict[str, Any]
OnAdd = Callable[[Obj], None]
OnUpdate = Callable[[Obj, Obj], None]
OnDelete = Callable[[Obj], None]

_ADD, _UPDATE, _DELETE, _SYNCED = "add", "update", "delete", "synced"


@dataclass(eq=False)
class _Handler:
    on_add: OnAdd | None
    on_update: OnUpdate | None
    on_delete: OnDelete | None
    start_seq: int  # receives shared notifications numbered from here on


@dataclass
class _Note:
    kind: str
    old: Obj | None
    new: Obj | None
    seq: int = -1
    target: _Handler | None = None  # only for this handler (synthetic adds for a late handler)


def _rv(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


class _CacheStore:
    """What the reflector writes into: applies each change to the indexer, then queues its
    notification."""

    def __init__(self, informer: SharedInformer) -> None:
        self._inf = informer

    def replace(self, objs: list[Obj], rv: str) -> None:
        inf = self._inf
        before = {meta_namespace_key(o): o for o in inf.indexer.list()}
        inf.indexer.replace(objs, rv)
        for obj in objs:
            old = before.pop(meta_namespace_key(obj), None)
            if old is None:
                inf._notify(_ADD, None, obj)
            elif _rv(old) != _rv(obj):
                inf._notify(_UPDATE, old, obj)
        for old in before.values():
            inf._notify(_DELETE, old, None)
        if not inf._sync_queued:
            inf._sync_queued = True
            inf._notify(_SYNCED, None, None)

    def add(self, obj: Obj) -> None:
        old = self._inf.indexer.get(meta_namespace_key(obj))
        self._inf.indexer.add(obj)
        self._inf._notify(_ADD if old is None else _UPDATE, old, obj)

    update = add

    def delete(self, obj: Obj) -> None:
        old = self._inf.indexer.delete_key(meta_namespace_key(obj))
        if old is not None:  # a delete of something we never saw tells handlers nothing
            self._inf._notify(_DELETE, old, obj)


class SharedInformer:
    def __init__(
        self,
        client: ApiClient,
        res: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: dict[str, IndexFunc] | None = None,
        resync_period: float = 0,
    ) -> None:
        self.res = res
        self.namespace = namespace
        self.indexer = Indexer({NAMESPACE_INDEX: namespace_index, **(indexers or {})})
        self.reflector = Reflector(
            client,
            res,
            _CacheStore(self),
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
        )
        self.resync_period = resync_period
        self._handlers: list[_Handler] = []
        self._queue: asyncio.Queue[_Note] = asyncio.Queue()
        self._seq = 0
        self._sync_queued = False
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"<SharedInformer {self.res}{' in ' + self.namespace if self.namespace else ''}>"

    # -- handlers -----------------------------------------------------------------------------

    def add_event_handler(
        self, on_add: OnAdd | None = None, on_update: OnUpdate | None = None, on_delete: OnDelete | None = None
    ) -> None:
        """Register handlers. One added after objects are cached first gets an add for each of
        them, then every later change (never a change it already saw through those adds)."""
        handler = _Handler(on_add, on_update, on_delete, self._seq)
        self._handlers.append(handler)
        for obj in self.indexer.list():
            self._queue.put_nowait(_Note(_ADD, None, obj, target=handler))

    def _notify(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        self._queue.put_nowait(_Note(kind, old, new, self._seq))
        self._seq += 1

    def _dispatch(self, note: _Note) -> None:
        if note.kind == _SYNCED:
            self._synced.set()
            return
        targets = [note.target] if note.target else [h for h in self._handlers if h.start_seq <= note.seq]
        for h in targets:
            try:
                if note.kind == _ADD and h.on_add and note.new is not None:
                    h.on_add(note.new)
                elif note.kind == _UPDATE and h.on_update and note.old is not None and note.new is not None:
                    h.on_update(note.old, note.new)
                elif note.kind == _DELETE and h.on_delete:
                    # the watch's final state when there was one, else the last state we knew
                    obj = note.new if note.new is not None else note.old
                    if obj is not None:
                        h.on_delete(obj)
            except Exception:
                log.exception("%r: %s handler failed", self, note.kind)

    async def _deliver(self) -> None:
        while True:
            note = await self._queue.get()
            self._dispatch(note)

    async def _resync(self) -> None:
        # periodic "update" with unchanged objects: lets controllers re-check what they own
        while True:
            await asyncio.sleep(self.resync_period)
            if self._synced.is_set():
                for obj in self.indexer.list():
                    self._notify(_UPDATE, obj, obj)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def has_synced(self) -> bool:
        """The first list is in the cache and its adds were handed to the handlers."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 (the shared API)
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def start(self) -> None:
        if self._tasks:
            return
        name = f"informer {self.res}"
        self._tasks.append(asyncio.create_task(self._deliver(), name=f"{name} delivery"))
        self._tasks.append(asyncio.create_task(self.reflector.run(), name=f"{name} reflector"))
        if self.resync_period > 0:
            self._tasks.append(asyncio.create_task(self._resync(), name=f"{name} resync"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


_UNSET: Any = object()


class SharedInformerFactory:
    def __init__(self, client: ApiClient, *, namespace: str | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self._informers: dict[tuple[ResourceRef, str | None, str | None, str | None], SharedInformer] = {}

    def informer_for(
        self,
        res: ResourceRef,
        *,
        namespace: str | None = _UNSET,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: dict[str, IndexFunc] | None = None,
        resync_period: float = 0,
    ) -> SharedInformer:
        """The process's informer for ``res`` with these selectors (created on first request).
        Extra ``indexers`` are added to an existing informer's cache."""
        ns = self.namespace if namespace is _UNSET else namespace
        if not res.namespaced:
            ns = None
        key = (res, ns or None, label_selector or None, field_selector or None)
        inf = self._informers.get(key)
        if inf is None:
            inf = SharedInformer(
                self.client,
                res,
                namespace=ns,
                label_selector=label_selector,
                field_selector=field_selector,
                indexers=indexers,
                resync_period=resync_period,
            )
            self._informers[key] = inf
        elif indexers:
            inf.indexer.add_indexers(indexers)
        return inf

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    async def start(self) -> None:
        """Start every requested informer not running yet (call again after requesting more)."""
        for inf in list(self._informers.values()):
            await inf.start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 (the shared API)
        started = [inf for inf in self._informers.values() if inf.started]
        if not started:
            return True
        results = await asyncio.gather(*(inf.wait_for_sync(timeout) for inf in started))
        return all(results)

    async def stop(self) -> None:
        for inf in list(self._informers.values()):
            await inf.stop()
