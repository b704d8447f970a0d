"""References to API resources (group, version, plural) and their REST paths."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ResourceRef:
    group: str  # "" for the core group
    version: str
    resource: str  # plural, e.g. "deployments"
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def base(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path. A namespaced resource without ``namespace`` means all namespaces
        (lists and watches only)."""
        parts = [self.base()]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{_seg(namespace)}")
        parts.append(self.resource)
        if name:
            parts.append(_seg(name))
            if subresource:
                parts.append(subresource)
        elif subresource:
            raise ValueError(f"subresource {subresource!r} needs an object name")
        return "/".join(parts)

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


def _seg(s: str) -> str:
    if not s or "/" in s:
        raise ValueError(f"invalid path segment {s!r}")
    return quote(s, safe="")


PODS = ResourceRef("", "v1", "pods", "Pod", True)
NODES = ResourceRef("", "v1", "nodes", "Node", False)
NAMESPACES = ResourceRef("", "v1", "namespaces", "Namespace", False)
SERVICES = ResourceRef("", "v1", "services", "Service", True)
ENDPOINTS = ResourceRef("", "v1", "endpoints", "Endpoints", True)
CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap", True)
SECRETS = ResourceRef("", "v1", "secrets", "Secret", True)
SERVICEACCOUNTS = ResourceRef("", "v1", "serviceaccounts", "ServiceAccount", True)
EVENTS = ResourceRef("", "v1", "events", "Event", True)
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments", "Deployment", True)
REPLICASETS = ResourceRef("apps", "v1", "replicasets", "ReplicaSet", True)
DAEMONSETS = ResourceRef("apps", "v1", "daemonsets", "DaemonSet", True)
STATEFULSETS = ResourceRef("apps", "v1", "statefulsets", "StatefulSet", True)
CONTROLLERREVISIONS = ResourceRef("apps", "v1", "controllerrevisions", "ControllerRevision", True)
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases", "Lease", True)
ENDPOINTSLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True)
PODDISRUPTIONBUDGETS = ResourceRef("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True)
EVENTS_V1 = ResourceRef("events.k8s.io", "v1", "events", "Event", True)
# batch/v1 (served by the api-server; the job and cronjob controllers use these)
JOBS = ResourceRef("batch", "v1", "jobs", "Job", True)
CRONJOBS = ResourceRef("batch", "v1", "cronjobs", "CronJob", True)
CERTIFICATESIGNINGREQUESTS = ResourceRef(
    "certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False
)

_KNOWN = [
    PODS,
    NODES,
    NAMESPACES,
    SERVICES,
    ENDPOINTS,
    CONFIGMAPS,
    SECRETS,
    SERVICEACCOUNTS,
    EVENTS,
    DEPLOYMENTS,
    REPLICASETS,
    DAEMONSETS,
    STATEFULSETS,
    CONTROLLERREVISIONS,
    LEASES,
    ENDPOINTSLICES,
    PODDISRUPTIONBUDGETS,
    EVENTS_V1,
    JOBS,
    CRONJOBS,
    CERTIFICATESIGNINGREQUESTS,
]


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` → ("apps", "v1"); ``v1`` → ("", "v1")."""
    group, _, version = api_version.rpartition("/")
    return group, version


def ref_for(api_version: str, kind: str) -> ResourceRef:
    """The resource serving ``kind`` in ``api_version``: from the API registry when registered,
    else from the known references above. Raises KeyError when unknown."""
    from kubeha.api import registry

    group, version = split_api_version(api_version)
    registry.load_all()  # idempotent: modules register once, on first import
    info = registry.by_kind(group, version, kind)
    if info is not None:
        return ResourceRef(info.group, info.version, info.resource, info.kind, info.namespaced)
    for ref in _KNOWN:
        if ref.group == group and ref.version == version and ref.kind == kind:
            return ref
    raise KeyError(f"no resource for kind {kind!r} in {api_version!r}")
