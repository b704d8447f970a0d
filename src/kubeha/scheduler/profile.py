"""Profiles: a KubeSchedulerConfiguration (``kubescheduler.config.k8s.io/v1``) turned into
running plugin chains, one :class:`Profile` per schedulerName.

How plugin sets are built, as upstream: start from the default multiPoint set; apply the
profile's ``multiPoint`` disabled (``*`` = all defaults) and enabled lists; a plugin then serves
every extension point it implements, except where that point's own ``disabled`` list removes it;
a point's ``enabled`` list adds plugins there only. Score weights: the point's weight, else the
multiPoint weight, else the default weight, else 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from kubeha.scheduler import framework as fw
from kubeha.scheduler.framework import (
    EXTENSION_POINTS,
    SKIP,
    SUCCESS,
    CycleState,
    NodeInfo,
    PodInfo,
    PostFilterResult,
    PreFilterResult,
    Snapshot,
    Status,
)
from kubeha.scheduler.plugins import DEFAULT_PLUGINS, REGISTRY

if TYPE_CHECKING:
    from kubeha.client.rest import ApiClient
    from kubeha.machinery.events import EventRecorder

Obj = dict[str, Any]

DEFAULT_SCHEDULER_NAME = "default-scheduler"
API_VERSION = "kubescheduler.config.k8s.io/v1"
DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE = 0  # 0: upstream's adaptive formula
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


class ConfigError(ValueError):
    pass


@dataclass
class ProfileConfig:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    # extension point -> [(plugin, weight)], already resolved
    points: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    plugin_args: dict[str, Obj] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None


@dataclass
class SchedulerConfig:
    profiles: list[ProfileConfig]
    percentage_of_nodes_to_score: int = DEFAULT_PERCENTAGE_OF_NODES_TO_SCORE
    pod_initial_backoff: float = 1.0
    pod_max_backoff: float = 10.0
    leader_election: Obj = field(default_factory=dict)
    client_connection: Obj = field(default_factory=dict)


def _implements(name: str, point: str) -> bool:
    cls_check = EXTENSION_POINTS[point]
    plugin = REGISTRY[name]({}, _NullHandle())
    return isinstance(plugin, cls_check)


def _names(section: Obj | None, key: str) -> list[Obj]:
    return list(((section or {}).get(key)) or [])


def resolve_profile(p: Obj) -> ProfileConfig:
    plugins = p.get("plugins") or {}
    default_weights = dict(DEFAULT_PLUGINS)
    multi: list[tuple[str, int]] = list(DEFAULT_PLUGINS)
    mp = plugins.get("multiPoint") or {}
    disabled = {d.get("name") for d in _names(mp, "disabled")}
    if "*" in disabled:
        multi = []
    else:
        multi = [(n, w) for n, w in multi if n not in disabled]
    for e in _names(mp, "enabled"):
        name = str(e.get("name") or "")
        if name not in REGISTRY:
            raise ConfigError(f'plugin "{name}" does not exist')
        weight = int(e.get("weight") or 0)
        multi = [(n, w) for n, w in multi if n != name]
        multi.append((name, weight or default_weights.get(name, 0)))
    multi_weights = dict(multi)
    points: dict[str, list[tuple[str, int]]] = {}
    for point in EXTENSION_POINTS:
        section = plugins.get(point) or {}
        off = {d.get("name") for d in _names(section, "disabled")}
        chain = [] if "*" in off else [(n, w) for n, w in multi if n not in off and _implements(n, point)]
        for e in _names(section, "enabled"):
            name = str(e.get("name") or "")
            if name not in REGISTRY:
                raise ConfigError(f'plugin "{name}" does not exist')
            if not _implements(name, point):
                raise ConfigError(f'plugin "{name}" does not extend {point} plugin')
            chain = [(n, w) for n, w in chain if n != name]
            chain.append((name, int(e.get("weight") or 0)))
        if point == "score":
            chain = [(n, w or multi_weights.get(n) or default_weights.get(n) or 1) for n, w in chain]
        points[point] = chain
    if len(points["queueSort"]) != 1:
        raise ConfigError("one queueSort plugin required for profile")
    if not points["bind"]:
        raise ConfigError("at least one bind plugin is needed")
    args = {str(a.get("name")): dict(a.get("args") or {}) for a in p.get("pluginConfig") or ()}
    pct = p.get("percentageOfNodesToScore")
    return ProfileConfig(
        str(p.get("schedulerName") or DEFAULT_SCHEDULER_NAME), points, args, None if pct is None else int(pct)
    )


def parse_config(doc: Obj | None) -> SchedulerConfig:
    doc = doc or {}
    if doc and doc.get("apiVersion") not in (API_VERSION, None):
        raise ConfigError(f'no kind "KubeSchedulerConfiguration" is registered for version "{doc.get("apiVersion")}"')
    profiles = [resolve_profile(p) for p in doc.get("profiles") or [{}]]
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError("profiles: duplicate schedulerName")
    return SchedulerConfig(
        profiles,
        int(doc.get("percentageOfNodesToScore") or 0),
        float(doc.get("podInitialBackoffSeconds") or 1),
        float(doc.get("podMaxBackoffSeconds") or 10),
        dict(doc.get("leaderElection") or {}),
        dict(doc.get("clientConnection") or {}),
    )


def load_config(path: str | None) -> SchedulerConfig:
    if not path:
        return parse_config(None)
    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a KubeSchedulerConfiguration")
    return parse_config(doc)


def num_feasible_nodes_to_find(num_all: int, percentage: int) -> int:
    """Upstream's adaptive limit: score all nodes below 100; else 50% - nodes/125 (≥ 5%), ≥ 100 nodes."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    pct = percentage
    if pct <= 0:
        pct = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    n = num_all * pct // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


