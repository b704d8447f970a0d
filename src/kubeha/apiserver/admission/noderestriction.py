"""NodeRestriction: a kubelet (user ``system:node:<name>`` in group ``system:nodes``) may only write
what belongs to its own node, as upstream's plugin/pkg/admission/noderestriction.

The Node authorizer already limits which objects a kubelet can reach; this plugin checks what the
authorizer cannot see: request bodies (the name of a created Node or Lease, a mirror pod's binding
and references, label and taint changes) and the stored object (the node a pod is bound to).
"""

from __future__ import annotations

import copy
from typing import Any

from kubeha.api.schema import Obj
from kubeha.apiserver.admission import (
    CREATE,
    DELETE,
    UPDATE,
    Attributes,
    ValidatingPlugin,
    forbidden,
    register_plugin,
)
from kubeha.apiserver.admission import lookup as lk

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
LEASE_NAMESPACE = "kube-node-lease"
NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"

# labels a kubelet may set on its own Node (k8s.io/kubelet's well-known kubelet labels)
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
    }
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def node_identity(user: Any) -> tuple[str, bool]:
    """(node name, is a node): the name may be "" for a malformed node identity."""
    name = str(getattr(user, "name", "") or "")
    groups = tuple(getattr(user, "groups", ()) or ())
    if not name.startswith(NODE_PREFIX) or NODES_GROUP not in groups:
        return "", False
    return name[len(NODE_PREFIX) :], True


