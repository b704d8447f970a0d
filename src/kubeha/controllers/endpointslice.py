"""The EndpointSlice controller: EndpointSlices per Service with a selector, from its pods.

Endpoints are grouped by address type and resolved port set, sorted, and cut into slices of at
most ``MAX_ENDPOINTS_PER_SLICE``. Existing slices of the service (found by the
``kubernetes.io/service-name`` label and our ``managed-by`` label) are reused in name order, so a
steady state causes no writes; a slice is written only when its content differs. Slices carry a
controller ownerReference to the Service, and are deleted when the service goes (the garbage
collector would do it too; doing it here does not depend on it running).
"""

from __future__ import annotations

import logging
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import ENDPOINTSLICES, PODS, SERVICES
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.endpoints import (
    address_family,
    desired_labels,
    endpoint_ports,
    has_selector,
    include_pod,
    pod_hostname,
    pod_ips,
    pod_ready,
    pod_terminating,
    selects,
    service_families,
    target_ref,
    watch_pods_for_services,
)
from kubeha.machinery.controller import Controller, object_of
from kubeha.machinery.indexer import NAMESPACE_INDEX, split_meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
SERVICE_INDEX = "service-name"

PortKey = tuple[tuple[str, int, str, str], ...]


def service_index(slice_: Obj) -> list[str]:
    """Index managed slices by ``namespace/service``."""
    md = slice_.get("metadata") or {}
    labels = md.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{md.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]


def _endpoint(svc: Obj, pod: Obj, ip: str) -> Obj:
    tolerate_unready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    terminating = pod_terminating(pod)
    ready = pod_ready(pod)
    ep: Obj = {
        "addresses": [ip],
        "conditions": {
            "ready": tolerate_unready or (ready and not terminating),
            "serving": ready,
            "terminating": terminating,
        },
    }
    hostname = pod_hostname(svc, pod)
    if hostname:
        ep["hostname"] = hostname
    ep["targetRef"] = target_ref(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
    return ep


def _port_key(ports: list[Obj]) -> PortKey:
    return tuple(sorted((p["name"], p["port"], p["protocol"], p.get("appProtocol") or "") for p in ports))


def desired_groups(svc: Obj, pods: list[Obj]) -> list[tuple[str, list[Obj], list[list[Obj]]]]:
    """(addressType, ports, chunks of endpoints) for ``svc``, deterministic.

    Terminating pods are kept (with their conditions), as upstream's slices do.
    """
    spec = svc.get("spec") or {}
    families = service_families(svc)
    headless_no_ports = not spec.get("ports") and spec.get("clusterIP") == "None"
    groups: dict[tuple[str, PortKey], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not selects(svc, pod) or not include_pod(pod, include_terminating=True):
            continue
        ports = endpoint_ports(svc, pod)
        if not ports and not headless_no_ports:
            continue
        for ip in pod_ips(pod):
            fam = address_family(ip)
            if fam not in families:
                continue
            eps, _ = groups.setdefault((fam, _port_key(ports)), ([], ports))
            eps.append(_endpoint(svc, pod, ip))
    out = []
    for (fam, _), (eps, ports) in sorted(groups.items(), key=lambda kv: kv[0]):
        eps.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["uid"]))
        chunks = [eps[i : i + MAX_ENDPOINTS_PER_SLICE] for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE)]
        out.append((fam, sorted(ports, key=lambda p: (p["name"], p["port"], p["protocol"])), chunks))
    # a service with nothing behind it still has one (empty) slice per family, as upstream
    have = {fam for fam, _, _ in out}
    for fam in families:
        if fam not in have:
            out.append((fam, [], [[]]))
    return out


def owner_ref(svc: Obj) -> Obj:
    md = svc.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def slice_labels(svc: Obj) -> dict[str, str]:
    labels = desired_labels(svc)
    labels[SERVICE_NAME_LABEL] = (svc.get("metadata") or {}).get("name", "")
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    return labels


def _norm_ep(ep: Obj) -> Obj:
    cond = ep.get("conditions") or {}
    ref = ep.get("targetRef") or {}
    return {
        "addresses": list(ep.get("addresses") or []),
        "conditions": {k: bool(cond.get(k)) for k in ("ready", "serving", "terminating")},
        "hostname": ep.get("hostname") or "",
        "nodeName": ep.get("nodeName") or "",
        "targetRef": {k: ref.get(k, "") for k in ("kind", "namespace", "name", "uid")},
    }


def _norm_port(p: Obj) -> Obj:
    return {
        "name": p.get("name") or "",
        "port": p.get("port"),
        "protocol": p.get("protocol") or "TCP",
        "appProtocol": p.get("appProtocol") or "",
    }


def slice_matches(current: Obj, want: Obj) -> bool:
    """Whether the stored slice already says what ``want`` says (ignoring server defaults)."""
    if current.get("addressType") != want["addressType"]:
        return False
    cmd, wmd = current.get("metadata") or {}, want["metadata"]
    if (cmd.get("labels") or {}) != wmd["labels"] or (cmd.get("ownerReferences") or []) != wmd["ownerReferences"]:
        return False
    if [_norm_port(p) for p in current.get("ports") or []] != [_norm_port(p) for p in want["ports"]]:
        return False
    return [_norm_ep(e) for e in current.get("endpoints") or []] == [_norm_ep(e) for e in want["endpoints"]]


