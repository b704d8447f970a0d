"""The default plugins one by one, on hand-built NodeInfos (no sockets, no clocks)."""

from __future__ import annotations

from typing import Any

from kubeha.scheduler.framework import SKIP, Code, CycleState, QueuedPodInfo, Snapshot
from kubeha.scheduler.nodeinfo import NodeInfo, PodInfo, compile_selector, pod_requests
from kubeha.scheduler.plugins.basic import (
    ImageLocality,
    NodeName,
    NodePorts,
    NodeUnschedulable,
    PrioritySort,
    SchedulingGates,
    TaintToleration,
    tolerates,
)
from kubeha.scheduler.plugins.interpodaffinity import InterPodAffinity
from kubeha.scheduler.plugins.nodeaffinity import NodeAffinity
from kubeha.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from kubeha.scheduler.plugins.podtopologyspread import PodTopologySpread
from tests.unit.test_scheduler_helpers import make_node, make_pod

Obj = dict[str, Any]


class Handle:
    def __init__(self, nodes: list[NodeInfo], owners: list[Any] | None = None) -> None:
        self.snapshot = Snapshot()
        self.snapshot.node_infos = nodes
        self.snapshot.node_map = {n.name: n for n in nodes}
        self.snapshot.have_pods_with_affinity = [n for n in nodes if n.pods_with_affinity]
        self.snapshot.have_pods_with_required_anti_affinity = [n for n in nodes if n.pods_with_required_anti_affinity]
        keys: dict[str, int] = {}
        for n in nodes:
            for k in n.labels:
                keys[k] = keys.get(k, 0) + 1
        self.snapshot.label_keys = keys
        self.owners = owners or []
        self.client = None
        self.recorder = None

    def owner_selectors(self, pod: PodInfo) -> list[Any]:
        return self.owners


def ni(node: Obj, *pods: Obj) -> NodeInfo:
    info = NodeInfo(node)
    for p in pods:
        info.add_pod(PodInfo(p))
    return info


def test_requests_include_init_containers_sidecars_and_overhead() -> None:
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "200m"}}},
        ],
        "initContainers": [
            {"name": "big-init", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}},
            {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
        ],
        "overhead": {"cpu": "10m"},
    }
    total, nz_cpu, nz_mem = pod_requests(spec)
    # regular containers + sidecar = 350m < the big init container alone (1000m): max wins, plus overhead
    assert total.milli_cpu == 1000 + 10
    assert total.memory == 64 * 1024 * 1024
    # non-zero view: container b has no memory request -> counted at the 200Mi default
    assert nz_cpu == 300 + 10
    assert nz_mem == 64 * 1024 * 1024 + 200 * 1024 * 1024


def test_priority_sort_orders_by_priority_then_age() -> None:
    ps = PrioritySort()
    hi = QueuedPodInfo(PodInfo(make_pod("hi", priority=10)), timestamp=5)
    lo_old = QueuedPodInfo(PodInfo(make_pod("lo-old", priority=1)), timestamp=1)
    lo_new = QueuedPodInfo(PodInfo(make_pod("lo-new", priority=1)), timestamp=2)
    assert ps.less(hi, lo_old) and not ps.less(lo_old, hi)
    assert ps.less(lo_old, lo_new) and not ps.less(lo_new, lo_old)


def test_scheduling_gates() -> None:
    gated = PodInfo(make_pod("p", schedulingGates=[{"name": "example.com/wait"}]))
    st = SchedulingGates().pre_enqueue(gated)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and "example.com/wait" in st.message()
    assert SchedulingGates().pre_enqueue(PodInfo(make_pod("q"))).is_success()


def test_node_unschedulable_and_name() -> None:
    cordoned = ni(make_node("n1", unschedulable=True))
    pod = PodInfo(make_pod("p"))
    st = NodeUnschedulable().filter(CycleState(), pod, cordoned)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and st.reasons == ("node(s) were unschedulable",)
    tolerant = PodInfo(
        make_pod(
            "t", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
        )
    )
    assert NodeUnschedulable().filter(CycleState(), tolerant, cordoned).is_success()
    named = PodInfo(make_pod("n", nodeName="n2"))
    assert NodeName().filter(CycleState(), named, ni(make_node("n1"))).reasons == (
        "node(s) didn't match the requested node name",
    )


