"""RBAC and the Node authorizer in a real api-server: default roles, kubelet identities, escalation
prevention, the access and rules reviews, aggregation and the reconciled default policy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.test_auth_support import bind, call, can, eventually, user
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.pki import PKI

RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def server(pki: PKI, etcd_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    factory = ApiServerFactory(pki, tmp_path_factory.mktemp("rbac"))
    try:
        factory(str(getattr(etcd_server, "endpoint", etcd_server)), name="rbac")  # default: Node,RBAC
        yield factory.servers[0]
    finally:
        factory.stop_all()


@pytest.fixture
def ns(server: ApiServer) -> str:
    name = "t-" + uuid.uuid4().hex[:8]
    assert (
        call(
            server, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )[0]
        == 201
    )
    # no controller-manager runs here: the ServiceAccount admission plugin needs the default account
    assert (
        call(server, "POST", f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}})[0] == 201
    )
    return name


def _cm(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}


def test_default_policy_and_priority_classes(server: ApiServer) -> None:
    code, view = call(server, "GET", f"{RBAC}/clusterroles/view")
    assert code == 200 and view["aggregationRule"]
    assert any("pods" in r.get("resources", []) and "get" in r["verbs"] for r in view["rules"])
    code, admin = call(server, "GET", f"{RBAC}/clusterroles/admin")
    assert len(admin["rules"]) > len(view["rules"])
    for name in (
        "cluster-admin",
        "system:basic-user",
        "system:node",
        "system:kube-scheduler",
        "system:controller:replicaset-controller",
    ):
        assert call(server, "GET", f"{RBAC}/clusterroles/{name}")[0] == 200, name
    code, crb = call(server, "GET", f"{RBAC}/clusterrolebindings/cluster-admin")
    assert crb["subjects"][0]["name"] == "system:masters"
    assert call(server, "GET", "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical")[0] == 200


def test_view_and_edit_roles(server: ApiServer, ns: str) -> None:
    viewer, editor = ("viewer-" + ns, ["g"]), ("editor-" + ns, [])
    bind(server, ns, "v", "ClusterRole", "view", [user(viewer[0])])
    bind(server, ns, "e", "ClusterRole", "edit", [user(editor[0])])
    eventually(lambda: call(server, "GET", f"/api/v1/namespaces/{ns}/pods", who=viewer)[0] == 200)
    code, out = call(server, "POST", f"/api/v1/namespaces/{ns}/configmaps", _cm("x"), who=viewer)
    assert code == 403
    assert out["message"] == (
        f'configmaps is forbidden: User "{viewer[0]}" cannot create resource "configmaps" in API group "" '
        f'in the namespace "{ns}"'
    )
    # the viewer's rights stop at its namespace, and exclude secrets
    assert call(server, "GET", "/api/v1/namespaces/default/pods", who=viewer)[0] == 403
    assert call(server, "GET", f"/api/v1/namespaces/{ns}/secrets", who=viewer)[0] == 403
    eventually(lambda: call(server, "POST", f"/api/v1/namespaces/{ns}/configmaps", _cm("y"), who=editor)[0] == 201)
    assert call(server, "GET", f"/api/v1/namespaces/{ns}/secrets", who=editor)[0] == 200
    assert (
        call(server, "POST", f"{RBAC}/namespaces/{ns}/roles", {"metadata": {"name": "r"}, "rules": []}, who=editor)[0]
        == 403
    )
    # cluster-admin through a binding (not system:masters)
    boss = ("boss-" + ns, [])
    bind(server, "", "boss-" + ns, "ClusterRole", "cluster-admin", [user(boss[0])])
    eventually(lambda: call(server, "GET", "/api/v1/nodes", who=boss)[0] == 200)
    # discovery for any authenticated user, not for anonymous
    assert call(server, "GET", "/apis", who=viewer)[0] == 200
    assert call(server, "GET", "/apis", who=None)[0] == 403


def _pod(name: str, node: str, secret: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}],
                }
            ],
        },
    }


def test_kubelet_identity(server: ApiServer, ns: str) -> None:
    n1 = ("system:node:n1", ["system:nodes"])
    for s in ("s1", "s2"):
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": s}, "stringData": {"k": "v"}}
        assert call(server, "POST", f"/api/v1/namespaces/{ns}/secrets", body)[0] == 201
    for pod in (_pod("p1", "n1", "s1"), _pod("p2", "n2", "s2")):
        code, out = call(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod)
        assert code == 201, out["message"]
    # its own node: register and update; another node: no
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    code, out = call(server, "POST", "/api/v1/nodes", node, who=n1)
    assert code in (201, 409), out
    assert call(server, "POST", "/api/v1/nodes", {**node, "metadata": {"name": "n2"}})[0] in (201, 409)
    hdr = {"Content-Type": "application/merge-patch+json"}
    assert _patch(server, "/api/v1/nodes/n1", {"metadata": {"labels": {"a": "b"}}}, n1, hdr) == 200
    assert _patch(server, "/api/v1/nodes/n2", {"metadata": {"labels": {"a": "b"}}}, n1, hdr) == 403
    assert _patch(server, "/api/v1/nodes/n2/status", {"status": {"phase": "Running"}}, n1, hdr) == 403
    assert call(server, "GET", "/api/v1/nodes", who=n1)[0] == 200
    # secrets: only those its pods use
    eventually(lambda: call(server, "GET", f"/api/v1/namespaces/{ns}/secrets/s1", who=n1)[0] == 200)
    code, out = call(server, "GET", f"/api/v1/namespaces/{ns}/secrets/s2", who=n1)
    assert code == 403
    assert out["message"] == (
        f'secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the '
        f"namespace \"{ns}\": no relationship found between node 'n1' and this object"
    )
    assert call(server, "GET", f"/api/v1/namespaces/{ns}/secrets", who=n1)[0] == 403
    # pods: status of its own, not of another node's
    patch = {"status": {"phase": "Running"}}
    assert _patch(server, f"/api/v1/namespaces/{ns}/pods/p1/status", patch, n1, hdr) == 200
    assert _patch(server, f"/api/v1/namespaces/{ns}/pods/p2/status", patch, n1, hdr) == 403
    assert _patch(server, f"/api/v1/namespaces/{ns}/pods/p2", {"metadata": {"labels": {"x": "y"}}}, n1, hdr) == 403
    assert call(server, "DELETE", f"/api/v1/namespaces/{ns}/pods/p2", who=n1)[0] == 403
    # its lease only
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1"},
    }
    assert call(server, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease, who=n1)[0] in (
        201,
        409,
    )
    lease["metadata"] = {"name": "n2"}
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    assert call(server, "POST", leases, lease)[0] in (201, 409)
    assert call(server, "GET", f"{leases}/n2", who=n1)[0] == 403
    assert call(server, "DELETE", f"{leases}/n2", who=n1)[0] == 403
    assert call(server, "GET", f"{leases}/n1", who=n1)[0] == 200
    # events (from the system:node role)
    ev = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p1", "namespace": ns},
        "reason": "R",
        "message": "m",
    }
    assert call(server, "POST", f"/api/v1/namespaces/{ns}/events", ev, who=n1)[0] == 201


def _patch(server: ApiServer, path: str, body: dict[str, object], who: object, hdr: dict[str, str]) -> int:
    import json

    return _raw_patch(server, path, json.dumps(body).encode(), who, hdr)


def _raw_patch(server: ApiServer, path: str, data: bytes, who: object, hdr: dict[str, str]) -> int:
    import http.client

    from kubeha.cli.procs import client_ssl_context

    assert isinstance(who, tuple)
    cert, key = server.pki.issue_client(who[0], who[1])
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=client_ssl_context(server.pki.ca_crt, cert, key), timeout=10
    )
    try:
        conn.request("PATCH", path, body=data, headers=hdr)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_escalation_prevention(server: ApiServer, ns: str) -> None:
    roler = ("roler-" + ns, [])
    manage = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "manage-rbac"},
        "rules": [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["roles", "rolebindings"],
                "verbs": ["create", "get"],
            },
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
        ],
    }
    assert call(server, "POST", f"{RBAC}/namespaces/{ns}/roles", manage)[0] == 201
    bind(server, ns, "roler", "Role", "manage-rbac", [user(roler[0])])
    eventually(lambda: can(server, "create", "roles", ns, "rbac.authorization.k8s.io", who=roler))
    secrets_role = {
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }
    code, out = call(server, "POST", f"{RBAC}/namespaces/{ns}/roles", secrets_role, who=roler)
    assert code == 403, out
    assert out["message"] == (
        f'roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "{roler[0]}" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
    )
    # a role within its own rights is fine
    cm_role = {
        "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    assert call(server, "POST", f"{RBAC}/namespaces/{ns}/roles", cm_role, who=roler)[0] == 201
    # bindings: to a role it holds yes, to admin no
    rb = {
        "metadata": {"name": "b1"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "friend"}],
    }
    eventually(lambda: call(server, "POST", f"{RBAC}/namespaces/{ns}/rolebindings", rb, who=roler)[0] == 201)
    rb["metadata"] = {"name": "b2"}
    rb["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}
    code, out = call(server, "POST", f"{RBAC}/namespaces/{ns}/rolebindings", rb, who=roler)
    assert code == 403 and "is attempting to grant RBAC permissions not currently held" in out["message"]
    assert out["message"].startswith('rolebindings.rbac.authorization.k8s.io "b2" is forbidden: user')


def test_reviews(server: ApiServer, ns: str) -> None:
    viewer = ("rv-" + ns, [])
    bind(server, ns, "v", "ClusterRole", "view", [user(viewer[0])])
    eventually(lambda: can(server, "list", "pods", ns, who=viewer))
    assert not can(server, "create", "pods", ns, who=viewer)
    assert can(server, "create", "pods", ns)  # system:masters
    sar = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": viewer[0], "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": ns}},
    }
    code, out = call(server, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert code == 201 and out["status"]["allowed"] is True
    assert "RBAC: allowed by RoleBinding" in out["status"]["reason"]
    # the viewer may not ask about others
    assert call(server, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar, who=viewer)[0] == 403
    lsar = {**sar, "kind": "LocalSubjectAccessReview", "metadata": {"namespace": ns}}
    code, out = call(server, "POST", f"/apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews", lsar)
    assert code == 201 and out["status"]["allowed"] is True
    code, out = call(
        server,
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
        {**lsar, "metadata": {}},
    )
    assert code == 400
    ssrr = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": ns}}
    code, out = call(server, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", ssrr, who=viewer)
    assert code == 201 and out["status"]["incomplete"] is False
    assert any("pods" in r.get("resources", []) and "list" in r["verbs"] for r in out["status"]["resourceRules"])
    assert any("selfsubjectaccessreviews" in r.get("resources", []) for r in out["status"]["resourceRules"])
    # reviews are never stored
    assert call(server, "GET", "/apis/authorization.k8s.io/v1/subjectaccessreviews")[0] == 405


def test_aggregation_follows_labelled_roles(server: ApiServer, ns: str) -> None:
    name = "agg-" + ns
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": [name], "verbs": ["get"]}],
    }
    assert call(server, "POST", f"{RBAC}/clusterroles", role)[0] == 201

    def in_role(which: str) -> bool:
        _, r = call(server, "GET", f"{RBAC}/clusterroles/{which}")
        return any(name in x.get("resources", []) for x in r.get("rules") or [])

    eventually(lambda: in_role("view") and in_role("edit") and in_role("admin"))
    assert call(server, "DELETE", f"{RBAC}/clusterroles/{name}")[0] == 200
    eventually(lambda: not in_role("view"))


def _csr_pem() -> str:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    from cryptography.hazmat.primitives import serialization

    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def test_csr_requester_and_approval(server: ApiServer) -> None:
    name = "csr-" + uuid.uuid4().hex[:6]
    csr = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": _csr_pem(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "username": "i-claim-to-be-root",
        },
    }
    path = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    code, out = call(server, "POST", path, csr)
    assert code == 201, out
    assert out["spec"]["username"] == "kubernetes-admin" and "system:masters" in out["spec"]["groups"]
    cond = {"type": "Approved", "status": "True", "reason": "Test", "message": "ok"}
    code, bad = call(server, "PUT", f"{path}/{name}/status", {**out, "status": {"conditions": [cond]}})
    assert code == 422, bad
    code, out = call(server, "PUT", f"{path}/{name}/approval", {**out, "status": {"conditions": [cond]}})
    assert code == 200, out
    assert [c["type"] for c in out["status"]["conditions"]] == ["Approved"]
    assert out["spec"]["username"] == "kubernetes-admin"
