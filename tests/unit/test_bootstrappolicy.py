"""Upstream's default policy, evaluated by the RBAC authorizer after aggregation."""

from __future__ import annotations

from typing import Any

import pytest

from kubeha.apiserver import bootstrappolicy as bp
from kubeha.apiserver.rbac import Attributes, RBACAuthorizer, aggregate


def _authorizer(extra_bindings: list[dict[str, Any]] | None = None) -> RBACAuthorizer:
    roles = bp.cluster_roles()
    updated = {r["metadata"]["name"]: r for r in aggregate(roles)}
    roles = [updated.get(r["metadata"]["name"], r) for r in roles]
    ns_roles = [r for rs in bp.namespaced_roles().values() for r in rs]
    ns_bindings = [b for bs in bp.namespaced_role_bindings().values() for b in bs]
    return RBACAuthorizer(ns_roles, roles, ns_bindings + (extra_bindings or []), bp.cluster_role_bindings())


def _bind(user: str, role: str, ns: str = "dev") -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": f"{user}-{role}"},
        "roleRef": {"apiGroup": bp.GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "apiGroup": bp.GROUP, "name": user}],
    }


@pytest.fixture(scope="module")
def az() -> RBACAuthorizer:
    return _authorizer([_bind("viewer", "view"), _bind("editor", "edit"), _bind("boss", "admin")])


def can(az: RBACAuthorizer, user: str, verb: str, resource: str, ns: str = "dev", group: str = "", **kw: Any) -> bool:
    groups = ("system:authenticated", *kw.pop("groups", ()))
    return az.authorize(Attributes(user, groups, verb, ns, group, resource, **kw)).allowed


def test_every_object_carries_the_bootstrap_label_and_autoupdate_annotation() -> None:
    objs = bp.cluster_roles() + bp.cluster_role_bindings()
    objs += [o for group in (bp.namespaced_roles(), bp.namespaced_role_bindings()) for os in group.values() for o in os]
    for o in objs:
        assert o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "true"
        assert o["apiVersion"] == "rbac.authorization.k8s.io/v1"
    names = [r["metadata"]["name"] for r in bp.cluster_roles()]
    assert len(names) == len(set(names))
    for expected in (
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:monitoring",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:kube-dns",
        "system:node",
        "system:node-proxier",
        "system:node-bootstrapper",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        "system:volume-scheduler",
        "system:auth-delegator",
        "system:controller:deployment-controller",
        "system:controller:generic-garbage-collector",
        "system:controller:namespace-controller",
    ):
        assert expected in names


def test_bindings_reference_existing_roles() -> None:
    cluster = {r["metadata"]["name"] for r in bp.cluster_roles()}
    for b in bp.cluster_role_bindings():
        assert b["roleRef"]["name"] in cluster
    ns_roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]) for rs in bp.namespaced_roles().values() for r in rs
    }
    for ns, bs in bp.namespaced_role_bindings().items():
        for b in bs:
            assert (ns, b["roleRef"]["name"]) in ns_roles


def test_aggregation_fills_admin_edit_view() -> None:
    updated = {r["metadata"]["name"]: r for r in aggregate(bp.cluster_roles())}
    assert set(updated) == {"admin", "edit", "view"}
    assert len(updated["view"]["rules"]) < len(updated["edit"]["rules"]) < len(updated["admin"]["rules"])


def test_view_reads_but_does_not_write(az: RBACAuthorizer) -> None:
    for verb in ("get", "list", "watch"):
        assert can(az, "viewer", verb, "pods")
        assert can(az, "viewer", verb, "deployments", group="apps")
    assert can(az, "viewer", "get", "pods", subresource="log")
    assert not can(az, "viewer", "create", "pods")
    assert not can(az, "viewer", "delete", "deployments", group="apps")
    assert not can(az, "viewer", "get", "secrets")  # secrets are not viewable
    assert not can(az, "viewer", "get", "pods", ns="prod")  # only in the bound namespace


def test_edit_writes_workloads_but_not_roles(az: RBACAuthorizer) -> None:
    assert can(az, "editor", "create", "deployments", group="apps")
    assert can(az, "editor", "patch", "deployments", group="apps", subresource="scale")
    assert can(az, "editor", "get", "secrets")
    assert can(az, "editor", "create", "pods", subresource="exec")
    assert not can(az, "editor", "create", "roles", group="rbac.authorization.k8s.io")
    assert not can(az, "editor", "create", "rolebindings", group="rbac.authorization.k8s.io")
    assert not can(az, "editor", "update", "resourcequotas")
    assert can(az, "boss", "create", "rolebindings", group="rbac.authorization.k8s.io")
    assert can(az, "boss", "create", "localsubjectaccessreviews", group="authorization.k8s.io")


