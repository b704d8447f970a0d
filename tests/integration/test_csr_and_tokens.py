"""CSR approving/signing, bootstrap signer and token cleaner against real etcd + a real api-server.

The controllers run in this test's process on one shared informer factory (as in the
controller-manager); the api-server has bootstrap-token authentication on, and the signer uses the
test PKI's CA, which is also the api-server's client CA, so issued certificates log in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import functools
import secrets
import string
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.kubeconfig import ClientConfig
from kubeha.client.resources import CERTIFICATESIGNINGREQUESTS, CONFIGMAPS, NAMESPACES, SECRETS
from kubeha.controllers import bootstrapsigner, certificates, tokencleaner
from kubeha.controllers.context import ControllerContext, ControllerOptions
from kubeha.machinery.informer import SharedInformerFactory
from tests.support import waiting
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.kubectl import Kubectl, kubectl_path
from tests.support.pki import PKI

Obj = dict[str, Any]

pytestmark = pytest.mark.asyncio(loop_scope="session")

STARTS = [
    certificates.start_approving,
    certificates.start_signing,
    bootstrapsigner.start,
    tokencleaner.start,
]
RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def server(pki: PKI, etcd_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    factory = ApiServerFactory(pki, tmp_path_factory.mktemp("csr-apiserver"))
    try:
        yield factory(str(getattr(etcd_server, "endpoint", etcd_server)), ["--enable-bootstrap-token-auth"], "csr-a")
    finally:
        factory.stop_all()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(server: ApiServer, pki: PKI) -> AsyncIterator[ApiClient]:
    """An admin client, with the four controllers running behind it."""
    ctl_client = ApiClient(load_kubeconfig(str(server.kubeconfig)), user_agent="kubeha-csr-test", timeout=10)
    opts = ControllerOptions(cluster_signing_cert_file=str(pki.ca_crt), cluster_signing_key_file=str(pki.ca_key))
    ctx = ControllerContext(ctl_client, SharedInformerFactory(ctl_client), opts)
    tasks = [asyncio.ensure_future(start(ctx)) for start in STARTS]
    async with ApiClient(load_kubeconfig(str(server.kubeconfig)), timeout=10) as c:
        try:
            yield c
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ctx.informers.stop()
            await ctl_client.close()


# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=20.0, every=0.1, retry_on=(AssertionError, StatusError))


def _rand(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def create_token(c: ApiClient, *, expiration: str | None = None, **usages: bool) -> tuple[str, str]:
    token_id, token_secret = _rand(6), _rand(16)
    data = {"token-id": token_id, "token-secret": token_secret}
    for k, v in usages.items():
        data[k.replace("_", "-")] = "true" if v else "false"
    if expiration:
        data["expiration"] = expiration
    await c.create(
        SECRETS,
        {
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token",
            "stringData": data,
        },
        "kube-system",
    )
    return token_id, token_secret


async def ensure(c: ApiClient, path: str, obj: Obj) -> None:
    with contextlib.suppress(StatusError):
        await c.request("POST", path, body=obj)


def binding(name: str, role: str, group: str) -> Obj:
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }


def new_request(cn: str, orgs: list[str]) -> tuple[bytes, bytes]:
    """(CSR PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    req = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return req.public_bytes(serialization.Encoding.PEM), key_pem


def csr_body(name: str, pem: bytes, signer: str, usages: list[str]) -> Obj:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": usages},
    }


async def issued(c: ApiClient, name: str) -> bytes:
    async def check() -> bytes | None:
        csr = await c.get(CERTIFICATESIGNINGREQUESTS, name)
        cert = (csr.get("status") or {}).get("certificate")
        return base64.b64decode(cert) if cert else None

    result: bytes = await eventually(check)
    return result


async def whoami(server: ApiServer, pki: PKI, cert: bytes, key: bytes) -> Obj:
    cfg = ClientConfig(server=server.url, ca_data=pki.ca_crt.read_bytes(), cert_data=cert, key_data=key)
    async with ApiClient(cfg, timeout=10) as c:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        answer: Obj = await c.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
        return answer["status"]["userInfo"]


async def test_bootstrap_node_client_csr_is_approved_and_signed(client: ApiClient, server: ApiServer, pki: PKI) -> None:
    # what kubeadm sets up for the TLS bootstrap: bootstrappers may create CSRs and get them auto-approved
    path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    await ensure(
        client, path, binding("kubeha-test:kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers")
    )
    await ensure(
        client,
        path,
        binding(
            "kubeha-test:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:bootstrappers",
        ),
    )
    token_id, token_secret = await create_token(client, usage_bootstrap_authentication=True)
    node = f"node-{_rand(6)}"
    pem, key = new_request(f"system:node:{node}", ["system:nodes"])
    cfg = ClientConfig(server=server.url, ca_data=pki.ca_crt.read_bytes(), token=f"{token_id}.{token_secret}")
    name = f"node-csr-{_rand(8)}"
    async with ApiClient(cfg, timeout=10) as bootstrap:
        # the token authenticates once the api-server's cache has the Secret
        body = csr_body(name, pem, "kubernetes.io/kube-apiserver-client-kubelet", ["digital signature", "client auth"])
        created = await eventually(lambda: bootstrap.create(CERTIFICATESIGNINGREQUESTS, body))
    assert created["spec"]["username"] == f"system:bootstrap:{token_id}"
    cert = await issued(client, name)
    csr = await client.get(CERTIFICATESIGNINGREQUESTS, name)
    approved = [c for c in csr["status"]["conditions"] if c["type"] == "Approved"]
    assert approved[0]["reason"] == "AutoApproved"
    assert approved[0]["message"] == "Auto approving kubelet client certificate after SubjectAccessReview."
    user = await whoami(server, pki, cert, key)
    assert user["username"] == f"system:node:{node}"
    assert "system:nodes" in user["groups"]


