"""Small default plugins: PrioritySort, SchedulingGates, NodeUnschedulable, NodeName,
TaintToleration, NodePorts and ImageLocality."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubeha.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    SKIP,
    SUCCESS,
    Action,
    ClusterEvent,
    CycleState,
    QueuedPodInfo,
    Resource_,
    Status,
    unresolvable,
    unschedulable,
)
from kubeha.scheduler.nodeinfo import NodeInfo, PodInfo, normalized_image_name

Obj = dict[str, Any]

ASSIGNED_POD_DELETE = ClusterEvent(Resource_.ASSIGNED_POD, Action.DELETE, "AssignedPodDelete")
NODE_TAINT = ClusterEvent(Resource_.NODE, Action.ADD | Action.UPDATE_NODE_TAINT, "NodeTaintChange")


class PrioritySort:
    """Higher spec.priority first; among equals, the pod that has waited longest."""

    name = "PrioritySort"

    def less(self, a: QueuedPodInfo, b: QueuedPodInfo) -> bool:
        pa, pb = a.pod_info.priority, b.pod_info.priority
        return pa > pb or (pa == pb and a.timestamp < b.timestamp)


class SchedulingGates:
    """Pods with spec.schedulingGates wait outside the active queue until the gates are gone."""

    name = "SchedulingGates"

    def pre_enqueue(self, pod: PodInfo) -> Status:
        gates = pod.spec.get("schedulingGates")
        if not gates:
            return SUCCESS
        names = ", ".join(str(g.get("name", "")) for g in gates)
        return unresolvable(self.name, f"waiting for scheduling gates: [{names}]")


# -- taints ------------------------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream's ToleratesTaint: an empty effect matches every effect, an empty key with
    operator Exists matches every taint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated_by(taint: Obj, tolerations: Iterable[Obj]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


_FILTER_EFFECTS = ("NoSchedule", "NoExecute")


def first_untolerated(taints: Iterable[Obj], tolerations: list[Obj], effects: tuple[str, ...]) -> Obj | None:
    for taint in taints:
        if taint.get("effect") in effects and not tolerated_by(taint, tolerations):
            return taint
    return None


class NodeUnschedulable:
    name = "NodeUnschedulable"
    _TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.unschedulable:
            return SUCCESS
        if tolerated_by(self._TAINT, pod.spec.get("tolerations") or ()):
            return SUCCESS
        return unresolvable(self.name, "node(s) were unschedulable")

    def events_to_register(self) -> list[ClusterEvent]:
        return [NODE_TAINT]


class NodeName:
    name = "NodeName"

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        want = pod.spec.get("nodeName")
        if not want or want == node.name:
            return SUCCESS
        return unresolvable(self.name, "node(s) didn't match the requested node name")

    def events_to_register(self) -> list[ClusterEvent]:
        return [NODE_ADD]


class TaintToleration:
    name = "TaintToleration"

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.taints:
            return SUCCESS
        taint = first_untolerated(node.taints, pod.spec.get("tolerations") or [], _FILTER_EFFECTS)
        if taint is None:
            return SUCCESS
        return unresolvable(
            self.name, f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"
        )

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status:
        # Only PreferNoSchedule taints score; skip the per-node work when no node has one.
        if not any(t.get("effect") == "PreferNoSchedule" for n in nodes for t in n.taints):
            return SKIP
        tols = [
            t
            for t in pod.spec.get("tolerations") or ()
            if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
        ]
        state.write(self.name, tols)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        tols = state.read(self.name) or []
        count = sum(1 for t in node.taints if t.get("effect") == "PreferNoSchedule" and not tolerated_by(t, tols))
        return count, SUCCESS

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> Status:
        default_normalize(scores, reverse=True)
        return SUCCESS

    def events_to_register(self) -> list[ClusterEvent]:
        return [NODE_TAINT]


def default_normalize(scores: list[int], reverse: bool, max_priority: int = MAX_NODE_SCORE) -> None:
    """Upstream's DefaultNormalizeScore: scale to 0..max by the highest score (optionally reversed)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [max_priority] * len(scores)
        return
    for i, s in enumerate(scores):
        s = max_priority * s // top
        scores[i] = max_priority - s if reverse else s


class NodePorts:
    name = "NodePorts"

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[None, Status]:
        if not pod.host_ports:
            return None, SKIP
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if pod.host_ports and node.used_ports and node.port_conflict(pod.host_ports):
            return unschedulable(self.name, "node(s) didn't have free ports for the requested pod ports")
        return SUCCESS

    def events_to_register(self) -> list[ClusterEvent]:
        return [ASSIGNED_POD_DELETE, NODE_ADD]


MB = 1024 * 1024
MIN_IMAGE_THRESHOLD = 23 * MB
MAX_CONTAINER_IMAGE_THRESHOLD = 1000 * MB


class ImageLocality:
    """Prefer nodes that already have the pod's images, weighted by size and by how widely the
    image is spread (so one node with the image does not attract every pod)."""

    name = "ImageLocality"

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status:
        if not self.handle.snapshot.image_nodes:
            return SKIP
        spec = pod.spec
        containers = list(spec.get("initContainers") or ()) + list(spec.get("containers") or ())
        images = [normalized_image_name(str(c.get("image") or "")) for c in containers if c.get("image")]
        state.write(self.name, (images, len(containers)))
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        images, n_containers = state.read(self.name)
        if not node.images:
            return 0, SUCCESS
        snap = self.handle.snapshot
        total = len(snap) or 1
        s = 0
        for img in images:
            size = node.images.get(img)
            if size is not None:
                s += int(size * snap.image_nodes.get(img, 0) / total)
        hi = MAX_CONTAINER_IMAGE_THRESHOLD * max(n_containers, 1)
        s = min(max(s, MIN_IMAGE_THRESHOLD), hi)
        return MAX_NODE_SCORE * (s - MIN_IMAGE_THRESHOLD) // (hi - MIN_IMAGE_THRESHOLD), SUCCESS
