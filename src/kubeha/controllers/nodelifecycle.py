"""node-lifecycle: node health from heartbeats, condition taints, and NoExecute eviction.

Two parts, as upstream's node lifecycle controller:

- **Monitor** (every ``--node-monitor-period``): a node is healthy while its kubelet heartbeats,
  i.e. its Lease ``kube-node-lease/<node>`` renewTime or its Ready condition's heartbeat changes.
  What counts is when *this process* saw the change, by its own monotonic clock (clocks of other
  hosts are never compared). After ``--node-monitor-grace-period`` without one, the node's
  conditions become Unknown (reason ``NodeStatusUnknown``) and its pods are marked not Ready.
  Taints follow the Ready condition: ``node.kubernetes.io/unreachable`` (Unknown) or
  ``node.kubernetes.io/not-ready`` (False), each with NoSchedule and NoExecute; they are removed
  when the node is Ready again.
- **Taint manager**: a pod on a node with NoExecute taints is deleted once its tolerations run
  out: at once when some taint is not tolerated, after the smallest matching
  ``tolerationSeconds`` (counted from the taint's ``timeAdded``) otherwise, never when every
  matching toleration is unbounded. Waiting is a delayed work-queue add, not polling.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import LEASES, NODES, PODS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.podcontrol import format_time, parse_time
from kubeha.machinery.controller import Controller, Requeue, object_of
from kubeha.machinery.indexer import meta_namespace_key
from kubeha.machinery.tasks import guarded
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Clock = Callable[[], float]

NODE_LEASE_NAMESPACE = "kube-node-lease"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
NO_EXECUTE, NO_SCHEDULE = "NoExecute", "NoSchedule"
# conditions the kubelet reports and the monitor turns Unknown when it goes silent
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
# NoSchedule taints kept in step with conditions (upstream's "taint nodes by condition")
CONDITION_TAINTS = {
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
MANAGED_TAINT_KEYS = frozenset({TAINT_UNREACHABLE, TAINT_NOT_READY, *CONDITION_TAINTS.values()})
NODE_NAME_INDEX = "nodelifecycle/spec.nodeName"  # unique per process: informers are shared


# -- taints and tolerations -----------------------------------------------------------------------


def toleration_tolerates(tol: Obj, taint: Obj) -> bool:
    """Whether one toleration tolerates one taint (upstream ``ToleratesTaint``)."""
    effect = tol.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = tol.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (tol.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def eviction_at(pod: Obj, taints: list[Obj], observed: float) -> float | None:
    """When (wall-clock seconds) the taint manager deletes ``pod`` given its node's taints; None
    when never. ``observed`` stands in for a NoExecute taint without ``timeAdded``."""
    no_execute = [t for t in taints if t.get("effect") == NO_EXECUTE]
    if not no_execute:
        return None
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    deadline: float | None = None
    for taint in no_execute:
        matching = [t for t in tolerations if toleration_tolerates(t, taint)]
        if not matching:
            added = parse_time(taint.get("timeAdded"))
            return added if added is not None else observed
        bounded = [t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None]
        if len(bounded) < len(matching):
            continue  # a toleration without a bound tolerates this taint forever
        added = parse_time(taint.get("timeAdded"))
        at = (added if added is not None else observed) + max(0, min(int(s) for s in bounded))
        deadline = at if deadline is None else min(deadline, at)
    return deadline


def condition(node: Obj, typ: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == typ:
            return c
    return None


def desired_taints(node: Obj, now: str) -> list[Obj]:
    """The node's taints with the managed ones recomputed from its conditions (others kept as
    they are; a managed taint that stays keeps its ``timeAdded``)."""
    current = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    want: list[tuple[str, str]] = []
    ready = condition(node, "Ready")
    status = (ready or {}).get("status", "Unknown") if ready is not None else None
    if status == "Unknown":
        want += [(TAINT_UNREACHABLE, NO_SCHEDULE), (TAINT_UNREACHABLE, NO_EXECUTE)]
    elif status == "False":
        want += [(TAINT_NOT_READY, NO_SCHEDULE), (TAINT_NOT_READY, NO_EXECUTE)]
    for (typ, st), key in CONDITION_TAINTS.items():
        c = condition(node, typ)
        if c is not None and c.get("status") == st:
            want.append((key, NO_SCHEDULE))
    out = [t for t in current if t.get("key") not in MANAGED_TAINT_KEYS]
    for key, effect in want:
        existing = next((t for t in current if t.get("key") == key and t.get("effect") == effect), None)
        if existing is not None:
            out.append(existing)
        else:
            taint: Obj = {"key": key, "effect": effect}
            if effect == NO_EXECUTE:
                taint["timeAdded"] = now
            out.append(taint)
    return out


def _taint_set(taints: list[Obj]) -> set[tuple[str, str, str]]:
    return {(str(t.get("key")), str(t.get("value") or ""), str(t.get("effect"))) for t in taints}


# -- node health --------------------------------------------------------------------------------


@dataclass
class NodeHealth:
    """What we last saw of a node's heartbeats and when (local monotonic time)."""

    probe_time: float
    lease_renew: str = ""
    ready_heartbeat: str = ""


