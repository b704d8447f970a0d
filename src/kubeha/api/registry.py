"""The table of served resources.

Each group/version module (``kubeha.api.core.v1``, ``kubeha.api.apps.v1``, ...) declares its
structs with :mod:`kubeha.api.schema` and registers its resources here with a :class:`Strategy`
that holds the per-resource behaviour (defaulting, validation, what an update may change). The
api-server's REST layer, discovery, tables and OpenAPI are all driven from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubeha.api.errors import Cause
from kubeha.api.schema import Obj

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


class Strategy:
    """Per-resource behaviour, as upstream's registry ``strategy`` types.

    The REST layer calls, for a create: ``default`` -> ``prepare_for_create`` -> ``validate``;
    for an update: ``default`` -> ``prepare_for_update`` -> ``validate_update``. Status
    subresource writes call ``prepare_for_status_update`` and ``validate_status_update``.
    """

    # Whether the main resource endpoint ignores .status (true when a status subresource exists).
    has_status: bool = False
    # Whether generation is bumped when anything but metadata/status changes.
    track_generation: bool = True
    # Whether `PUT` may create a missing object (leases, endpoints, nodes... do upstream).
    allow_create_on_update: bool = False
    # How metadata.name is validated: "subdomain" (DNS-1123 subdomain, most kinds), "label"
    # (DNS-1123 label: namespaces, services), "path" (anything without "/" or "%", e.g. events).
    name_kind: str = "subdomain"

    def default(self, obj: Obj) -> None:
        """Fill defaults in place (schema defaults are applied before this)."""

    def prepare_for_create(self, obj: Obj) -> None:
        """Clear fields a client may not set at creation (e.g. status when has_status)."""
        if self.has_status:
            obj.pop("status", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Keep what the main endpoint may not change (status when has_status)."""
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """A status write changes only status: everything else comes from the stored object."""
        status = new.get("status")
        new.clear()
        new.update({k: v for k, v in old.items() if k != "status"})
        if status is not None:
            new["status"] = status
        # metadata may carry the client's resourceVersion for the CAS; the REST layer handles it

    def validate(self, obj: Obj) -> list[Cause]:
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []


@dataclass(frozen=True)
class SubresourceInfo:
    name: str  # "status", "scale", "binding", "eviction", "log", ...
    kind: str  # response kind, e.g. "Scale"
    group: str = ""  # response kind's group ("autoscaling" for scale)
    version: str = ""
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass
class ResourceInfo:
    group: str  # "" for core
    version: str
    resource: str  # plural, e.g. "deployments"
    kind: str
    namespaced: bool
    schema: str  # full struct name in schema.STRUCTS
    strategy: Strategy = field(default_factory=Strategy)
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[SubresourceInfo, ...] = ()
    # extra field selectors beyond metadata.name / metadata.namespace: name -> getter
    field_selectors: dict[str, Callable[[Obj], str]] = field(default_factory=dict)
    # etcd prefix override when two resources share storage (events.k8s.io events live with
    # core events under /registry/events/)
    storage_prefix: str | None = None
    # Conversion between this API's form and the stored form, for resources whose storage is
    # shared with another API version (events.k8s.io/v1 events are stored as core/v1 events).
    # None means the API form is the stored form. The REST layer applies them at the storage
    # boundary only, so strategies, validation and responses always see the API form.
    to_storage: Callable[[Obj], Obj] | None = None
    from_storage: Callable[[Obj], Obj] | None = None

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def key_prefix(self) -> str:
        """etcd key prefix: /registry/<resource>/ (core) or /registry/<group>/<resource>/."""
        if self.storage_prefix:
            return self.storage_prefix
        if self.group:
            return f"/registry/{self.group}/{self.resource}/"
        return f"/registry/{self.resource}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix()}{namespace}/{name}"
        return f"{self.key_prefix()}{name}"

    def encode(self, obj: Obj) -> Obj:
        """The stored form of an object in this API's form."""
        return self.to_storage(obj) if self.to_storage is not None else obj

    def decode(self, obj: Obj) -> Obj:
        """This API's form of a stored object (a new dict when a converter applies)."""
        return self.from_storage(obj) if self.from_storage is not None else obj

    def subresource(self, name: str) -> SubresourceInfo | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None


# (group, version, resource) -> info
RESOURCES: dict[tuple[str, str, str], ResourceInfo] = {}


def register(info: ResourceInfo) -> ResourceInfo:
    if not info.singular:
        info.singular = info.kind.lower()
    key = (info.group, info.version, info.resource)
    if key in RESOURCES:
        raise ValueError(f"resource {key} registered twice")
    RESOURCES[key] = info
    return info


def lookup(group: str, version: str, resource: str) -> ResourceInfo | None:
    return RESOURCES.get((group, version, resource))


def by_kind(group: str, version: str, kind: str) -> ResourceInfo | None:
    for info in RESOURCES.values():
        if info.group == group and info.version == version and info.kind == kind:
            return info
    return None


def group_versions() -> dict[str, list[str]]:
    """group -> versions served (preferred first)."""
    out: dict[str, list[str]] = {}
    for info in RESOURCES.values():
        vs = out.setdefault(info.group, [])
        if info.version not in vs:
            vs.append(info.version)
    return out


def load_all() -> None:
    """Import every group/version module so their declarations register themselves."""
    import importlib

    for mod in (
        "kubeha.api.meta.v1",
        "kubeha.api.core.v1",
        "kubeha.api.apps.v1",
        "kubeha.api.autoscaling.v1",
        "kubeha.api.policy.v1",
        "kubeha.api.coordination.v1",
        "kubeha.api.discovery.v1",
        "kubeha.api.events.v1",
        "kubeha.api.core.quota",
        "kubeha.api.rbac.v1",
        "kubeha.api.authentication.v1",
        "kubeha.api.authorization.v1",
        "kubeha.api.certificates.v1",
        "kubeha.api.scheduling.v1",
        "kubeha.api.node.v1",
        "kubeha.api.batch.v1",
    ):
        importlib.import_module(mod)


def field_path_value(obj: Obj, path: str) -> Any:
    """Read a dotted path (``metadata.name``) from an object, None when absent."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur
