"""ClusterIP and NodePort allocation, safe across many api-servers.

Each allocated IP or port is a claim key in etcd (``/registry/ranges/serviceips/<ip>``,
``/registry/ranges/servicenodeports/<port>``) written in the same transaction as the Service,
guarded on the key being absent: two api-servers can never hand out the same IP or port, and a
lost race just retries with another pick. Deleting a Service removes its claims in the delete's
transaction.
"""

from __future__ import annotations

import ipaddress
import json
import random
from typing import Any

from kubeha.api import errors
from kubeha.api.schema import Obj
from kubeha.apiserver.context import ApiContext
from kubeha.apiserver.rest import DELETE_HOOKS, WRITE_HOOKS, WritePlan
from kubeha.storage.interface import Compare, Delete, Put

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
RANDOM_TRIES = 64


def ip_key(ip: str) -> str:
    return IP_PREFIX + ip


def port_key(port: int) -> str:
    return f"{PORT_PREFIX}{port}"


def first_ip(cidr: str) -> str:
    """The `kubernetes` service's IP: the first address of the service range."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address + 1)


def _owner(svc: Obj) -> bytes:
    md = svc.get("metadata") or {}
    return json.dumps({"namespace": md.get("namespace", ""), "name": md.get("name", "")}).encode()


def _invalid(name: str, field: str, value: str, detail: str) -> errors.StatusError:
    return errors.invalid(
        "", "Service", name, [errors.Cause("FieldValueInvalid", field, f"Invalid value: {value}: {detail}")]
    )


async def _taken(ctx: ApiContext, key: str) -> bool:
    return await ctx.kv.get(key) is not None


async def _pick_ip(ctx: ApiContext, net: Any, exclude: set[str]) -> str:
    size = net.num_addresses
    # skip the network address, the first IP (reserved for `kubernetes`) and the broadcast address
    lo, hi = 2, size - 2
    if hi < lo:
        raise errors.internal("the service IP range is too small")
    for _ in range(RANDOM_TRIES):
        ip = str(net.network_address + random.randint(lo, hi))
        if ip not in exclude and not await _taken(ctx, ip_key(ip)):
            return ip
    # nearly full: scan the claims and take the first gap
    res = await ctx.store.list(IP_PREFIX) if hasattr(ctx.store, "list") else None
    used = set(exclude)
    if res is not None:
        used |= {k[len(IP_PREFIX) :] for k in getattr(res, "keys", [])}
    for off in range(lo, hi + 1):
        ip = str(net.network_address + off)
        if ip not in used and not await _taken(ctx, ip_key(ip)):
            return ip
    raise errors.StatusError(
        500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full"
    )


async def _pick_port(ctx: ApiContext, lo: int, hi: int, exclude: set[int]) -> int:
    for _ in range(RANDOM_TRIES):
        port = random.randint(lo, hi)
        if port not in exclude and not await _taken(ctx, port_key(port)):
            return port
    for port in range(lo, hi + 1):
        if port not in exclude and not await _taken(ctx, port_key(port)):
            return port
    raise errors.StatusError(
        500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full"
    )


def _uses_node_ports(spec: Obj) -> bool:
    t = spec.get("type") or "ClusterIP"
    if t == "NodePort":
        return True
    return t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def _needs_cluster_ip(spec: Obj) -> bool:
    return (spec.get("type") or "ClusterIP") != "ExternalName"


def _cluster_ips(spec: Obj) -> list[str]:
    ips = list(spec.get("clusterIPs") or [])
    if not ips and spec.get("clusterIP"):
        ips = [spec["clusterIP"]]
    return [ip for ip in ips if ip]


def _node_ports(spec: Obj) -> set[int]:
    return {int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")}


async def plan_service_write(ctx: ApiContext, new: Obj, old: Obj | None, plan: WritePlan) -> None:
    """Fill in spec.clusterIP(s) and nodePorts of ``new`` and add the claims to ``plan``."""
    spec = new.setdefault("spec", {})
    old_spec = (old or {}).get("spec") or {}
    name = (new.get("metadata") or {}).get("name", "")
    owner = _owner(new)
    net = ipaddress.ip_network(ctx.config.service_cluster_ip_range, strict=False)

    # -- cluster IPs ----------------------------------------------------------------------------
    old_ips = _cluster_ips(old_spec)
    if _needs_cluster_ip(spec):
        want = _cluster_ips(spec)
        if old is not None and old_ips and not want:
            want = old_ips  # an update that left the field empty keeps the allocation
        if old is not None and old_ips and want and want != old_ips and old_ips != ["None"]:
            raise errors.invalid(
                "",
                "Service",
                name,
                [
                    errors.Cause(
                        "FieldValueInvalid",
                        "spec.clusterIPs[0]",
                        f"Invalid value: {json.dumps(want)}: may not change once set",
                    )
                ],
            )
        if want == ["None"]:
            ips = ["None"]
        elif not want:
            ips = [await _pick_ip(ctx, net, set())]
            plan.also.append(Put(ip_key(ips[0]), owner))
            plan.guards.append(Compare(ip_key(ips[0]), 0))
        else:
            ips = want
            for ip in want:
                if ip in old_ips:
                    continue
                try:
                    addr = ipaddress.ip_address(ip)
                except ValueError:
                    raise _invalid(name, "spec.clusterIPs[0]", f'"{ip}"', "must be a valid IP address") from None
                if addr not in net:
                    raise _invalid(
                        name,
                        "spec.clusterIPs",
                        json.dumps([ip]),
                        f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. "
                        f"The range of valid IPs is {net}",
                    )
                if await _taken(ctx, ip_key(ip)):
                    raise _invalid(
                        name,
                        "spec.clusterIPs",
                        json.dumps([ip]),
                        f"failed to allocate IP {ip}: provided IP is already allocated",
                    )
                plan.also.append(Put(ip_key(ip), owner))
                plan.guards.append(Compare(ip_key(ip), 0))
        spec["clusterIP"] = ips[0]
        spec["clusterIPs"] = ips
        if ips != ["None"]:
            spec.setdefault("ipFamilies", ["IPv6" if ":" in ips[0] else "IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
    else:
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    for ip in old_ips:
        if ip != "None" and ip not in (spec.get("clusterIPs") or []):
            plan.also.append(Delete(ip_key(ip)))

    # -- node ports -----------------------------------------------------------------------------
    old_ports = _node_ports(old_spec) if _uses_node_ports(old_spec) else set()
    lo, hi = ctx.config.node_port_range
    kept: set[int] = set()
    if _uses_node_ports(spec):
        # ports the client asked for first, then the random ones (avoiding those)
        asked = _node_ports(spec)
        old_by_port = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []
        }
        for i, p in enumerate(spec.get("ports") or []):
            np = p.get("nodePort")
            if not np:
                prev = old_by_port.get((p.get("port"), p.get("protocol", "TCP")))
                if prev and prev not in asked and prev not in kept:
                    p["nodePort"] = prev
                    kept.add(int(prev))
                continue
            np = int(np)
            if np in kept:
                continue  # the same port for TCP and UDP shares one claim
            kept.add(np)
            if np in old_ports:
                continue
            if not lo <= np <= hi:
                raise _invalid(
                    name,
                    f"spec.ports[{i}].nodePort",
                    str(np),
                    f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}",
                )
            if await _taken(ctx, port_key(np)):
                raise _invalid(name, f"spec.ports[{i}].nodePort", str(np), "provided port is already allocated")
            plan.also.append(Put(port_key(np), owner))
            plan.guards.append(Compare(port_key(np), 0))
        for p in spec.get("ports") or []:
            if not p.get("nodePort"):
                np = await _pick_port(ctx, lo, hi, kept | old_ports)
                p["nodePort"] = np
                kept.add(np)
                plan.also.append(Put(port_key(np), owner))
                plan.guards.append(Compare(port_key(np), 0))
    else:
        for p in spec.get("ports") or []:
            p.pop("nodePort", None)
    for np in old_ports - kept:
        plan.also.append(Delete(port_key(np)))


async def plan_service_delete(ctx: ApiContext, svc: Obj, plan: WritePlan) -> None:
    spec = svc.get("spec") or {}
    for ip in _cluster_ips(spec):
        if ip != "None":
            plan.also.append(Delete(ip_key(ip)))
    for np in _node_ports(spec):
        plan.also.append(Delete(port_key(np)))


def install() -> None:
    WRITE_HOOKS["/services"] = plan_service_write
    DELETE_HOOKS["/services"] = plan_service_delete
