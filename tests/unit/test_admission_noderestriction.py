"""NodeRestriction admission: what a kubelet identity may write, with upstream's messages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo, load_all, lookup
from kubeha.apiserver import admission
from kubeha.apiserver.admission import noderestriction as nr

load_all()


def _info(group: str, resource: str) -> ResourceInfo:
    info = lookup(group, "v1", resource)
    assert info is not None
    return info


PODS, NODES, SAS = _info("", "pods"), _info("", "nodes"), _info("", "serviceaccounts")
LEASES = _info("coordination.k8s.io", "leases")


@dataclass
class User:
    name: str
    groups: tuple[str, ...] = ()


N1 = User("system:node:n1", ("system:nodes", "system:authenticated"))


class FakeCacher:
    def __init__(self, objs: dict[str, Any]) -> None:
        self.objs = objs

    async def list(self, namespace_prefix: str | None = None) -> tuple[list[Any], int]:
        return list(self.objs.values()), 1

    def get(self, key: str) -> Any:
        return self.objs.get(key)


class FakeStore:
    async def get(self, key: str) -> Any:
        from kubeha.storage.interface import KeyNotFound

        raise KeyNotFound(key)


class FakeCtx:
    def __init__(self, *objs: tuple[ResourceInfo, dict[str, Any]]) -> None:
        self.store = FakeStore()
        self.caches: dict[str, dict[str, Any]] = {}
        for info, obj in objs:
            md = obj["metadata"]
            self.caches.setdefault(info.key_prefix(), {})[info.key(md.get("namespace"), md["name"])] = obj

    async def cacher(self, info: ResourceInfo) -> FakeCacher:
        return FakeCacher(self.caches.get(info.key_prefix(), {}))


NODE1 = (NODES, {"metadata": {"name": "n1", "uid": "uid-n1"}})


def bound_pod(name: str, node: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"a": "1"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **extra},
    }


CTX = FakeCtx(NODE1, (PODS, bound_pod("mine", "n1")), (PODS, bound_pod("theirs", "n2")))


def check(
    info: ResourceInfo,
    op: str,
    name: str = "",
    obj: Any = None,
    old: Any = None,
    sub: str = "",
    ns: str = "",
    user: Any = N1,
) -> None:
    attrs = admission.Attributes(op, info, ns, name, obj, old, subresource=sub, user=user)
    plugin = nr.NodeRestriction(CTX)
    if plugin.handles(attrs):
        asyncio.run(plugin.validate(attrs))


def denied(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(errors.StatusError) as e:
        check(*args, **kwargs)
    assert e.value.code == 403
    return e.value.message


def node(name: str, labels: dict[str, str] | None = None, taints: list[Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def test_identity() -> None:
    assert nr.node_identity(N1) == ("n1", True)
    assert nr.node_identity(User("system:node:n1")) == ("", False)  # not in system:nodes
    assert nr.node_identity(User("alice", ("system:nodes",))) == ("", False)
    # other users are not restricted at all
    check(NODES, admission.UPDATE, "n2", node("n2"), node("n2"), user=User("admin", ("system:masters",)))
    empty = User("system:node:", ("system:nodes",))
    assert denied(NODES, admission.UPDATE, "n1", node("n1"), node("n1"), user=empty) == (
        'nodes "n1" is forbidden: could not determine node from user "system:node:"'
    )


def test_node_may_only_modify_itself() -> None:
    assert denied(NODES, admission.UPDATE, "n2", node("n2"), node("n2")) == (
        'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    )
    assert denied(NODES, admission.UPDATE, "n2", node("n2"), node("n2"), sub="status").endswith(
        'node "n1" is not allowed to modify node "n2"'
    )
    assert denied(NODES, admission.CREATE, "", node("n2")).endswith('node "n1" is not allowed to modify node "n2"')
    check(NODES, admission.CREATE, "", node("n1", {"kubernetes.io/hostname": "n1", "example.com/x": "y"}))
    check(NODES, admission.UPDATE, "n1", node("n1", {"kubernetes.io/os": "linux"}), node("n1"), sub="status")
    check(NODES, admission.DELETE, "n1", None, node("n1"))


def test_node_labels_and_taints() -> None:
    msg = denied(
        NODES,
        admission.CREATE,
        "",
        node("n1", {"node-restriction.kubernetes.io/pool": "a", "node-role.kubernetes.io/control-plane": ""}),
    )
    assert msg == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
        "node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane"
    )
    old = node("n1", {"example.k8s.io/x": "1", "topology.kubernetes.io/zone": "a"})
    new = node("n1", {"topology.kubernetes.io/zone": "b", "kubelet.kubernetes.io/y": "2"})
    assert denied(NODES, admission.UPDATE, "n1", new, old) == (
        'nodes "n1" is forbidden: is not allowed to modify labels: example.k8s.io/x'
    )
    taint = {"key": "k", "effect": "NoSchedule"}
    assert denied(NODES, admission.UPDATE, "n1", node("n1"), node("n1", taints=[taint])).endswith(
        'node "n1" is not allowed to modify taints'
    )
    with_source = node("n1")
    with_source["spec"]["configSource"] = {"configMap": {"name": "x"}}
    assert denied(NODES, admission.UPDATE, "n1", with_source, node("n1")).endswith(
        'node "n1" is not allowed to update configSource to a new non-nil configSource'
    )


def test_leases() -> None:
    lease = {"metadata": {"name": "n1", "namespace": "kube-node-lease"}}
    check(LEASES, admission.CREATE, "", lease, ns="kube-node-lease")
    check(LEASES, admission.UPDATE, "n1", lease, lease, ns="kube-node-lease")
    other = {"metadata": {"name": "n2", "namespace": "kube-node-lease"}}
    assert denied(LEASES, admission.CREATE, "", other, ns="kube-node-lease") == (
        'leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the '
        "requesting node"
    )
    assert denied(LEASES, admission.UPDATE, "n1", lease, lease, ns="default").endswith(
        'can only access leases in the "kube-node-lease" system namespace'
    )


def mirror(node_name: str = "n1", **extra: Any) -> dict[str, Any]:
    p = bound_pod("static-web", node_name, **extra)
    p["metadata"]["annotations"] = {nr.MIRROR_ANNOTATION: "hash"}
    p["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-n1", "controller": True}
    ]
    return p


def test_mirror_pods_only() -> None:
    check(PODS, admission.CREATE, "", mirror(), ns="ns")
    plain = bound_pod("p", "n1")
    assert denied(PODS, admission.CREATE, "", plain, ns="ns") == (
        'pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only '
        "create mirror pods"
    )
    assert denied(PODS, admission.CREATE, "", mirror("n2"), ns="ns").endswith(
        'node "n1" can only create pods with spec.nodeName set to itself'
    )
    unowned = mirror()
    unowned["metadata"]["ownerReferences"] = []
    assert denied(PODS, admission.CREATE, "", unowned, ns="ns").endswith(
        'node "n1" can only create pods with an owner reference set to itself'
    )
    wrong_uid = mirror()
    wrong_uid["metadata"]["ownerReferences"][0]["uid"] = "other"
    assert denied(PODS, admission.CREATE, "", wrong_uid, ns="ns").endswith(
        "node n1 UID mismatch: expected other got uid-n1"
    )


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ({"serviceAccountName": "default"}, "reference a service account"),
        ({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}, "reference secrets"),
        ({"imagePullSecrets": [{"name": "reg"}]}, "reference secrets"),
        ({"volumes": [{"name": "c", "configMap": {"name": "x"}}]}, "reference configmaps"),
        ({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "x"}}]}, "reference persistentvolumeclaims"),
    ],
)
def test_mirror_pods_may_not_reference_objects(extra: dict[str, Any], what: str) -> None:
    assert denied(PODS, admission.CREATE, "", mirror(**extra), ns="ns").endswith(
        f'node "n1" can not create pods that {what}'
    )
    env = mirror()
    env["spec"]["containers"][0]["env"] = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    assert denied(PODS, admission.CREATE, "", env, ns="ns").endswith("can not create pods that reference secrets")


def test_pod_status_delete_and_eviction() -> None:
    mine, theirs = bound_pod("mine", "n1"), bound_pod("theirs", "n2")
    check(PODS, admission.UPDATE, "mine", mine, mine, sub="status", ns="ns")
    assert denied(PODS, admission.UPDATE, "theirs", theirs, theirs, sub="status", ns="ns") == (
        'pods "theirs" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself'
    )
    relabelled = bound_pod("mine", "n1")
    relabelled["metadata"]["labels"] = {"a": "2"}
    assert denied(PODS, admission.UPDATE, "mine", relabelled, mine, sub="status", ns="ns").endswith(
        'node "n1" cannot update labels through pod status'
    )
    check(PODS, admission.DELETE, "mine", None, mine, ns="ns")
    assert denied(PODS, admission.DELETE, "theirs", None, theirs, ns="ns").endswith(
        'node "n1" can only delete pods with spec.nodeName set to itself'
    )
    assert denied(PODS, admission.UPDATE, "mine", mine, mine, ns="ns").endswith(
        'unexpected operation "UPDATE", node "n1" can only create and delete mirror pods'
    )
    eviction = {"metadata": {"name": "theirs", "namespace": "ns"}}
    check(PODS, admission.CREATE, "mine", {"metadata": {"name": "mine"}}, sub="eviction", ns="ns")
    assert denied(PODS, admission.CREATE, "theirs", eviction, sub="eviction", ns="ns").endswith(
        "node n1 can only evict pods with spec.nodeName set to itself"
    )
    assert denied(PODS, admission.CREATE, "mine", {}, sub="exec", ns="ns").endswith(
        "unexpected pod subresource \"exec\", only 'status' and 'eviction' are allowed"
    )


def test_token_requests_must_be_bound_to_own_pods() -> None:
    def tr(name: str, uid: str) -> dict[str, Any]:
        return {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}}}

    check(SAS, admission.CREATE, "default", tr("mine", "uid-mine"), sub="token", ns="ns")
    assert denied(SAS, admission.CREATE, "default", tr("theirs", "uid-theirs"), sub="token", ns="ns") == (
        'serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node'
    )
    assert denied(SAS, admission.CREATE, "default", {"spec": {}}, sub="token", ns="ns").endswith(
        "node requested token not bound to a pod"
    )
    assert denied(SAS, admission.CREATE, "default", tr("mine", ""), sub="token", ns="ns").endswith(
        "node requested token with a pod binding without a uid"
    )
    assert "does not match the UID in record" in denied(
        SAS, admission.CREATE, "default", tr("mine", "stale"), sub="token", ns="ns"
    )
    with pytest.raises(errors.StatusError) as e:
        check(SAS, admission.CREATE, "default", tr("gone", "u"), sub="token", ns="ns")
    assert e.value.code == 404


def test_label_helpers() -> None:
    assert nr.is_kubelet_label("kubernetes.io/hostname") and nr.is_kubelet_label("sub.node.kubernetes.io/x")
    assert not nr.is_kubelet_label("node-role.kubernetes.io/worker")
    assert nr.modified_labels({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == {"b", "c"}
    assert nr.forbidden_labels({"example.com/x", "k8s.io/y", "a.node-restriction.kubernetes.io/z"}) == [
        "a.node-restriction.kubernetes.io/z",
        "k8s.io/y",
    ]
