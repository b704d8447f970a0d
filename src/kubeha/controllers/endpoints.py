"""The endpoints controller: an Endpoints object per Service with a selector, from its pods.

Ready pods become ``addresses``, the others ``notReadyAddresses`` (all of them ready when the
service has ``publishNotReadyAddresses``). Each service port is resolved per pod (a named
targetPort is looked up among the pod's container ports), and pods with the same resolved ports
share one subset. Services without a selector are left alone (their Endpoints are the user's).
The object is written only when the computed subsets differ from the stored ones.

The pure parts (pod filtering, port resolution, subsets) are shared with the EndpointSlice
controller.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubeha.api.apps.v1 import selector_matches
from kubeha.api.errors import StatusError
from kubeha.client.resources import ENDPOINTS, PODS, SERVICES
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, enqueue_on, object_of
from kubeha.machinery.indexer import NAMESPACE_INDEX, split_meta_namespace_key
from kubeha.machinery.informer import SharedInformer
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"
# upstream caps an Endpoints object and says so in this annotation
MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


# -- pure helpers (shared with endpointslice) ---------------------------------------------------


def has_selector(svc: Obj) -> bool:
    return bool((svc.get("spec") or {}).get("selector"))


def selects(svc: Obj, pod: Obj) -> bool:
    """Whether ``svc``'s (map) selector selects ``pod`` (same namespace)."""
    sel = (svc.get("spec") or {}).get("selector") or {}
    if not sel:
        return False
    if (pod.get("metadata") or {}).get("namespace") != (svc.get("metadata") or {}).get("namespace"):
        return False
    return selector_matches({"matchLabels": sel}, (pod.get("metadata") or {}).get("labels") or {})


def pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def include_pod(pod: Obj, include_terminating: bool) -> bool:
    """Upstream's ShouldPodBeInEndpoints: an IP, not finished, terminating only if asked."""
    if not (pod.get("status") or {}).get("podIP"):
        return False
    if pod_terminal(pod):
        return False
    if pod_terminating(pod) and not include_terminating:
        return False
    return True


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def address_family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


