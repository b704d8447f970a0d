"""The kubelet's client certificate files and requests (src/kubeha/kubelet/bootstrap.py): the pure
parts of the TLS bootstrap and rotation, on real keys, certificates and temporary directories.
tests/integration/test_kubelet_bootstrap.py runs the whole flow against a real cluster."""

from __future__ import annotations

import base64
import datetime
import os
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeha.client.kubeconfig import ClientConfig, load_kubeconfig
from kubeha.kubelet import bootstrap as b

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def cert_for(
    key_pem: bytes, not_before: datetime.datetime, not_after: datetime.datetime, cn: str = "system:node:n1"
) -> bytes:
    key = b.parse_key(key_pem)
    assert key is not None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def key() -> bytes:
    return b.new_key_pem()


def mode_of(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# -- keys, requests, names ----------------------------------------------------------------------------


def test_new_key_is_ecdsa_p256(key: bytes) -> None:
    parsed = b.parse_key(key)
    assert parsed is not None and isinstance(parsed.curve, ec.SECP256R1)
    assert b.parse_key(b"garbage") is None


def test_load_or_generate_key_reuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pki" / b.TMP_KEY_FILE
    first = b.load_or_generate_key(path)
    assert mode_of(path) == 0o600
    assert b.load_or_generate_key(path) == first  # a restart reuses it
    path.write_bytes(b"not a key")
    replaced = b.load_or_generate_key(path)
    assert replaced != first and b.parse_key(replaced) is not None


def test_csr_subject_and_object(key: bytes) -> None:
    pem = b.make_csr(key, "node-1")
    req = x509.load_pem_x509_csr(pem)
    assert req.is_signature_valid
    assert req.subject.rfc4514_string() == "CN=system:node:node-1,O=system:nodes"
    obj = b.csr_object(pem, "node-csr-x")
    assert obj["metadata"] == {"name": "node-csr-x"}
    assert obj["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert obj["spec"]["usages"] == ["digital signature", "client auth"]
    assert base64.b64decode(obj["spec"]["request"]) == pem
    assert b.csr_object(pem)["metadata"] == {"generateName": "csr-"}  # rotation's requests


def test_digested_name_is_stable_and_tells_keys_nodes_and_usages_apart(key: bytes) -> None:
    name = b.digested_name(key, "n1")
    assert name == b.digested_name(key, "n1")
    assert name.startswith("node-csr-") and len(name) == len("node-csr-") + 43  # 32 bytes, base64url
    assert set(name[9:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert name != b.digested_name(b.new_key_pem(), "n1")
    assert name != b.digested_name(key, "n2")
    assert name != b.digested_name(key, "n1", ("digital signature", "key encipherment", "client auth"))


def test_ensure_compatible(key: bytes) -> None:
    ours = b.csr_object(b.make_csr(key, "n1"), "x")
    b.ensure_compatible(ours, key, "n1")
    with pytest.raises(b.BootstrapError, match="signed by another key"):
        b.ensure_compatible(ours, b.new_key_pem(), "n1")
    with pytest.raises(b.BootstrapError, match="subjects differ"):
        b.ensure_compatible(ours, key, "n2")
    other_signer = {**ours, "spec": {**ours["spec"], "signerName": "example.com/x"}}
    with pytest.raises(b.BootstrapError, match="signerName"):
        b.ensure_compatible(other_signer, key, "n1")
    expired = cert_for(key, NOW - datetime.timedelta(days=2), NOW - datetime.timedelta(days=1))
    with_old_cert = {**ours, "status": {"certificate": base64.b64encode(expired).decode()}}
    with pytest.raises(b.BootstrapError, match="expired"):
        b.ensure_compatible(with_old_cert, key, "n1")


def test_verdict() -> None:
    cert = base64.b64encode(b"PEM").decode()
    assert b.verdict({"metadata": {"name": "c"}}) is None  # pending
    approved = {"type": "Approved", "status": "True", "reason": "AutoApproved"}
    assert b.verdict({"status": {"conditions": [approved]}}) is None  # approved, not yet signed
    assert b.verdict({"status": {"conditions": [approved], "certificate": cert}}) == b"PEM"
    assert b.verdict({"status": {"certificate": cert}}) is None  # not approved: not ours to use
    denied = {"type": "Denied", "status": "True", "reason": "NotOnTheList", "message": "no"}
    with pytest.raises(
        b.BootstrapError, match="certificate signing request c is denied, reason: NotOnTheList, message: no"
    ):
        b.verdict({"metadata": {"name": "c"}, "status": {"conditions": [denied]}})
    failed = {"type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": "bad"}
    with pytest.raises(b.BootstrapError, match="failed, reason: SignerValidationFailure, message: bad"):
        b.verdict({"metadata": {"name": "c"}, "status": {"conditions": [approved, failed], "certificate": cert}})
    # a condition whose status is not True does not count
    assert b.verdict({"status": {"conditions": [{**denied, "status": "False"}]}}) is None


# -- certificates and the store ------------------------------------------------------------------------


def test_certs_valid(key: bytes) -> None:
    now = datetime.datetime.now(datetime.UTC)
    good = cert_for(key, now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1))
    old = cert_for(key, now - datetime.timedelta(hours=2), now - datetime.timedelta(hours=1))
    assert b.certs_valid(good)
    assert b.certs_valid(good + key)  # a pair file: the key block is ignored
    assert not b.certs_valid(old)
    assert not b.certs_valid(good + old)  # every certificate of the chain must be valid
    assert not b.certs_valid(b"") and not b.certs_valid(None) and not b.certs_valid(b"junk")


def test_write_pair_and_current_symlink(tmp_path: Path, key: bytes) -> None:
    cert1 = cert_for(key, NOW, NOW + datetime.timedelta(days=365))
    link = b.write_pair(tmp_path, cert1, key, now=NOW.timestamp())
    assert link == tmp_path / "kubelet-client-current.pem"
    assert os.readlink(link) == "kubelet-client-2026-01-01-00-00-00.pem"  # relative
    first = tmp_path / "kubelet-client-2026-01-01-00-00-00.pem"
    assert mode_of(first) == 0o600
    assert b.split_pair(first.read_bytes()) == (cert1, key)
    assert b.current_pair(tmp_path) == (cert1, key)

    key2 = b.new_key_pem()
    cert2 = cert_for(key2, NOW, NOW + datetime.timedelta(days=365))
    b.write_pair(tmp_path, cert2, key2, now=NOW.timestamp() + 3600)
    assert os.readlink(link) == "kubelet-client-2026-01-01-01-00-00.pem"
    assert b.current_pair(tmp_path) == (cert2, key2)
    assert first.exists()  # earlier pairs stay, as upstream's store keeps them
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kubelet-client-2026-01-01-00-00-00.pem",
        "kubelet-client-2026-01-01-01-00-00.pem",
        "kubelet-client-current.pem",
    ]


def test_current_pair_absent_or_broken(tmp_path: Path) -> None:
    assert b.current_pair(tmp_path) is None
    (tmp_path / b.CURRENT_PEM).write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert b.current_pair(tmp_path) is None  # no key


def test_written_kubeconfig_loads_as_the_node(tmp_path: Path, key: bytes) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert = cert_for(key, now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    link = b.write_pair(tmp_path / "pki", cert, key)
    boot = ClientConfig(server="https://10.0.0.1:6443", ca_data=b"CA PEM\n", token="abcdef.0123456789abcdef")
    path = tmp_path / "kubelet.conf"
    b.write_kubeconfig(str(path), boot, link)
    assert mode_of(path) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "default-context"
    assert doc["contexts"][0]["context"] == {
        "cluster": "default-cluster",
        "user": "default-auth",
        "namespace": "default",
    }
    assert doc["users"][0]["user"] == {"client-certificate": str(link), "client-key": str(link)}
    cfg = load_kubeconfig(str(path))
    assert cfg.server == "https://10.0.0.1:6443" and cfg.ca_data == b"CA PEM\n"
    assert cfg.token is None  # the bootstrap token is not carried over
    assert b.split_pair(cfg.cert_data or b"")[0] == cert
    assert b.client_config_still_valid(str(path))


def test_client_config_still_valid(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "kubelet.conf"
    assert not b.client_config_still_valid(str(path))  # missing
    path.write_text(": not yaml : [")
    assert not b.client_config_still_valid(str(path))
    token_only = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(token_only))
    assert not b.client_config_still_valid(str(path))  # no client certificate
    now = datetime.datetime.now(datetime.UTC)
    expired = cert_for(key, now - datetime.timedelta(days=2), now - datetime.timedelta(seconds=1))
    link = b.write_pair(tmp_path / "pki", expired, key)
    b.write_kubeconfig(str(path), ClientConfig(server="https://x", ca_data=b"CA"), link)
    assert not b.client_config_still_valid(str(path))
    (tmp_path / "pki" / b.CURRENT_PEM).unlink()
    assert not b.client_config_still_valid(str(path))  # points at a missing file


# -- rotation ---------------------------------------------------------------------------------------------


def test_rotation_deadline_is_between_70_and_90_percent(key: bytes) -> None:
    start = NOW
    cert = cert_for(key, start, start + datetime.timedelta(days=100))
    t0 = start.timestamp()
    day = 86400.0
    assert b.rotation_deadline(cert, rand=lambda: 0.0) == pytest.approx(t0 + 70 * day)
    assert b.rotation_deadline(cert, rand=lambda: 1.0) == pytest.approx(t0 + 90 * day)
    assert b.rotation_deadline(cert, rand=lambda: 0.5) == pytest.approx(t0 + 80 * day)
    for _ in range(50):
        assert t0 + 70 * day <= b.rotation_deadline(cert) <= t0 + 90 * day
