"""Objects every cluster has, created idempotently by each api-server at startup: the system
namespaces and the ``kubernetes`` Service with its Endpoints (one address per api-server)."""

from __future__ import annotations

import copy
import logging

from kubeha.api import errors
from kubeha.api.registry import lookup
from kubeha.api.schema import Obj
from kubeha.apiserver import objmeta
from kubeha.apiserver.allocator import first_ip
from kubeha.apiserver.rest import Rest, WriteOptions
from kubeha.storage.interface import KeyNotFound

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MANAGER = "kube-apiserver"


async def _create_if_absent(rest: Rest, group: str, resource: str, namespace: str, obj: Obj) -> None:
    info = lookup(group, "v1", resource)
    if info is None:
        log.warning("cannot bootstrap %s: resource not registered", resource)
        return
    if await rest.maybe_get(info, namespace, obj["metadata"]["name"]) is not None:
        return
    try:
        await rest.create(info, namespace, copy.deepcopy(obj), WriteOptions(field_manager=MANAGER))
    except errors.StatusError as e:
        if e.reason != "AlreadyExists":
            raise


async def ensure_system_objects(rest: Rest) -> None:
    cfg = rest.ctx.config
    for ns in SYSTEM_NAMESPACES:
        await _create_if_absent(
            rest, "", "namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": first_ip(cfg.service_cluster_ip_range),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.secure_port}],
            "sessionAffinity": "None",
        },
    }
    await _create_if_absent(rest, "", "services", "default", svc)
    await set_endpoint_address(rest, cfg.advertise_address, cfg.secure_port, present=True)


async def set_endpoint_address(rest: Rest, address: str, port: int, present: bool) -> None:
    """Add (or remove) this api-server's address in the `kubernetes` Endpoints.

    Written straight to storage, as upstream's endpoint reconciler does: the address may be a
    loopback one in tests, which Endpoints validation rejects for user writes.
    """
    info = lookup("", "v1", "endpoints")
    if info is None:
        return
    ports = [{"name": "https", "port": port, "protocol": "TCP"}]

    async def mutate(current: Obj) -> Obj | None:
        if not current:
            if not present:
                return None
            return {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "uid": objmeta.new_uid(),
                    "creationTimestamp": objmeta.rfc3339(objmeta.now()),
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                },
                "subsets": [{"addresses": [{"ip": address}], "ports": ports}],
            }
        subsets = current.get("subsets") or []
        ips = [a.get("ip") for s in subsets for a in s.get("addresses") or []]
        if present == (address in ips):
            return None
        new_ips = sorted({*ips, address}) if present else [ip for ip in ips if ip != address]
        if new_ips:
            current["subsets"] = [{"addresses": [{"ip": ip} for ip in new_ips], "ports": ports}]
        else:
            current.pop("subsets", None)
        return current

    try:
        await rest.store.guaranteed_update(info.key("default", "kubernetes"), mutate, ignore_not_found=True)
    except KeyNotFound:
        pass
