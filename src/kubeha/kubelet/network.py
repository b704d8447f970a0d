"""host-gw pod routing, as flannel's ``host-gw`` backend does it.

Every node's pods live on its own bridge in its ``spec.podCIDR``. For pods on different nodes to
reach each other, each node keeps, in its network namespace, one route per other node::

    <other node's podCIDR> via <other node's InternalIP>

and forwards IPv4 (``/proc/sys/net/ipv4/ip_forward`` is per network namespace). That needs the
nodes to share a layer-2 segment (the gateway must be directly reachable), as flannel's host-gw.

The routes follow a Node informer (watch), not a poll: every add/update/delete of a Node
recomputes the wanted set, and only a difference from what was last applied touches the kernel.
A slow resync (``resync`` seconds) re-reads the kernel's table and repairs routes someone deleted.
The kubelet only ever touches routes it made: they carry their own routing protocol number
(``proto 74``, shown by ``ip route show proto 74``), so its dump, diff and delete see nothing else.

Netlink via pyroute2's ``AsyncIPRoute`` (asyncio-native, no subprocess per route, typed errors
such as ENETUNREACH for a gateway that is not on-link), not ``ip route`` subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeha.client.resources import NODES
from kubeha.client.rest import ApiClient
from kubeha.machinery.informer import SharedInformer, SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# the routing protocol number that marks kubeha's routes (an unassigned one in iproute2's
# rt_protos; calico uses 80, bird 12, zebra 11)
RTPROT_KUBEHA = 74
MAIN_TABLE = 254
RESYNC = 300.0
RETRY = 10.0  # after a failed route change (e.g. the gateway is not reachable yet)
IP_FORWARD = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}


@dataclass(frozen=True, order=True)
class Route:
    dst: str  # a network, "10.244.1.0/24"
    gateway: str  # the other node's InternalIP

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.dst).version


def _internal_ips(node: Obj) -> list[str]:
    addrs = (node.get("status") or {}).get("addresses") or ()
    return [str(a.get("address")) for a in addrs if a.get("type") == "InternalIP" and a.get("address")]


def node_routes(node: Obj) -> list[Route]:
    """The routes to ``node``'s pods: each podCIDR via the InternalIP of the same IP family."""
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or ()] or ([str(spec["podCIDR"])] if spec.get("podCIDR") else [])
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in _internal_ips(node):
        with contextlib.suppress(ValueError):
            ips.append(ipaddress.ip_address(text))
    out: list[Route] = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        gw = next((ip for ip in ips if ip.version == net.version), None)
        if gw is not None:
            out.append(Route(str(net), str(gw)))
    return out


def desired_routes(nodes: Iterable[Obj], self_name: str) -> dict[str, Route]:
    """dst -> route for every other node with a podCIDR and an InternalIP. Two nodes claiming
    one CIDR (a stale object during a rename): the name that sorts first wins, deterministically."""
    out: dict[str, Route] = {}
    for node in sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name") or "")):
        meta = node.get("metadata") or {}
        if meta.get("name") == self_name or meta.get("deletionTimestamp"):
            continue
        for r in node_routes(node):
            out.setdefault(r.dst, r)
    return out


def route_diff(want: dict[str, Route], have: Iterable[Route]) -> tuple[list[Route], list[Route]]:
    """(routes to add or replace, routes to delete) to turn ``have`` into ``want``. Apply the puts
    first: a destination that moves to another gateway is replaced in place (no gap), and the
    delete of its old route then finds nothing (ESRCH, ignored)."""
    have_set = set(have)
    put = sorted(r for r in want.values() if r not in have_set)
    delete = sorted(r for r in have_set if want.get(r.dst) != r)
    return put, delete


