"""Shared state of one api-server app: storage, watch caches, settings, shutdown flag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubeha.api.registry import ResourceInfo
from kubeha.apiserver.config import ServerConfig

log = logging.getLogger(__name__)

CacherFactory = Callable[[Any, str], Any]


def _default_cacher_factory(store: Any, prefix: str) -> Any:
    from kubeha.storage.cacher import Cacher

    return Cacher(store, prefix)


class ApiContext:
    """What the handlers need; one per application."""

    def __init__(self, config: ServerConfig, store: Any, cacher_factory: CacherFactory | None = None) -> None:
        self.config = config
        self.store = store
        self._cacher_factory = cacher_factory or _default_cacher_factory
        # one watch cache per etcd prefix (resources sharing storage share a cache)
        self._cachers: dict[str, Any] = {}
        self._starting: dict[str, asyncio.Task[Any]] = {}
        self.shutting_down = asyncio.Event()
        self.watches = 0
        self.inflight = 0
        # False while the server creates the system objects (readyz waits for it, like upstream's
        # post-start hooks); in-process apps that skip that step are ready at once
        self.bootstrapped = True
        self.active_watchers: set[Any] = set()

    @property
    def kv(self) -> Any:
        return self.store.kv

    async def current_revision(self) -> int:
        """The latest etcd revision (for consistent reads from the cache)."""
        fn = getattr(self.store, "current_revision", None)
        if fn is not None:
            return int(await fn())
        return int(await self.kv.current_revision())

    async def cacher(self, info: ResourceInfo) -> Any:
        """The started watch cache for ``info``'s prefix (started on first use)."""
        prefix = info.key_prefix()
        c = self._cachers.get(prefix)
        if c is None:
            c = self._cacher_factory(self.store, prefix)
            self._cachers[prefix] = c
            self._starting[prefix] = asyncio.ensure_future(self._start(c))
        task = self._starting.get(prefix)
        if task is not None:
            await asyncio.shield(task)
        return c

    def ready_cacher(self, info: ResourceInfo) -> Any | None:
        """The watch cache for ``info`` if it is already serving, else None (and start it in the
        background): for hot paths that can fall back to etcd rather than wait for a cache."""
        c = self._cachers.get(info.key_prefix())
        if c is None:
            task = asyncio.ensure_future(self.cacher(info))
            # a cache that cannot start surfaces on its first real use; do not log it twice
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            return None
        starting = self._starting.get(info.key_prefix())
        if starting is not None and not starting.done():
            return None
        ready = getattr(c, "ready", None)
        if isinstance(ready, asyncio.Event) and not ready.is_set():
            return None
        return c

    @staticmethod
    async def _start(c: Any) -> None:
        res = c.start()
        if asyncio.iscoroutine(res):
            await res
        ready = getattr(c, "ready", None)
        if isinstance(ready, asyncio.Event):
            await ready.wait()
        elif callable(ready):
            r = ready()
            if asyncio.iscoroutine(r):
                await r

    def begin_shutdown(self) -> None:
        """Flip /readyz to failing and end every watch stream cleanly."""
        self.shutting_down.set()
        for w in list(self.active_watchers):
            w.close()

    async def close(self) -> None:
        for c in list(self._cachers.values()):
            try:
                res = c.stop()
                if asyncio.iscoroutine(res):
                    await res
            except Exception:  # a failing cache must not block shutdown
                log.exception("stopping a watch cache failed")
        self._cachers.clear()