def plan_slices(svc: Obj, pods: list[Obj], existing: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(to create, to update, to delete) so that ``existing`` becomes the desired slices.

    Existing slices are reused per (addressType, ports) group in name order, then any left over
    are reused for other groups, so changing ports rewrites slices instead of replacing them.
    """
    md = svc.get("metadata") or {}
    labels, owners = slice_labels(svc), [owner_ref(svc)]
    wanted: list[Obj] = []
    for fam, ports, chunks in desired_groups(svc, pods):
        for chunk in chunks:
            wanted.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "namespace": md.get("namespace"),
                        "labels": labels,
                        "ownerReferences": owners,
                    },
                    "addressType": fam,
                    "endpoints": chunk,
                    "ports": ports,
                }
            )
    pool = sorted(existing, key=lambda s: (s.get("metadata") or {}).get("name", ""))
    creates: list[Obj] = []
    updates: list[Obj] = []
    unmatched: list[Obj] = []
    # first pass: reuse a slice that already holds exactly this content
    for want in wanted:
        same = next((s for s in pool if slice_matches(s, want)), None)
        if same is not None:
            pool.remove(same)
        else:
            unmatched.append(want)
    # second pass: rewrite leftovers (same address type first), create the rest
    for want in unmatched:
        cur = next((s for s in pool if s.get("addressType") == want["addressType"]), None)
        if cur is None:
            want["metadata"]["generateName"] = _generate_name(md.get("name", ""))
            creates.append(want)
            continue
        pool.remove(cur)
        new_md = {**(cur.get("metadata") or {}), "labels": labels, "ownerReferences": owners}
        updates.append({**want, "metadata": new_md})
    return creates, updates, pool


def _generate_name(service: str) -> str:
    # upstream keeps generated names within 63 characters
    return (service[:57] if len(service) > 57 else service) + "-"


class EndpointSliceController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.services = ctx.informers.informer_for(SERVICES)
        self.pods = ctx.informers.informer_for(PODS)
        self.slices = ctx.informers.informer_for(ENDPOINTSLICES, indexers={SERVICE_INDEX: service_index})
        self.queue = RateLimitingQueue(name="endpointslice")

        def svc_changed(obj: Any) -> None:
            svc = object_of(obj)
            if svc is not None:
                smd = svc.get("metadata") or {}
                self.queue.add(f"{smd.get('namespace')}/{smd.get('name')}")

        self.services.add_event_handler(
            on_add=svc_changed, on_update=lambda o, n: svc_changed(n), on_delete=svc_changed
        )
        watch_pods_for_services(self.pods, self.services, self.queue)

        def slice_changed(obj: Any) -> None:
            s = object_of(obj)
            if s is not None:
                for key in service_index(s):
                    self.queue.add(key)

        # someone else changed or deleted one of our slices: look again
        self.slices.add_event_handler(on_update=lambda o, n: slice_changed(n), on_delete=slice_changed)
        self.controller = Controller("endpointslice", self.reconcile, self.queue, ctx.options.concurrent_endpoint_syncs)

    async def run(self) -> None:
        await self.controller.run([self.services, self.pods, self.slices])

    async def reconcile(self, key: str) -> None:
        ns, _ = split_meta_namespace_key(key)
        svc = self.services.indexer.get(key)
        existing = self.slices.indexer.by_index(SERVICE_INDEX, key)
        if svc is None or not has_selector(svc):
            for s in existing:
                await self._delete(s)
            return
        uid = (svc.get("metadata") or {}).get("uid")
        # slices owned by an earlier service of the same name are not ours to reuse
        stale = [s for s in existing if not _owned_by(s, uid)]
        mine = [s for s in existing if _owned_by(s, uid)]
        for s in stale:
            await self._delete(s)
        pods = self.pods.indexer.by_index(NAMESPACE_INDEX, ns)
        creates, updates, deletes = plan_slices(svc, pods, mine)
        for s in updates:
            await self.client.update(ENDPOINTSLICES, s, ns)
        for s in creates:
            try:
                await self.client.create(ENDPOINTSLICES, s, ns)
            except StatusError as e:
                if not (e.code == 403 and "terminat" in str(e)):
                    raise
        for s in deletes:
            await self._delete(s)

    async def _delete(self, s: Obj) -> None:
        md = s.get("metadata") or {}
        try:
            await self.client.delete(
                ENDPOINTSLICES, md.get("name", ""), md.get("namespace"), preconditions={"uid": md.get("uid")}
            )
        except StatusError as e:
            if e.code not in (404, 409):
                raise


def _owned_by(s: Obj, uid: Any) -> bool:
    return any(r.get("uid") == uid for r in (s.get("metadata") or {}).get("ownerReferences") or [])


@register("endpointslice")
async def start(ctx: ControllerContext) -> None:
    ctl = EndpointSliceController(ctx)
    await ctx.informers.start()
    await ctl.run()
