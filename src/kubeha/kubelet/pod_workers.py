"""One worker per pod that always syncs the newest desired state (upstream's podWorkers).

``update(uid, pod)`` records what the pod should be and wakes its worker; updates that arrive
while a sync runs are coalesced, so the next sync sees only the latest. ``wake(uid)`` asks for
another sync with the same state (a container died, a probe flipped, a back-off expired). A sync
returns how long until it wants to run again (None: only on the next update or wake), or
``DONE`` when the pod is finished with for good: then the worker ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DONE = -1.0
SyncFn = Callable[[str, Obj | None], Awaitable[float | None]]


@dataclass
class _Worker:
    pod: Obj | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    syncs: int = 0


class PodWorkers:
    def __init__(self, sync: SyncFn, *, retry_after: float = 1.0) -> None:
        self._sync = sync
        self._retry_after = retry_after
        self._workers: dict[str, _Worker] = {}

    def __contains__(self, uid: object) -> bool:
        return uid in self._workers

    def uids(self) -> list[str]:
        return list(self._workers)

    def pod(self, uid: str) -> Obj | None:
        w = self._workers.get(uid)
        return w.pod if w else None

    def update(self, uid: str, pod: Obj | None) -> None:
        """The desired state changed (``None``: the pod is gone from every source)."""
        w = self._workers.get(uid)
        if w is None:
            w = self._workers[uid] = _Worker(pod)
            w.task = asyncio.get_running_loop().create_task(self._run(uid, w), name=f"pod worker {uid}")
        w.pod = pod
        w.wake.set()

    def wake(self, uid: str) -> None:
        w = self._workers.get(uid)
        if w is not None:
            w.wake.set()

    async def _run(self, uid: str, w: _Worker) -> None:
        try:
            while True:
                await w.wake.wait()
                w.wake.clear()
                pod = w.pod  # the newest; anything arriving during the sync wakes us again
                try:
                    again = await self._sync(uid, pod)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("sync of pod %s failed", uid)
                    again = self._retry_after
                w.syncs += 1
                if again is not None and again < 0:
                    if w.pod is pod or w.pod is None:
                        return
                    continue  # a newer state arrived meanwhile: sync that
                if again is not None and not w.wake.is_set():
                    try:
                        await asyncio.wait_for(w.wake.wait(), again)
                    except TimeoutError:
                        w.wake.set()
        finally:
            if self._workers.get(uid) is w:
                del self._workers[uid]

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
