"""Each authenticator against a real api-server: token file, bootstrap tokens, service-account
JWTs (TokenRequest, revocation by deleting the account or the bound pod), anonymous, impersonation."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeha.apiserver import serviceaccounts as sat
from tests.integration.test_auth_support import bind, call, eventually, user, whoami, write_rsa_key
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.pki import PKI

TOKEN = "s3cr3t-token-for-alice"


@pytest.fixture(scope="module")
def server(pki: PKI, etcd_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    d = tmp_path_factory.mktemp("authn")
    tokens = d / "tokens.csv"
    tokens.write_text(f'{TOKEN},alice,uid-alice,"devs,qa"\nother-token,bob,uid-bob\n')
    key = write_rsa_key(d / "sa.key")
    factory = ApiServerFactory(pki, d)
    try:
        factory(
            str(getattr(etcd_server, "endpoint", etcd_server)),
            [
                f"--token-auth-file={tokens}",
                "--enable-bootstrap-token-auth",
                f"--service-account-signing-key-file={key}",
                f"--service-account-key-file={key}",
            ],
            name="authn",
        )
        yield factory.servers[0]
    finally:
        factory.stop_all()


def test_token_file(server: ApiServer) -> None:
    code, out = whoami(server, who=None, token=TOKEN)
    assert code == 201, out
    info = out["status"]["userInfo"]
    assert info == {"username": "alice", "uid": "uid-alice", "groups": ["devs", "qa", "system:authenticated"]}
    # a wrong token is 401, never anonymous
    code, out = call(server, "GET", "/version", who=None, token="nope")
    assert code == 401 and out["reason"] == "Unauthorized"


def test_anonymous(server: ApiServer) -> None:
    assert call(server, "GET", "/version", who=None)[0] == 200
    code, out = call(server, "GET", "/api/v1/namespaces/default/pods", who=None)
    assert code == 403 and 'User "system:anonymous"' in out["message"]


def _bootstrap_secret(
    token_id: str, secret: str, expiration: str | None = None, usage: str = "true"
) -> dict[str, object]:
    data = {
        "token-id": token_id,
        "token-secret": secret,
        "usage-bootstrap-authentication": usage,
        "auth-extra-groups": "system:bootstrappers:kubeha:default-node-token",
    }
    if expiration:
        data["expiration"] = expiration
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_bootstrap_tokens(server: ApiServer) -> None:
    path = "/api/v1/namespaces/kube-system/secrets"
    assert call(server, "POST", path, _bootstrap_secret("abcdef", "0123456789abcdef"))[0] == 201
    assert call(server, "POST", path, _bootstrap_secret("expird", "0123456789abcdef", "2020-01-01T00:00:00Z"))[0] == 201
    assert call(server, "POST", path, _bootstrap_secret("nouse0", "0123456789abcdef", usage="false"))[0] == 201

    def ok() -> object:
        code, out = whoami(server, who=None, token="abcdef.0123456789abcdef")
        return out if code == 201 else None

    info = eventually(ok)["status"]["userInfo"]
    assert info["username"] == "system:bootstrap:abcdef"
    assert info["groups"] == [
        "system:bootstrappers",
        "system:bootstrappers:kubeha:default-node-token",
        "system:authenticated",
    ]
    assert whoami(server, who=None, token="abcdef.0123456789abcdeX")[0] == 401  # wrong secret
    assert whoami(server, who=None, token="expird.0123456789abcdef")[0] == 401  # expired
    assert whoami(server, who=None, token="nouse0.0123456789abcdef")[0] == 401  # not for authentication
    assert call(server, "DELETE", f"{path}/bootstrap-token-abcdef")[0] == 200
    eventually(lambda: whoami(server, who=None, token="abcdef.0123456789abcdef")[0] == 401)


def _pod(name: str, sa: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "busybox"}]},
    }


def _token_request(
    server: ApiServer, sa: str, ns: str, pod: dict[str, object] | None = None, seconds: int = 3600
) -> tuple[int, dict]:
    spec: dict[str, object] = {"audiences": [], "expirationSeconds": seconds}
    if pod is not None:
        spec["boundObjectRef"] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        }  # type: ignore[index]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return call(server, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body)


def test_service_account_tokens(server: ApiServer) -> None:
    ns = "sa-" + uuid.uuid4().hex[:6]
    assert (
        call(server, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})[
            0
        ]
        == 201
    )
    assert call(server, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "robot"}})[0] == 201
    code, pod = call(server, "POST", f"/api/v1/namespaces/{ns}/pods", _pod("p1", "robot"))
    assert code == 201, pod
    # bounds on the lifetime
    code, out = _token_request(server, "robot", ns, seconds=60)
    assert code == 422 and "may not specify a duration less than 10 minutes" in out["message"]
    code, out = _token_request(server, "robot", ns, pod)
    assert code == 201, out
    token = out["status"]["token"]
    assert out["status"]["expirationTimestamp"].endswith("Z")
    _, claims, _, _ = sat.decode_unverified(token)
    assert claims["iss"] == sat.DEFAULT_ISSUER and claims["aud"] == [sat.DEFAULT_ISSUER]
    assert claims["sub"] == f"system:serviceaccount:{ns}:robot"
    assert claims["kubernetes.io"]["pod"] == {"name": "p1", "uid": pod["metadata"]["uid"]}
    assert claims["exp"] - claims["iat"] == 3600
    code, out = whoami(server, who=None, token=token)
    assert code == 201, out
    info = out["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:robot"
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    assert info["extra"]["authentication.kubernetes.io/pod-name"] == ["p1"]
    # TokenReview: valid for the api audience, not for another one
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    code, out = call(server, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
    assert code == 201 and out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == f"system:serviceaccount:{ns}:robot"
    review["spec"]["audiences"] = ["somebody-else"]  # type: ignore[index]
    code, out = call(server, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", review)
    assert code == 201 and not out["status"].get("authenticated") and out["status"]["error"]
    # an unbound token dies with the service account; a pod-bound one with the pod
    code, out = _token_request(server, "robot", ns)
    unbound = out["status"]["token"]
    assert whoami(server, who=None, token=unbound)[0] == 201
    assert call(server, "DELETE", f"/api/v1/namespaces/{ns}/pods/p1?gracePeriodSeconds=0")[0] == 200
    eventually(lambda: whoami(server, who=None, token=token)[0] == 401)
    assert whoami(server, who=None, token=unbound)[0] == 201
    assert call(server, "DELETE", f"/api/v1/namespaces/{ns}/serviceaccounts/robot")[0] == 200
    eventually(lambda: whoami(server, who=None, token=unbound)[0] == 401)


def test_service_account_token_expired_or_foreign(server: ApiServer, tmp_path: Path) -> None:
    ns = "default"
    call(server, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "old"}})
    code, sa = call(server, "GET", f"/api/v1/namespaces/{ns}/serviceaccounts/old")
    assert code == 200
    # signed by a key the server does not trust
    foreign = sat.TokenIssuer(sat.load_private_key(write_rsa_key(tmp_path / "other.key")))
    tok = foreign.issue(foreign.claims(sa, [sat.DEFAULT_ISSUER], 3600))
    assert whoami(server, who=None, token=tok)[0] == 401
    # expired (issued by the right key an hour ago)
    key_file = next(Path(server.log_path).parent.glob("sa.key"))
    past = sat.TokenIssuer(sat.load_private_key(key_file), clock=lambda: time.time() - 7200)
    tok = past.issue(past.claims(sa, [sat.DEFAULT_ISSUER], 3600))
    assert whoami(server, who=None, token=tok)[0] == 401
    fresh = sat.TokenIssuer(sat.load_private_key(key_file))
    assert whoami(server, who=None, token=fresh.issue(fresh.claims(sa, [sat.DEFAULT_ISSUER], 3600)))[0] == 201


def test_impersonation(server: ApiServer) -> None:
    # system:masters may impersonate anyone
    code, out = whoami(server, headers=[("Impersonate-User", "jane"), ("Impersonate-Group", "devs")])
    assert code == 201, out
    assert out["status"]["userInfo"] == {"username": "jane", "groups": ["devs", "system:authenticated"]}
    # others need the impersonate verb
    carol = ("carol", ["staff"])
    code, out = whoami(server, who=carol, headers={"Impersonate-User": "jane"})
    assert code == 403
    assert out["message"] == (
        'users "jane" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope'
    )
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "impersonate-jane"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["jane"]}],
    }
    assert call(server, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)[0] == 201
    bind(server, "", "carol-impersonates-jane", "ClusterRole", "impersonate-jane", [user("carol")])
    eventually(lambda: whoami(server, who=carol, headers={"Impersonate-User": "jane"})[0] == 201)
    code, out = whoami(server, who=carol, headers={"Impersonate-User": "jane"})
    assert out["status"]["userInfo"]["username"] == "jane"
    # but not another user, nor a group
    assert whoami(server, who=carol, headers={"Impersonate-User": "root"})[0] == 403
    code, out = whoami(
        server, who=carol, headers=[("Impersonate-User", "jane"), ("Impersonate-Group", "system:masters")]
    )
    assert code == 403 and 'cannot impersonate resource "groups"' in out["message"]
    # a group without a user is a bad request
    assert whoami(server, headers={"Impersonate-Group": "devs"})[0] == 400


def _short_lived_client_cert(pki: PKI, cn: str, left: float, directory: Path) -> tuple[Path, Path]:
    """A client certificate from the cluster CA that ends ``left`` seconds from now."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(seconds=left))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crt, keyf = directory / "short.crt", directory / "short.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyf.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, keyf


def test_client_certificate_expiring_on_a_kept_alive_connection_stops_authenticating(
    server: ApiServer, pki: PKI, tmp_path: Path
) -> None:
    """Upstream verifies the client certificate on every request, not only at the handshake."""
    left = 4.0
    crt, key = _short_lived_client_cert(pki, "short-lived-user", left, tmp_path)
    ctx = ssl.create_default_context(cafile=str(pki.ca_crt))
    ctx.load_cert_chain(str(crt), str(key))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    review = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    headers = {"Content-Type": "application/json"}
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    started = time.monotonic()
    try:
        conn.request("POST", path, body=review, headers=headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 201, body
        assert body["status"]["userInfo"]["username"] == "short-lived-user"
        sock = conn.sock
        time.sleep(max(0.0, left + 1.5 - (time.monotonic() - started)))
        conn.request("POST", path, body=review, headers=headers)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert conn.sock is sock, "the connection was not kept alive: the test proves nothing"
        assert resp.status == 401, body
        assert body["reason"] == "Unauthorized"
    finally:
        conn.close()