def heartbeats(node: Obj, lease: Obj | None) -> tuple[str, str]:
    renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
    ready = condition(node, "Ready")
    return renew, str((ready or {}).get("lastHeartbeatTime") or "")


def observe(health: NodeHealth | None, node: Obj, lease: Obj | None, now: float) -> NodeHealth:
    """Fold the current heartbeats into ``health``: any change moves the probe time to ``now``."""
    renew, beat = heartbeats(node, lease)
    if health is None:
        return NodeHealth(now, renew, beat)
    if renew != health.lease_renew or beat != health.ready_heartbeat:
        health.probe_time, health.lease_renew, health.ready_heartbeat = now, renew, beat
    return health


def unknown_conditions(node: Obj, now: str) -> list[Obj] | None:
    """The node's conditions with the kubelet's ones turned Unknown; None if already so."""
    conds = [dict(c) for c in (node.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    changed = False
    have = {c.get("type") for c in conds}
    for c in conds:
        if c.get("type") in KUBELET_CONDITIONS and c.get("status") != "Unknown":
            c.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
                lastTransitionTime=now,
            )
            changed = True
    for typ in KUBELET_CONDITIONS:
        if typ not in have:
            conds.append(
                {
                    "type": typ,
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            )
            changed = True
    return conds if changed else None


def _node_name_index(pod: Obj) -> list[str]:
    name = (pod.get("spec") or {}).get("nodeName")
    return [name] if name else []


def _lease_key(node_name: str) -> str:
    return f"{NODE_LEASE_NAMESPACE}/{node_name}"


class NodeLifecycleController:
    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.client = ctx.client
        self.options = ctx.options
        self.recorder = ctx.recorder("node-controller")
        self.clock = clock
        self.wall = wall
        self.nodes = ctx.informers.informer_for(NODES)
        self.leases = ctx.informers.informer_for(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self.pods = ctx.informers.informer_for(PODS, indexers={NODE_NAME_INDEX: _node_name_index})
        self.health: dict[str, NodeHealth] = {}
        # taint manager: pods keyed namespace/name, looked at when their node's taints change
        self.queue = RateLimitingQueue(name="taint-eviction")
        self.evictions = Controller("taint-eviction", self.sync_pod, self.queue, workers=ctx.options.concurrent_syncs)
        self.pods.add_event_handler(on_add=self._pod_changed, on_update=lambda o, n: self._pod_changed(n))
        self.nodes.add_event_handler(on_add=self._node_changed, on_update=self._node_updated, on_delete=self._node_gone)

    # -- handlers -----------------------------------------------------------------------------

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            n = self.nodes.indexer.get(node)
            if n is not None and any(t.get("effect") == NO_EXECUTE for t in (n.get("spec") or {}).get("taints") or []):
                self.queue.add(meta_namespace_key(pod))

    def _node_changed(self, node: Obj) -> None:
        if any(t.get("effect") == NO_EXECUTE for t in (node.get("spec") or {}).get("taints") or []):
            self._enqueue_pods_of(str(node["metadata"]["name"]))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        old_ne = [t for t in (old.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]
        new_ne = [t for t in (new.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]
        if _taint_set(old_ne) != _taint_set(new_ne):
            self._enqueue_pods_of(str(new["metadata"]["name"]))

    def _node_gone(self, obj: Any) -> None:
        node = object_of(obj)
        if node is not None:
            self.health.pop(str((node.get("metadata") or {}).get("name")), None)

    def _enqueue_pods_of(self, node_name: str) -> None:
        for pod in self.pods.indexer.by_index(NODE_NAME_INDEX, node_name):
            self.queue.add(meta_namespace_key(pod))

    # -- taint manager ------------------------------------------------------------------------

    async def sync_pod(self, key: str) -> Requeue | None:
        pod = self.pods.indexer.get(key)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        node = self.nodes.indexer.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is None:
            return None
        now = self.wall()
        at = eviction_at(pod, (node.get("spec") or {}).get("taints") or [], now)
        if at is None:
            return None
        if at > now:
            return Requeue(after=at - now)
        md = pod["metadata"]
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            await self.client.delete(PODS, md["name"], md.get("namespace"), preconditions={"uid": md.get("uid")})
        except StatusError as err:
            if err.code not in (404, 409):
                raise
        log.info("taint manager: evicted pod %s from node %s", key, node["metadata"]["name"])
        return None

    # -- monitor ------------------------------------------------------------------------------

    async def monitor_once(self) -> None:
        """One pass over all nodes (upstream ``monitorNodeHealth``)."""
        now = self.clock()
        for node in list(self.nodes.indexer.list()):
            name = str(node["metadata"]["name"])
            try:
                await self.check_node(name, now)
            except StatusError as err:
                log.info("node lifecycle: node %s: %s (retrying next period)", name, err)
            except ConnectionError as err:
                log.info("node lifecycle: node %s: %s", name, err)

    async def check_node(self, name: str, now: float) -> None:
        node = self.nodes.indexer.get(name)
        if node is None:
            return
        lease = self.leases.indexer.get(_lease_key(name))
        health = self.health[name] = observe(self.health.get(name), node, lease, now)
        ready = condition(node, "Ready")
        grace = self.options.node_monitor_grace_period
        if ready is None:
            grace = max(grace, self.options.node_startup_grace_period)
        stamp = format_time(self.wall())
        if now - health.probe_time > grace:
            conds = unknown_conditions(node, stamp)
            if conds is not None:
                was_ready = ready is not None and ready.get("status") == "True"
                new = copy.deepcopy(node)
                new.setdefault("status", {})["conditions"] = conds
                node = await self.client.update(NODES, new, subresource="status")
                log.info("node lifecycle: node %s stopped posting status; conditions now Unknown", name)
                if was_ready:
                    self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                    await self.mark_pods_not_ready(name)
        await self.sync_taints(node, stamp)

    async def sync_taints(self, node: Obj, stamp: str) -> None:
        current = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
        want = desired_taints(node, stamp)
        if _taint_set(current) == _taint_set(want):
            return
        new = copy.deepcopy(node)
        new.setdefault("spec", {})["taints"] = want
        if not want:
            new["spec"].pop("taints", None)
        await self.client.update(NODES, new)  # carries resourceVersion: a compare-and-swap

    async def mark_pods_not_ready(self, node_name: str) -> None:
        """Set Ready=False on the node's pods (upstream ``MarkPodsNotReady``)."""
        stamp = format_time(self.wall())
        for pod in self.pods.indexer.by_index(NODE_NAME_INDEX, node_name):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            conds = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
            target = next((c for c in conds if c.get("type") == "Ready"), None)
            if target is None or target.get("status") == "False":
                continue
            target.update(status="False", lastTransitionTime=stamp)
            new = copy.deepcopy(pod)
            new["status"]["conditions"] = conds
            try:
                await self.client.update(PODS, new, subresource="status")
                self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
            except StatusError as err:
                if err.code not in (404, 409):
                    raise

    async def run_monitor(self) -> None:
        while True:
            await self.monitor_once()
            await asyncio.sleep(self.options.node_monitor_period)

    async def run(self) -> None:
        for inf in (self.nodes, self.leases, self.pods):
            await inf.wait_for_sync()
        monitor = asyncio.create_task(
            guarded("node-lifecycle-monitor", self.run_monitor, restart_on_return=True), name="node-lifecycle-monitor"
        )
        try:
            await self.evictions.run()
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)


@register("nodelifecycle")
async def start(ctx: ControllerContext) -> None:
    ctl = NodeLifecycleController(ctx)
    await ctx.informers.start()
    await ctl.run()
