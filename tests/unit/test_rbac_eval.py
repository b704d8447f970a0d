"""The RBAC authorizer: rule matching, binding scopes, subjects, rules review, aggregation, Covers."""

from __future__ import annotations

from typing import Any

from kubeha.apiserver.rbac import Attributes, RBACAuthorizer, aggregate, breakdown_rule, covers

Obj = dict[str, Any]


def crole(name: str, *rules: Obj, labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "rules": list(rules)}


def role(ns: str, name: str, *rules: Obj) -> Obj:
    return {"metadata": {"namespace": ns, "name": name}, "rules": list(rules)}


def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None, **kw: Any) -> Obj:
    r: Obj = {"verbs": verbs}
    if groups is not None:
        r["apiGroups"] = groups
    if resources is not None:
        r["resources"] = resources
    r.update(kw)
    return r


def user(n: str) -> Obj:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n}


def group(n: str) -> Obj:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": n}


def crb(name: str, role_name: str, *subjects: Obj) -> Obj:
    return {
        "metadata": {"name": name},
        "roleRef": {"kind": "ClusterRole", "name": role_name},
        "subjects": list(subjects),
    }


def rb(ns: str, name: str, kind: str, role_name: str, *subjects: Obj) -> Obj:
    return {
        "metadata": {"namespace": ns, "name": name},
        "roleRef": {"kind": kind, "name": role_name},
        "subjects": list(subjects),
    }


def can(az: RBACAuthorizer, who: str, verb: str, resource: str, ns: str = "", **kw: Any) -> bool:
    groups = tuple(kw.pop("groups", ()))
    return az.authorize(Attributes(who, groups, verb, ns, resource=resource, **kw)).allowed


def test_cluster_role_binding_grants_everywhere_and_role_binding_only_in_its_namespace() -> None:
    az = RBACAuthorizer(
        cluster_roles=[crole("reader", rule(["get", "list"], [""], ["pods"]))],
        cluster_role_bindings=[crb("alice-reads", "reader", user("alice"))],
        role_bindings=[rb("dev", "bob-reads", "ClusterRole", "reader", user("bob"))],
    )
    assert can(az, "alice", "get", "pods", "dev")
    assert can(az, "alice", "list", "pods", "")  # cluster scope
    assert not can(az, "alice", "delete", "pods", "dev")
    assert can(az, "bob", "get", "pods", "dev")
    assert not can(az, "bob", "get", "pods", "prod")
    assert not can(az, "bob", "list", "pods", "")  # all namespaces needs a cluster binding
    assert not can(az, "carol", "get", "pods", "dev")


def test_role_binding_to_role_uses_the_role_in_its_own_namespace() -> None:
    az = RBACAuthorizer(
        roles=[role("dev", "cm", rule(["*"], [""], ["configmaps"])), role("prod", "cm", rule(["get"], [""], ["x"]))],
        role_bindings=[rb("dev", "b", "Role", "cm", user("u"))],
    )
    assert can(az, "u", "update", "configmaps", "dev")
    assert not can(az, "u", "update", "configmaps", "prod")


def test_groups_and_service_accounts() -> None:
    az = RBACAuthorizer(
        cluster_roles=[crole("r", rule(["get"], [""], ["secrets"]))],
        role_bindings=[
            rb("dev", "g", "ClusterRole", "r", group("team")),
            rb("dev", "sa", "ClusterRole", "r", {"kind": "ServiceAccount", "name": "builder"}),
            rb("dev", "sa2", "ClusterRole", "r", {"kind": "ServiceAccount", "name": "x", "namespace": "other"}),
        ],
    )
    assert can(az, "someone", "get", "secrets", "dev", groups=["team"])
    assert not can(az, "someone", "get", "secrets", "dev", groups=["other-team"])
    # a service account subject without namespace means the binding's namespace
    assert can(az, "system:serviceaccount:dev:builder", "get", "secrets", "dev")
    assert not can(az, "system:serviceaccount:prod:builder", "get", "secrets", "dev")
    assert can(az, "system:serviceaccount:other:x", "get", "secrets", "dev")


