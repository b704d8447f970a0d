"""kubectl's auth commands against a real api-server with Node,RBAC and service-account tokens:
`auth can-i` (yes/no and exit codes), `auth can-i --list`, `auth whoami`, `create token`, `--as`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeha.apiserver import serviceaccounts as sat
from tests.integration.test_auth_support import bind, call, can, eventually, user, write_rsa_key
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.kubectl import Kubectl, kubectl_path
from tests.support.pki import PKI


@pytest.fixture(scope="module")
def server(pki: PKI, etcd_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    d = tmp_path_factory.mktemp("kubectl-auth")
    key = write_rsa_key(d / "sa.key")
    factory = ApiServerFactory(pki, d)
    try:
        factory(
            str(getattr(etcd_server, "endpoint", etcd_server)),
            [
                "--authorization-mode=Node,RBAC",
                f"--service-account-signing-key-file={key}",
                f"--service-account-key-file={key}",
            ],
            name="kubectl-auth",
        )
        yield factory.servers[0]
    finally:
        factory.stop_all()


def _kubectl(
    version: str, server: ApiServer, home: Path, cn: str | None = None, orgs: list[str] | None = None
) -> Kubectl:
    binary = kubectl_path(version)
    if binary is None:
        pytest.skip(f"kubectl {version} not found")
    kubeconfig = server.kubeconfig
    if cn is not None:
        kubeconfig = server.pki.kubeconfig(server.url, home.parent / f"{cn}.kubeconfig", cn=cn, orgs=orgs or [])
    return Kubectl(binary, kubeconfig, home, version)


@pytest.mark.parametrize("version", ["1.32", "1.27"])
def test_can_i(server: ApiServer, tmp_path: Path, version: str) -> None:
    ns = "ci-" + uuid.uuid4().hex[:6]
    assert (
        call(server, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})[
            0
        ]
        == 201
    )
    admin = _kubectl(version, server, tmp_path / "admin")
    res = admin.run("auth", "can-i", "create", "pods", "-n", ns)
    assert (res.rc, res.stdout.strip()) == (0, "yes"), res
    name = "viewer-" + ns
    bind(server, ns, "v", "ClusterRole", "view", [user(name)])
    eventually(lambda: can(server, "list", "pods", ns, who=(name, [])))
    viewer = _kubectl(version, server, tmp_path / "viewer", cn=name)
    res = viewer.run("auth", "can-i", "list", "pods", "-n", ns)
    assert (res.rc, res.stdout.strip()) == (0, "yes"), res
    res = viewer.run("auth", "can-i", "create", "pods", "-n", ns)
    assert res.rc == 1 and res.stdout.strip() == "no", res
    res = viewer.run("auth", "can-i", "--list", "-n", ns)
    assert res.rc == 0, res
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["Resources", "Non-Resource", "URLs", "Resource"]
    pods = next(ln for ln in lines if ln.startswith("pods "))
    assert "[get list watch]" in pods
    assert any(ln.startswith("selfsubjectaccessreviews.authorization.k8s.io") for ln in lines)
    # impersonation through kubectl
    res = admin.run("get", "pods", "-n", ns, "--as=jane", "--as-group=devs")
    assert res.rc == 1
    assert res.stderr.strip() == (
        f'Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" '
        f'in the namespace "{ns}"'
    )
    res = admin.run("auth", "can-i", "list", "pods", "-n", ns, f"--as={name}")
    assert (res.rc, res.stdout.strip()) == (0, "yes"), res
    res = viewer.run("get", "pods", "-n", ns, "--as=jane")
    assert res.rc == 1 and f'User "{name}" cannot impersonate resource "users" in API group ""' in res.stderr


def test_whoami_and_create_token(server: ApiServer, tmp_path: Path) -> None:
    admin = _kubectl("1.32", server, tmp_path / "admin")
    out = admin.ok("auth", "whoami")
    assert "kubernetes-admin" in out and "system:masters" in out and "system:authenticated" in out
    who = admin.json("auth", "whoami")
    assert who["kind"] == "SelfSubjectReview" and who["status"]["userInfo"]["username"] == "kubernetes-admin"
    # `create token` (sent as protobuf by kubectl 1.32); no controller-manager creates `default` here
    call(server, "POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "default"}})
    token = admin.ok("create", "token", "default", "-n", "default", "--duration=20m").strip()
    _, claims, _, _ = sat.decode_unverified(token)
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["exp"] - claims["iat"] == 1200
    out = admin.ok(
        "auth",
        "whoami",
        f"--token={token}",
        "--kubeconfig=/dev/null",
        f"--server={server.url}",
        f"--certificate-authority={server.pki.ca_crt}",
    )
    assert "system:serviceaccount:default:default" in out and "system:serviceaccounts:default" in out
    res = admin.run("create", "token", "no-such-account", "-n", "default")
    assert res.rc == 1 and 'serviceaccounts "no-such-account" not found' in res.stderr
