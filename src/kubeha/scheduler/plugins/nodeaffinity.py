"""NodeAffinity: spec.nodeSelector and nodeAffinity (required terms filter, preferred terms score)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeha.scheduler.framework import (
    NODE_ADD,
    SKIP,
    SUCCESS,
    Action,
    ClusterEvent,
    CycleState,
    PreFilterResult,
    Resource_,
    Status,
    unresolvable,
)
from kubeha.scheduler.nodeinfo import NodeInfo, PodInfo
from kubeha.scheduler.plugins.basic import default_normalize

Obj = dict[str, Any]

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
NODE_LABEL = ClusterEvent(Resource_.NODE, Action.ADD | Action.UPDATE_NODE_LABEL, "NodeLabelChange")


def _requirement_matches(expr: Obj, value_of: Mapping[str, str]) -> bool:
    key, op = expr.get("key", ""), expr.get("operator", "")
    values: list[str] = list(expr.get("values") or ())
    present = key in value_of
    if op == "In":
        return present and value_of[key] in values
    if op == "NotIn":
        return not present or value_of[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, want = int(value_of[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: Obj, node: NodeInfo) -> bool:
    """A NodeSelectorTerm: all its expressions and fields hold; an empty term matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    for e in exprs:
        if not _requirement_matches(e, node.labels):
            return False
    if fields:
        node_fields = {"metadata.name": node.name}
        for f in fields:
            if not _requirement_matches(f, node_fields):
                return False
    return True


def required_matches(pod: PodInfo, node: NodeInfo) -> bool:
    """nodeSelector and the required node affinity (terms ORed) both hold."""
    spec = pod.spec
    sel = spec.get("nodeSelector")
    if sel:
        labels = node.labels
        for k, v in sel.items():
            if labels.get(k) != v:
                return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is not None:
        return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or ())
    return True


def _node_names(required: Obj | None) -> set[str] | None:
    """Node names a pod is limited to by metadata.name In terms (None: not limited)."""
    if required is None:
        return None
    out: set[str] = set()
    for term in required.get("nodeSelectorTerms") or ():
        names: set[str] | None = None
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                vals = set(f.get("values") or ())
                names = vals if names is None else names & vals
        if names is None:
            return None  # one term without such a field can match any node
        out |= names
    return out


NOT_MATCHED = unresolvable("NodeAffinity", ERR_REASON_POD)


class NodeAffinity:
    name = "NodeAffinity"

    def pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        spec = pod.spec
        required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        if not spec.get("nodeSelector") and required is None:
            return None, SKIP
        names = _node_names(required)
        if names is not None:
            if not names:
                return None, unresolvable(self.name, ERR_REASON_POD)
            return PreFilterResult(names), SUCCESS
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if required_matches(pod, node):
            return SUCCESS
        return NOT_MATCHED

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status:
        preferred = ((pod.spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution"
        )
        if not preferred:
            return SKIP
        state.write(self.name, [(int(p.get("weight") or 0), p.get("preference") or {}) for p in preferred])
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[int, Status]:
        total = 0
        for weight, term in state.read(self.name) or ():
            if weight and term_matches(term, node):
                total += weight
        return total, SUCCESS

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> Status:
        default_normalize(scores, reverse=False)
        return SUCCESS

    def events_to_register(self) -> list[ClusterEvent]:
        return [NODE_LABEL, NODE_ADD]
