"""Discovery documents built from the resource registry (pure functions, no HTTP).

Legacy discovery: ``/api`` (APIVersions), ``/apis`` (APIGroupList), ``/api/v1`` and
``/apis/<group>/<version>`` (APIResourceList, each subresource as its own ``res/sub`` entry).
Aggregated discovery: ``/api`` and ``/apis`` as one ``APIGroupDiscoveryList`` when the client's
Accept header asks for it; :func:`negotiate_discovery` picks the version the client prefers
(kubectl 1.27-1.29 accept only v2beta1 and misread v2).

The registry is static once the server has started, so documents are built once and cached;
:func:`invalidate` drops the cache should resources ever be added later (e.g. CRDs).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from typing import Any

from kubeha.api import registry
from kubeha.api.registry import ResourceInfo

DISCOVERY_GROUP = "apidiscovery.k8s.io"
AGGREGATED_KIND = "APIGroupDiscoveryList"
DISCOVERY_VERSIONS = ("v2", "v2beta1")

# Upstream lists groups in a fixed priority order (core-ish groups first); any group not named
# here follows in alphabetical order.
_GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
)


def aggregated_content_type(version: str) -> str:
    """The Content-Type of an aggregated discovery answer for ``version`` ("v2" or "v2beta1")."""
    return f"application/json;g={DISCOVERY_GROUP};v={version};as={AGGREGATED_KIND}"


def invalidate() -> None:
    """Forget cached documents (call after the registry changes)."""
    api_group_list.cache_clear()
    api_resource_list.cache_clear()
    aggregated_discovery.cache_clear()
    _versions_by_group.cache_clear()


def _group_sort_key(group: str) -> tuple[int, str]:
    try:
        return (_GROUP_ORDER.index(group), group)
    except ValueError:
        return (len(_GROUP_ORDER), group)


def _version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first (v1 before v1beta1)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


@cache
def _versions_by_group() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group, versions in registry.group_versions().items():
        out[group] = sorted(versions, key=_version_sort_key)
    return dict(sorted(out.items(), key=lambda kv: _group_sort_key(kv[0])))


def _resources(group: str, version: str) -> list[ResourceInfo]:
    infos = [i for i in registry.RESOURCES.values() if i.group == group and i.version == version]
    return sorted(infos, key=lambda i: i.resource)


def storage_version_hash(info: ResourceInfo) -> str:
    """An opaque hash of the storage group/version/kind (clients only compare it for changes)."""
    digest = hashlib.sha256(f"{info.group}/{info.version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the legacy core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": _versions_by_group().get("", ["v1"]),
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


@cache
def api_group_list() -> dict[str, Any]:
    """``GET /apis``: every named group with its versions, preferred first."""
    groups = [_group_entry(g, vs) for g, vs in _versions_by_group().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``: one APIGroup, or None when the group is not served."""
    versions = _versions_by_group().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _resource_entry(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.resource,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    entry["storageVersionHash"] = storage_version_hash(info)
    return entry


def _subresource_entry(info: ResourceInfo, sub: registry.SubresourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{info.resource}/{sub.name}",
        "singularName": "",
        "namespaced": info.namespaced,
    }
    # group/version appear only when the subresource's kind lives elsewhere (scale -> autoscaling)
    if sub.group or sub.version:
        entry["group"] = sub.group
        entry["version"] = sub.version or info.version
    entry["kind"] = sub.kind
    entry["verbs"] = list(sub.verbs)
    return entry


@cache
def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``/apis/<group>/<version>``; None when that group/version is not served."""
    infos = _resources(group, version)
    if not infos:
        return None
    resources: list[dict[str, Any]] = []
    for info in infos:
        resources.append(_resource_entry(info))
        for sub in sorted(info.subresources, key=lambda s: s.name):
            resources.append(_subresource_entry(info, sub))
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _aggregated_resource(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.resource,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {
                    "group": sub.group if (sub.group or sub.version) else info.group,
                    "version": sub.version or info.version,
                    "kind": sub.kind,
                },
                "verbs": list(sub.verbs),
            }
            for sub in sorted(info.subresources, key=lambda s: s.name)
        ]
    return entry


@cache
def aggregated_discovery(legacy: bool, version: str) -> dict[str, Any]:
    """APIGroupDiscoveryList for ``/api`` (legacy=True, the core group) or ``/apis`` (all others)."""
    items: list[dict[str, Any]] = []
    for group, versions in _versions_by_group().items():
        if (group == "") != legacy:
            continue
        meta: dict[str, Any] = {"creationTimestamp": None}
        if group:
            meta["name"] = group
        items.append(
            {
                "metadata": meta,
                "versions": [
                    {
                        "version": v,
                        "resources": [_aggregated_resource(i) for i in _resources(group, v)],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{DISCOVERY_GROUP}/{version}",
        "metadata": {},
        "items": items,
    }


def _parse_media_range(part: str) -> tuple[str, dict[str, str]]:
    pieces = [p.strip() for p in part.split(";")]
    params: dict[str, str] = {}
    for p in pieces[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return pieces[0].lower(), params


def negotiate_discovery(accept_header: str) -> str | None:
    """Which aggregated discovery version to answer with: "v2", "v2beta1", or None for legacy JSON.

    The client's order (with any ``q`` weights) decides; only JSON aggregated forms are produced,
    so a preferred protobuf aggregated form is skipped in favour of the next acceptable entry.
    """
    if not accept_header:
        return None
    ranked: list[tuple[float, int, str, dict[str, str]]] = []
    for idx, part in enumerate(accept_header.split(",")):
        if not part.strip():
            continue
        mtype, params = _parse_media_range(part)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q <= 0:
            continue
        ranked.append((-q, idx, mtype, params))
    ranked.sort(key=lambda r: (r[0], r[1]))
    for _, _, mtype, params in ranked:
        if "as" in params or "g" in params:
            if (
                mtype == "application/json"
                and params.get("g") == DISCOVERY_GROUP
                and params.get("as") == AGGREGATED_KIND
                and params.get("v") in DISCOVERY_VERSIONS
            ):
                return params["v"]
            continue  # another typed form (Table, protobuf aggregated...): not ours, try the next
        if mtype in ("application/json", "application/*", "*/*", "application/vnd.kubernetes.protobuf"):
            return None
    return None
