"""The Node authorizer: what a kubelet (``system:node:<name>`` in ``system:nodes``) may do.

A graph built from the pods watch cache links each node to the pods bound to it and to what those
pods reference (secrets, configmaps, persistent volume claims, service accounts). A kubelet may:
read and write its own Node (and its status) and its Lease in ``kube-node-lease``; read every
Node and list/watch pods (it filters by ``spec.nodeName``); get, update, delete and write the
status of pods bound to it; create pods (mirror pods); read the secrets, configmaps and claims its
pods use; create tokens for its pods' service accounts; and whatever upstream's ``system:node``
role grants otherwise (events, CSRs, services, endpoints...). Anything else gets no opinion, with
upstream's reason, so RBAC decides (and kubelets hold no RBAC bindings of their own).

This module does no I/O; the server feeds :meth:`NodeAuthorizer.set_pod` / ``delete_pod``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kubeha.api.schema import Obj
from kubeha.apiserver import bootstrappolicy, rbac

NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
LEASE_NAMESPACE = "kube-node-lease"

ALLOW = "allow"
NO_OPINION = "noopinion"

# (kind, namespace, name) of something a pod references
Ref = tuple[str, str, str]

_GRAPH_READ = {"secrets": "secret", "configmaps": "configmap", "persistentvolumeclaims": "pvc"}
_POD_WRITE_VERBS = {"get", "update", "patch", "delete"}


def pod_refs(pod: Obj) -> set[Ref]:
    """Everything a pod references that its kubelet must be able to read."""
    md = pod.get("metadata") or {}
    ns = md.get("namespace") or ""
    spec = pod.get("spec") or {}
    refs: set[Ref] = {("serviceaccount", ns, spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")}

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            refs.add((kind, ns, name))

    for s in spec.get("imagePullSecrets") or []:
        add("secret", (s or {}).get("name"))
    containers = [
        *(spec.get("containers") or []),
        *(spec.get("initContainers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    for c in containers:
        for env in (c or {}).get("env") or []:
            vf = (env or {}).get("valueFrom") or {}
            add("secret", (vf.get("secretKeyRef") or {}).get("name"))
            add("configmap", (vf.get("configMapKeyRef") or {}).get("name"))
        for ef in (c or {}).get("envFrom") or []:
            add("secret", ((ef or {}).get("secretRef") or {}).get("name"))
            add("configmap", ((ef or {}).get("configMapRef") or {}).get("name"))
    for v in spec.get("volumes") or []:
        v = v or {}
        add("secret", (v.get("secret") or {}).get("secretName"))
        add("configmap", (v.get("configMap") or {}).get("name"))
        add("pvc", (v.get("persistentVolumeClaim") or {}).get("claimName"))
        if v.get("ephemeral") is not None:
            add("pvc", f"{md.get('name', '')}-{v.get('name', '')}")
        for src in (v.get("projected") or {}).get("sources") or []:
            add("secret", ((src or {}).get("secret") or {}).get("name"))
            add("configmap", ((src or {}).get("configMap") or {}).get("name"))
        for key in ("csi", "cephfs", "rbd", "iscsi", "flexVolume", "azureFile", "scaleIO", "storageos", "cinder"):
            sv = v.get(key)
            if isinstance(sv, dict):
                for ref_key in ("nodePublishSecretRef", "secretRef"):
                    add("secret", (sv.get(ref_key) or {}).get("name"))
                add("secret", sv.get("secretName"))
    return refs


class NodeAuthorizer:
    def __init__(self) -> None:
        # node -> reference counts of what its pods use; node -> its pods; pod key -> (node, refs)
        self._refs: dict[str, Counter[Ref]] = {}
        self._pods: dict[str, set[tuple[str, str]]] = {}
        self._by_pod: dict[tuple[str, str], tuple[str, set[Ref]]] = {}
        self._node_rules = tuple(rbac.compile_rule(r) for r in bootstrappolicy._node_rules())

    # -- the graph --------------------------------------------------------------------------------

    def set_pod(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        key = (md.get("namespace") or "", md.get("name") or "")
        node = (pod.get("spec") or {}).get("nodeName") or ""
        self.delete_pod(*key)
        if not node:
            return
        refs = pod_refs(pod)
        self._by_pod[key] = (node, refs)
        self._pods.setdefault(node, set()).add(key)
        self._refs.setdefault(node, Counter()).update(refs)

    def delete_pod(self, namespace: str, name: str) -> None:
        old = self._by_pod.pop((namespace, name), None)
        if old is None:
            return
        node, refs = old
        pods = self._pods.get(node)
        if pods is not None:
            pods.discard((namespace, name))
            if not pods:
                del self._pods[node]
        counts = self._refs.get(node)
        if counts is not None:
            counts.subtract(refs)
            for r in refs:
                if counts[r] <= 0:
                    del counts[r]
            if not counts:
                del self._refs[node]

    def clear(self) -> None:
        self._refs.clear()
        self._pods.clear()
        self._by_pod.clear()

    def has_pod(self, node: str, namespace: str, name: str) -> bool:
        return (namespace, name) in self._pods.get(node, ())

    def references(self, node: str, kind: str, namespace: str, name: str) -> bool:
        return self._refs.get(node, Counter())[(kind, namespace, name)] > 0

    # -- deciding ---------------------------------------------------------------------------------

    @staticmethod
    def node_name(user: Any) -> str | None:
        """The node a user is the kubelet of ("" for a node identity without a name), or None."""
        if NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
            return None
        return user.name[len(NODE_PREFIX) :]

    def authorize(self, a: Any) -> tuple[str, str]:
        node = self.node_name(a.user)
        if node is None:
            return NO_OPINION, ""
        if not node:
            return NO_OPINION, "unknown node"
        if not a.is_resource:
            return NO_OPINION, ""
        group, resource, sub, verb = a.group, a.resource, a.subresource, a.verb
        if group == "" and resource in _GRAPH_READ and not sub:
            if verb not in ("get", "list", "watch") or not a.name:
                return NO_OPINION, f"can only read individual {resource}"
            return self._graph(node, _GRAPH_READ[resource], a.namespace, a.name)
        if group == "" and resource == "serviceaccounts":
            if sub == "token" and verb == "create":
                return self._graph(node, "serviceaccount", a.namespace, a.name)
            return NO_OPINION, "can only create tokens for individual service accounts"
        if group == "" and resource == "pods":
            return self._pod(node, a)
        if group == "" and resource == "nodes":
            if verb in ("get", "list", "watch") and sub in ("", "status"):
                return ALLOW, ""
            if verb == "create" and not sub:
                return ALLOW, ""  # the name is in the body: NodeRestriction admission checks it
            if a.name == node and verb in ("update", "patch", "delete") and sub in ("", "status"):
                return ALLOW, ""
            return NO_OPINION, f"node '{node}' cannot modify node '{a.name}'" if a.name else ""
        if group == "coordination.k8s.io" and resource == "leases":
            # a create carries the name in its body only (NodeRestriction admission checks it)
            if (
                a.namespace != LEASE_NAMESPACE
                or (verb != "create" and a.name != node)
                or verb not in ("get", "create", "update", "patch", "delete")
            ):
                return NO_OPINION, "can only access node lease with the same name as the requesting node"
            return ALLOW, ""
        ra = a.to_rbac()
        if any(rbac.rule_allows(r, ra) for r in self._node_rules):
            return ALLOW, ""
        return NO_OPINION, ""

    def _graph(self, node: str, kind: str, namespace: str, name: str) -> tuple[str, str]:
        if self.references(node, kind, namespace, name):
            return ALLOW, ""
        return NO_OPINION, f"no relationship found between node '{node}' and this object"

    def _pod(self, node: str, a: Any) -> tuple[str, str]:
        verb, sub = a.verb, a.subresource
        if not sub and verb in ("list", "watch"):
            return ALLOW, ""
        if not sub and verb == "create":
            return ALLOW, ""  # mirror pods; NodeRestriction admission checks the body
        if sub in ("", "status") and (verb in _POD_WRITE_VERBS or (sub == "status" and verb == "get")):
            if a.name and self.has_pod(node, a.namespace, a.name):
                return ALLOW, ""
            return NO_OPINION, f"no relationship found between node '{node}' and this object"
        if sub == "eviction" and verb == "create":
            if self.has_pod(node, a.namespace, a.name):
                return ALLOW, ""
            return NO_OPINION, f"no relationship found between node '{node}' and this object"
        return NO_OPINION, ""
