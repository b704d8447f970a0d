"""Nodes as network namespaces on one machine, for the Docker/CNI tests and benchmarks.

One :class:`NodeNetwork` is a host bridge ``<prefix>br`` holding the first address of a private
/24 (the "host" address, where the test's api-server listens) and one network namespace per node
(``<prefix>-<node>``), joined to the bridge by a veth pair whose namespace end is ``eth0``. A
process started through :meth:`NodeNet.command` runs inside its node's namespace: that is how a
kubelet becomes that node (its CNI bridge, routes and pod addresses stay inside the namespace).

Everything is created under names derived from a random prefix and removed by those names only.
"""

from __future__ import annotations

import ipaddress
import random
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
    return res


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    nets = []
    for line in out.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "unreachable", "blackhole", "prohibit", "throw", "multicast"):
            word = line.split()[1]
        try:
            nets.append(ipaddress.IPv4Network(word, strict=False))
        except ValueError:
            continue
    return nets


def free_subnet(first_octet: int = 10, prefixlen: int = 24, avoid: Sequence[str] = ()) -> str:
    """A random ``10.x.y.0/<prefixlen>`` that overlaps no route on this host nor ``avoid``."""
    used = _used_networks() + [ipaddress.IPv4Network(a) for a in avoid]
    for _ in range(200):
        cand = ipaddress.IPv4Network(
            f"{first_octet}.{random.randint(100, 250)}.{random.randint(0, 255)}.0/{prefixlen}", strict=False
        )
        if not any(cand.overlaps(u) for u in used if u.prefixlen > 0):
            return str(cand)
    raise RuntimeError("no free private subnet found")


@dataclass
class NodeNet:
    name: str  # the node name (the kubelet's --hostname-override)
    netns: str  # the network namespace
    ip: str  # the node's InternalIP (eth0 inside the namespace)
    host_veth: str  # the bridge-side end of its veth pair

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside this node's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class NodeNetwork:
    """A bridge in the host namespace plus node namespaces on it. Use as a context manager, or
    call :meth:`create` and then :meth:`remove` (safe to call twice; removes by name)."""

    prefix: str = field(default_factory=lambda: "kh" + uuid.uuid4().hex[:5])
    subnet: str = ""
    nodes: list[NodeNet] = field(default_factory=list)
    created: bool = False

    def __post_init__(self) -> None:
        if len(self.prefix) > 8:
            raise ValueError("prefix too long: interface names are limited to 15 characters")
        if not self.subnet:
            self.subnet = free_subnet()

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def host_ip(self) -> str:
        """The host's address on the bridge: reachable from every node namespace."""
        return str(ipaddress.IPv4Network(self.subnet)[1])

    def create(self) -> NodeNetwork:
        plen = ipaddress.IPv4Network(self.subnet).prefixlen
        ip("link", "add", self.bridge, "type", "bridge")
        self.created = True
        ip("addr", "add", f"{self.host_ip}/{plen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_node(self, name: str) -> NodeNet:
        """A new namespace for node ``name`` with ``eth0`` on the bridge and ``lo`` up."""
        index = len(self.nodes)
        net = ipaddress.IPv4Network(self.subnet)
        node = NodeNet(name, f"{self.prefix}-{name}", str(net[10 + index]), f"{self.prefix}v{index}")
        ip("netns", "add", node.netns)
        self.nodes.append(node)
        peer = f"{self.prefix}p{index}"
        ip("link", "add", node.host_veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", node.netns)
        ip("link", "set", peer, "name", "eth0", netns=node.netns)
        ip("addr", "add", f"{node.ip}/{net.prefixlen}", "dev", "eth0", netns=node.netns)
        ip("link", "set", "eth0", "up", netns=node.netns)
        ip("link", "set", "lo", "up", netns=node.netns)
        ip("link", "set", node.host_veth, "master", self.bridge)
        ip("link", "set", node.host_veth, "up")
        return node

    def remove(self) -> None:
        for node in self.nodes:
            # deleting the namespace takes its eth0 and with it the host end of the veth pair
            ip("netns", "del", node.netns, check=False)
            ip("link", "del", node.host_veth, check=False)
        self.nodes.clear()
        if self.created:
            ip("link", "del", self.bridge, check=False)
            self.created = False

    def __enter__(self) -> NodeNetwork:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()