def test_taint_toleration_filter_message_and_matching() -> None:
    cp = ni(make_node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    st = TaintToleration().filter(CycleState(), PodInfo(make_pod("p")), cp)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)
    tol = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
    assert TaintToleration().filter(CycleState(), PodInfo(make_pod("p", tolerations=[tol])), cp).is_success()
    # Equal needs the value; an empty effect tolerates every effect; empty key + Exists tolerates all
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert not tolerates({"key": "k", "operator": "Equal", "value": "w"}, taint)
    assert not tolerates({"key": "k", "value": "v", "effect": "NoSchedule"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    # PreferNoSchedule taints do not filter
    soft = ni(make_node("s", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    assert TaintToleration().filter(CycleState(), PodInfo(make_pod("p")), soft).is_success()


def test_taint_toleration_score_prefers_fewer_untolerated_prefer_no_schedule() -> None:
    nodes = [
        ni(make_node("a")),
        ni(make_node("b", taints=[{"key": "x", "effect": "PreferNoSchedule"}])),
        ni(
            make_node(
                "c", taints=[{"key": "x", "effect": "PreferNoSchedule"}, {"key": "y", "effect": "PreferNoSchedule"}]
            )
        ),
    ]
    pl, state, pod = TaintToleration(), CycleState(), PodInfo(make_pod("p"))
    assert pl.pre_score(state, pod, nodes).is_success()
    scores = [pl.score(state, pod, n)[0] for n in nodes]
    assert scores == [0, 1, 2]
    pl.normalize_score(state, pod, scores)
    assert scores == [100, 50, 0]


def test_node_affinity_selector_required_and_preferred() -> None:
    ssd = ni(make_node("ssd", labels={"disk": "ssd", "gen": "5"}))
    hdd = ni(make_node("hdd", labels={"disk": "hdd", "gen": "3"}))
    pl = NodeAffinity()
    sel = PodInfo(make_pod("p", nodeSelector={"disk": "ssd"}))
    state = CycleState()
    assert pl.pre_filter(state, sel)[1].is_success()
    assert pl.filter(state, sel, ssd).is_success()
    assert pl.filter(state, sel, hdd).reasons == ("node(s) didn't match Pod's node affinity/selector",)
    req = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 10,
                    "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]},
                }
            ],
        }
    }
    pod = PodInfo(make_pod("q", affinity=req))
    assert pl.filter(state, pod, ssd).is_success() and not pl.filter(state, pod, hdd).is_success()
    # no selector at all: PreFilter skips
    assert pl.pre_filter(CycleState(), PodInfo(make_pod("r")))[1] is SKIP
    # preferred terms score
    st = CycleState()
    assert pl.pre_score(st, pod, [ssd, hdd]).is_success()
    scores = [pl.score(st, pod, n)[0] for n in (ssd, hdd)]
    pl.normalize_score(st, pod, scores)
    assert scores == [0, 100]


def test_node_affinity_match_fields_narrows_nodes() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    pod = PodInfo(
        make_pod(
            "p",
            affinity={
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
            },
        )
    )
    result, st = NodeAffinity().pre_filter(CycleState(), pod)
    assert st.is_success() and result is not None and result.node_names == {"n2"}


def test_node_ports_conflicts() -> None:
    port = {"containerPort": 80, "hostPort": 8080}
    used = ni(make_node("n"), make_pod("old", node="n", containers=[{"name": "c", "ports": [port]}]))
    pod = PodInfo(make_pod("p", containers=[{"name": "c", "ports": [port]}]))
    state = CycleState()
    assert NodePorts().pre_filter(state, pod)[1].is_success()
    assert NodePorts().filter(state, pod, used).reasons == (
        "node(s) didn't have free ports for the requested pod ports",
    )
    other = PodInfo(
        make_pod("o", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}])
    )
    assert NodePorts().filter(state, other, used).is_success()
    assert NodePorts().pre_filter(CycleState(), PodInfo(make_pod("none")))[1] is SKIP


def test_node_resources_fit_reasons_in_upstream_order() -> None:
    node = ni(make_node("n", cpu="1", memory="1Gi", pods="2"), make_pod("a", cpu="800m", memory="512Mi", node="n"))
    pl = NodeResourcesFit()
    assert pl.filter(CycleState(), PodInfo(make_pod("ok", cpu="200m", memory="512Mi")), node).is_success()
    st = pl.filter(CycleState(), PodInfo(make_pod("big", cpu="300m", memory="600Mi")), node)
    assert st.code == Code.UNSCHEDULABLE and st.reasons == ("Insufficient cpu", "Insufficient memory")
    full = ni(make_node("f", pods="1"), make_pod("x", node="f"))
    assert pl.filter(CycleState(), PodInfo(make_pod("p")), full).reasons == ("Too many pods",)
    gpu = PodInfo(make_pod("g", containers=[{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]))
    assert pl.filter(CycleState(), gpu, ni(make_node("n2"))).reasons == ("Insufficient nvidia.com/gpu",)


def test_least_allocated_and_balanced_scores() -> None:
    empty = ni(make_node("empty", cpu="4", memory="4Gi"))
    busy = ni(make_node("busy", cpu="4", memory="4Gi"), make_pod("a", cpu="3", memory="1Gi", node="busy"))
    pod = PodInfo(make_pod("p", cpu="1", memory="1Gi"))
    fit = NodeResourcesFit()
    # empty: cpu (4-1)/4=75, mem (4-1)/4=75 -> 75 ; busy: cpu 0, mem 50 -> 25
    assert fit.score(CycleState(), pod, empty)[0] == 75
    assert fit.score(CycleState(), pod, busy)[0] == 25
    assert fit.score_all(CycleState(), pod, [empty, busy]) == [75, 25]
    bal = NodeResourcesBalancedAllocation()
    assert bal.score(CycleState(), pod, empty)[0] == 100  # 25% / 25%
    assert bal.score(CycleState(), pod, busy)[0] == 75  # 100% cpu vs 50% memory -> std 0.25
    assert bal.score_all(CycleState(), pod, [empty, busy]) == [100, 75]
    assert bal.pre_score(CycleState(), PodInfo(make_pod("be")), [empty]) is SKIP


def test_image_locality_prefers_nodes_with_big_images() -> None:
    img = [{"names": ["docker.io/library/app:1"], "sizeBytes": 500 * 1024 * 1024}]
    a = ni(make_node("a", images=img))
    b = ni(make_node("b"))
    h = Handle([a, b])
    h.snapshot.image_nodes = {"docker.io/library/app:1": 1}
    pl = ImageLocality(h)
    pod = PodInfo(make_pod("p", containers=[{"name": "c", "image": "docker.io/library/app:1"}]))
    st = CycleState()
    assert pl.pre_score(st, pod, [a, b]).is_success()
    sa, sb = pl.score(st, pod, a)[0], pl.score(st, pod, b)[0]
    assert sb == 0 and 0 < sa < 100


def _anti(app: str, key: str = "kubernetes.io/hostname") -> Obj:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
            ]
        }
    }


def test_inter_pod_anti_affinity_both_directions() -> None:
    n1 = ni(make_node("n1"), make_pod("web-1", labels={"app": "web"}, node="n1", affinity=_anti("web")))
    n2 = ni(make_node("n2"))
    h = Handle([n1, n2])
    pl = InterPodAffinity(h)
    # incoming pod with anti-affinity to app=web
    pod = PodInfo(make_pod("web-2", labels={"app": "web"}, affinity=_anti("web")))
    state = CycleState()
    assert pl.pre_filter(state, pod)[1].is_success()
    assert pl.filter(state, pod, n1).reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert pl.filter(state, pod, n2).is_success()
    # incoming pod without terms, but an existing pod's anti-affinity matches it
    plain = PodInfo(make_pod("other", labels={"app": "web"}))
    state = CycleState()
    assert pl.pre_filter(state, plain)[1].is_success()
    assert pl.filter(state, plain, n1).reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    # a pod the existing term does not select goes anywhere; with no anti-affinity anywhere PreFilter skips
    assert pl.pre_filter(CycleState(), PodInfo(make_pod("db", labels={"app": "db"})))[1].is_success()
    assert InterPodAffinity(Handle([n2])).pre_filter(CycleState(), plain)[1] is SKIP


