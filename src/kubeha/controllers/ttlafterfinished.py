"""ttl-after-finished: deletes finished Jobs ``ttlSecondsAfterFinished`` after they finished.

The finish time is the ``lastTransitionTime`` of the Job's Complete or Failed condition. A Job not
due yet is looked at again when it will be (a delayed queue add, no polling). Before deleting,
the Job is read fresh from the api-server and deleted with a resourceVersion precondition, so a
user who just changed the TTL wins, as upstream. Deletion is foreground: the pods go first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubeha.api.batch.v1 import is_finished
from kubeha.api.errors import StatusError
from kubeha.client.resources import JOBS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.podcontrol import parse_time
from kubeha.machinery.controller import Controller, Requeue
from kubeha.machinery.indexer import split_meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def finish_time(job: Obj) -> float | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime")) or parse_time(
                (job.get("status") or {}).get("completionTime")
            )
    return None


def expires_in(job: Obj, now: float) -> float | None:
    """Seconds until ``job`` may be deleted (<= 0: now); None when it never expires (yet)."""
    md = job.get("metadata") or {}
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or md.get("deletionTimestamp") or not is_finished(job)[0]:
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return finished + int(ttl) - now


class TTLAfterFinishedController:
    def __init__(self, ctx: ControllerContext, *, wall: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.wall = wall
        self.jobs = ctx.informers.informer_for(JOBS)
        self.queue = RateLimitingQueue(name="ttl-after-finished")
        self.controller = Controller("ttl-after-finished", self.sync, self.queue, workers=ctx.options.concurrent_syncs)
        self.jobs.add_event_handler(on_add=self._changed, on_update=lambda o, n: self._changed(n))

    def _changed(self, job: Obj) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and is_finished(job)[0]:
            md = job.get("metadata") or {}
            self.queue.add(f"{md.get('namespace')}/{md.get('name')}")

    async def sync(self, key: str) -> Requeue | None:
        job = self.jobs.indexer.get(key)
        if job is None:
            return None
        left = expires_in(job, self.wall())
        if left is None:
            return None
        if left > 0:
            return Requeue(after=left)
        ns, name = split_meta_namespace_key(key)
        try:
            fresh = await self.client.get(JOBS, name, ns)
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        left = expires_in(fresh, self.wall())
        if left is None:
            return None
        if left > 0:
            return Requeue(after=left)
        md = fresh["metadata"]
        try:
            await self.client.delete(
                JOBS,
                name,
                ns,
                propagation_policy="Foreground",
                preconditions={"uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")},
            )
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        log.info("ttl-after-finished: deleted job %s", key)
        return None

    async def run(self) -> None:
        await self.controller.run([self.jobs])


@register("ttl-after-finished")
async def start(ctx: ControllerContext) -> None:
    ctl = TTLAfterFinishedController(ctx)
    await ctx.informers.start()
    await ctl.run()
