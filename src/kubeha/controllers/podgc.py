"""The pod garbage collector: force-deletes pods nobody else will clean up.

Every ``GC_PERIOD`` seconds (upstream's period; this controller is periodic upstream too) it
deletes, with gracePeriodSeconds 0:

- terminated pods (Succeeded/Failed) beyond ``--terminated-pod-gc-threshold``, oldest first;
- pods bound to nodes that no longer exist, once the node has been missing for ``QUARANTINE``
  seconds and a live GET confirms it is gone (the node informer may lag);
- terminating pods that were never scheduled (no kubelet will ever finish them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import NODES, PODS
from kubeha.controllers.context import ControllerContext, register

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GC_PERIOD = 20.0
QUARANTINE = 40.0


def _md(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def terminated_to_delete(pods: list[Obj], threshold: int) -> list[Obj]:
    """The oldest terminated pods beyond ``threshold`` (0 disables this part)."""
    if threshold <= 0:
        return []
    done = [p for p in pods if terminated(p) and not _md(p).get("deletionTimestamp")]
    excess = len(done) - threshold
    if excess <= 0:
        return []
    done.sort(key=lambda p: (_md(p).get("creationTimestamp") or "", _md(p).get("name") or ""))
    return done[:excess]


def unscheduled_terminating(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if _md(p).get("deletionTimestamp") and not (p.get("spec") or {}).get("nodeName")]


@dataclass
class Quarantine:
    """Node names seen missing, with the time they were first missed."""

    since: dict[str, float] = field(default_factory=dict)

    def expired(self, missing: set[str], now: float, grace: float = QUARANTINE) -> set[str]:
        """Track ``missing`` names; those missing for at least ``grace`` seconds."""
        for name in list(self.since):
            if name not in missing:
                del self.since[name]  # it came back
        for name in missing:
            self.since.setdefault(name, now)
        return {n for n, t in self.since.items() if now - t >= grace}


def missing_nodes(pods: list[Obj], node_names: set[str]) -> set[str]:
    return {
        str((p.get("spec") or {}).get("nodeName"))
        for p in pods
        if (p.get("spec") or {}).get("nodeName") and (p.get("spec") or {}).get("nodeName") not in node_names
    }


class PodGC:
    def __init__(self, ctx: ControllerContext, period: float = GC_PERIOD, quarantine: float = QUARANTINE) -> None:
        self.client = ctx.client
        self.pods = ctx.informers.informer_for(PODS)
        self.nodes = ctx.informers.informer_for(NODES)
        self.threshold = ctx.options.terminated_pod_gc_threshold
        self.period = float(getattr(ctx.options, "pod_gc_period", period))
        self.grace = quarantine
        self.quarantine = Quarantine()

    async def run(self) -> None:
        await self.pods.wait_for_sync()
        await self.nodes.wait_for_sync()
        while True:
            try:
                await self.gc_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next period tries again
                log.exception("pod gc pass failed")
            await asyncio.sleep(self.period)

    async def gc_once(self, now: float | None = None) -> int:
        """One pass; the number of pods deleted."""
        now = time.monotonic() if now is None else now
        pods = self.pods.indexer.list()
        victims: dict[str, Obj] = {}
        for p in terminated_to_delete(pods, self.threshold):
            victims[_key(p)] = p
        names = {str(_md(n).get("name")) for n in self.nodes.indexer.list()}
        gone: set[str] = set()
        for node in self.quarantine.expired(missing_nodes(pods, names), now, self.grace):
            try:
                await self.client.get(NODES, node)
            except StatusError as e:
                if e.code == 404:
                    gone.add(node)
                    continue
                raise
            self.quarantine.since.pop(node, None)  # it exists: the informer lags
        for p in pods:
            if (p.get("spec") or {}).get("nodeName") in gone:
                victims[_key(p)] = p
        for p in unscheduled_terminating(pods):
            victims[_key(p)] = p
        deleted = 0
        for p in victims.values():
            md = _md(p)
            try:
                await self.client.delete(
                    PODS,
                    md.get("name", ""),
                    md.get("namespace"),
                    grace_period_seconds=0,
                    preconditions={"uid": md.get("uid")},
                )
                deleted += 1
            except StatusError as e:
                if e.code not in (404, 409):
                    log.warning("pod gc: deleting %s failed: %s", _key(p), e)
        if deleted:
            log.info("pod gc: force-deleted %d pods", deleted)
        return deleted


def _key(p: Obj) -> str:
    return f"{_md(p).get('namespace')}/{_md(p).get('name')}"


@register("podgc")
async def start(ctx: ControllerContext) -> None:
    gc = PodGC(ctx)
    await ctx.informers.start()
    await gc.run()