def _label_namespace(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _in_namespace(ns: str, domain: str) -> bool:
    return ns == domain or ns.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    ns = _label_namespace(key)
    return key in KUBELET_LABELS or any(_in_namespace(ns, d) for d in KUBELET_LABEL_NAMESPACES)


def is_kubernetes_label(key: str) -> bool:
    ns = _label_namespace(key)
    return _in_namespace(ns, "kubernetes.io") or _in_namespace(ns, "k8s.io")


def modified_labels(new: dict[str, Any], old: dict[str, Any]) -> set[str]:
    keys = set(new) | set(old)
    return {k for k in keys if k not in new or k not in old or new[k] != old[k]}


def forbidden_labels(keys: set[str]) -> list[str]:
    """Labels a kubelet may not add, change or remove: the node-restriction namespace (reserved for
    admins to steer workloads) and kubernetes.io / k8s.io labels outside the kubelet's own set."""
    bad = set()
    for key in keys:
        if _in_namespace(_label_namespace(key), NODE_RESTRICTION_NAMESPACE):
            bad.add(key)
        if is_kubernetes_label(key) and not is_kubelet_label(key):
            bad.add(key)
    return sorted(bad)


def _labels(obj: Obj | None) -> dict[str, Any]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _spec(obj: Obj | None) -> dict[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _annotations(obj: Obj | None) -> dict[str, Any]:
    ann = ((obj or {}).get("metadata") or {}).get("annotations")
    return ann if isinstance(ann, dict) else {}


# -- what a pod references -----------------------------------------------------------------------------


def _containers(spec: dict[str, Any]) -> list[Obj]:
    return [
        c
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in (spec.get(key) or [])
        if isinstance(c, dict)
    ]


def references_secrets(spec: dict[str, Any]) -> bool:
    if any(isinstance(s, dict) and s.get("name") for s in spec.get("imagePullSecrets") or []):
        return True
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        if v.get("secret") or any(
            isinstance(src, dict) and src.get("secret") for src in (v.get("projected") or {}).get("sources") or []
        ):
            return True
        for plugin in ("azureFile", "cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos", "csi"):
            cfg = v.get(plugin)
            if isinstance(cfg, dict) and (
                cfg.get("secretRef") or cfg.get("secretName") or cfg.get("nodePublishSecretRef")
            ):
                return True
    for c in _containers(spec):
        if any(isinstance(e, dict) and (e.get("secretRef") or {}).get("name") for e in c.get("envFrom") or []):
            return True
        if any(
            isinstance(e, dict) and ((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
            for e in c.get("env") or []
        ):
            return True
    return False


def references_configmaps(spec: dict[str, Any]) -> bool:
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        if v.get("configMap") or any(
            isinstance(src, dict) and src.get("configMap") for src in (v.get("projected") or {}).get("sources") or []
        ):
            return True
    for c in _containers(spec):
        if any(isinstance(e, dict) and (e.get("configMapRef") or {}).get("name") for e in c.get("envFrom") or []):
            return True
        if any(
            isinstance(e, dict) and ((e.get("valueFrom") or {}).get("configMapKeyRef") or {}).get("name")
            for e in c.get("env") or []
        ):
            return True
    return False


# -- the plugin ---------------------------------------------------------------------------------------


class NodeRestriction(ValidatingPlugin):
    def handles(self, attrs: Attributes) -> bool:
        return attrs.operation in (CREATE, UPDATE, DELETE) and node_identity(attrs.user)[1]

    async def validate(self, attrs: Attributes) -> None:
        node, _ = node_identity(attrs.user)
        if not node:
            raise forbidden(attrs, f'could not determine node from user "{attrs.user_name}"')
        group, resource, sub = attrs.group, attrs.resource, attrs.subresource
        if group == "" and resource == "pods":
            if sub == "":
                await self._pod(node, attrs)
            elif sub == "status":
                self._pod_status(node, attrs)
            elif sub == "eviction":
                await self._eviction(node, attrs)
            else:
                raise forbidden(
                    attrs, f"unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed"
                )
        elif group == "" and resource == "nodes":
            self._node(node, attrs)
        elif group == "" and resource == "persistentvolumeclaims":
            if sub != "status":
                raise forbidden(attrs, "may only update PVC status")
            self._pvc_status(node, attrs)
        elif group == "" and resource == "serviceaccounts":
            await self._service_account(node, attrs)
        elif group == "coordination.k8s.io" and resource == "leases":
            self._lease(node, attrs)
        elif group == "storage.k8s.io" and resource == "csinodes":
            name = attrs.object_name() if attrs.operation == CREATE else attrs.name
            if name != node:
                raise forbidden(attrs, "can only access CSINode with the same name as the requesting node")

    # pods ---------------------------------------------------------------------------------------------

    async def _pod(self, node: str, attrs: Attributes) -> None:
        if attrs.operation == CREATE:
            await self._pod_create(node, attrs)
        elif attrs.operation == DELETE:
            pod = attrs.old_obj
            if pod is None:
                pod = await lk.get(self.ctx, lk.resource("", "v1", "pods"), attrs.namespace, attrs.name)
            if pod is not None and _spec(pod).get("nodeName") != node:
                raise forbidden(attrs, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        else:
            raise forbidden(
                attrs, f'unexpected operation "{attrs.operation}", node "{node}" can only create and delete mirror pods'
            )

    async def _pod_create(self, node: str, attrs: Attributes) -> None:
        pod = attrs.obj or {}
        spec = _spec(pod)
        if MIRROR_ANNOTATION not in _annotations(pod):
            raise forbidden(
                attrs, f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only create mirror pods'
            )
        if spec.get("nodeName") != node:
            raise forbidden(attrs, f'node "{node}" can only create pods with spec.nodeName set to itself')
        owners = [o for o in ((pod.get("metadata") or {}).get("ownerReferences") or []) if isinstance(o, dict)]
        if len(owners) > 1:
            raise forbidden(attrs, f'node "{node}" can only create pods with a single owner reference set to itself')
        if not owners:
            raise forbidden(attrs, f'node "{node}" can only create pods with an owner reference set to itself')
        owner = owners[0]
        if owner.get("apiVersion") != "v1" or owner.get("kind") != "Node" or owner.get("name") != node:
            raise forbidden(attrs, f'node "{node}" can only create pods with an owner reference set to itself')
        if not owner.get("controller"):
            raise forbidden(
                attrs, f'node "{node}" can only create pods with a controller owner reference set to itself'
            )
        if owner.get("blockOwnerDeletion"):
            raise forbidden(attrs, f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        stored = await lk.get(self.ctx, lk.resource("", "v1", "nodes"), "", node)
        if stored is None:
            from kubeha.api import errors

            raise errors.not_found("", "nodes", node)
        uid = (stored.get("metadata") or {}).get("uid", "")
        if owner.get("uid") != uid:
            raise forbidden(attrs, f"node {node} UID mismatch: expected {owner.get('uid', '')} got {uid}")
        if spec.get("serviceAccountName"):
            raise forbidden(attrs, f'node "{node}" can not create pods that reference a service account')
        if references_secrets(spec):
            raise forbidden(attrs, f'node "{node}" can not create pods that reference secrets')
        if references_configmaps(spec):
            raise forbidden(attrs, f'node "{node}" can not create pods that reference configmaps')
        for v in spec.get("volumes") or []:
            sources = ((v or {}).get("projected") or {}).get("sources") or []
            if any(isinstance(s, dict) and s.get("clusterTrustBundle") for s in sources):
                raise forbidden(attrs, f'node "{node}" can not create pods that reference clustertrustbundles')
        if any(isinstance(v, dict) and v.get("persistentVolumeClaim") for v in spec.get("volumes") or []):
            raise forbidden(attrs, f'node "{node}" can not create pods that reference persistentvolumeclaims')

    def _pod_status(self, node: str, attrs: Attributes) -> None:
        if attrs.operation != UPDATE:
            raise forbidden(attrs, f'unexpected operation "{attrs.operation}"')
        if _spec(attrs.old_obj).get("nodeName") != node:
            raise forbidden(
                attrs, f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
            )
        if _labels(attrs.obj) != _labels(attrs.old_obj):
            raise forbidden(attrs, f'node "{node}" cannot update labels through pod status')
        old_claims = [
            (c.get("name"), c.get("resourceClaimName"))
            for c in ((attrs.old_obj or {}).get("status") or {}).get("resourceClaimStatuses") or []
        ]
        new_claims = [
            (c.get("name"), c.get("resourceClaimName"))
            for c in ((attrs.obj or {}).get("status") or {}).get("resourceClaimStatuses") or []
        ]
        if old_claims != new_claims:
            raise forbidden(attrs, f'node "{node}" cannot update resource claim statues')

    async def _eviction(self, node: str, attrs: Attributes) -> None:
        if attrs.operation != CREATE:
            raise forbidden(attrs, f"unexpected operation {attrs.operation}")
        name = attrs.name or str(((attrs.obj or {}).get("metadata") or {}).get("name") or "")
        if not name:
            raise forbidden(attrs, "could not determine pod from request data")
        info = lk.resource("", "v1", "pods")
        pod = await lk.get(self.ctx, info, attrs.namespace, name)
        if pod is None:
            from kubeha.api import errors

            raise errors.not_found("", "pods", name)
        if _spec(pod).get("nodeName") != node:
            raise forbidden(attrs, f"node {node} can only evict pods with spec.nodeName set to itself")

    # nodes, leases, claims, tokens --------------------------------------------------------------------

    def _node(self, node: str, attrs: Attributes) -> None:
        requested = attrs.object_name() if attrs.operation == CREATE else attrs.name
        if requested != node:
            raise forbidden(attrs, f'node "{node}" is not allowed to modify node "{requested}"')
        new_spec, old_spec = _spec(attrs.obj), _spec(attrs.old_obj)
        if attrs.operation == CREATE:
            if new_spec.get("configSource") is not None:
                raise forbidden(attrs, f'node "{node}" is not allowed to create pods with a non-nil configSource')
            bad = forbidden_labels(modified_labels(_labels(attrs.obj), {}))
            if bad:
                raise forbidden(attrs, f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
        elif attrs.operation == UPDATE:
            source = new_spec.get("configSource")
            if source is not None and source != old_spec.get("configSource"):
                raise forbidden(
                    attrs, f'node "{node}" is not allowed to update configSource to a new non-nil configSource'
                )
            if (new_spec.get("taints") or []) != (old_spec.get("taints") or []):
                raise forbidden(attrs, f'node "{node}" is not allowed to modify taints')
            bad = forbidden_labels(modified_labels(_labels(attrs.obj), _labels(attrs.old_obj)))
            if bad:
                raise forbidden(attrs, f"is not allowed to modify labels: {', '.join(bad)}")

    def _lease(self, node: str, attrs: Attributes) -> None:
        if attrs.namespace != LEASE_NAMESPACE:
            raise forbidden(attrs, f'can only access leases in the "{LEASE_NAMESPACE}" system namespace')
        name = attrs.object_name() if attrs.operation == CREATE else attrs.name
        if name != node:
            raise forbidden(attrs, "can only access node lease with the same name as the requesting node")

    def _pvc_status(self, node: str, attrs: Attributes) -> None:
        if attrs.operation != UPDATE:
            raise forbidden(attrs, f'unexpected operation "{attrs.operation}"')
        old, new = _status_free(attrs.old_obj), _status_free(attrs.obj)
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise forbidden(
                attrs,
                f'node "{node}" is not allowed to update fields other than status.capacity and status.conditions: '
                f"{', '.join(changed)}",
            )

    async def _service_account(self, node: str, attrs: Attributes) -> None:
        if attrs.operation != CREATE or attrs.subresource != "token":
            return
        ref = _spec(attrs.obj).get("boundObjectRef")
        if (
            not isinstance(ref, dict)
            or ref.get("apiVersion") != "v1"
            or ref.get("kind") != "Pod"
            or not ref.get("name")
        ):
            raise forbidden(attrs, "node requested token not bound to a pod")
        if not ref.get("uid"):
            raise forbidden(attrs, "node requested token with a pod binding without a uid")
        pod = await lk.get(self.ctx, lk.resource("", "v1", "pods"), attrs.namespace, str(ref["name"]))
        if pod is None:
            from kubeha.api import errors

            raise errors.not_found("", "pods", str(ref["name"]))
        if ref["uid"] != (pod.get("metadata") or {}).get("uid"):
            raise forbidden(
                attrs,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. The object "
                "might have been deleted and then recreated",
            )
        if _spec(pod).get("nodeName") != node:
            raise forbidden(attrs, "node requested token bound to a pod scheduled on a different node")


def _status_free(pvc: Obj | None) -> dict[str, Any]:
    """A claim without what a kubelet may change (capacity, conditions, allocation; and the
    resourceVersion and managed fields, which any writer changes), flattened for comparison."""
    obj = copy.deepcopy(pvc or {})
    md = obj.get("metadata") or {}
    md.pop("resourceVersion", None)
    md.pop("managedFields", None)
    status = obj.get("status") or {}
    for key in ("capacity", "conditions", "allocatedResourceStatuses", "allocatedResources"):
        status.pop(key, None)
    flat: dict[str, Any] = {}
    for top in ("metadata", "spec", "status"):
        for k, v in (obj.get(top) or {}).items():
            flat[f"{top}.{k}"] = v
    return flat


register_plugin("NodeRestriction", NodeRestriction)