def test_wildcards_subresources_and_resource_names() -> None:
    az = RBACAuthorizer(
        cluster_roles=[
            crole(
                "r",
                rule(["get"], ["apps"], ["*/scale"]),
                rule(["get"], [""], ["pods/log"]),
                rule(["update"], [""], ["configmaps"], resourceNames=["only-me"]),
                rule(["*"], ["batch"], ["*"]),
            )
        ],
        cluster_role_bindings=[crb("b", "r", user("u"))],
    )
    assert can(az, "u", "get", "deployments", "ns", api_group="apps", subresource="scale")
    assert not can(az, "u", "get", "deployments", "ns", api_group="apps")
    assert can(az, "u", "get", "pods", "ns", subresource="log")
    assert not can(az, "u", "get", "pods", "ns")
    assert not can(az, "u", "get", "pods", "ns", subresource="exec")
    assert can(az, "u", "update", "configmaps", "ns", name="only-me")
    assert not can(az, "u", "update", "configmaps", "ns", name="another")
    assert not can(az, "u", "update", "configmaps", "ns")  # no name: the name restriction is not met
    assert can(az, "u", "delete", "jobs", "ns", api_group="batch")
    assert can(az, "u", "get", "jobs", "ns", api_group="batch", subresource="status")
    assert not can(az, "u", "get", "jobs", "ns", api_group="apps")


def test_non_resource_urls() -> None:
    az = RBACAuthorizer(
        cluster_roles=[
            crole("r", rule(["get"], nonResourceURLs=["/healthz", "/apis/*"])),
            crole("res", rule(["*"], ["*"], ["*"])),
        ],
        cluster_role_bindings=[crb("b", "r", user("u")), crb("c", "res", user("v"))],
    )

    def url(who: str, verb: str, path: str) -> bool:
        return az.authorize(Attributes(who, (), verb, path=path, resource_request=False)).allowed

    assert url("u", "get", "/healthz")
    assert not url("u", "get", "/healthz/etcd")
    assert url("u", "get", "/apis/apps/v1")
    assert not url("u", "post", "/apis/apps/v1")
    assert not url("u", "get", "/api")
    # resource rules never match non-resource requests, even with "*" everywhere
    assert not url("v", "get", "/healthz")


def test_reason_names_the_binding_and_missing_roles_are_reported() -> None:
    az = RBACAuthorizer(
        cluster_roles=[crole("r", rule(["get"], [""], ["pods"]))],
        cluster_role_bindings=[crb("b", "r", group("g")), crb("dangling", "nope", user("u"))],
    )
    d = az.authorize(Attributes("u", ("g",), "get", "ns", resource="pods"))
    assert d.allowed
    assert d.reason == 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "g"'
    d = az.authorize(Attributes("u", (), "get", "ns", resource="pods"))
    assert not d.allowed
    assert 'clusterrole.rbac.authorization.k8s.io "nope" not found' in d.reason


def test_incremental_updates_and_deletes() -> None:
    az = RBACAuthorizer()
    az.set_cluster_role(crole("r", rule(["get"], [""], ["pods"])))
    az.set_cluster_role_binding(crb("b", "r", user("u")))
    assert can(az, "u", "get", "pods", "x")
    az.set_cluster_role_binding(crb("b", "r", user("w")))  # subjects changed: old index entry gone
    assert not can(az, "u", "get", "pods", "x")
    assert can(az, "w", "get", "pods", "x")
    az.set_cluster_role(crole("r", rule(["list"], [""], ["pods"])))
    assert not can(az, "w", "get", "pods", "x")
    assert can(az, "w", "list", "pods", "x")
    az.delete_cluster_role_binding("b")
    assert not can(az, "w", "list", "pods", "x")
    az.set_role_binding(rb("x", "rb", "ClusterRole", "r", user("w")))
    assert can(az, "w", "list", "pods", "x")
    az.delete_role_binding("x", "rb")
    assert not can(az, "w", "list", "pods", "x")


def test_rules_for_lists_cluster_and_namespace_rules() -> None:
    az = RBACAuthorizer(
        cluster_roles=[
            crole("basic", rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews"])),
            crole("urls", rule(["get"], nonResourceURLs=["/version"])),
        ],
        roles=[role("dev", "cm", rule(["get"], [""], ["configmaps"], resourceNames=["a"]))],
        cluster_role_bindings=[crb("b1", "basic", group("system:authenticated")), crb("b2", "urls", user("u"))],
        role_bindings=[rb("dev", "r", "Role", "cm", user("u"))],
    )
    res, non, incomplete = az.rules_for("u", ["system:authenticated"], "dev")
    assert {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews"],
    } in res
    assert {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]} in res
    assert non == [{"verbs": ["get"], "nonResourceURLs": ["/version"]}]
    assert incomplete is False
    res, _, _ = az.rules_for("u", ["system:authenticated"], "prod")
    assert len(res) == 1
    az.set_role_binding(rb("dev", "gone", "Role", "missing", user("u")))
    assert az.rules_for("u", [], "dev")[2] is True


def test_index_scales_without_scanning() -> None:
    bindings = [crb(f"b{i}", "r", user(f"user-{i}")) for i in range(1000)]
    az = RBACAuthorizer(cluster_roles=[crole("r", rule(["get"], [""], ["pods"]))], cluster_role_bindings=bindings)
    assert can(az, "user-999", "get", "pods", "ns")
    # only the requester's own bindings are looked at
    assert az._binding_keys("user-999", (), "ns") == [("", "b999")]


