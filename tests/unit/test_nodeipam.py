"""Pod CIDR allocation for nodes (node-ipam)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from kubeha.client.resources import NODES
from kubeha.controllers.context import ControllerContext, ControllerOptions
from kubeha.controllers.nodeipam import CIDRExhausted, CidrSet, NodeIpamController
from kubeha.machinery.informer import SharedInformerFactory

Obj = dict[str, Any]


def net(s: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(s)


def test_allocates_blocks_in_order_and_wraps_after_release() -> None:
    cs = CidrSet(net("10.244.0.0/22"), 24)
    assert [str(cs.allocate_next()) for _ in range(4)] == [
        "10.244.0.0/24",
        "10.244.1.0/24",
        "10.244.2.0/24",
        "10.244.3.0/24",
    ]
    with pytest.raises(CIDRExhausted):
        cs.allocate_next()
    cs.release(net("10.244.1.0/24"))
    assert str(cs.allocate_next()) == "10.244.1.0/24"


def test_occupy_skips_used_and_rejects_foreign_blocks() -> None:
    cs = CidrSet(net("10.244.0.0/16"), 24)
    assert cs.occupy(net("10.244.0.0/24"))
    assert not cs.occupy(net("10.245.0.0/24"))  # outside the cluster CIDR
    assert not cs.occupy(net("10.244.0.0/25"))  # wrong size
    assert str(cs.allocate_next()) == "10.244.1.0/24"
    assert cs.used() == 2


def test_ipv6_and_bad_masks() -> None:
    cs = CidrSet(net("fd00::/112"), 120)
    assert str(cs.allocate_next()) == "fd00::/120"
    assert str(cs.allocate_next()) == "fd00::100/120"
    with pytest.raises(ValueError):
        CidrSet(net("10.244.0.0/16"), 8)


class FakeClient:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Obj]] = []

    async def patch(self, res: Any, name: str, patch: Obj, namespace: str | None = None, **kw: Any) -> Obj:
        assert res == NODES
        self.patches.append((name, patch))
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))


def node(name: str, cidr: str | None = None) -> Obj:
    obj: Obj = {"metadata": {"name": name, "resourceVersion": "5"}, "spec": {}}
    if cidr:
        obj["spec"] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    return obj


async def test_sync_rebuilds_used_set_and_patches_nodes() -> None:
    client = FakeClient()
    rec = FakeRecorder()
    ctx = ControllerContext(
        client=client,  # type: ignore[arg-type]
        informers=SharedInformerFactory(client),  # type: ignore[arg-type]
        options=ControllerOptions(cluster_cidr="10.0.0.0/23", node_cidr_mask_size=24, allocate_node_cidrs=True),
        recorders={"cidrAllocator": rec},  # type: ignore[dict-item]
    )
    ctl = NodeIpamController(ctx)
    for n in (node("a", "10.0.0.0/24"), node("b"), node("c")):
        ctl.nodes.indexer.add(n)
    ctl.occupy_existing(ctl.nodes.indexer.list())
    await ctl.sync("b")
    assert client.patches == [
        ("b", {"spec": {"podCIDR": "10.0.1.0/24", "podCIDRs": ["10.0.1.0/24"]}, "metadata": {"resourceVersion": "5"}})
    ]
    # the range is full now: c gets an event and is retried
    result = await ctl.sync("c")
    assert result is not None and result.after is None
    assert rec.events == [("c", "CIDRNotAvailable", "Node c status is now: CIDRNotAvailable")]
    # deleting a releases its block for c
    ctl.release("a")
    await ctl.sync("c")
    assert client.patches[-1][1]["spec"]["podCIDR"] == "10.0.0.0/24"
