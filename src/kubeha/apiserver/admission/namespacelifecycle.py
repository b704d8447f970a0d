"""NamespaceLifecycle: nothing is created in a missing or terminating namespace, and the system
namespaces cannot be deleted (upstream's plugin/pkg/admission/namespace/lifecycle)."""

from __future__ import annotations

from kubeha.api import errors
from kubeha.apiserver.admission import CREATE, DELETE, Attributes, ValidatingPlugin, forbidden, register_plugin
from kubeha.apiserver.admission import lookup as lk
from kubeha.storage.interface import Compare

IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# review APIs answer about a namespace without writing into it
_ACCESS_REVIEWS = frozenset({"localsubjectaccessreviews"})


def _terminating(ns: dict[str, object]) -> bool:
    md = ns.get("metadata") or {}
    status = ns.get("status") or {}
    return bool(
        (isinstance(md, dict) and md.get("deletionTimestamp"))
        or (isinstance(status, dict) and status.get("phase") == "Terminating")
    )


class NamespaceLifecycle(ValidatingPlugin):
    def handles(self, attrs: Attributes) -> bool:
        if attrs.group == "" and attrs.resource == "namespaces":
            return attrs.operation == DELETE and not attrs.subresource
        # deletes and updates of existing objects are always allowed (an update needs the object,
        # which cannot outlive its namespace)
        return bool(attrs.namespace) and attrs.operation == CREATE and attrs.resource not in _ACCESS_REVIEWS

    async def validate(self, attrs: Attributes) -> None:
        if attrs.resource == "namespaces":
            if attrs.name in IMMORTAL_NAMESPACES:
                raise errors.StatusError(
                    403,
                    "Forbidden",
                    f'namespaces "{attrs.name}" is forbidden: this namespace may not be deleted',
                    {"name": attrs.name, "kind": "namespaces"},
                )
            return
        ns_info = lk.resource("", "v1", "namespaces")
        key = ns_info.key("", attrs.namespace)
        if attrs.attempt == 0:
            # an active namespace in the watch cache saves an etcd read: the write is guarded on
            # the namespace's revision, so one that started terminating meanwhile fails the guard
            # and the REST layer retries with attempt > 0 (a live read)
            cacher = self.ctx.ready_cacher(ns_info)
            cached = cacher.get(key) if cacher is not None else None
            if isinstance(cached, dict) and not _terminating(cached):
                rv = (cached.get("metadata") or {}).get("resourceVersion")
                if isinstance(rv, str) and rv.isdigit():
                    attrs.guards.append(Compare(key, int(rv)))
                    return
        ns = await lk.live_get(self.ctx, ns_info, "", attrs.namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", attrs.namespace)
        if not _terminating(ns):
            return
        if attrs.subresource:
            return  # bindings, evictions... of existing pods are not new content
        err = forbidden(
            attrs, f"unable to create new content in namespace {attrs.namespace} because it is being terminated"
        )
        details = dict(err.details or {})
        details["causes"] = [
            {
                "reason": "NamespaceTerminating",
                "message": f"namespace {attrs.namespace} is being terminated",
                "field": "metadata.namespace",
            }
        ]
        err.details = details
        raise err


register_plugin("NamespaceLifecycle", NamespaceLifecycle)
