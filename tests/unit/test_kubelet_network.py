"""host-gw routes (kubelet/network.py): which routes a node wants, and the diff against the kernel's;
and the runtime network readiness the node reports (node.py, cni.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeha.kubelet.app import build_parser
from kubeha.kubelet.cni import NETWORK_NOT_READY
from kubeha.kubelet.network import Route, desired_routes, node_routes, route_diff
from kubeha.kubelet.node import NodeConfig, conditions, conditions_changed, runtime_errors

Obj = dict[str, Any]


def node(name: str, cidr: str | list[str] | None, *ips: str, deleting: bool = False) -> Obj:
    spec: Obj = {}
    if isinstance(cidr, list):
        spec = {"podCIDR": cidr[0], "podCIDRs": cidr}
    elif cidr:
        spec = {"podCIDR": cidr, "podCIDRs": [cidr]}
    meta: Obj = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    addrs = [{"type": "Hostname", "address": name}] + [{"type": "InternalIP", "address": ip} for ip in ips]
    return {"metadata": meta, "spec": spec, "status": {"addresses": addrs}}


def test_routes_to_every_other_node_with_cidr_and_ip() -> None:
    nodes = [
        node("a", "10.244.0.0/24", "192.168.1.10"),
        node("b", "10.244.1.0/24", "192.168.1.11"),
        node("c", None, "192.168.1.12"),  # no podCIDR yet
        node("d", "10.244.3.0/24"),  # no InternalIP yet
    ]
    assert desired_routes(nodes, "a") == {"10.244.1.0/24": Route("10.244.1.0/24", "192.168.1.11")}
    assert desired_routes(nodes, "b") == {"10.244.0.0/24": Route("10.244.0.0/24", "192.168.1.10")}


def test_deleting_node_gets_no_route() -> None:
    nodes = [node("a", "10.244.0.0/24", "192.168.1.10"), node("b", "10.244.1.0/24", "192.168.1.11", deleting=True)]
    assert desired_routes(nodes, "a") == {}


def test_dual_stack_pairs_cidr_with_ip_of_its_family() -> None:
    n = node("b", ["10.244.1.0/24", "fd00:10:244:1::/64"], "fd00::11", "192.168.1.11")
    assert node_routes(n) == [Route("10.244.1.0/24", "192.168.1.11"), Route("fd00:10:244:1::/64", "fd00::11")]
    # an IPv4-only node: the IPv6 CIDR has no gateway and is skipped
    assert node_routes(node("b", ["10.244.1.0/24", "fd00:10:244:1::/64"], "192.168.1.11")) == [
        Route("10.244.1.0/24", "192.168.1.11")
    ]


def test_malformed_values_are_skipped() -> None:
    assert node_routes(node("b", "not-a-cidr", "192.168.1.11")) == []
    assert node_routes(node("b", "10.244.1.0/24", "bogus")) == []
    # a host-bit-set CIDR is normalised to its network
    assert node_routes(node("b", "10.244.1.7/24", "192.168.1.11")) == [Route("10.244.1.0/24", "192.168.1.11")]


def test_two_nodes_claiming_one_cidr_resolve_deterministically() -> None:
    x = node("x", "10.244.1.0/24", "192.168.1.20")
    y = node("y", "10.244.1.0/24", "192.168.1.21")
    assert (
        desired_routes([y, x], "a")
        == desired_routes([x, y], "a")
        == {"10.244.1.0/24": Route("10.244.1.0/24", "192.168.1.20")}
    )


def test_diff_adds_missing_and_removes_gone() -> None:
    want = {"10.244.1.0/24": Route("10.244.1.0/24", "192.168.1.11")}
    have = [Route("10.244.2.0/24", "192.168.1.12")]
    assert route_diff(want, have) == ([Route("10.244.1.0/24", "192.168.1.11")], [have[0]])


def test_diff_replaces_changed_gateway() -> None:
    # the put (a netlink replace) comes first and moves the route; deleting the old one after
    # it finds nothing, so there is no moment without a route
    want = {"10.244.1.0/24": Route("10.244.1.0/24", "192.168.1.99")}
    have = [Route("10.244.1.0/24", "192.168.1.11")]
    put, delete = route_diff(want, have)
    assert put == [Route("10.244.1.0/24", "192.168.1.99")]
    assert delete == [Route("10.244.1.0/24", "192.168.1.11")]


def test_diff_of_equal_sets_is_empty() -> None:
    r = Route("10.244.1.0/24", "192.168.1.11")
    assert route_diff({r.dst: r}, [r]) == ([], [])
    assert route_diff({}, []) == ([], [])


def test_diff_collapses_duplicate_destinations() -> None:
    # two of our routes to one destination (e.g. left by a crash mid-change): keep one, the wanted
    want = {"10.244.1.0/24": Route("10.244.1.0/24", "192.168.1.11")}
    have = [Route("10.244.1.0/24", "192.168.1.11"), Route("10.244.1.0/24", "192.168.1.12")]
    assert route_diff(want, have) == ([], [Route("10.244.1.0/24", "192.168.1.12")])


# -- runtime network readiness (node.py / cni.py) -------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _ready(conds: list[Obj]) -> Obj:
    return next(c for c in conds if c["type"] == "Ready")


def test_node_not_ready_until_the_network_is() -> None:
    cfg = NodeConfig(name="n", node_ip="10.0.0.1", runtime_version="docker://1", cni=True)
    assert runtime_errors(cfg, "") == [NETWORK_NOT_READY]
    assert runtime_errors(cfg, "10.244.0.0/24") == []
    # host-runtime-only kubelets need no CNI network
    assert runtime_errors(NodeConfig(name="n", node_ip="10.0.0.1", runtime_version="host://1"), "") == []
    not_ready = _ready(conditions([], T0, [NETWORK_NOT_READY]))
    assert (not_ready["status"], not_ready["reason"], not_ready["message"]) == (
        "False",
        "KubeletNotReady",
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
        "message:Network plugin returns error: cni plugin not initialized",
    )
    assert _ready(conditions([], T0))["status"] == "True"


def test_conditions_change_when_the_network_becomes_ready() -> None:
    posted = {"status": {"conditions": conditions([], T0, [NETWORK_NOT_READY])}}
    assert not conditions_changed(posted, T0, [NETWORK_NOT_READY])
    assert conditions_changed(posted, T0, [])
    # the transition time moves only when the status flips
    later = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    flipped = _ready(conditions(posted["status"]["conditions"], later, []))
    assert flipped["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    same = _ready(conditions(posted["status"]["conditions"], later, [NETWORK_NOT_READY]))
    assert same["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_host_gw_routes_flag() -> None:
    p = build_parser()
    assert p.parse_args([]).host_gw_routes is True
    assert p.parse_args(["--host-gw-routes=false"]).host_gw_routes is False
    assert p.parse_args(["--host-gw-routes"]).host_gw_routes is True
