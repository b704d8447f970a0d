"""PodTopologySpread: keep matching pods evenly spread over topology domains.

DoNotSchedule constraints filter (skew = matching pods in the node's domain + the pod itself -
the minimum over domains must stay ≤ maxSkew); ScheduleAnyway constraints, and upstream's system
default constraints for pods owned by a Service/ReplicaSet/StatefulSet, score.
"""

from __future__ import annotations

import math
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
from kubeha.scheduler.nodeinfo import NodeInfo, PodInfo, Selector, compile_selector, merge_selectors
from kubeha.scheduler.plugins.basic import first_untolerated
from kubeha.scheduler.plugins.nodeaffinity import required_matches

Obj = dict[str, Any]

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
SYSTEM_DEFAULTS: list[Obj] = [
    {"topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 5},
    {"topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 3},
]
PRE_FILTER_KEY = "PreFilterPodTopologySpread"
PRE_SCORE_KEY = "PreScorePodTopologySpread"


class Constraint:
    __slots__ = ("hard", "honor_affinity", "honor_taints", "key", "max_skew", "min_domains", "selector")

    def __init__(self, c: Obj, selector: Selector) -> None:
        self.max_skew = int(c.get("maxSkew") or 1)
        self.key = str(c.get("topologyKey") or "")
        self.hard = c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule"
        self.selector = selector
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"

    def includes(self, pod: PodInfo, node: NodeInfo) -> bool:
        if self.honor_affinity and not required_matches(pod, node):
            return False
        if self.honor_taints and node.taints:
            if first_untolerated(node.taints, pod.spec.get("tolerations") or [], ("NoSchedule", "NoExecute")):
                return False
        return True


def count_matching(node: NodeInfo, selector: Selector, namespace: str) -> int:
    n = 0
    for p in node.pods.values():
        if p.namespace == namespace and not p.terminating and selector.matches(p.labels):
            n += 1
    return n


class _FilterState:
    __slots__ = ("constraints", "counts", "mins")

    def __init__(self, constraints: list[Constraint]) -> None:
        self.constraints = constraints
        self.counts: list[dict[str, int]] = [{} for _ in constraints]  # per constraint: domain -> pods
        self.mins: list[int] = [0] * len(constraints)

    def recompute(self) -> None:
        for i, c in enumerate(self.constraints):
            domains = self.counts[i]
            self.mins[i] = 0 if len(domains) < c.min_domains or not domains else min(domains.values())

    def clone(self) -> _FilterState:
        s = _FilterState(self.constraints)
        s.counts = [dict(d) for d in self.counts]
        s.mins = list(self.mins)
        return s


class _ScoreState:
    __slots__ = ("constraints", "ignored", "pair_counts", "weights")

    def __init__(self, constraints: list[Constraint]) -> None:
        self.constraints = constraints
        self.ignored: set[str] = set()
        self.pair_counts: dict[tuple[str, str], int] = {}
        self.weights: list[float] = []


def _has_keys(node: NodeInfo, constraints: list[Constraint]) -> bool:
    labels = node.labels
    return all(c.key in labels for c in constraints)


class PodTopologySpread:
    name = "PodTopologySpread"

    def __init__(self, handle: Any, args: dict[str, Any] | None = None) -> None:
        self.handle = handle
        args = args or {}
        self.defaulting = args.get("defaultingType") or "System"
        self.default_constraints: list[Obj] = (
            SYSTEM_DEFAULTS if self.defaulting == "System" else list(args.get("defaultConstraints") or ())
        )

    # -- constraints ----------------------------------------------------------------------------

    def constraints(self, pod: PodInfo, hard: bool) -> tuple[list[Constraint], bool]:
        """(constraints of the wanted kind, whether they came from the defaults)."""
        own = pod.spec.get("topologySpreadConstraints")
        if own:
            out = []
            for c in own:
                if (c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule") != hard:
                    continue
                sel = compile_selector(c.get("labelSelector"))
                keys = [k for k in c.get("matchLabelKeys") or () if k in pod.labels]
                if keys and not sel.nothing:
                    sel = Selector(
                        sel.match_labels, sel.exprs + tuple((k, "In", frozenset((pod.labels[k],))) for k in keys)
                    )
                out.append(Constraint(c, sel))
            return out, False
        if not self.default_constraints:
            return [], True
        selectors = self.handle.owner_selectors(pod)
        if not selectors:
            return [], True
        sel = merge_selectors(selectors)
        if sel.empty():
            return [], True
        out = [
            Constraint(c, sel)
            for c in self.default_constraints
            if (c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule") == hard
        ]
        return out, True

    # -- filter ---------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[None, Status]:
        constraints, _ = self.constraints(pod, hard=True)
        if not constraints:
            return None, SKIP
        st = _FilterState(constraints)
        ns = pod.namespace
        for node in self.handle.snapshot.node_infos:
            if not _has_keys(node, constraints):
                continue
            for i, c in enumerate(constraints):
                if not c.includes(pod, node):
                    continue
                value = node.labels[c.key]
                domains = st.counts[i]
                domains[value] = domains.get(value, 0) + count_matching(node, c.selector, ns)
        st.recompute()
        state.write(PRE_FILTER_KEY, st)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        st: _FilterState | None = state.read(PRE_FILTER_KEY)
        if st is None:
            return SUCCESS
        labels = node.labels
        for i, c in enumerate(st.constraints):
            value = labels.get(c.key)
            if value is None:
                return unresolvable(self.name, ERR_MISSING_LABEL)
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = st.counts[i].get(value, 0) + self_match - st.mins[i]
            if skew > c.max_skew:
                return unschedulable(self.name, ERR_CONSTRAINTS)
        return SUCCESS

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int) -> Status:
        st: _FilterState | None = state.read(PRE_FILTER_KEY)
        if st is None or other.namespace != pod.namespace or not _has_keys(node, st.constraints):
            return SUCCESS
        for i, c in enumerate(st.constraints):
            if c.includes(pod, node) and c.selector.matches(other.labels):
                value = node.labels[c.key]
                st.counts[i][value] = st.counts[i].get(value, 0) + delta
        st.recompute()
        return SUCCESS

    def add_pod(self, state: CycleState, pod: PodInfo, to_add: PodInfo, node: NodeInfo) -> Status:
        return self._update(state, pod, to_add, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, to_remove: PodInfo, node: NodeInfo) -> Status:
        return self._update(state, pod, to_remove, node, -1)

    # -- score ----------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status:
        constraints, defaulted = self.constraints(pod, hard=False)
        if defaulted:
            # A default constraint on a key no node has scores nothing: drop it up front.
            keys = self.handle.snapshot.label_keys
            constraints = [c for c in constraints if c.key in keys]
        if not constraints:
            return SKIP
        st = _ScoreState(constraints)
        require_all = not defaulted
        sizes = [0] * len(constraints)
        for node in nodes:
            if require_all and not _has_keys(node, constraints):
                st.ignored.add(node.name)
                continue
            for i, c in enumerate(constraints):
                if c.key == HOSTNAME or c.key not in node.labels:
                    continue
                pair = (c.key, node.labels[c.key])
                if pair not in st.pair_counts:
                    st.pair_counts[pair] = 0
                    sizes[i] += 1
        for i, c in enumerate(constraints):
            size = len(nodes) - len(st.ignored) if c.key == HOSTNAME else sizes[i]
            st.weights.append(math.log(size + 2))
        if st.pair_counts:
            ns = pod.namespace
            for node in self.handle.snapshot.node_infos:
                if require_all and not _has_keys(node, constraints):
                    continue
                for c in constraints:
                    value = node.labels.get(c.key)
                    if c.key == HOSTNAME or value is None:
                        continue
                    pair = (c.key, value)
                    if pair in st.pair_counts and c.includes(pod, node):
                        st.pair_counts[pair] += count_matching(node, c.selector, ns)
        state.write(PRE_SCORE_KEY, st)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        st: _ScoreState = state.read(PRE_SCORE_KEY)
        if node.name in st.ignored:
            return 0, SUCCESS
        total = 0.0
        for i, c in enumerate(st.constraints):
            value = node.labels.get(c.key)
            if value is None:
                continue
            if c.key == HOSTNAME:
                cnt = count_matching(node, c.selector, pod.namespace)
            else:
                cnt = st.pair_counts.get((c.key, value), 0)
            total += cnt * st.weights[i] + (c.max_skew - 1)
        return round(total), SUCCESS

    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        st: _ScoreState = state.read(PRE_SCORE_KEY)
        ns = pod.namespace
        ignored = st.ignored
        constraints = list(enumerate(st.constraints))
        out = []
        for node in nodes:
            if ignored and node.name in ignored:
                out.append(0)
                continue
            labels = node.labels
            total = 0.0
            for i, c in constraints:
                value = labels.get(c.key)
                if value is None:
                    continue
                if c.key == HOSTNAME:
                    cnt = count_matching(node, c.selector, ns) if node.pods else 0
                else:
                    cnt = st.pair_counts.get((c.key, value), 0)
                total += cnt * st.weights[i] + (c.max_skew - 1)
            out.append(round(total))
        return out

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> Status:
        st: _ScoreState = state.read(PRE_SCORE_KEY)
        names: list[str] = state.read("nodeNames") or []
        valid = [i for i, n in enumerate(names) if n not in st.ignored] if st.ignored else range(len(scores))
        if not valid:
            return SUCCESS
        lo = min(scores[i] for i in valid)
        hi = max(scores[i] for i in valid)
        valid_set = set(valid)
        for i in range(len(scores)):
            if i not in valid_set:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - scores[i]) // hi
        return SUCCESS

    def events_to_register(self) -> list[ClusterEvent]:
        return [
            ClusterEvent(Resource_.ASSIGNED_POD, Action.ADD | Action.DELETE | Action.UPDATE_POD_LABEL, "AssignedPod"),
            ClusterEvent(Resource_.NODE, Action.ADD | Action.DELETE | Action.UPDATE_NODE_LABEL, "NodeLabel"),
        ]