def test_authenticated_users_basics(az: RBACAuthorizer) -> None:
    assert can(az, "anyone", "create", "selfsubjectaccessreviews", ns="", group="authorization.k8s.io")
    assert can(az, "anyone", "create", "selfsubjectreviews", ns="", group="authentication.k8s.io")
    assert not can(az, "anyone", "list", "pods")

    def url(user: str, groups: tuple[str, ...], path: str) -> bool:
        return az.authorize(Attributes(user, groups, "get", path=path, resource_request=False)).allowed

    assert url("anyone", ("system:authenticated",), "/apis/apps/v1")
    assert url("system:anonymous", ("system:unauthenticated",), "/version")
    assert url("system:anonymous", ("system:unauthenticated",), "/healthz")
    assert not url("system:anonymous", ("system:unauthenticated",), "/apis")
    assert not url("anyone", ("system:authenticated",), "/metrics")
    assert url("prom", ("system:monitoring",), "/metrics")


def test_components(az: RBACAuthorizer) -> None:
    sched = "system:kube-scheduler"
    assert can(az, sched, "create", "pods", subresource="binding", groups=())
    assert can(az, sched, "create", "bindings", groups=())
    assert can(az, sched, "get", "leases", ns="kube-system", group="coordination.k8s.io", name="kube-scheduler")
    assert not can(az, sched, "update", "leases", ns="kube-system", group="coordination.k8s.io", name="other")
    assert not can(az, sched, "create", "pods")
    kcm = "system:kube-controller-manager"
    assert can(az, kcm, "list", "anything", group="whatever.io")
    assert can(az, kcm, "create", "serviceaccounts", subresource="token")
    assert not can(az, kcm, "delete", "pods")
    proxy = "system:kube-proxy"
    assert can(az, proxy, "watch", "endpointslices", ns="", group="discovery.k8s.io")
    assert not can(az, proxy, "get", "secrets")
    dns = "system:serviceaccount:kube-system:kube-dns"
    assert can(az, dns, "list", "services", ns="")
    gc = "system:serviceaccount:kube-system:generic-garbage-collector"
    assert can(az, gc, "delete", "replicasets", group="apps")
    dc = "system:serviceaccount:kube-system:deployment-controller"
    assert can(az, dc, "create", "replicasets", group="apps")
    assert not can(az, dc, "create", "pods")


def test_system_node_rules_match_upstream(az: RBACAuthorizer) -> None:
    # upstream binds system:node to nobody (the Node authorizer grants kubelets); check the role itself
    node = RBACAuthorizer(
        cluster_roles=[r for r in bp.cluster_roles() if r["metadata"]["name"] == "system:node"],
        cluster_role_bindings=[
            {
                "metadata": {"name": "n"},
                "roleRef": {"kind": "ClusterRole", "name": "system:node"},
                "subjects": [{"kind": "Group", "name": "system:nodes"}],
            }
        ],
    )
    kubelet = ("system:node:w1", ("system:nodes",))

    def k(verb: str, resource: str, group: str = "", sub: str = "", ns: str = "dev") -> bool:
        return node.authorize(Attributes(kubelet[0], kubelet[1], verb, ns, group, resource, sub)).allowed

    assert k("create", "nodes", ns="")
    assert k("patch", "nodes", "", "status", ns="")
    assert k("get", "secrets")
    assert k("create", "leases", "coordination.k8s.io", ns="kube-node-lease")
    assert k("create", "certificatesigningrequests", "certificates.k8s.io", ns="")
    assert k("update", "pods", "", "status")
    assert k("create", "serviceaccounts", "", "token")
    assert k("get", "runtimeclasses", "node.k8s.io", ns="")
    assert not k("update", "pods")
    assert not k("delete", "nodes", ns="")
    assert not k("create", "secrets")
    assert not can(az, "system:node:w1", "get", "secrets", groups=("system:nodes",))


def test_csr_roles() -> None:
    approvers = {
        r["metadata"]["name"]: r["rules"]
        for r in bp.cluster_roles()
        if r["metadata"]["name"].startswith("system:certificates.k8s.io:")
    }
    assert approvers["system:certificates.k8s.io:kube-apiserver-client-approver"] == [
        {
            "apiGroups": ["certificates.k8s.io"],
            "resourceNames": ["kubernetes.io/kube-apiserver-client"],
            "resources": ["signers"],
            "verbs": ["approve"],
        }
    ]
    assert approvers["system:certificates.k8s.io:certificatesigningrequests:nodeclient"][0]["resources"] == [
        "certificatesigningrequests/nodeclient"
    ]