def enable_forwarding(family: int = 4) -> bool:
    """Turn forwarding on in this network namespace; False when it cannot (not root)."""
    path = Path(IP_FORWARD[family])
    try:
        if path.read_text().strip() != "1":
            path.write_text("1\n")
            log.info("enabled %s", path)
        return True
    except OSError as e:
        log.warning("cannot enable IP forwarding (%s): %s", path, e)
        return False


class HostGatewayRoutes:
    """Keeps this namespace's routes to the other nodes' podCIDRs (see the module docstring)."""

    def __init__(
        self,
        client: ApiClient,
        node_name: str,
        *,
        resync: float = RESYNC,
        factory: SharedInformerFactory | None = None,
    ) -> None:
        self.node_name = node_name
        self.resync = resync
        self._own_factory = factory is None
        self._factory = factory or SharedInformerFactory(client)
        self.nodes: SharedInformer = self._factory.informer_for(NODES, namespace=None)
        self.nodes.add_event_handler(
            on_add=lambda _n: self._dirty.set(),
            on_update=lambda _o, _n: self._dirty.set(),
            on_delete=lambda _n: self._dirty.set(),
        )
        self._dirty = asyncio.Event()
        self._applied: dict[str, Route] | None = None  # what the kernel had after the last sync
        self.syncs = 0  # kernel reconciliations (tests, metrics)

    async def run(self) -> None:
        """Run until cancelled."""
        # pyroute2 takes ~0.3 s to import: in a thread, and only by kubelets that route
        pyroute2 = await asyncio.to_thread(importlib.import_module, "pyroute2")
        enable_forwarding(4)
        if self._own_factory:
            await self._factory.start()
        try:
            await self.nodes.wait_for_sync()
            async with pyroute2.AsyncIPRoute() as ipr:
                full = True
                while True:
                    want = desired_routes(self.nodes.indexer.list(), self.node_name)
                    if full or want != self._applied:
                        await self._reconcile(ipr, want)
                    wait = self.resync if self._applied is not None else min(RETRY, self.resync)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._dirty.wait(), wait)
                    full = not self._dirty.is_set()  # the resync timer fired: re-read the kernel
                    self._dirty.clear()
        finally:
            if self._own_factory:
                await self._factory.stop()

    async def current(self, ipr: Any) -> list[Route]:
        """Our routes in the main table, as the kernel has them."""
        out: list[Route] = []
        for family in (2, 10):  # AF_INET, AF_INET6
            async for msg in await ipr.route("dump", family=family, proto=RTPROT_KUBEHA, table=MAIN_TABLE):
                if msg["proto"] != RTPROT_KUBEHA:
                    continue  # older kernels ignore the dump filter
                dst, gw = msg.get("dst"), msg.get("gateway")
                if dst and gw:
                    out.append(Route(str(ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False)), str(gw)))
        return out

    async def _reconcile(self, ipr: Any, want: dict[str, Route]) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        have = await self.current(ipr)
        put, delete = route_diff(want, have)
        self.syncs += 1
        if any(r.family == 6 for r in want.values()):
            enable_forwarding(6)
        failed = False
        for r in put:
            try:
                await ipr.route("replace", dst=r.dst, gateway=r.gateway, proto=RTPROT_KUBEHA, table=MAIN_TABLE)
                log.info("route %s via %s", r.dst, r.gateway)
            except NetlinkError as e:
                # e.g. ENETUNREACH: the other node is not on our link (host-gw needs layer 2)
                log.warning("adding route %s via %s: %s", r.dst, r.gateway, e)
                failed = True
        for r in delete:
            try:
                await ipr.route("del", dst=r.dst, gateway=r.gateway, proto=RTPROT_KUBEHA, table=MAIN_TABLE)
                log.info("removed route %s via %s", r.dst, r.gateway)
            except NetlinkError as e:
                if e.code != 3:  # ESRCH: already gone
                    log.warning("removing route %s via %s: %s", r.dst, r.gateway, e)
                    failed = True
        # a failed change is retried on the next event or after RETRY
        self._applied = None if failed else dict(want)
