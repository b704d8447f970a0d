"""Authentication chain pieces, impersonation, the authorizer chain, Node graph, escalation checks."""

from __future__ import annotations

import asyncio
import base64
import datetime

import pytest

from kubeha.api import errors
from kubeha.apiserver import bootstrappolicy, rbac
from kubeha.apiserver.authn import AuthenticationChain, InvalidToken, UserInfo, impersonation
from kubeha.apiserver.authn.bootstrap import BootstrapTokenAuthenticator
from kubeha.apiserver.authn.tokenfile import TokenFileAuthenticator, parse_token_file
from kubeha.apiserver.authz import Attributes, AuthorizationChain
from kubeha.apiserver.authz.escalation import compact_rules, compact_string
from kubeha.apiserver.authz.sync import default_policy, reconciled
from kubeha.apiserver.nodeauthz import NodeAuthorizer, pod_refs


def test_token_file() -> None:
    users = parse_token_file('# comment\nt1,alice,u1,"a,b"\n\nt2,bob,u2\n')
    assert users["t1"] == UserInfo("alice", ("a", "b"), "u1")
    assert users["t2"].groups == ()
    with pytest.raises(ValueError):
        parse_token_file("t3,carol\n")
    chain = AuthenticationChain(tokens=[TokenFileAuthenticator(users)])
    user, _ = asyncio.run(chain.authenticate_token("t1"))  # type: ignore[misc]
    assert user.groups == ("a", "b", "system:authenticated")
    assert asyncio.run(chain.authenticate_token("nope")) is None


def _secret(data: dict[str, str], typ: str = "bootstrap.kubernetes.io/token") -> dict[str, object]:
    return {"metadata": {}, "type": typ, "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_bootstrap_tokens() -> None:
    secrets = {
        "bootstrap-token-abcdef": _secret(
            {
                "token-id": "abcdef",
                "token-secret": "0123456789abcdef",
                "usage-bootstrap-authentication": "true",
                "expiration": "2030-01-01T00:00:00Z",
                "auth-extra-groups": "system:bootstrappers:x",
            }
        )
    }

    async def lookup(ns: str, name: str) -> dict[str, object] | None:
        assert ns == "kube-system"
        return secrets.get(name)

    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    auth = BootstrapTokenAuthenticator(lookup, clock=lambda: now)
    res = asyncio.run(auth.authenticate_token("abcdef.0123456789abcdef", []))
    assert res is not None
    assert res[0] == UserInfo("system:bootstrap:abcdef", ("system:bootstrappers", "system:bootstrappers:x"))
    assert asyncio.run(auth.authenticate_token("not-a-bootstrap-token", [])) is None
    for bad in ("abcdef.0123456789abcdex", "zzzzzz.0123456789abcdef"):
        with pytest.raises(InvalidToken):
            asyncio.run(auth.authenticate_token(bad, []))
    later = BootstrapTokenAuthenticator(lookup, clock=lambda: datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC))
    with pytest.raises(InvalidToken, match="expired"):
        asyncio.run(later.authenticate_token("abcdef.0123456789abcdef", []))


def _policy() -> rbac.RBACAuthorizer:
    return rbac.RBACAuthorizer(
        cluster_roles=[
            {
                "metadata": {"name": "imp"},
                "rules": [
                    {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["jane"]}
                ],
            },
            *bootstrappolicy.cluster_roles(),
        ],
        cluster_role_bindings=[
            {
                "metadata": {"name": "imp"},
                "roleRef": {"kind": "ClusterRole", "name": "imp"},
                "subjects": [{"kind": "User", "name": "carol"}],
            },
            *bootstrappolicy.cluster_role_bindings(),
        ],
    )


def test_impersonation() -> None:
    chain = AuthorizationChain(("RBAC",))
    chain.rbac = _policy()

    async def check(real: UserInfo, verb: str, group: str, resource: str, ns: str, name: str) -> tuple[bool, str]:
        return chain.authorize_sync(Attributes(real, verb, True, "", group, "", resource, "", ns, name))

    carol = UserInfo("carol", ("system:authenticated",))
    req = impersonation.requested({"Impersonate-User": "jane"})
    assert req is not None
    user = asyncio.run(impersonation.impersonate(carol, req, check))
    assert user == UserInfo("jane", ("system:authenticated",))
    req = impersonation.requested({"Impersonate-User": "bob"})
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(impersonation.impersonate(carol, req, check))  # type: ignore[arg-type]
    assert e.value.code == 403
    assert e.value.message == (
        'users "bob" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope'
    )
    admin = UserInfo("admin", ("system:masters",))
    req = impersonation.requested({"Impersonate-User": "system:serviceaccount:ns1:robot"})
    user = asyncio.run(impersonation.impersonate(admin, req, check))  # type: ignore[arg-type]
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated")
    assert impersonation.requested({"Accept": "x"}) is None
    with pytest.raises(errors.StatusError):
        impersonation.requested({"Impersonate-Group": "g"})


