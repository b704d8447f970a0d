"""csrapproving and csrsigning: which requests get approved, what each signer allows, what it issues."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeha.controllers import certificates as certs
from kubeha.controllers.context import ControllerContext, ControllerOptions
from kubeha.machinery.informer import SharedInformerFactory

Obj = dict[str, Any]

CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING = "kubernetes.io/kubelet-serving"
CLIENT = "kubernetes.io/kube-apiserver-client"
NOW = 1_750_000_000.0


def make_request(
    cn: str, orgs: list[str] | None = None, dns: list[str] | None = None, ips: list[str] | None = None
) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs or []]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns or []]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def csr_obj(
    req: x509.CertificateSigningRequest,
    signer: str,
    usages: list[str],
    username: str = "system:bootstrap:abcdef",
    groups: list[str] | None = None,
    conditions: list[str] = (),  # type: ignore[assignment]
    expiration: int | None = None,
) -> Obj:
    pem = req.public_bytes(serialization.Encoding.PEM)
    spec: Obj = {
        "request": base64.b64encode(pem).decode(),
        "signerName": signer,
        "usages": usages,
        "username": username,
        "groups": groups if groups is not None else ["system:bootstrappers", "system:authenticated"],
    }
    if expiration is not None:
        spec["expirationSeconds"] = expiration
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr-1", "resourceVersion": "7"},
        "spec": spec,
        "status": {"conditions": [{"type": c, "status": "True"} for c in conditions]},
    }


NODE_CLIENT_USAGES = ["digital signature", "client auth"]


# -- request validation -------------------------------------------------------------------------


def test_kubelet_client_constraints() -> None:
    good = make_request("system:node:n1", ["system:nodes"])
    assert certs.validate_kubelet_client(good, {"digital signature", "client auth"}) is None
    assert certs.validate_kubelet_client(good, {"digital signature", "key encipherment", "client auth"}) is None
    assert certs.validate_kubelet_client(good, {"client auth"}) == (
        "usages did not match [client auth digital signature key encipherment]"
    )
    assert certs.validate_kubelet_client(good, {"digital signature", "client auth", "server auth"}) is not None
    wrong_org = make_request("system:node:n1", ["system:masters"])
    assert (
        certs.validate_kubelet_client(wrong_org, set(NODE_CLIENT_USAGES)) == "subject organization is not system:nodes"
    )
    two_orgs = make_request("system:node:n1", ["system:nodes", "system:masters"])
    assert (
        certs.validate_kubelet_client(two_orgs, set(NODE_CLIENT_USAGES)) == "subject organization is not system:nodes"
    )
    wrong_cn = make_request("alice", ["system:nodes"])
    assert certs.validate_kubelet_client(wrong_cn, set(NODE_CLIENT_USAGES)) == (
        "subject common name does not begin with system:node:"
    )
    with_dns = make_request("system:node:n1", ["system:nodes"], dns=["n1"])
    assert certs.validate_kubelet_client(with_dns, set(NODE_CLIENT_USAGES)) == "DNS subjectAltNames are not allowed"
    with_ip = make_request("system:node:n1", ["system:nodes"], ips=["10.0.0.1"])
    assert certs.validate_kubelet_client(with_ip, set(NODE_CLIENT_USAGES)) == "IP subjectAltNames are not allowed"


def test_kubelet_serving_constraints() -> None:
    usages = {"digital signature", "key encipherment", "server auth"}
    good = make_request("system:node:n1", ["system:nodes"], dns=["n1"], ips=["10.0.0.1"])
    assert certs.validate_kubelet_serving(good, usages) is None
    assert certs.validate_kubelet_serving(good, {"digital signature", "server auth"}) is None
    assert certs.validate_kubelet_serving(good, {"digital signature", "client auth"}) is not None
    no_san = make_request("system:node:n1", ["system:nodes"])
    assert certs.validate_kubelet_serving(no_san, usages) == "DNS or IP subjectAltName is required"


def test_apiserver_client_usages() -> None:
    assert certs.validate_apiserver_client_usages(["client auth"]) is None
    assert certs.validate_apiserver_client_usages(["digital signature", "key encipherment", "client auth"]) is None
    assert certs.validate_apiserver_client_usages(["digital signature"]) == (
        "missing required usage for client certificate: client auth"
    )
    assert certs.validate_apiserver_client_usages(["client auth", "server auth"]) == (
        "invalid usage for client certificate: server auth"
    )
    # any subject is fine for the generic client signer
    req = make_request("alice", ["devs"])
    assert certs.signer_check(CLIENT, req, ["client auth"]) == (True, None)
    assert certs.signer_check("example.com/other", req, ["client auth"]) == (False, None)


# -- approving ----------------------------------------------------------------------------------


def test_approval_candidates() -> None:
    req = make_request("system:node:n1", ["system:nodes"])
    bootstrap = csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES)
    assert [s for s, _ in certs.approval_candidates(bootstrap, req)] == ["nodeclient"]
    renewal = csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES, username="system:node:n1", groups=["system:nodes"])
    assert [s for s, _ in certs.approval_candidates(renewal, req)] == ["nodeclient", "selfnodeclient"]
    # other signers, wrong usages: never auto-approved
    assert certs.approval_candidates(csr_obj(req, CLIENT, NODE_CLIENT_USAGES), req) == []
    assert certs.approval_candidates(csr_obj(req, CLIENT_KUBELET, ["client auth"]), req) == []


def test_subject_access_review_shape() -> None:
    req = make_request("system:node:n1", ["system:nodes"])
    csr = csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES)
    csr["spec"]["uid"] = "u-1"
    sar = certs.subject_access_review(csr, "nodeclient")
    assert sar["kind"] == "SubjectAccessReview"
    assert sar["spec"] == {
        "user": "system:bootstrap:abcdef",
        "uid": "u-1",
        "groups": ["system:bootstrappers", "system:authenticated"],
        "resourceAttributes": {
            "group": "certificates.k8s.io",
            "resource": "certificatesigningrequests",
            "verb": "create",
            "subresource": "nodeclient",
        },
    }


class FakeClient:
    def __init__(self, allow: set[str]) -> None:
        self.allow = allow
        self.reviews: list[Obj] = []
        self.updates: list[tuple[Obj, str | None]] = []

    async def request(self, method: str, path: str, *, body: Obj, **kw: Any) -> Obj:
        assert (method, path) == ("POST", certs.SAR_PATH)
        self.reviews.append(body)
        sub = body["spec"]["resourceAttributes"]["subresource"]
        return {**body, "status": {"allowed": sub in self.allow}}

    async def update(self, res: Any, obj: Obj, namespace: str | None = None, **kw: Any) -> Obj:
        self.updates.append((obj, kw.get("subresource")))
        return obj


def context(client: FakeClient, **opts: Any) -> ControllerContext:
    return ControllerContext(
        client=client,  # type: ignore[arg-type]
        informers=SharedInformerFactory(client),  # type: ignore[arg-type]
        options=ControllerOptions(**opts),
    )


async def test_approver_approves_through_approval_subresource() -> None:
    client = FakeClient(allow={"nodeclient"})
    ctl = certs.CSRApprovingController(context(client))
    req = make_request("system:node:n1", ["system:nodes"])
    ctl.csrs.indexer.add(csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES))
    await ctl.reconcile("csr-1")
    assert len(client.updates) == 1
    obj, sub = client.updates[0]
    assert sub == "approval"
    assert obj["metadata"]["resourceVersion"] == "7"
    (cond,) = obj["status"]["conditions"]
    assert cond["type"] == "Approved" and cond["status"] == "True" and cond["reason"] == "AutoApproved"
    assert cond["message"] == "Auto approving kubelet client certificate after SubjectAccessReview."


async def test_approver_self_renewal_and_refusal() -> None:
    client = FakeClient(allow={"selfnodeclient"})
    ctl = certs.CSRApprovingController(context(client))
    req = make_request("system:node:n1", ["system:nodes"])
    ctl.csrs.indexer.add(
        csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES, username="system:node:n1", groups=["system:nodes"])
    )
    await ctl.reconcile("csr-1")
    assert [r["spec"]["resourceAttributes"]["subresource"] for r in client.reviews] == ["nodeclient", "selfnodeclient"]
    cond = client.updates[0][0]["status"]["conditions"][0]
    assert cond["message"] == "Auto approving self kubelet client certificate after SubjectAccessReview."

    # a node asking for another node's certificate: only nodeclient could apply, and it is refused
    client = FakeClient(allow={"selfnodeclient"})
    ctl = certs.CSRApprovingController(context(client))
    ctl.csrs.indexer.add(
        csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES, username="system:node:n2", groups=["system:nodes"])
    )
    await ctl.reconcile("csr-1")
    assert len(client.reviews) == 1 and client.updates == []


async def test_approver_leaves_decided_requests_alone() -> None:
    client = FakeClient(allow={"nodeclient"})
    ctl = certs.CSRApprovingController(context(client))
    req = make_request("system:node:n1", ["system:nodes"])
    ctl.csrs.indexer.add(csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES, conditions=["Denied"]))
    await ctl.reconcile("csr-1")
    assert client.reviews == [] and client.updates == []


# -- signing ------------------------------------------------------------------------------------


def make_ca(kind: str = "ec", days: int = 3650) -> certs.CertificateAuthority:
    key: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    start = datetime.datetime.fromtimestamp(NOW - 3600, datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certs.CertificateAuthority(cert, key)


def test_signing_duration() -> None:
    year = 365 * 24 * 3600.0
    assert certs.signing_duration(None, year) == year
    assert certs.signing_duration(3600, year) == 3600
    assert certs.signing_duration(2 * int(year), year) == year
    assert certs.signing_duration(60, year) == 600  # the 10 minute floor


def test_validity_backdates_long_lived_only() -> None:
    far = NOW + 10 * 365 * 86400
    assert certs.validity(NOW, 86400, far) == (NOW - 300, NOW - 300 + 86400)
    # short-lived: the start is backdated, the end is not shortened by it
    assert certs.validity(NOW, 3600, far) == (NOW - 300, NOW + 3600)
    # never past the CA
    assert certs.validity(NOW, 86400, NOW + 100) == (NOW - 300, NOW + 100)
    with pytest.raises(ValueError, match="expired in the past"):
        certs.validity(NOW, 3600, NOW - 1)


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_signer_issues_certificate(kind: str) -> None:
    ca = make_ca(kind)
    client = FakeClient(set())
    ctl = certs.CSRSigningController(context(client, cluster_signing_duration=86400.0), ca, wall=lambda: NOW)
    req = make_request("system:node:n1", ["system:nodes"])
    out = ctl.decide(csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES, conditions=["Approved"], expiration=7200))
    assert out is not None
    issued = x509.load_pem_x509_certificate(base64.b64decode(out["status"]["certificate"]))
    assert issued.subject == req.subject
    assert issued.issuer == ca.cert.subject
    assert issued.public_key() == req.public_key()
    assert issued.not_valid_before_utc.timestamp() == NOW - 300
    assert issued.not_valid_after_utc.timestamp() == NOW + 7200  # min(expirationSeconds, duration)
    ku = issued.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    eku = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert issued.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    # verifies against the CA key
    issued.verify_directly_issued_by(ca.cert)
    # the duration flag caps a longer request
    out = ctl.decide(csr_obj(req, CLIENT_KUBELET, NODE_CLIENT_USAGES, conditions=["Approved"], expiration=10**7))
    assert out is not None
    issued = x509.load_pem_x509_certificate(base64.b64decode(out["status"]["certificate"]))
    assert issued.not_valid_after_utc.timestamp() == NOW - 300 + 86400


def test_signer_serving_keeps_sans() -> None:
    ctl = certs.CSRSigningController(context(FakeClient(set())), make_ca(), wall=lambda: NOW)
    req = make_request("system:node:n1", ["system:nodes"], dns=["n1.example"], ips=["10.0.0.9"])
    out = ctl.decide(csr_obj(req, SERVING, ["digital signature", "server auth"], conditions=["Approved"]))
    assert out is not None
    issued = x509.load_pem_x509_certificate(base64.b64decode(out["status"]["certificate"]))
    sans = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.9")]


def test_signer_refusals_and_skips() -> None:
    ctl = certs.CSRSigningController(context(FakeClient(set())), make_ca(), wall=lambda: NOW)
    node_req = make_request("system:node:n1", ["system:nodes"])
    # not approved, denied-approved-failed, other signer, already signed: nothing to do
    assert ctl.decide(csr_obj(node_req, CLIENT_KUBELET, NODE_CLIENT_USAGES)) is None
    assert ctl.decide(csr_obj(node_req, CLIENT_KUBELET, NODE_CLIENT_USAGES, conditions=["Approved", "Failed"])) is None
    assert ctl.decide(csr_obj(node_req, "example.com/x", NODE_CLIENT_USAGES, conditions=["Approved"])) is None
    signed = csr_obj(node_req, CLIENT, ["client auth"], conditions=["Approved"])
    signed["status"]["certificate"] = "Zm9v"
    assert ctl.decide(signed) is None
    # a serving request without SANs fails with the signer's reason
    out = ctl.decide(csr_obj(node_req, SERVING, ["digital signature", "server auth"], conditions=["Approved"]))
    assert out is not None and "certificate" not in out["status"]
    failed = [c for c in out["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "SignerValidationFailure"
    assert failed[0]["message"] == "DNS or IP subjectAltName is required"
    # the generic client signer refuses server usages
    out = ctl.decide(csr_obj(make_request("bob"), CLIENT, ["client auth", "server auth"], conditions=["Approved"]))
    assert out is not None
    assert out["status"]["conditions"][-1]["message"] == "invalid usage for client certificate: server auth"


async def test_signer_writes_status_subresource() -> None:
    client = FakeClient(set())
    ctl = certs.CSRSigningController(context(client), make_ca("rsa"), wall=lambda: NOW)
    ctl.csrs.indexer.add(csr_obj(make_request("alice", ["devs"]), CLIENT, ["client auth"], conditions=["Approved"]))
    await ctl.reconcile("csr-1")
    (obj, sub), *_ = client.updates
    assert sub == "status" and obj["status"]["certificate"]


async def test_signing_idles_without_ca_files() -> None:
    task = asyncio.ensure_future(certs.start_signing(context(FakeClient(set()))))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()  # blocks instead of returning (the manager would restart it)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
