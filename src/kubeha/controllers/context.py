"""What every controller gets from the controller-manager, and the table of controllers.

A controller module registers a start function with :func:`register`; the manager imports every
module of this package, starts the enabled controllers (``--controllers``, upstream syntax:
``*``, ``foo``, ``-foo``) once it leads, and cancels them all when it stops leading.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kubeha.client.rest import ApiClient
from kubeha.machinery.events import EventRecorder
from kubeha.machinery.informer import SharedInformerFactory


@dataclass
class ControllerOptions:
    """Flag values controllers read (upstream kube-controller-manager names)."""

    cluster_cidr: str = "10.244.0.0/16"
    allocate_node_cidrs: bool = False
    node_cidr_mask_size: int = 24
    service_cluster_ip_range: str = "10.96.0.0/12"
    # node lifecycle
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 50.0
    node_startup_grace_period: float = 60.0
    # workers per controller (upstream --concurrent-*-syncs)
    concurrent_deployment_syncs: int = 5
    concurrent_replicaset_syncs: int = 5
    concurrent_gc_syncs: int = 20
    concurrent_endpoint_syncs: int = 5
    concurrent_namespace_syncs: int = 10
    concurrent_syncs: int = 5  # everything else
    # certificates
    cluster_signing_cert_file: str = ""
    cluster_signing_key_file: str = ""
    cluster_signing_duration: float = 365 * 24 * 3600.0
    # pod gc / ttl
    terminated_pod_gc_threshold: int = 12500
    pod_gc_period: float = 20.0
    # CA published to every namespace as the kube-root-ca.crt ConfigMap (default: the kubeconfig's)
    root_ca_file: str = ""

    def cluster_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cluster_cidr, strict=False)


@dataclass
class ControllerContext:
    client: ApiClient
    informers: SharedInformerFactory
    options: ControllerOptions = field(default_factory=ControllerOptions)
    # one recorder per component name ("deployment-controller", ...), created on first use
    recorders: dict[str, EventRecorder] = field(default_factory=dict)

    def recorder(self, component: str) -> EventRecorder:
        rec = self.recorders.get(component)
        if rec is None:
            rec = self.recorders[component] = EventRecorder(self.client, component)
        return rec


StartFunc = Callable[[ControllerContext], Awaitable[None]]


@dataclass(frozen=True)
class ControllerSpec:
    name: str  # upstream controller name, e.g. "deployment", "replicaset", "garbagecollector"
    start: StartFunc  # runs until cancelled
    enabled_by_default: bool = True


CONTROLLERS: dict[str, ControllerSpec] = {}


def register(name: str, *, enabled_by_default: bool = True) -> Callable[[StartFunc], StartFunc]:
    """Decorator: ``@register("replicaset")`` on ``async def start(ctx) -> None``."""

    def deco(fn: StartFunc) -> StartFunc:
        if name in CONTROLLERS:
            raise ValueError(f"controller {name} registered twice")
        CONTROLLERS[name] = ControllerSpec(name, fn, enabled_by_default)
        return fn

    return deco


def enabled(selection: list[str]) -> list[str]:
    """Names enabled by a ``--controllers`` list, as upstream: ``*`` = the defaults, ``-x`` off."""
    on: set[str] = set()
    for item in selection or ["*"]:
        if item == "*":
            on |= {n for n, s in CONTROLLERS.items() if s.enabled_by_default}
    for item in selection or ["*"]:
        if item.startswith("-"):
            on.discard(item[1:])
        elif item != "*":
            if item not in CONTROLLERS:
                raise ValueError(f'"{item}" is not in the list of known controllers')
            on.add(item)
    return sorted(on)