def _pod(name: str, node: str, secret: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "nodeName": node,
            "serviceAccountName": "sa",
            "volumes": [{"name": "v", "secret": {"secretName": secret}}, {"name": "c", "configMap": {"name": "cm"}}],
            "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "env-" + secret}}]}],
        },
    }


def test_node_authorizer_graph() -> None:
    chain = AuthorizationChain(("Node", "RBAC"))
    chain.rbac = _policy()
    node: NodeAuthorizer = chain.node
    node.set_pod(_pod("p1", "n1", "s1"))
    node.set_pod(_pod("p2", "n2", "s2"))
    assert ("secret", "ns", "env-s1") in pod_refs(_pod("p1", "n1", "s1"))
    kubelet = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))

    def ok(verb: str, resource: str, name: str = "", sub: str = "", ns: str = "ns", group: str = "") -> bool:
        return chain.authorize_sync(Attributes(kubelet, verb, True, "", group, "v1", resource, sub, ns, name))[0]

    assert ok("get", "secrets", "s1") and ok("get", "secrets", "env-s1") and ok("get", "configmaps", "cm")
    assert not ok("get", "secrets", "s2") and not ok("list", "secrets")
    _, reason = chain.authorize_sync(Attributes(kubelet, "get", True, "", "", "v1", "secrets", "", "ns", "s2"))
    assert reason == "no relationship found between node 'n1' and this object"
    assert ok("patch", "pods", "p1", "status") and not ok("patch", "pods", "p2", "status")
    assert not ok("delete", "pods", "p2") and ok("list", "pods")
    assert ok("create", "serviceaccounts", "sa", "token") and not ok("create", "serviceaccounts", "other", "token")
    assert ok("update", "nodes", "n1", ns="") and not ok("update", "nodes", "n2", ns="")
    assert ok("update", "leases", "n1", ns="kube-node-lease", group="coordination.k8s.io")
    assert not ok("update", "leases", "n2", ns="kube-node-lease", group="coordination.k8s.io")
    assert ok("create", "events") and ok("create", "certificatesigningrequests", ns="", group="certificates.k8s.io")
    # the pod moves away: the kubelet loses its secrets
    node.delete_pod("ns", "p1")
    assert not ok("get", "secrets", "s1")
    # not a node: no opinion from the Node authorizer
    assert (
        chain.node.authorize(Attributes(UserInfo("alice"), "get", True, "", "", "v1", "secrets", "", "ns", "s1"))[0]
        == "noopinion"
    )


def test_chain_rules_and_modes() -> None:
    with pytest.raises(ValueError):
        AuthorizationChain(("Webhook",))
    chain = AuthorizationChain(("RBAC",))
    chain.rbac = _policy()
    admin = UserInfo("a", ("system:masters",))
    res, non, incomplete, _ = chain.rules_for(admin, "default")
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in res and not incomplete
    anyone = UserInfo("x", ("system:authenticated",))
    res, non, _, _ = chain.rules_for(anyone, "default")
    assert any("selfsubjectaccessreviews" in r.get("resources", []) for r in res)
    assert any("/api" in r["nonResourceURLs"] or "/api/*" in r["nonResourceURLs"] for r in non)
    assert AuthorizationChain(("AlwaysAllow",)).authorize_sync(Attributes(anyone, "delete", True, "", resource="x"))[0]
    assert not AuthorizationChain(("AlwaysDeny",)).authorize_sync(Attributes(anyone, "get", True, "", resource="x"))[0]


def test_field_selector_name() -> None:
    from kubeha.apiserver.requestinfo import parse

    ri = parse("GET", "/api/v1/namespaces/ns/secrets", {"fieldSelector": "metadata.name=s1"})
    a = Attributes.from_request(UserInfo("u"), ri, {"fieldSelector": "metadata.name=s1"})
    assert a.verb == "list" and a.name == "s1"
    assert Attributes.from_request(UserInfo("u"), ri, {"fieldSelector": "metadata.name!=s1"}).name == ""


def test_escalation_message_parts() -> None:
    rules = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
        {"nonResourceURLs": ["/x"], "verbs": ["get"]},
    ]
    out = [compact_string(r) for r in compact_rules(rules)]
    assert out == [
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}',
        '{NonResourceURLs:["/x"], Verbs:["get"]}',
    ]


def test_reconcile_default_policy_objects() -> None:
    policy = default_policy()
    view = next(o for r, _, o in policy if r == "clusterroles" and o["metadata"]["name"] == "view")
    assert view["rules"], "aggregated roles are filled in"
    existing = {
        "metadata": {"name": "x", "annotations": {bootstrappolicy.AUTOUPDATE: "true"}},
        "rules": [{"apiGroups": ["a"], "resources": ["b"], "verbs": ["get"]}],
    }
    expected = {
        "metadata": {"name": "x", "labels": {"l": "v"}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    new = reconciled(existing, expected)
    assert new is not None and len(new["rules"]) == 2 and new["metadata"]["labels"] == {"l": "v"}
    assert reconciled(new, expected) is None
    existing["metadata"]["annotations"][bootstrappolicy.AUTOUPDATE] = "false"
    assert reconciled(existing, expected) is None