async def test_requester_without_permission_is_not_auto_approved(
    client: ApiClient, server: ApiServer, pki: PKI, tmp_path: Path
) -> None:
    # mallory may create CSRs (node-bootstrapper) but not get node client certificates approved
    user = f"mallory-{_rand(4)}"
    await ensure(
        client,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            **binding(f"kubeha-test:{user}", "system:node-bootstrapper", "unused"),
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    kc = pki.kubeconfig(server.url, tmp_path / "mallory.kubeconfig", cn=user)
    name = f"node-csr-{_rand(8)}"
    pem, _ = new_request("system:node:elsewhere", ["system:nodes"])
    body = csr_body(name, pem, "kubernetes.io/kube-apiserver-client-kubelet", ["digital signature", "client auth"])
    async with ApiClient(load_kubeconfig(str(kc)), timeout=10) as mallory:
        created = await eventually(lambda: mallory.create(CERTIFICATESIGNINGREQUESTS, body))
    assert created["spec"]["username"] == user
    # recognised as a node client request, but the SubjectAccessReview says no: it stays pending
    await asyncio.sleep(1.5)
    csr = await client.get(CERTIFICATESIGNINGREQUESTS, name)
    assert not (csr.get("status") or {}).get("conditions")
    assert not (csr.get("status") or {}).get("certificate")


async def test_kubectl_approved_client_csr_is_signed(
    client: ApiClient, server: ApiServer, pki: PKI, tmp_path: Path
) -> None:
    binary = kubectl_path("1.32")
    if binary is None:
        pytest.skip("kubectl 1.32 not found")
    kubectl = Kubectl(binary, server.kubeconfig, tmp_path / "home", "1.32")
    name = f"alice-{_rand(8)}"
    pem, key = new_request("alice", ["devs"])
    body = csr_body(name, pem, "kubernetes.io/kube-apiserver-client", ["client auth"])
    body["spec"]["expirationSeconds"] = 3600
    await client.create(CERTIFICATESIGNINGREQUESTS, body)
    kubectl.ok("certificate", "approve", name)
    cert = await issued(client, name)
    parsed = x509.load_pem_x509_certificate(cert)
    life = parsed.not_valid_after_utc - parsed.not_valid_before_utc
    assert datetime.timedelta(minutes=60) <= life <= datetime.timedelta(minutes=66)  # requested hour + backdate
    user = await whoami(server, pki, cert, key)
    assert user["username"] == "alice" and "devs" in user["groups"]
    # what kubectl shows once issued
    out = kubectl.ok("get", "csr", name)
    assert "Approved,Issued" in out


async def test_cluster_info_signed_per_token(client: ApiClient) -> None:
    with contextlib.suppress(StatusError):
        await client.create(NAMESPACES, {"metadata": {"name": "kube-public"}})
    kubeconfig = f"apiVersion: v1\nkind: Config\nclusters: []\n# {uuid.uuid4()}\n"
    try:
        await client.create(
            CONFIGMAPS,
            {"metadata": {"name": "cluster-info", "namespace": "kube-public"}, "data": {"kubeconfig": kubeconfig}},
            "kube-public",
        )
    except StatusError as e:
        if e.code != 409:
            raise
        cm = await client.get(CONFIGMAPS, "cluster-info", "kube-public")
        cm["data"] = {**(cm.get("data") or {}), "kubeconfig": kubeconfig}
        await client.update(CONFIGMAPS, cm, "kube-public")
    token_id, token_secret = await create_token(client, usage_bootstrap_signing=True)
    key = f"jws-kubeconfig-{token_id}"

    async def signature() -> str | None:
        cm = await client.get(CONFIGMAPS, "cluster-info", "kube-public")
        return (cm.get("data") or {}).get(key)

    sig = await eventually(signature)
    assert sig == bootstrapsigner.detached_jws(kubeconfig, token_id, token_secret)
    assert sig.split(".")[1] == ""  # detached payload

    # a token without the signing usage never signs
    other_id, _ = await create_token(client, usage_bootstrap_signing=False)
    await client.delete(SECRETS, f"bootstrap-token-{token_id}", "kube-system")

    async def unsigned() -> bool:
        cm = await client.get(CONFIGMAPS, "cluster-info", "kube-public")
        return key not in (cm.get("data") or {})

    await eventually(unsigned)
    cm = await client.get(CONFIGMAPS, "cluster-info", "kube-public")
    assert f"jws-kubeconfig-{other_id}" not in cm["data"]
    assert cm["data"]["kubeconfig"] == kubeconfig


async def test_expired_tokens_are_deleted(client: ApiClient) -> None:
    now = datetime.datetime.now(datetime.UTC)
    past_id, _ = await create_token(client, expiration=rfc3339(now - datetime.timedelta(hours=1)))
    soon_id, _ = await create_token(client, expiration=rfc3339(now + datetime.timedelta(seconds=3)))
    later_id, _ = await create_token(client, expiration=rfc3339(now + datetime.timedelta(hours=1)))

    async def gone(token_id: str) -> bool:
        try:
            await client.get(SECRETS, f"bootstrap-token-{token_id}", "kube-system")
        except StatusError as e:
            return e.code == 404
        return False

    await eventually(lambda: gone(past_id), within=10)
    assert not await gone(soon_id)  # not yet: it is deleted at its expiry, not before
    await eventually(lambda: gone(soon_id), within=15)
    assert not await gone(later_id)
    await client.delete(SECRETS, f"bootstrap-token-{later_id}", "kube-system")
