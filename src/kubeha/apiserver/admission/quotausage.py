"""What an object counts against a ResourceQuota (upstream's quota evaluators), and quantity text."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubeha.api.core.pod import parse_quantity
from kubeha.api.registry import ResourceInfo
from kubeha.api.schema import Obj

# core resources whose quota name predates count/<resource>
LEGACY_COUNTS = {
    "pods": "pods",
    "services": "services",
    "configmaps": "configmaps",
    "secrets": "secrets",
    "persistentvolumeclaims": "persistentvolumeclaims",
    "replicationcontrollers": "replicationcontrollers",
    "resourcequotas": "resourcequotas",
}
COMPUTE = ("cpu", "memory", "ephemeral-storage")


def q(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except ValueError:
        return Decimal(0)


def format_quantity(v: Decimal) -> str:
    """A short canonical text for a quantity (binary suffixes for whole multiples of 1024)."""
    if v == v.to_integral_value():
        n = int(v)
        if n and n % 1024 == 0:
            for suffix, size in (
                ("Ei", 2**60),
                ("Pi", 2**50),
                ("Ti", 2**40),
                ("Gi", 2**30),
                ("Mi", 2**20),
                ("Ki", 1024),
            ):
                if n % size == 0:
                    return f"{n // size}{suffix}"
        if n and n % 1000 == 0:
            for suffix, size in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 1000)):
                if n % size == 0:
                    return f"{n // size}{suffix}"
        return str(n)
    milli = v * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return format(v.normalize(), "f")


def pretty(usage: dict[str, Decimal]) -> str:
    return ",".join(f"{k}={format_quantity(usage[k])}" for k in sorted(usage))


def count_name(info: ResourceInfo) -> str:
    return f"count/{info.resource}.{info.group}" if info.group else f"count/{info.resource}"


def _container_sum(containers: list[Any], kind: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for c in containers or []:
        for name, value in ((c.get("resources") or {}).get(kind) or {}).items():
            out[name] = out.get(name, Decimal(0)) + q(value)
    return out


def pod_resources(pod: Obj, kind: str) -> dict[str, Decimal]:
    """Effective requests or limits of a pod: the larger of the containers' sum and any init container,
    plus the pod overhead (as upstream's resourcehelper.PodRequests)."""
    spec = pod.get("spec") or {}
    total = _container_sum(spec.get("containers") or [], kind)
    for c in spec.get("initContainers") or []:
        for name, value in _container_sum([c], kind).items():
            if value > total.get(name, Decimal(0)):
                total[name] = value
    for name, value in (spec.get("overhead") or {}).items():
        total[name] = total.get(name, Decimal(0)) + q(value)
    return total


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        if res.get("requests") or res.get("limits"):
            return False
    return True


def usage(info: ResourceInfo, obj: Obj) -> dict[str, Decimal]:
    """What ``obj`` counts against quota."""
    out: dict[str, Decimal] = {count_name(info): Decimal(1)}
    if info.group == "" and info.resource in LEGACY_COUNTS:
        out[LEGACY_COUNTS[info.resource]] = Decimal(1)
    if info.group == "" and info.resource == "pods":
        if is_terminal(obj):
            return {}
        for name, value in pod_resources(obj, "requests").items():
            out[f"requests.{name}"] = value
            if name in COMPUTE:
                out[name] = value
        for name, value in pod_resources(obj, "limits").items():
            out[f"limits.{name}"] = value
    elif info.group == "" and info.resource == "services":
        spec = obj.get("spec") or {}
        stype = spec.get("type") or "ClusterIP"
        if stype in ("NodePort", "LoadBalancer"):
            out["services.nodeports"] = Decimal(len(spec.get("ports") or []))
        if stype == "LoadBalancer":
            out["services.loadbalancers"] = Decimal(1)
    elif info.group == "" and info.resource == "persistentvolumeclaims":
        req = ((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}
        if "storage" in req:
            out["requests.storage"] = q(req["storage"])
    return out


def scopes_match(quota: Obj, info: ResourceInfo, obj: Obj) -> bool:
    """Quota scopes (BestEffort, NotBestEffort, Terminating, NotTerminating) select pods only."""
    scopes = list((quota.get("spec") or {}).get("scopes") or [])
    for expr in ((quota.get("spec") or {}).get("scopeSelector") or {}).get("matchExpressions") or []:
        scopes.append(expr.get("scopeName"))
    if not scopes:
        return True
    if not (info.group == "" and info.resource == "pods"):
        return False
    spec = obj.get("spec") or {}
    for scope in scopes:
        if scope == "BestEffort" and not is_best_effort(obj):
            return False
        if scope == "NotBestEffort" and is_best_effort(obj):
            return False
        if scope == "Terminating" and spec.get("activeDeadlineSeconds") is None:
            return False
        if scope == "NotTerminating" and spec.get("activeDeadlineSeconds") is not None:
            return False
    return True


def missing_constraints(info: ResourceInfo, obj: Obj, tracked: set[str]) -> list[str]:
    """Compute resources a tracked quota needs every container to state (upstream's pod Constraints)."""
    if not (info.group == "" and info.resource == "pods"):
        return []
    missing: set[str] = set()
    spec = obj.get("spec") or {}
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        for name in COMPUTE:
            for quota_name, kind in (
                (f"requests.{name}", "requests"),
                (name, "requests"),
                (f"limits.{name}", "limits"),
            ):
                if quota_name in tracked and name not in (res.get(kind) or {}):
                    missing.add(quota_name)
    return sorted(missing)
