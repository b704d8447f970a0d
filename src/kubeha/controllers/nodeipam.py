"""node-ipam: gives every node a pod CIDR carved out of ``--cluster-cidr`` (upstream's RangeAllocator).

Active only with ``--allocate-node-cidrs``. Each node gets the next free ``/--node-cidr-mask-size``
block in ``spec.podCIDR`` / ``spec.podCIDRs``. The used set lives in memory: it is rebuilt from
the nodes' existing CIDRs before the first allocation (so a new leader never hands out a block
twice), and a block returns to the pool when its node is deleted. When the range is exhausted
the node gets a ``CIDRNotAvailable`` event and is retried with backoff.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import NODES
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, Requeue, object_of
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CIDRExhausted(Exception):
    """No free block is left in the cluster CIDR."""


class CidrSet:
    """The blocks of size ``/mask`` inside ``cluster``; allocation scans from after the last one
    handed out (as upstream), so a released block is not reused at once."""

    def __init__(self, cluster: Network, mask: int) -> None:
        if mask < cluster.prefixlen:
            raise ValueError(f"node CIDR mask /{mask} is larger than the cluster CIDR {cluster}")
        if mask - cluster.prefixlen > 24:
            raise ValueError(f"cluster CIDR {cluster} holds too many /{mask} blocks")
        self.cluster = cluster
        self.mask = mask
        self.size = 1 << (mask - cluster.prefixlen)
        self._step = 1 << (cluster.max_prefixlen - mask)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: Network) -> int | None:
        if cidr.version != self.cluster.version or cidr.prefixlen != self.mask:
            return None
        if not cidr.subnet_of(self.cluster):  # type: ignore[arg-type]
            return None
        return (int(cidr.network_address) - int(self.cluster.network_address)) // self._step

    def _block(self, index: int) -> Network:
        addr = ipaddress.ip_address(int(self.cluster.network_address) + index * self._step)
        return ipaddress.ip_network(f"{addr}/{self.mask}")

    def allocate_next(self) -> Network:
        for i in range(self.size):
            idx = (self._next + i) % self.size
            if idx not in self._used:
                self._used.add(idx)
                self._next = (idx + 1) % self.size
                return self._block(idx)
        raise CIDRExhausted(f"no remaining CIDRs left to allocate in the accepted range {self.cluster}")

    def occupy(self, cidr: Network) -> bool:
        """Mark ``cidr`` used; False when it is not one of this set's blocks."""
        idx = self._index(cidr)
        if idx is None:
            return False
        self._used.add(idx)
        return True

    def release(self, cidr: Network) -> None:
        idx = self._index(cidr)
        if idx is not None:
            self._used.discard(idx)

    def used(self) -> int:
        return len(self._used)


def node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [c for c in spec.get("podCIDRs") or [] if isinstance(c, str)]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [str(spec["podCIDR"])]
    return cidrs


def _parse(cidr: str) -> Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


class NodeIpamController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder("cidrAllocator")
        self.cidrs = CidrSet(ctx.options.cluster_network(), ctx.options.node_cidr_mask_size)
        self.nodes = ctx.informers.informer_for(NODES)
        self.queue = RateLimitingQueue(name="nodeipam")
        self.controller = Controller("nodeipam", self.sync, self.queue, workers=ctx.options.concurrent_syncs)
        # node name -> the CIDR we know it holds (to release it when the node goes away)
        self.assigned: dict[str, Network] = {}
        self.nodes.add_event_handler(on_add=self._enqueue, on_update=lambda o, n: self._enqueue(n))
        self.nodes.add_event_handler(on_delete=self._deleted)

    def _enqueue(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name") or "")
        if not node_cidrs(node):
            self.queue.add(name)
        elif name not in self.assigned:
            self.occupy_existing([node])  # allocated elsewhere (an earlier leader): keep it out of the pool

    def _deleted(self, obj: Any) -> None:
        node = object_of(obj)
        name = ((node or {}).get("metadata") or {}).get("name")
        if name:
            self.release(str(name))

    def release(self, name: str) -> None:
        cidr = self.assigned.pop(name, None)
        if cidr is not None:
            self.cidrs.release(cidr)
            log.info("nodeipam: released %s of deleted node %s", cidr, name)

    def occupy_existing(self, nodes: list[Obj]) -> None:
        """Rebuild the used set from nodes that already have a CIDR."""
        for node in nodes:
            name = str((node.get("metadata") or {}).get("name") or "")
            for raw in node_cidrs(node):
                cidr = _parse(raw)
                if cidr is not None and self.cidrs.occupy(cidr):
                    self.assigned[name] = cidr
                    break

    async def sync(self, name: str) -> Requeue | None:
        node = self.nodes.indexer.get(name)
        if node is None or node_cidrs(node):
            return None
        try:
            cidr = self.cidrs.allocate_next()
        except CIDRExhausted:
            self.recorder.event(node, "Normal", "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable")
            return Requeue()
        patch = {"spec": {"podCIDR": str(cidr), "podCIDRs": [str(cidr)]}}
        try:
            # guarded on the resourceVersion we decided from: a concurrent writer makes us look again
            patch["metadata"] = {"resourceVersion": node["metadata"].get("resourceVersion")}
            await self.client.patch(NODES, name, patch)
        except StatusError as err:
            self.cidrs.release(cidr)
            if err.code == 404:
                return None
            raise
        except BaseException:
            self.cidrs.release(cidr)
            raise
        self.assigned[name] = cidr
        log.info("nodeipam: node %s gets pod CIDR %s", name, cidr)
        return None

    async def run(self) -> None:
        await self.nodes.wait_for_sync()
        self.occupy_existing(self.nodes.indexer.list())
        await self.controller.run()


@register("nodeipam")
async def start(ctx: ControllerContext) -> None:
    if not ctx.options.allocate_node_cidrs:
        log.info("nodeipam: --allocate-node-cidrs is off; not allocating pod CIDRs")
        await asyncio.Event().wait()  # idle until stopped: the manager restarts start functions that return
    ctl = NodeIpamController(ctx)
    await ctx.informers.start()
    await ctl.run()