def test_inter_pod_affinity_required_and_first_pod_rule() -> None:
    aff = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}
            ]
        }
    }
    za = ni(make_node("a", labels={"zone": "z1"}), make_pod("cache", labels={"app": "cache"}, node="a"))
    zb = ni(make_node("b", labels={"zone": "z2"}))
    nozone = ni(make_node("c"))
    pl = InterPodAffinity(Handle([za, zb, nozone]))
    pod = PodInfo(make_pod("web", labels={"app": "web"}, affinity=aff))
    st = CycleState()
    pl.pre_filter(st, pod)
    assert pl.filter(st, pod, za).is_success()
    assert pl.filter(st, pod, zb).reasons == ("node(s) didn't match pod affinity rules",)
    assert pl.filter(st, pod, nozone).code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    # the first pod of a self-selecting group may go anywhere
    pl2 = InterPodAffinity(Handle([zb]))
    self_sel = PodInfo(make_pod("c1", labels={"app": "cache"}, affinity=aff))
    st2 = CycleState()
    pl2.pre_filter(st2, self_sel)
    assert pl2.filter(st2, self_sel, zb).is_success()


def test_inter_pod_preferred_affinity_scores() -> None:
    pref = {
        "podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 5,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }
    a = ni(make_node("a"), make_pod("db", labels={"app": "db"}, node="a"))
    b = ni(make_node("b"))
    pl = InterPodAffinity(Handle([a, b]))
    pod = PodInfo(make_pod("web", affinity=pref))
    st = CycleState()
    assert pl.pre_score(st, pod, [a, b]).is_success()
    scores = [pl.score(st, pod, n)[0] for n in (a, b)]
    assert scores == [5, 0]
    pl.normalize_score(st, pod, scores)
    assert scores == [100, 0]


def _spread(key: str, skew: int = 1, when: str = "DoNotSchedule") -> list[Obj]:
    return [
        {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "w"}}}
    ]


def test_topology_spread_hard_constraint() -> None:
    w = {"app": "w"}
    a = ni(
        make_node("a", labels={"zone": "z1"}), make_pod("w1", labels=w, node="a"), make_pod("w2", labels=w, node="a")
    )
    b = ni(make_node("b", labels={"zone": "z2"}), make_pod("w3", labels=w, node="b"))
    c = ni(make_node("c"))  # no zone label
    pl = PodTopologySpread(Handle([a, b, c]))
    pod = PodInfo(make_pod("w4", labels=w, topologySpreadConstraints=_spread("zone")))
    st = CycleState()
    assert pl.pre_filter(st, pod)[1].is_success()
    # z1 has 2, z2 has 1, min 1: placing in z1 -> skew 2 > 1
    assert pl.filter(st, pod, a).reasons == ("node(s) didn't match pod topology spread constraints",)
    assert pl.filter(st, pod, b).is_success()
    assert pl.filter(st, pod, c).reasons == (
        "node(s) didn't match pod topology spread constraints (missing required label)",
    )
    # a pod without hard constraints skips the filter
    assert pl.pre_filter(CycleState(), PodInfo(make_pod("x")))[1] is SKIP


def test_topology_spread_default_constraints_score_spreads_replicas() -> None:
    w = {"app": "w"}
    a = ni(make_node("a"), make_pod("w1", labels=w, node="a"), make_pod("w2", labels=w, node="a"))
    b = ni(make_node("b"))
    h = Handle([a, b], owners=[compile_selector({"matchLabels": w})])
    pl = PodTopologySpread(h)
    pod = PodInfo(make_pod("w3", labels=w))
    st = CycleState()
    assert pl.pre_score(st, pod, [a, b]).is_success()
    scores = pl.score_all(st, pod, [a, b])
    st.write("nodeNames", ["a", "b"])
    pl.normalize_score(st, pod, scores)
    assert scores[1] == 100 and scores[0] < scores[1]
    # no owner: no default constraints
    assert PodTopologySpread(Handle([a, b])).pre_score(CycleState(), pod, [a, b]) is SKIP
