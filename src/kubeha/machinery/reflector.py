"""The reflector: keeps a store in step with one resource on the api-server.

It lists (in pages), hands the whole list to the store, then watches from the list's
resourceVersion with bookmarks so that resourceVersion keeps moving even when nothing it selects
changes. When a watch ends (server timeout, the api-server died, the load balancer moved us), it
watches again from the last resourceVersion it saw — on another api-server that is seamless. When
the server says that version is gone (410 Expired) it lists again. Errors back off exponentially
with jitter, capped at ~30 s. An idle reflector sends nothing: the open watch is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubeha.api.errors import StatusError
from kubeha.client.resources import ResourceRef
from kubeha.client.rest import ApiClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PAGE_SIZE = 500
# watch timeouts are random in this range so that many reflectors do not re-watch in lockstep
MIN_WATCH_TIMEOUT = 300
MAX_WATCH_TIMEOUT = 600
# a watch that ends sooner than this without delivering anything counts as a failure (no spinning)
MIN_HEALTHY_WATCH = 1.0


class ReflectorStore(Protocol):
    def replace(self, objs: list[Obj], rv: str) -> None: ...
    def add(self, obj: Obj) -> None: ...
    def update(self, obj: Obj) -> None: ...
    def delete(self, obj: Obj) -> None: ...


class Backoff:
    """Exponential backoff with jitter: initial, doubling, capped; reset after a success."""

    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self._rand = rand
        self.failures = 0

    def next(self) -> float:
        base = self.initial * self.factor ** min(self.failures, 32)
        self.failures += 1
        return min(self.cap, base * (1.0 + self.jitter * self._rand()))

    def reset(self) -> None:
        self.failures = 0


class Reflector:
    def __init__(
        self,
        client: ApiClient,
        res: ResourceRef,
        store: ReflectorStore,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
        watch_timeout: tuple[int, int] = (MIN_WATCH_TIMEOUT, MAX_WATCH_TIMEOUT),
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.res = res
        self.store = store
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff()
        self.last_sync_resource_version = ""
        self.has_synced = False
        # The first list may be served from the api-server's watch cache (resourceVersion "0",
        # as upstream: cheap when many clients start at once, and the watch that follows starts
        # inside that cache's window); after a 410 the list must be consistent ("").
        self._rv_expired = False
        self.lists = 0  # completed lists (the first one and every relist), for tests and metrics
        self.watches = 0  # watches opened

    def __repr__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"<Reflector {self.res}{where}>"

    async def run(self) -> None:
        """List and watch until cancelled."""
        need_list = True
        while True:
            try:
                if need_list:
                    await self.list_once()
                    need_list = False
                started = time.monotonic()
                delivered = await self.watch_once()
                if delivered or time.monotonic() - started >= MIN_HEALTHY_WATCH:
                    self.backoff.reset()
                    continue
                delay = self.backoff.next()
                log.debug("%r: watch ended at once; re-watching in %.1fs", self, delay)
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                if e.code == 410:
                    # our resourceVersion is older than the server keeps: start over from a list,
                    # a consistent one (a cache-served list could be older still)
                    log.info("%r: %s; re-listing", self, e.message)
                    need_list = True
                    self._rv_expired = True
                    if self.backoff.failures == 0:
                        self.backoff.failures = 1  # a second 410 in a row waits a little
                        continue
                delay = self.backoff.next()
                log.warning("%r: %s; retrying in %.1fs", self, e, delay)
            except ConnectionError as e:
                delay = self.backoff.next()
                log.warning("%r: %s; retrying in %.1fs", self, e, delay)
            except Exception:
                delay = self.backoff.next()
                log.exception("%r: unexpected error; retrying in %.1fs", self, delay)
            await asyncio.sleep(delay)

    async def list_once(self) -> None:
        """One full (paged) list, handed to the store as a replace."""
        items: list[Obj] = []
        token: str | None = None
        rv_param = None if self._rv_expired else "0"
        while True:
            try:
                page = await self.client.list(
                    self.res,
                    self.namespace,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    limit=self.page_size or None,
                    continue_=token,
                    resource_version=None if token else rv_param,
                )
            except StatusError as e:
                if e.code != 410 or not token:
                    raise
                # the continue token expired between pages: take everything in one go
                log.info("%r: continue token expired; listing without paging", self)
                page = await self.client.list(
                    self.res, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
                )
                items = []
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                rv = str(meta.get("resourceVersion") or "")
                break
        self.store.replace(items, rv)
        self._rv_expired = False
        self.last_sync_resource_version = rv
        self.has_synced = True
        self.lists += 1

    async def watch_once(self) -> bool:
        """One watch from the last resourceVersion until it ends; whether any event arrived."""
        delivered = False
        lo, hi = self.watch_timeout
        self.watches += 1
        stream = self.client.watch(
            self.res,
            self.namespace,
            resource_version=self.last_sync_resource_version or None,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=random.randint(lo, hi),
            allow_bookmarks=True,
        )
        async with contextlib.aclosing(stream):
            async for typ, obj in stream:
                if typ == "ADDED":
                    self.store.add(obj)
                elif typ == "MODIFIED":
                    self.store.update(obj)
                elif typ == "DELETED":
                    self.store.delete(obj)
                elif typ != "BOOKMARK":
                    log.warning("%r: unknown watch event type %r", self, typ)
                    continue
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.last_sync_resource_version = str(rv)
                delivered = True
        return delivered
