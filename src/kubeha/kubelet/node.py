"""The kubelet's Node: registration, Lease heartbeat, status (conditions written only on change).

Pure builders first (testable without I/O), then ``NodeManager`` which talks to the api-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import LEASES, NODES, ResourceRef
from kubeha.client.rest import ApiClient
from kubeha.kubelet import cni

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NODE_LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.0-kubeha"
RUNTIMECLASSES = ResourceRef("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False)
STATUS_REPORT_FREQUENCY = 300.0  # upstream nodeStatusReportFrequency: re-post unchanged status this often
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def fmt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_micro(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def os_image(text: str) -> str:
    """PRETTY_NAME of /etc/os-release."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip().strip('"')
    return "Linux"


def memory_bytes(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def detect_node_ip() -> str:
    """The address the default route leaves from (no packet is sent), else loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


@dataclass
class NodeConfig:
    name: str
    node_ip: str
    runtime_version: str
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    root_dir: str = "/var/lib/kubeha/kubelet"
    port: int = 10250
    cni: bool = False  # pods need a CNI network (the Docker runtime): not Ready without one
    cni_conf_dir: str = ""


def capacity(cfg: NodeConfig) -> dict[str, str]:
    mem = memory_bytes(_read("/proc/meminfo"))
    try:
        disk = shutil.disk_usage(cfg.root_dir if os.path.isdir(cfg.root_dir) else "/").total
    except OSError:
        disk = 0
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{mem // 1024}Ki",
        "pods": str(cfg.max_pods),
        "ephemeral-storage": f"{disk // 1024}Ki",
    }


def node_info(cfg: NodeConfig) -> Obj:
    machine = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    uname = platform.uname()
    return {
        "machineID": machine,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine,
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": uname.release,
        "osImage": os_image(_read("/etc/os-release")),
        "containerRuntimeVersion": cfg.runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux",
        "architecture": ARCH.get(uname.machine, uname.machine),
    }


def node_labels(cfg: NodeConfig) -> dict[str, str]:
    arch = ARCH.get(platform.machine(), platform.machine())
    return {
        "kubernetes.io/hostname": cfg.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        **cfg.labels,
    }


CONDITION_TEXT = {
    # type: (status when healthy, healthy reason, healthy message)
    "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
}


def conditions(old: list[Any], now: datetime, errors: list[str] | None = None) -> list[Obj]:
    """The four node conditions; transition times kept when the status did not change.
    ``errors`` (e.g. the runtime network's) make Ready False with them as its message."""
    prev = {c.get("type"): c for c in old if isinstance(c, dict)}
    out: list[Obj] = []
    for type_, (status, reason, message) in CONDITION_TEXT.items():
        if type_ == "Ready" and errors:
            status, reason, message = "False", "KubeletNotReady", ", ".join(errors)
        p = prev.get(type_)
        since = p.get("lastTransitionTime") if p and p.get("status") == status else fmt(now)
        out.append(
            {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": fmt(now),
                "lastTransitionTime": since,
            }
        )
    return out


def conditions_changed(node: Obj, now: datetime, errors: list[str] | None = None) -> bool:
    """Whether the node's conditions differ (in status, reason or message) from what we would report."""
    have = {
        c.get("type"): (c.get("status"), c.get("reason"), c.get("message"))
        for c in (node.get("status") or {}).get("conditions") or ()
    }
    want = {c["type"]: (c["status"], c["reason"], c["message"]) for c in conditions([], now, errors)}
    return have != want


def runtime_errors(cfg: NodeConfig, pod_cidr: str) -> list[str]:
    """Why the node cannot run pods now (upstream's runtimeState errors); [] when it can."""
    if cfg.cni and not cni.network_ready(cfg.cni_conf_dir, pod_cidr):
        return [cni.NETWORK_NOT_READY]
    return []


def node_status(cfg: NodeConfig, old: Obj | None, now: datetime, errors: list[str] | None = None) -> Obj:
    cap = capacity(cfg)
    return {
        "capacity": cap,
        "allocatable": dict(cap),
        "conditions": conditions(list(((old or {}).get("status") or {}).get("conditions") or ()), now, errors),
        "addresses": [{"type": "InternalIP", "address": cfg.node_ip}, {"type": "Hostname", "address": cfg.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": node_info(cfg),
    }


def new_node(cfg: NodeConfig, now: datetime, errors: list[str] | None = None) -> Obj:
    spec: Obj = {}
    if cfg.taints:
        spec["taints"] = [dict(t) for t in cfg.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.name,
            "labels": node_labels(cfg),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": spec,
        "status": node_status(cfg, None, now, errors),
    }


def new_lease(name: str, node_uid: str, duration: int, now: datetime) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": NODE_LEASE_NAMESPACE,
            # the lease goes away with its node (as upstream's kubelet sets it)
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": duration, "renewTime": fmt_micro(now)},
    }


class NodeManager:
    """Registers the node, renews its lease every leaseDuration/4 and keeps its status current."""

    def __init__(
        self,
        client: ApiClient,
        cfg: NodeConfig,
        *,
        lease_duration: int = 40,
        status_frequency: float = 10.0,
        report_frequency: float = STATUS_REPORT_FREQUENCY,
    ) -> None:
        self.client = client
        self.cfg = cfg
        self.lease_duration = lease_duration
        self.status_frequency = status_frequency
        self.report_frequency = report_frequency
        self.node: Obj | None = None
        self.uid = ""
        self.registered = asyncio.Event()
        self._last_report = 0.0
        self._kick = asyncio.Event()  # post the status now (it changed), not at the next period
        self.status_writes = 0
        self.lease_renewals = 0

    @property
    def pod_cidr(self) -> str:
        return str(((self.node or {}).get("spec") or {}).get("podCIDR") or "")

    def errors(self) -> list[str]:
        return runtime_errors(self.cfg, self.pod_cidr)

    def network_ready(self) -> bool:
        """Whether pods that need the CNI network can start (a podCIDR or a CNI config)."""
        return not self.cfg.cni or cni.network_ready(self.cfg.cni_conf_dir, self.pod_cidr)

    def observe(self, node: Obj) -> None:
        """The Node as a watch delivered it (its podCIDR may have just arrived); the status is
        posted at once when what we would report changed."""
        if (node.get("metadata") or {}).get("name") != self.cfg.name:
            return
        self.node = node
        if self.registered.is_set() and conditions_changed(node, datetime.now(UTC), self.errors()):
            self._kick.set()

    @property
    def allocatable(self) -> dict[str, str]:
        return dict(((self.node or {}).get("status") or {}).get("allocatable") or capacity(self.cfg))

    async def register(self) -> None:
        """Create the Node; an existing one (a kubelet restart) gets our labels and status."""
        now = datetime.now(UTC)
        try:
            self.node = await self.client.create(NODES, new_node(self.cfg, now, self.errors()))
        except StatusError as e:
            if e.code != 409:
                raise
            current = await self.client.get(NODES, self.cfg.name)
            self.node = await self.client.patch(NODES, self.cfg.name, {"metadata": {"labels": node_labels(self.cfg)}})
            self.node = await self.client.patch(
                NODES,
                self.cfg.name,
                {"status": node_status(self.cfg, current, now, self.errors())},
                subresource="status",
            )
            self.status_writes += 1
        self.uid = str((self.node.get("metadata") or {}).get("uid") or "")
        self._last_report = time.monotonic()
        log.info("node %s registered (%s)", self.cfg.name, self.cfg.node_ip)
        self.registered.set()

    async def ensure_runtime_class(self, handler: str) -> None:
        rc = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": handler}, "handler": handler}
        try:
            await self.client.create(RUNTIMECLASSES, rc)
        except StatusError as e:
            if e.code not in (409, 403):
                raise

    async def renew_lease(self) -> None:
        now = datetime.now(UTC)
        spec = {
            "holderIdentity": self.cfg.name,
            "leaseDurationSeconds": self.lease_duration,
            "renewTime": fmt_micro(now),
        }
        try:
            await self.client.patch(LEASES, self.cfg.name, {"spec": spec}, NODE_LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
            await self.client.create(LEASES, new_lease(self.cfg.name, self.uid, self.lease_duration, now))
        self.lease_renewals += 1

    async def sync_status(self) -> None:
        """Read the node (podCIDR, what others wrote) and post status only when our conditions
        differ from it or the report frequency has passed."""
        now = datetime.now(UTC)
        try:
            self.node = await self.client.get(NODES, self.cfg.name)
        except StatusError as e:
            if e.code != 404:
                raise
            await self.register()  # deleted behind our back: register again, as upstream
            return
        stale = time.monotonic() - self._last_report >= self.report_frequency
        errors = self.errors()
        if stale or conditions_changed(self.node, now, errors):
            self.node = await self.client.patch(
                NODES, self.cfg.name, {"status": node_status(self.cfg, self.node, now, errors)}, subresource="status"
            )
            self._last_report = time.monotonic()
            self.status_writes += 1

    async def heartbeat_loop(self) -> None:
        period = max(1.0, self.lease_duration / 4)
        while True:
            try:
                await self.renew_lease()
            except (StatusError, ConnectionError) as e:
                log.warning("lease renewal failed: %s", e)
            await asyncio.sleep(period)

    async def status_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.status_frequency)
            self._kick.clear()
            try:
                await self.sync_status()
            except (StatusError, ConnectionError) as e:
                log.warning("node status update failed: %s", e)