class _NullHandle:
    snapshot = Snapshot()
    client = None
    recorder = None

    def owner_selectors(self, pod: PodInfo) -> list[Any]:
        return []


class Profile:
    """A schedulerName's plugin chains; also the Handle its plugins see."""

    def __init__(
        self,
        cfg: ProfileConfig,
        *,
        client: ApiClient | None = None,
        recorder: EventRecorder | None = None,
        owner_selectors: Callable[[PodInfo], list[Any]] | None = None,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        self.name = cfg.scheduler_name
        self.client = client
        self.recorder = recorder
        self.snapshot = Snapshot()
        self._owner_selectors = owner_selectors
        pct = cfg.percentage_of_nodes_to_score
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score if pct is None else pct
        self.plugins: dict[str, Any] = {}
        chains: dict[str, list[Any]] = {}
        for point, chain in cfg.points.items():
            chains[point] = [self._plugin(n, cfg.plugin_args.get(n) or {}) for n, _ in chain]
        self.queue_sort = chains["queueSort"][0]
        self.pre_filter = chains["preFilter"]
        self.filters = chains["filter"]
        self.post_filter = chains["postFilter"]
        self.pre_score = chains["preScore"]
        self.scores = [(self.plugins[n], w) for n, w in cfg.points["score"]]
        self.reserve = chains["reserve"]
        self.permit = chains["permit"]
        self.pre_bind = chains["preBind"]
        self.bind = chains["bind"]
        self.post_bind = chains["postBind"]
        self.pre_filter_extensions = [p for p in self.pre_filter if isinstance(p, fw.PreFilterExtensions)]
        self.pre_enqueue = chains["preEnqueue"]

    def _plugin(self, name: str, args: Obj) -> Any:
        plugin = self.plugins.get(name)
        if plugin is None:
            plugin = self.plugins[name] = REGISTRY[name](args, self)
        return plugin

    # -- Handle -----------------------------------------------------------------------------------

    def owner_selectors(self, pod: PodInfo) -> list[Any]:
        return self._owner_selectors(pod) if self._owner_selectors is not None else []

    def events_by_plugin(self) -> dict[str, list[fw.ClusterEvent]]:
        return {n: p.events_to_register() for n, p in self.plugins.items() if hasattr(p, "events_to_register")}

    # -- running the chains -----------------------------------------------------------------------

    def gated(self, pod: PodInfo) -> bool:
        """Whether a PreEnqueue plugin keeps the pod out of the active queue."""
        return any(not p.pre_enqueue(pod).is_success() for p in self.pre_enqueue)

    def run_pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        result: PreFilterResult | None = None
        for p in self.pre_filter:
            r, st = p.pre_filter(state, pod)
            if st.code == fw.Code.SKIP:
                state.skip_filter.add(p.name)
                continue
            if not st.is_success():
                return None, st.with_plugin(p.name)
            if r is not None:
                result = r if result is None else result.merge(r)
                if result.node_names is not None and not result.node_names:
                    return None, fw.unresolvable(p.name, "node(s) didn't satisfy plugin(s) [" + p.name + "]")
        return result, SUCCESS

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        skip = state.skip_filter
        for p in self.filters:
            if skip and p.name in skip:
                continue
            st = p.filter(state, pod, node)
            if st is not SUCCESS and not st.is_success():
                return st
        return SUCCESS

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, to_add: PodInfo, node: NodeInfo) -> Status:
        for p in self.pre_filter_extensions:
            if p.name not in state.skip_filter:
                st = p.add_pod(state, pod, to_add, node)
                if not st.is_success():
                    return st
        return SUCCESS

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, to_remove: PodInfo, node: NodeInfo) -> Status:
        for p in self.pre_filter_extensions:
            if p.name not in state.skip_filter:
                st = p.remove_pod(state, pod, to_remove, node)
                if not st.is_success():
                    return st
        return SUCCESS

    async def run_post_filter(
        self, state: CycleState, pod: PodInfo, statuses: dict[str, Status]
    ) -> tuple[PostFilterResult | None, Status]:
        last = fw.unschedulable("", "")
        for p in self.post_filter:
            r, st = await p.post_filter(state, pod, statuses)
            if st.is_success():
                return r, st
            last = st
            if st.code not in (fw.Code.UNSCHEDULABLE, fw.Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                return r, st
        return None, last

    def run_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Weighted total score per node (same order as ``nodes``)."""
        totals = [0] * len(nodes)
        if not self.scores:
            return totals
        for p in self.pre_score:
            st = p.pre_score(state, pod, nodes)
            if st.code == fw.Code.SKIP:
                state.skip_score.add(p.name)
        skip = state.skip_score
        names_written = False
        for p, weight in self.scores:
            if p.name in skip:
                continue
            batch = getattr(p, "score_all", None)
            scores = batch(state, pod, nodes) if batch is not None else [p.score(state, pod, n)[0] for n in nodes]
            if hasattr(p, "normalize_score"):
                if not names_written:
                    state.write("nodeNames", [n.name for n in nodes])
                    names_written = True
                p.normalize_score(state, pod, scores)
            for i, s in enumerate(scores):
                totals[i] += s * weight
        return totals

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for p in self.reserve:
            st = p.reserve(state, pod, node)
            if not st.is_success():
                return st.with_plugin(p.name)
        return SUCCESS

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for p in reversed(self.reserve):
            p.unreserve(state, pod, node)

    def run_permit(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for p in self.permit:
            st, _timeout = p.permit(state, pod, node)
            if not st.is_success():
                return st.with_plugin(p.name)
        return SUCCESS

    async def run_pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for p in self.pre_bind:
            st = await p.pre_bind(state, pod, node)
            if not st.is_success():
                return st.with_plugin(p.name)
        return SUCCESS

    async def run_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for p in self.bind:
            st = await p.bind(state, pod, node)
            if st is SKIP or st.is_skip():
                continue
            return st.with_plugin(p.name)
        return fw.error("", "no bind plugin bound the pod")

    def run_post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for p in self.post_bind:
            p.post_bind(state, pod, node)
