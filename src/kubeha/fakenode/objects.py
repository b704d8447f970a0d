"""Pure builders for fake nodes: Node and Lease objects, pod status patches, flag parsing, IPs.

Nothing here does I/O, so the shapes the fake kubelet writes can be checked in unit tests.
Objects are plain dicts in their JSON form, with upstream field names.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

# kwok's markers, so tools that know kwok recognise these nodes as fake
FAKE_ANNOTATION = "kwok.x-k8s.io/node"
FAKE_LABEL = "type"
NODE_LEASE_NAMESPACE = "kube-node-lease"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# Node IPs and pod ranges live outside the cluster (10.244/16) and service (10.96/12) CIDRs.
NODE_IP_NET = ipaddress.ip_network("172.16.0.0/12")
FALLBACK_POD_NET = ipaddress.ip_network("100.64.0.0/10")
FALLBACK_POD_PREFIX = 25  # 126 usable addresses: more than the default 110 pods per node


def format_time(dt: datetime) -> str:
    """metav1.Time's JSON form (RFC 3339, seconds, UTC)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_microtime(dt: datetime) -> str:
    """metav1.MicroTime's JSON form (6 fractional digits, UTC)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- flags ---------------------------------------------------------------------------------------------------


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (an empty value is allowed: ``k=``) → dict."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid label {item!r}: want key=value")
        out[key] = value
    return out


def parse_taints(text: str) -> list[Obj]:
    """``k=v:Effect,k2:Effect`` → Taint dicts (kubelet's ``--register-with-taints`` syntax)."""
    out: list[Obj] = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        kv, sep, effect = item.rpartition(":")
        if not sep or effect not in TAINT_EFFECTS:
            raise ValueError(f"invalid taint {item!r}: want key[=value]:{'|'.join(TAINT_EFFECTS)}")
        key, _, value = kv.partition("=")
        if not key:
            raise ValueError(f"invalid taint {item!r}: empty key")
        taint: Obj = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        out.append(taint)
    return out


# -- addresses -----------------------------------------------------------------------------------------------


def _digest(name: str) -> int:
    # stable across processes (unlike hash()), so a restarted fake-nodes keeps its addresses
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def node_ip(name: str) -> str:
    """A stable fake InternalIP for a node name (host part never .0 or the broadcast)."""
    hosts = NODE_IP_NET.num_addresses - 2
    return str(NODE_IP_NET.network_address + 1 + _digest(name) % hosts)


def fallback_pod_cidr(name: str) -> str:
    """A stable fake pod range for a node without ``spec.podCIDR`` (no node-ipam controller)."""
    blocks = 2 ** (FALLBACK_POD_PREFIX - FALLBACK_POD_NET.prefixlen)
    size = 2 ** (32 - FALLBACK_POD_PREFIX)
    base = FALLBACK_POD_NET.network_address + (_digest("pods/" + name) % blocks) * size
    return f"{base}/{FALLBACK_POD_PREFIX}"


@dataclass
class PodIPs:
    """Pod IPs of one node: the lowest free host address of its range, skipping the gateway (.1)."""

    cidr: str
    used: dict[str, str] = field(default_factory=dict)  # pod key -> ip

    def allocate(self, key: str) -> str:
        if key in self.used:
            return self.used[key]
        net = ipaddress.ip_network(self.cidr, strict=False)
        taken = set(self.used.values())
        for i, host in enumerate(net.hosts()):
            if i == 0:
                continue  # the bridge/gateway address on a real node
            ip = str(host)
            if ip not in taken:
                self.used[key] = ip
                return ip
        raise RuntimeError(f"pod range {self.cidr} is full")

    def claim(self, key: str, ip: str) -> None:
        """Record an address a pod already has (seen after a restart)."""
        self.used[key] = ip

    def release(self, key: str) -> None:
        self.used.pop(key, None)


# -- nodes ---------------------------------------------------------------------------------------------------


@dataclass
class NodeTemplate:
    """What every node of one fake-nodes process looks like."""

    cpu: str = "32"
    memory: str = "256Gi"
    pods: str = "110"
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    kubelet_version: str = "v1.33.0-kubeha-fake"


def ready_conditions(now: datetime, transition: datetime | None = None) -> list[Obj]:
    """The four conditions a healthy kubelet reports (reasons as kubelet writes them)."""
    beat, since = format_time(now), format_time(transition or now)

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": since,
        }

    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def node_labels(name: str, tpl: NodeTemplate) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        FAKE_LABEL: "kwok",
        **tpl.labels,
    }


