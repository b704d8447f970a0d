"""DefaultPreemption (PostFilter) and DefaultBinder (Bind).

Preemption, when no node fits: on every node the pod failed only for reasons a departure could
fix (Unschedulable, not UnschedulableAndUnresolvable), pretend every lower-priority pod is gone;
if the pod then fits, give back ("reprieve") as many of them as possible, most important first.
Pick the node whose victims matter least, delete them, and nominate the node for the pod.
PodDisruptionBudgets are not consulted (every candidate counts zero violations).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import PODS
from kubeha.scheduler.framework import (
    SUCCESS,
    Code,
    CycleState,
    PostFilterResult,
    Status,
    error,
    unresolvable,
    unschedulable,
)
from kubeha.scheduler.nodeinfo import NodeInfo, PodInfo

log = logging.getLogger(__name__)

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100


def fit_error_message(num_all_nodes: int, statuses: dict[str, Status], pre_filter_msg: str = "") -> str:
    """Upstream's FitError text: ``0/N nodes are available: <count> <reason>, ....`` — reasons
    counted over nodes, formatted ``"<n> <reason>"`` and sorted as strings."""
    msg = f"0/{num_all_nodes} nodes are available:"
    if pre_filter_msg:
        return f"{msg} {pre_filter_msg}."
    hist: dict[str, int] = {}
    for st in statuses.values():
        for r in st.reasons:
            hist[r] = hist.get(r, 0) + 1
    parts = sorted(f"{n} {r}" for r, n in hist.items())
    if parts:
        msg += " " + ", ".join(parts) + "."
    return msg


def _more_important(a: PodInfo, b: PodInfo) -> bool:
    if a.priority != b.priority:
        return a.priority > b.priority
    return (a.start_time or "~") < (b.start_time or "~")  # earlier start first; unknown last


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, handle: Any, args: dict[str, Any] | None = None) -> None:
        self.handle = handle
        args = args or {}
        self.min_pct = int(args.get("minCandidateNodesPercentage", MIN_CANDIDATE_NODES_PERCENTAGE))
        self.min_abs = int(args.get("minCandidateNodesAbsolute", MIN_CANDIDATE_NODES_ABSOLUTE))

    def eligible(self, pod: PodInfo) -> str:
        """ "" when the pod may preempt, else why not (upstream's wording)."""
        if pod.spec.get("preemptionPolicy") == "Never":
            return "not eligible due to preemptionPolicy=Never."
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            node = self.handle.snapshot.get(nominated)
            if node is not None and any(p.terminating and p.priority < pod.priority for p in node.pods.values()):
                return "not eligible due to a terminating pod on the nominated node."
        return ""

    def select_victims(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[list[PodInfo], Status]:
        """Victims on ``node`` (a private copy) that make ``pod`` fit, or why there are none."""
        h = self.handle
        potential = [p for p in node.pods.values() if p.priority < pod.priority]
        for p in potential:
            node.remove_pod(p.key)
            h.run_pre_filter_remove_pod(state, pod, p, node)
        if not potential:
            return [], unresolvable(self.name, NO_VICTIMS)
        st = h.run_filters(state, pod, node)
        if not st.is_success():
            return [], st
        victims: list[PodInfo] = []
        potential.sort(key=lambda p: (-p.priority, p.start_time or "~"))
        for p in potential:
            node.add_pod(p)
            h.run_pre_filter_add_pod(state, pod, p, node)
            if not h.run_filters(state, pod, node).is_success():
                node.remove_pod(p.key)
                h.run_pre_filter_remove_pod(state, pod, p, node)
                victims.append(p)
        return victims, SUCCESS

    def candidates(
        self, state: CycleState, pod: PodInfo, statuses: dict[str, Status]
    ) -> tuple[list[tuple[str, list[PodInfo]]], dict[str, Status]]:
        nodes = self.handle.snapshot.node_infos
        result: dict[str, Status] = {}
        potential = []
        for n in nodes:
            st = statuses.get(n.name)
            if st is not None and st.code == Code.UNSCHEDULABLE:
                potential.append(n)
            else:
                result[n.name] = unresolvable(self.name, NOT_HELPFUL)
        if not potential:
            return [], result
        want = max(len(potential) * self.min_pct // 100, self.min_abs)
        offset = random.randrange(len(potential))
        found: list[tuple[str, list[PodInfo]]] = []
        for i in range(len(potential)):
            n = potential[(offset + i) % len(potential)]
            victims, st = self.select_victims(state.clone(), pod, n.clone())
            if st.is_success() and victims:
                found.append((n.name, victims))
                if len(found) >= want:
                    break
            elif st.is_success():
                result[n.name] = unresolvable(self.name, NO_VICTIMS)
            else:
                result[n.name] = st
        return found, result

    @staticmethod
    def pick(cands: list[tuple[str, list[PodInfo]]]) -> tuple[str, list[PodInfo]]:
        """Upstream's order: lowest highest-priority victim, lowest priority sum, fewest victims,
        latest start of the most important victim; then the first."""

        def key(c: tuple[str, list[PodInfo]]) -> tuple[int, int, int, str]:
            victims = c[1]
            top = max(v.priority for v in victims)
            total = sum(v.priority + 2**31 for v in victims)
            starts = [v.start_time for v in victims if v.priority == top]
            earliest = min(starts) if starts else ""
            # latest earliest-start wins: invert the string order by negating per character
            return (top, total, len(victims), "".join(chr(0x10FFFF - ord(ch)) for ch in earliest))

        return min(cands, key=key)

    async def post_filter(
        self, state: CycleState, pod: PodInfo, statuses: dict[str, Status]
    ) -> tuple[PostFilterResult | None, Status]:
        why = self.eligible(pod)
        if why:
            return None, unschedulable(self.name, "preemption: " + why)
        cands, result = self.candidates(state, pod, statuses)
        if not cands:
            msg = fit_error_message(len(self.handle.snapshot.node_infos), result)
            return PostFilterResult(""), unschedulable(self.name, "preemption: " + msg)
        node, victims = self.pick(cands)
        client, recorder = self.handle.client, self.handle.recorder
        for v in victims:
            if client is not None:
                try:
                    await client.delete(PODS, v.name, v.namespace, preconditions={"uid": v.uid} if v.uid else None)
                except StatusError as err:
                    if err.code != 404:
                        return None, error(self.name, f"deleting victim {v.key}: {err}")
                except (OSError, ConnectionError) as err:
                    return None, error(self.name, f"deleting victim {v.key}: {err}")
            if recorder is not None:
                recorder.event(v.pod, "Normal", "Preempted", f"Preempted by pod {pod.uid} on node {node}")
        log.info("preempting %d pod(s) on %s for %s", len(victims), node, pod.key)
        return PostFilterResult(node), SUCCESS


class DefaultBinder:
    name = "DefaultBinder"

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        client = self.handle.client
        if client is None:
            return error(self.name, "no API client")
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"kind": "Node", "name": node_name},
        }
        try:
            await client.create(PODS, binding, pod.namespace, subresource="binding", name=pod.name)
        except StatusError as err:
            return error(self.name, f"binding rejected: {err}")
        except (OSError, ConnectionError) as err:
            return error(self.name, f"binding failed: {err}")
        return SUCCESS