def test_aggregate_follows_chains_and_reports_only_changes() -> None:
    roles = [
        {
            "metadata": {"name": "view", "labels": {"agg-to-edit": "true"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg-to-view": "true"}}]},
        },
        {
            "metadata": {"name": "edit"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg-to-edit": "true"}}]},
            "rules": [],
        },
        crole("v1", rule(["get"], [""], ["pods"]), labels={"agg-to-view": "true"}),
        crole("e1", rule(["create"], [""], ["pods"]), rule(["get"], [""], ["pods"]), labels={"agg-to-edit": "true"}),
        crole("unrelated", rule(["*"], ["*"], ["*"])),
    ]
    updated = {r["metadata"]["name"]: r for r in aggregate(roles)}
    assert set(updated) == {"edit", "view"}
    assert updated["view"]["rules"] == [rule(["get"], [""], ["pods"])]
    # e1 comes before view by name; the duplicate "get pods" rule appears once
    assert updated["edit"]["rules"] == [rule(["create"], [""], ["pods"]), rule(["get"], [""], ["pods"])]
    assert "rules" not in roles[0]  # input untouched
    assert aggregate([*roles[2:], updated["view"], updated["edit"]]) == []


def test_breakdown_rule() -> None:
    subs = breakdown_rule(rule(["get", "list"], ["", "apps"], ["pods"], resourceNames=["a", "b"]))
    assert len(subs) == 8
    assert {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["b"]} in subs
    assert breakdown_rule(rule(["get"], nonResourceURLs=["/a", "/b"])) == [
        {"nonResourceURLs": ["/a"], "verbs": ["get"]},
        {"nonResourceURLs": ["/b"], "verbs": ["get"]},
    ]


def test_covers_escalation_cases() -> None:
    owner = [
        rule(["get", "list"], [""], ["pods", "pods/log"]),
        rule(["*"], ["apps"], ["deployments"]),
        rule(["get"], [""], ["configmaps"], resourceNames=["a"]),
        rule(["get"], [""], ["*/status"]),
        rule(["get"], nonResourceURLs=["/logs/*"]),
    ]
    assert covers(owner, [rule(["get"], [""], ["pods"])]) == (True, [])
    assert covers(owner, [rule(["delete", "patch"], ["apps"], ["deployments"])])[0]
    assert covers(owner, [rule(["get"], [""], ["services/status"])])[0]
    assert covers(owner, [rule(["get"], [""], ["configmaps"], resourceNames=["a"])])[0]
    assert covers(owner, [rule(["get"], nonResourceURLs=["/logs/kubelet"])])[0]
    ok, missing = covers(owner, [rule(["get", "delete"], [""], ["pods"])])
    assert not ok
    assert missing == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]
    # a name-restricted grant does not cover the unrestricted right
    assert not covers(owner, [rule(["get"], [""], ["configmaps"])])[0]
    assert not covers(owner, [rule(["get"], [""], ["configmaps"], resourceNames=["b"])])[0]
    assert not covers(owner, [rule(["get"], ["*"], ["pods"])])[0]
    assert not covers(owner, [rule(["*"], [""], ["pods"])])[0]
    assert not covers(owner, [rule(["get"], nonResourceURLs=["/metrics"])])[0]
    assert covers([rule(["*"], ["*"], ["*"]), rule(["*"], nonResourceURLs=["*"])], [rule(["x"], ["y"], ["z/w"])])[0]


def test_escalation_helpers() -> None:
    az = RBACAuthorizer(
        cluster_roles=[
            crole("viewer", rule(["get"], [""], ["pods"])),
            crole("binder", rule(["bind"], ["rbac.authorization.k8s.io"], ["clusterroles"], resourceNames=["viewer"])),
        ],
        cluster_role_bindings=[crb("v", "viewer", user("u")), crb("b", "binder", user("u"))],
    )
    assert az.confirm_no_escalation("u", [], "ns", [rule(["get"], [""], ["pods"])]) == []
    assert az.confirm_no_escalation("u", [], "ns", [rule(["create"], [""], ["pods"])])
    assert az.confirm_no_escalation("root", ["system:masters"], "ns", [rule(["*"], ["*"], ["*"])]) == []
    assert az.bind_allowed("u", [], "ns", {"kind": "ClusterRole", "name": "viewer"})
    assert not az.bind_allowed("u", [], "ns", {"kind": "ClusterRole", "name": "cluster-admin"})
    assert not az.escalation_allowed("u", [], "ns", cluster=True)
    assert az.escalation_allowed("root", ["system:masters"], "", cluster=True)