def service_families(svc: Obj) -> list[str]:
    spec = svc.get("spec") or {}
    fams = list(spec.get("ipFamilies") or [])
    if not fams:
        ip = spec.get("clusterIP")
        fams = [address_family(ip)] if ip and ip != "None" else ["IPv4"]
    return fams


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod port a service port goes to: a named targetPort is looked up in the containers
    (same protocol); a number is used as is; no targetPort means the service port."""
    target = svc_port.get("targetPort")
    if target is None or target == "":
        return int(svc_port.get("port") or 0) or None
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = svc_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                return int(p.get("containerPort") or 0) or None
    return None


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The EndpointPorts of ``pod`` for ``svc`` (ports that cannot be resolved are left out)."""
    out: list[Obj] = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        num = find_port(pod, sp)
        if num is None:
            continue
        port: Obj = {"name": sp.get("name") or "", "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return out


def pod_hostname(svc: Obj, pod: Obj) -> str:
    """The pod's hostname when it lives in the service's subdomain (stable DNS names)."""
    spec = pod.get("spec") or {}
    smd, pmd = svc.get("metadata") or {}, pod.get("metadata") or {}
    if (
        spec.get("hostname")
        and spec.get("subdomain") == smd.get("name")
        and pmd.get("namespace") == smd.get("namespace")
    ):
        return str(spec["hostname"])
    return ""


def target_ref(pod: Obj) -> Obj:
    md = pod.get("metadata") or {}
    return {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md.get("name", ""), "uid": md.get("uid", "")}


def _address(svc: Obj, pod: Obj, ip: str) -> Obj:
    addr: Obj = {"ip": ip}
    hostname = pod_hostname(svc, pod)
    if hostname:
        addr["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = target_ref(pod)
    return addr


def _port_key(ports: list[Obj]) -> tuple[tuple[str, int, str, str], ...]:
    return tuple(sorted((p["name"], p["port"], p["protocol"], p.get("appProtocol") or "") for p in ports))


def compute_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """The Endpoints subsets of ``svc`` given the pods it selects (sorted, deterministic)."""
    spec = svc.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    headless_no_ports = not spec.get("ports") and spec.get("clusterIP") == "None"
    families = set(service_families(svc))
    groups: dict[tuple[tuple[str, int, str, str], ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not selects(svc, pod) or not include_pod(pod, tolerate_unready):
            continue
        ports = endpoint_ports(svc, pod)
        if not ports and not headless_no_ports:
            continue
        ready = tolerate_unready or pod_ready(pod)
        for ip in pod_ips(pod):
            if address_family(ip) not in families:
                continue
            group = groups.setdefault(_port_key(ports), ([], [], ports))
            (group[0] if ready else group[1]).append(_address(svc, pod, ip))
            break  # one address per pod and service (the service's family)
    subsets: list[Obj] = []
    for _, (ready_addrs, unready_addrs, ports) in sorted(groups.items(), key=lambda kv: kv[0]):
        subset: Obj = {}
        if ready_addrs:
            subset["addresses"] = sorted(ready_addrs, key=_addr_sort)
        if unready_addrs:
            subset["notReadyAddresses"] = sorted(unready_addrs, key=_addr_sort)
        if ports:
            subset["ports"] = sorted(ports, key=lambda p: (p["name"], p["port"], p["protocol"]))
        subsets.append(subset)
    return subsets


def _addr_sort(addr: Obj) -> tuple[str, str]:
    return (addr["ip"], (addr.get("targetRef") or {}).get("uid", ""))


def truncate(subsets: list[Obj], limit: int = MAX_CAPACITY) -> tuple[list[Obj], bool]:
    """Keep at most ``limit`` addresses (ready ones first), as upstream's over-capacity rule."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= limit:
        return subsets, False
    left = limit
    out: list[Obj] = []
    for s in subsets:
        ns: Obj = {k: v for k, v in s.items() if k not in ("addresses", "notReadyAddresses")}
        ready = (s.get("addresses") or [])[:left]
        left -= len(ready)
        unready = (s.get("notReadyAddresses") or [])[:left]
        left -= len(unready)
        if ready:
            ns["addresses"] = ready
        if unready:
            ns["notReadyAddresses"] = unready
        if ready or unready:
            out.append(ns)
    return out, True


def desired_labels(svc: Obj) -> dict[str, str]:
    labels = dict((svc.get("metadata") or {}).get("labels") or {})
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


def desired_endpoints(svc: Obj, pods: list[Obj], current: Obj | None) -> Obj | None:
    """The Endpoints to write for ``svc``, or None when ``current`` already says it all."""
    subsets, over = truncate(compute_subsets(svc, pods))
    labels = desired_labels(svc)
    md = (current or {}).get("metadata") or {}
    annotations = dict(md.get("annotations") or {})
    if over:
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    if (
        current is not None
        and _normalize(current.get("subsets") or []) == _normalize(subsets)
        and (md.get("labels") or {}) == labels
        and (md.get("annotations") or {}) == annotations
    ):
        return None
    smd = svc.get("metadata") or {}
    new_md: Obj = {**md, "name": smd.get("name"), "namespace": smd.get("namespace"), "labels": labels}
    if annotations:
        new_md["annotations"] = annotations
    else:
        new_md.pop("annotations", None)
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": new_md, "subsets": subsets}


def _normalize(subsets: list[Obj]) -> list[Obj]:
    """Subsets in a comparable form (the server may fill defaults or drop empty lists)."""
    out = []
    for s in subsets:
        out.append(
            {
                "addresses": sorted((_norm_addr(a) for a in s.get("addresses") or []), key=_addr_sort),
                "notReadyAddresses": sorted((_norm_addr(a) for a in s.get("notReadyAddresses") or []), key=_addr_sort),
                "ports": sorted(
                    (
                        {
                            "name": p.get("name") or "",
                            "port": p.get("port"),
                            "protocol": p.get("protocol") or "TCP",
                            "appProtocol": p.get("appProtocol") or "",
                        }
                        for p in s.get("ports") or []
                    ),
                    key=lambda p: (p["name"], p["port"], p["protocol"]),
                ),
            }
        )
    return sorted(out, key=repr)


def _norm_addr(a: Obj) -> Obj:
    ref = a.get("targetRef") or {}
    return {
        "ip": a.get("ip"),
        "hostname": a.get("hostname") or "",
        "nodeName": a.get("nodeName") or "",
        "targetRef": {k: ref.get(k, "") for k in ("kind", "namespace", "name", "uid")},
    }


# -- wiring -------------------------------------------------------------------------------------


def services_for_pod(services: SharedInformer, pod: Obj) -> list[str]:
    """Keys of the services (with selectors) in the pod's namespace that select it."""
    ns = (pod.get("metadata") or {}).get("namespace") or ""
    keys = []
    for svc in services.indexer.by_index(NAMESPACE_INDEX, ns):
        if selects(svc, pod):
            md = svc.get("metadata") or {}
            keys.append(f"{md.get('namespace')}/{md.get('name')}")
    return keys


def pod_changed(old: Obj, new: Obj) -> bool:
    """Whether a pod update can change any endpoint (status churn like container states cannot)."""
    o_md, n_md = old.get("metadata") or {}, new.get("metadata") or {}
    if o_md.get("labels") != n_md.get("labels") or o_md.get("deletionTimestamp") != n_md.get("deletionTimestamp"):
        return True
    o_st, n_st = old.get("status") or {}, new.get("status") or {}
    if (o_st.get("podIP"), o_st.get("podIPs"), o_st.get("phase")) != (
        n_st.get("podIP"),
        n_st.get("podIPs"),
        n_st.get("phase"),
    ):
        return True
    if pod_ready(old) != pod_ready(new):
        return True
    o_sp, n_sp = old.get("spec") or {}, new.get("spec") or {}
    return bool(
        (o_sp.get("nodeName"), o_sp.get("hostname"), o_sp.get("subdomain"))
        != (n_sp.get("nodeName"), n_sp.get("hostname"), n_sp.get("subdomain"))
    )


def watch_pods_for_services(pods: SharedInformer, services: SharedInformer, queue: RateLimitingQueue) -> None:
    """Enqueue the services selecting a pod whenever the pod changes in a way that matters
    (on a label change both the old and the new selecting services)."""

    def add(obj: Any) -> None:
        pod = object_of(obj)
        if pod is not None:
            for key in services_for_pod(services, pod):
                queue.add(key)

    def update(old: Obj, new: Obj) -> None:
        if not pod_changed(old, new):
            return
        keys = set(services_for_pod(services, new))
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            keys |= set(services_for_pod(services, old))
        for key in keys:
            queue.add(key)

    pods.add_event_handler(on_add=add, on_update=update, on_delete=add)


class EndpointsController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.services = ctx.informers.informer_for(SERVICES)
        self.pods = ctx.informers.informer_for(PODS)
        self.endpoints = ctx.informers.informer_for(ENDPOINTS)
        self.queue = RateLimitingQueue(name="endpoint")
        enqueue_on(self.services, self.queue)
        watch_pods_for_services(self.pods, self.services, self.queue)

        # someone deleting or changing a managed Endpoints: look at the service again
        def ep_changed(obj: Any) -> None:
            ep = object_of(obj)
            if ep is not None:
                md = ep.get("metadata") or {}
                self.queue.add(f"{md.get('namespace')}/{md.get('name')}")

        self.endpoints.add_event_handler(on_update=lambda o, n: ep_changed(n), on_delete=ep_changed)
        workers = ctx.options.concurrent_endpoint_syncs
        self.controller = Controller("endpoint", self.reconcile, self.queue, workers)

    async def run(self) -> None:
        await self.controller.run([self.services, self.pods, self.endpoints])

    async def reconcile(self, key: str) -> None:
        ns, name = split_meta_namespace_key(key)
        svc = self.services.indexer.get(key)
        current = self.endpoints.indexer.get(key)
        if svc is None:
            if current is not None:
                await _ignore_not_found(self.client.delete(ENDPOINTS, name, ns))
            return
        if not has_selector(svc):
            return  # the user's Endpoints (or a mirror's)
        pods = self.pods.indexer.by_index(NAMESPACE_INDEX, ns)
        want = desired_endpoints(svc, pods, current)
        if want is None:
            return
        if current is None:
            try:
                await self.client.create(ENDPOINTS, want, ns)
            except StatusError as e:
                # 403 in a terminating namespace: it is going away; (409: our cache lags, retry)
                if not (e.code == 403 and e.reason == "Forbidden" and "terminat" in str(e)):
                    raise
            return
        await self.client.update(ENDPOINTS, want, ns)


async def _ignore_not_found(aw: Any) -> None:
    try:
        await aw
    except StatusError as e:
        if e.code != 404:
            raise


@register("endpoint")
async def start(ctx: ControllerContext) -> None:
    ctl = EndpointsController(ctx)
    await ctx.informers.start()
    await ctl.run()
