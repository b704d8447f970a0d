"""The scheduler's cache: nodes and the pods placed on them, including assumed pods.

A pod is *assumed* on its node the moment the scheduling cycle picks the node, before the
binding is written, so the next cycle already counts its resources. The informer later shows
the pod bound (``add_pod``: confirmed); a failed binding ``forget_pod``s it; an assumed pod whose
binding finished but that the informer never shows is dropped after ``assumed_ttl``.

``update_snapshot`` is the per-cycle hot path: NodeInfo objects are shared, not copied (the
cycle never awaits while it reads them), and the node lists are rebuilt only when nodes come or
go or a pod with (anti-)affinity changes the affinity lists.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from kubeha.scheduler.framework import Snapshot
from kubeha.scheduler.nodeinfo import NodeInfo, PodInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_ASSUMED_TTL = 30.0


class Cache:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, assumed_ttl: float = DEFAULT_ASSUMED_TTL
    ) -> None:
        self.clock = clock
        self.assumed_ttl = assumed_ttl
        self.nodes: dict[str, NodeInfo] = {}
        self.pods: dict[str, PodInfo] = {}  # key -> the PodInfo placed on its node
        self.assumed: dict[str, float | None] = {}  # key -> expiry (None: binding still running)
        self._expiry: list[tuple[float, str]] = []
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.image_nodes: dict[str, int] = {}
        self.label_keys: dict[str, int] = {}
        self._lists_gen = 0  # bumped when the snapshot's node lists must be rebuilt

    # -- nodes ------------------------------------------------------------------------------------

    def _images_changed(self, old: dict[str, int], new: dict[str, int]) -> None:
        for name in old.keys() - new.keys():
            n = self.image_nodes.get(name, 0) - 1
            if n > 0:
                self.image_nodes[name] = n
            else:
                self.image_nodes.pop(name, None)
        for name in new.keys() - old.keys():
            self.image_nodes[name] = self.image_nodes.get(name, 0) + 1

    def _count_keys(self, labels: dict[str, str], delta: int) -> None:
        for k in labels:
            n = self.label_keys.get(k, 0) + delta
            if n > 0:
                self.label_keys[k] = n
            else:
                self.label_keys.pop(k, None)

    def add_node(self, node: Obj) -> NodeInfo:
        name = (node.get("metadata") or {}).get("name") or ""
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo()
        had_node = ni.node is not None
        old_images = ni.images
        if had_node:
            self._count_keys(ni.labels, -1)
        ni.set_node(node)
        self._count_keys(ni.labels, 1)
        self._images_changed(old_images, ni.images)
        if not had_node:
            self._lists_gen += 1
        return ni

    update_node = add_node

    def remove_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name") or ""
        ni = self.nodes.get(name)
        if ni is None:
            return
        self._images_changed(ni.images, {})
        if ni.node is not None:
            self._count_keys(ni.labels, -1)
        if ni.pods:
            # Pods still point at it: keep their sums until they are deleted too (not schedulable).
            ni.node = None
            ni.images = {}
        else:
            del self.nodes[name]
        self._lists_gen += 1

    # -- pods -------------------------------------------------------------------------------------

    def _place(self, pi: PodInfo) -> None:
        ni = self.nodes.get(pi.node_name)
        if ni is None:
            ni = self.nodes[pi.node_name] = NodeInfo()  # the pod's node is not known (yet)
        ni.add_pod(pi)
        self.pods[pi.key] = pi
        if pi.has_affinity():
            self._lists_gen += 1

    def _unplace(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        ni = self.nodes.get(pi.node_name)
        if ni is not None:
            ni.remove_pod(key)
            if ni.node is None and not ni.pods:
                del self.nodes[pi.node_name]
        if pi.has_affinity():
            self._lists_gen += 1
        return pi

    def assume_pod(self, pi: PodInfo) -> None:
        """Place a pod the scheduler chose a node for (``pi.node_name``) before it is bound."""
        if pi.key in self.pods:
            raise ValueError(f"pod {pi.key} is already in the cache")
        self._place(pi)
        self.assumed[pi.key] = None

    def finish_binding(self, key: str) -> None:
        """The binding was written: start the clock on hearing it back from the informer."""
        if key in self.assumed:
            deadline = self.clock() + self.assumed_ttl
            self.assumed[key] = deadline
            heapq.heappush(self._expiry, (deadline, key))

    def forget_pod(self, key: str) -> None:
        """Undo an assumption (binding failed)."""
        if self.assumed.pop(key, "absent") != "absent":
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def add_pod(self, pod: Obj) -> PodInfo:
        """A bound pod from the informer (confirms an assumed one)."""
        pi = PodInfo(pod)
        self.assumed.pop(pi.key, None)
        self._unplace(pi.key)
        self._place(pi)
        return pi

    def update_pod(self, old: Obj, new: Obj) -> PodInfo:
        return self.add_pod(new)

    def remove_pod(self, pod: Obj) -> PodInfo | None:
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace', '')}/{md.get('name', '')}"
        self.assumed.pop(key, None)
        return self._unplace(key)

    def cleanup_assumed(self) -> int:
        """Drop assumed pods whose binding finished ``assumed_ttl`` ago without confirmation."""
        now = self.clock()
        dropped = 0
        while self._expiry and self._expiry[0][0] <= now:
            deadline, key = heapq.heappop(self._expiry)
            if self.assumed.get(key) == deadline:
                log.warning("assumed pod %s expired (binding never observed)", key)
                del self.assumed[key]
                self._unplace(key)
                dropped += 1
        return dropped

    # -- namespaces -------------------------------------------------------------------------------

    def set_namespace(self, ns: Obj) -> None:
        md = ns.get("metadata") or {}
        self.namespace_labels[md.get("name", "")] = md.get("labels") or {}

    def remove_namespace(self, ns: Obj) -> None:
        self.namespace_labels.pop((ns.get("metadata") or {}).get("name", ""), None)

    # -- snapshots --------------------------------------------------------------------------------

    def update_snapshot(self, snap: Snapshot) -> Snapshot:
        if self._expiry:
            self.cleanup_assumed()
        if snap.generation != self._lists_gen:
            infos = [ni for ni in self.nodes.values() if ni.node is not None]
            snap.node_infos = infos
            snap.node_map = {ni.name: ni for ni in infos}
            snap.have_pods_with_affinity = [ni for ni in infos if ni.pods_with_affinity]
            snap.have_pods_with_required_anti_affinity = [ni for ni in infos if ni.pods_with_required_anti_affinity]
            snap.generation = self._lists_gen
        snap.namespace_labels = self.namespace_labels
        snap.image_nodes = self.image_nodes
        snap.label_keys = self.label_keys
        return snap

    def dump(self) -> dict[str, Any]:
        return {
            "nodes": {n: sorted(ni.pods) for n, ni in self.nodes.items()},
            "assumed": sorted(self.assumed),
        }
