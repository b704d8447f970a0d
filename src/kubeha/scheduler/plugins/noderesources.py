"""NodeResourcesFit (filter + LeastAllocated score) and NodeResourcesBalancedAllocation."""

from __future__ import annotations

from typing import Any

from kubeha.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    SKIP,
    SUCCESS,
    Action,
    ClusterEvent,
    CycleState,
    Resource_,
    Status,
    unschedulable,
)
from kubeha.scheduler.nodeinfo import CPU, MEMORY, NodeInfo, PodInfo

ASSIGNED_POD_FREED = ClusterEvent(
    Resource_.ASSIGNED_POD, Action.DELETE | Action.UPDATE_POD_SCALE_DOWN, "AssignedPodDeleteOrScaleDown"
)
NODE_ALLOCATABLE = ClusterEvent(Resource_.NODE, Action.ADD | Action.UPDATE_NODE_ALLOCATABLE, "NodeAllocatableChange")


def insufficient(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Upstream's fitsRequest reasons, in its order: pod count, cpu, memory, ephemeral, scalars."""
    out: list[str] = []
    alloc, used = node.allocatable, node.requested
    if len(node.pods) + 1 > alloc.allowed_pods:
        out.append("Too many pods")
    req = pod.requests
    if req.milli_cpu and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        out.append("Insufficient cpu")
    if req.memory and req.memory > alloc.memory - used.memory:
        out.append("Insufficient memory")
    if req.ephemeral_storage and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        out.append("Insufficient ephemeral-storage")
    for name, amount in req.scalar.items():
        if amount and amount > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            out.append(f"Insufficient {name}")
    return out


class NodeResourcesFit:
    """Filter: the pod's requests fit in allocatable minus what is requested already.
    Score (LeastAllocated): the share left free after placing the pod, cpu and memory weighted."""

    name = "NodeResourcesFit"

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        args = args or {}
        strategy = args.get("scoringStrategy") or {}
        self.strategy = strategy.get("type") or "LeastAllocated"
        res = strategy.get("resources") or [{"name": CPU, "weight": 1}, {"name": MEMORY, "weight": 1}]
        self.resources = [(str(r["name"]), int(r.get("weight") or 1)) for r in res]

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        # Fast path (the common case): plenty of room, no scalar resources involved.
        alloc, used, req = node.allocatable, node.requested, pod.requests
        if (
            len(node.pods) < alloc.allowed_pods
            and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
            and req.memory <= alloc.memory - used.memory
            and req.ephemeral_storage <= alloc.ephemeral_storage - used.ephemeral_storage
            and not req.scalar
        ):
            return SUCCESS
        reasons = insufficient(pod, node)
        if reasons:
            return unschedulable(self.name, *reasons)
        return SUCCESS

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Score every node at once (the hot path for the default cpu+memory LeastAllocated)."""
        if self.strategy != "LeastAllocated" or self.resources != [(CPU, 1), (MEMORY, 1)]:
            return [self.score(state, pod, n)[0] for n in nodes]
        pc, pm = pod.non_zero_cpu, pod.non_zero_mem
        out = []
        for n in nodes:
            a = n.allocatable
            ac, am = a.milli_cpu, a.memory
            rc, rm = n.non_zero_cpu + pc, n.non_zero_mem + pm
            sc = (ac - rc) * MAX_NODE_SCORE // ac if ac and rc <= ac else 0
            sm = (am - rm) * MAX_NODE_SCORE // am if am and rm <= am else 0
            out.append((sc + sm) // 2)
        return out

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        total = weights = 0
        most = self.strategy == "MostAllocated"
        for name, weight in self.resources:
            if name == CPU:
                alloc, req = node.allocatable.milli_cpu, node.non_zero_cpu + pod.non_zero_cpu
            elif name == MEMORY:
                alloc, req = node.allocatable.memory, node.non_zero_mem + pod.non_zero_mem
            else:
                alloc = node.allocatable.get(name)
                req = node.requested.get(name) + pod.requests.get(name)
                if not alloc:
                    continue  # upstream ignores extended resources a node does not have
            if alloc == 0 or req > alloc:
                s = MAX_NODE_SCORE if most and alloc else 0
                if most and req > alloc:
                    s = MAX_NODE_SCORE
            elif most:
                s = req * MAX_NODE_SCORE // alloc
            else:
                s = (alloc - req) * MAX_NODE_SCORE // alloc
            total += s * weight
            weights += weight
        return (total // weights if weights else 0), SUCCESS

    def events_to_register(self) -> list[ClusterEvent]:
        return [ASSIGNED_POD_FREED, NODE_ALLOCATABLE]


class NodeResourcesBalancedAllocation:
    """Prefer nodes whose cpu and memory would be used in similar proportions."""

    name = "NodeResourcesBalancedAllocation"

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status:
        if not pod.requests.milli_cpu and not pod.requests.memory:
            return SKIP  # a best-effort pod changes no balance
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        alloc, used, req = node.allocatable, node.requested, pod.requests
        fractions = []
        for a, r in ((alloc.milli_cpu, used.milli_cpu + req.milli_cpu), (alloc.memory, used.memory + req.memory)):
            if a:
                fractions.append(min(r / a, 1.0))
        if len(fractions) == 2:
            std = abs(fractions[0] - fractions[1]) / 2
        else:
            std = 0.0
        return int((1 - std) * MAX_NODE_SCORE), SUCCESS

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        pc, pm = pod.requests.milli_cpu, pod.requests.memory
        out = []
        for n in nodes:
            a, u = n.allocatable, n.requested
            if a.milli_cpu and a.memory:
                fc = (u.milli_cpu + pc) / a.milli_cpu
                fm = (u.memory + pm) / a.memory
                fc = 1.0 if fc > 1.0 else fc
                fm = 1.0 if fm > 1.0 else fm
                out.append(int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE))
            else:
                out.append(MAX_NODE_SCORE)
        return out

    def events_to_register(self) -> list[ClusterEvent]:
        return [ASSIGNED_POD_FREED, NODE_ALLOCATABLE]


__all__ = ["NODE_ADD", "NodeResourcesBalancedAllocation", "NodeResourcesFit", "insufficient"]