def node_annotations() -> dict[str, str]:
    return {FAKE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"}


def node_status(name: str, tpl: NodeTemplate, now: datetime) -> Obj:
    resources = {"cpu": tpl.cpu, "memory": tpl.memory, "pods": tpl.pods, "ephemeral-storage": tpl.ephemeral_storage}
    uid = hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": ready_conditions(now),
        "addresses": [{"type": "InternalIP", "address": node_ip(name)}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": uid,
            "systemUUID": f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}",
            "bootID": uid,
            "kernelVersion": "fake",
            "osImage": "kubeha fake node",
            "containerRuntimeVersion": "fake://0.0.0",
            "kubeletVersion": tpl.kubelet_version,
            "kubeProxyVersion": tpl.kubelet_version,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def new_node(name: str, tpl: NodeTemplate, now: datetime) -> Obj:
    spec: Obj = {}
    if tpl.taints:
        spec["taints"] = [dict(t) for t in tpl.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels(name, tpl), "annotations": node_annotations()},
        "spec": spec,
        "status": node_status(name, tpl, now),
    }


def condition(obj: Obj | None, type_: str) -> Obj | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def node_ready(node: Obj | None) -> bool:
    c = condition(node, "Ready")
    return c is not None and c.get("status") == "True"


def node_status_patch(node: Obj | None, now: datetime) -> Obj:
    """A merge patch for ``nodes/status`` that reports a healthy node again (a kubelet's status
    sync): Ready keeps its transition time only when it already was True."""
    ready = condition(node, "Ready")
    since: datetime | None = None
    if ready is not None and ready.get("status") == "True" and ready.get("lastTransitionTime"):
        since = datetime.strptime(str(ready["lastTransitionTime"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return {"status": {"conditions": ready_conditions(now, since)}}


def new_lease(node_name: str, node_uid: str | None, duration: int, now: datetime) -> Obj:
    meta: Obj = {"name": node_name, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        # as the kubelet does: the lease goes away with its node
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration, "renewTime": format_microtime(now)},
    }


def lease_renewal(node_name: str, duration: int, now: datetime) -> Obj:
    return {"spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration, "renewTime": format_microtime(now)}}


# -- pods ----------------------------------------------------------------------------------------------------


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_running_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    ready = condition(pod, "Ready")
    return status.get("phase") == "Running" and ready is not None and ready.get("status") == "True"


def needs_start(pod: Obj) -> bool:
    """A bound pod this fake kubelet still has to report as running."""
    return not (is_terminating(pod) or is_finished(pod) or is_running_ready(pod))


def _container_id(pod: Obj, name: str) -> str:
    uid = (pod.get("metadata") or {}).get("uid") or pod_key(pod)
    return "fake://" + hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()


def _image_id(image: str) -> str:
    return f"{image}@sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _merge_conditions(existing: Iterable[Any], fresh: list[Obj]) -> list[Obj]:
    """Fresh conditions by type; a condition whose status did not change keeps its transition
    time; conditions we do not own (e.g. custom readiness gates) are kept as they are."""
    old = {c.get("type"): c for c in existing if isinstance(c, dict)}
    out: list[Obj] = []
    for c in fresh:
        prev = old.pop(c["type"], None)
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": prev["lastTransitionTime"]}
        out.append(c)
    out.extend(old.values())
    return out


def running_status_patch(pod: Obj, host_ip: str, pod_ip: str, now: datetime) -> Obj:
    """A merge patch for ``pods/status``: Running and Ready, every container running, init
    containers completed (the state a kubelet reports once the pod has started)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    started = status.get("startTime") or format_time(now)
    ts = format_time(now)
    if spec.get("hostNetwork"):
        pod_ip = host_ip
    conds = [
        {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts}
        for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    containers = [
        {
            "name": c.get("name"),
            "image": c.get("image"),
            "imageID": _image_id(str(c.get("image") or "")),
            "containerID": _container_id(pod, str(c.get("name"))),
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": ts}},
        }
        for c in spec.get("containers") or ()
    ]
    patch: Obj = {
        "phase": "Running",
        "conditions": _merge_conditions(status.get("conditions") or (), conds),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "containerStatuses": containers,
    }
    inits = spec.get("initContainers") or ()
    if inits:
        patch["initContainerStatuses"] = [
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "imageID": _image_id(str(c.get("image") or "")),
                "containerID": _container_id(pod, str(c.get("name"))),
                "ready": True,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": ts}},
            }
            for c in inits
        ]
    return {"status": patch}
