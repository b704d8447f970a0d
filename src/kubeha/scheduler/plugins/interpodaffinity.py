"""InterPodAffinity: required and preferred pod affinity / anti-affinity, both the incoming
pod's terms and the required anti-affinity of pods already placed (symmetry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeha.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    SUCCESS,
    Action,
    ClusterEvent,
    CycleState,
    Resource_,
    Status,
    unresolvable,
    unschedulable,
)
from kubeha.scheduler.nodeinfo import AffinityTerm, NodeInfo, PodInfo

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
PRE_FILTER_KEY = "PreFilterInterPodAffinity"
NAME = "InterPodAffinity"
# Shared verdicts: a filled cluster rejects most nodes, so do not allocate one per node.
AFFINITY_FAILED = unresolvable(NAME, ERR_AFFINITY)
ANTI_AFFINITY_FAILED = unschedulable(NAME, ERR_ANTI_AFFINITY)
EXISTING_ANTI_AFFINITY_FAILED = unschedulable(NAME, ERR_EXISTING_ANTI_AFFINITY)
PRE_SCORE_KEY = "PreScoreInterPodAffinity"

Pair = tuple[str, str]


class _FilterState:
    __slots__ = ("affinity", "anti", "existing_anti")

    def __init__(self) -> None:
        self.existing_anti: dict[Pair, int] = {}  # domains where an existing pod's anti-affinity forbids us
        self.affinity: dict[Pair, int] = {}  # domains holding pods matching all our affinity terms
        self.anti: dict[Pair, int] = {}  # domains holding pods our anti-affinity terms match

    def clone(self) -> _FilterState:
        s = _FilterState()
        s.existing_anti, s.affinity, s.anti = dict(self.existing_anti), dict(self.affinity), dict(self.anti)
        return s


def _bump(counts: dict[Pair, int], key: str, labels: Mapping[str, str], delta: int) -> None:
    value = labels.get(key)
    if value is not None:
        pair = (key, value)
        counts[pair] = counts.get(pair, 0) + delta


def _all_match(terms: list[AffinityTerm], pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
    return bool(terms) and all(t.matches(pod, ns_labels) for t in terms)


class InterPodAffinity:
    name = NAME

    def __init__(self, handle: Any, args: dict[str, Any] | None = None) -> None:
        self.handle = handle
        self.hard_weight = int((args or {}).get("hardPodAffinityWeight", 1))

    # -- filter ---------------------------------------------------------------------------------

    def _account(self, st: _FilterState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int) -> None:
        ns_labels = self.handle.snapshot.namespace_labels
        labels = node.labels
        for t in other.required_anti_affinity:
            if t.matches(pod, ns_labels):
                _bump(st.existing_anti, t.topology_key, labels, delta)
        if pod.required_affinity and _all_match(pod.required_affinity, other, ns_labels):
            for t in pod.required_affinity:
                _bump(st.affinity, t.topology_key, labels, delta)
        for t in pod.required_anti_affinity:
            if t.matches(other, ns_labels):
                _bump(st.anti, t.topology_key, labels, delta)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[None, Status]:
        snap = self.handle.snapshot
        own = bool(pod.required_affinity or pod.required_anti_affinity)
        if not own and not snap.have_pods_with_required_anti_affinity:
            return None, SKIP
        st = _FilterState()
        ns_labels = snap.namespace_labels
        for node in snap.have_pods_with_required_anti_affinity:
            for other in node.pods_with_required_anti_affinity.values():
                for t in other.required_anti_affinity:
                    if t.matches(pod, ns_labels):
                        _bump(st.existing_anti, t.topology_key, node.labels, 1)
        if own:
            for node in snap.node_infos:
                labels = node.labels
                for other in node.pods.values():
                    if pod.required_affinity and _all_match(pod.required_affinity, other, ns_labels):
                        for t in pod.required_affinity:
                            _bump(st.affinity, t.topology_key, labels, 1)
                    for t in pod.required_anti_affinity:
                        if t.matches(other, ns_labels):
                            _bump(st.anti, t.topology_key, labels, 1)
        state.write(PRE_FILTER_KEY, st)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        st: _FilterState | None = state.read(PRE_FILTER_KEY)
        if st is None:
            return SUCCESS
        labels = node.labels
        if pod.required_affinity:
            pods_exist = True
            for t in pod.required_affinity:
                value = labels.get(t.topology_key)
                if value is None:
                    return AFFINITY_FAILED
                if st.affinity.get((t.topology_key, value), 0) <= 0:
                    pods_exist = False
            if not pods_exist:
                # The first pod of a group that selects itself may go anywhere (else none ever could).
                ns_labels = self.handle.snapshot.namespace_labels
                if st.affinity or not _all_match(pod.required_affinity, pod, ns_labels):
                    return AFFINITY_FAILED
        if st.anti:
            for t in pod.required_anti_affinity:
                value = labels.get(t.topology_key)
                if value is not None and st.anti.get((t.topology_key, value), 0) > 0:
                    return ANTI_AFFINITY_FAILED
        if st.existing_anti:
            for key, value in labels.items():
                if st.existing_anti.get((key, value), 0) > 0:
                    return EXISTING_ANTI_AFFINITY_FAILED
        return SUCCESS

    def add_pod(self, state: CycleState, pod: PodInfo, to_add: PodInfo, node: NodeInfo) -> Status:
        st = state.read(PRE_FILTER_KEY)
        if st is not None:
            self._account(st, pod, to_add, node, 1)
        return SUCCESS

    def remove_pod(self, state: CycleState, pod: PodInfo, to_remove: PodInfo, node: NodeInfo) -> Status:
        st = state.read(PRE_FILTER_KEY)
        if st is not None:
            self._account(st, pod, to_remove, node, -1)
        return SUCCESS

    # -- score ----------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status:
        snap = self.handle.snapshot
        own = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if not own and not snap.have_pods_with_affinity:
            return SKIP
        ns_labels = snap.namespace_labels
        scores: dict[Pair, int] = {}

        def term(t: AffinityTerm, target: PodInfo, labels: Mapping[str, str], weight: int) -> None:
            if weight and t.matches(target, ns_labels):
                _bump(scores, t.topology_key, labels, weight)

        for node in snap.node_infos if own else snap.have_pods_with_affinity:
            labels = node.labels
            for other in node.pods.values() if own else node.pods_with_affinity.values():
                for t in pod.preferred_affinity:
                    term(t, other, labels, t.weight)
                for t in pod.preferred_anti_affinity:
                    term(t, other, labels, -t.weight)
                if other.required_affinity and self.hard_weight:
                    for t in other.required_affinity:
                        term(t, pod, labels, self.hard_weight)
                for t in other.preferred_affinity:
                    term(t, pod, labels, t.weight)
                for t in other.preferred_anti_affinity:
                    term(t, pod, labels, -t.weight)
        if not scores:
            return SKIP
        by_key: dict[str, dict[str, int]] = {}
        for (k, v), s in scores.items():
            by_key.setdefault(k, {})[v] = s
        state.write(PRE_SCORE_KEY, by_key)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        by_key: dict[str, dict[str, int]] = state.read(PRE_SCORE_KEY)
        total = 0
        labels = node.labels
        for key, values in by_key.items():
            value = labels.get(key)
            if value is not None:
                total += values.get(value, 0)
        return total, SUCCESS

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> Status:
        if not scores:
            return SUCCESS
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * ((s - lo) / diff)) if diff > 0 else 0
        return SUCCESS

    def events_to_register(self) -> list[ClusterEvent]:
        return [
            ClusterEvent(Resource_.ASSIGNED_POD, Action.ADD | Action.DELETE | Action.UPDATE_POD_LABEL, "AssignedPod"),
            ClusterEvent(Resource_.NODE, Action.ADD | Action.UPDATE_NODE_LABEL, "NodeLabel"),
        ]
