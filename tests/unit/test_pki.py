"""PKI and kubeconfig generation: what the certificates say and how the files are written."""

from __future__ import annotations

import base64
import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubeha.bootstrap import pki
from kubeha.bootstrap.kubeconfig import write_kubeconfig
from kubeha.cli.main import main


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    return pki.generate_ca("test-ca")


def test_ca_is_a_self_signed_ca(ca: tuple[bytes, bytes]) -> None:
    cert = x509.load_pem_x509_certificate(ca[0])
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert pki.cert_info(ca[0])["cn"] == "test-ca"


def test_issued_server_cert_has_ip_and_dns_sans_and_verifies(ca: tuple[bytes, bytes]) -> None:
    cert_pem, key_pem = pki.issue_cert(*ca, "kube-apiserver", sans=["127.0.0.1", "localhost", "::1"], server=True)
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Signed by the CA (raises on a bad signature) and the key matches the certificate.
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca[0]))
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_client_cert_carries_user_and_groups(ca: tuple[bytes, bytes]) -> None:
    cert_pem, _ = pki.issue_cert(*ca, "alice", orgs=["system:masters", "devs"], client=True)
    info = pki.cert_info(cert_pem)
    assert info["cn"] == "alice"
    assert info["orgs"] == ["system:masters", "devs"]
    assert info["sans"] == []
    eku = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_leaf_never_outlives_its_ca() -> None:
    ca_cert, ca_key = pki.generate_ca("short", days=10)
    cert_pem, _ = pki.issue_cert(ca_cert, ca_key, "x", days=365)
    assert pki.cert_info(cert_pem)["not_after"] == x509.load_pem_x509_certificate(ca_cert).not_valid_after_utc


def test_write_pair_key_mode_0600(tmp_path: Path, ca: tuple[bytes, bytes]) -> None:
    crt, key = pki.write_pair(tmp_path / "sub", "ca", *ca)
    assert crt.read_bytes() == ca[0]
    assert key.read_bytes() == ca[1]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_kubeconfig_embeds_credentials(tmp_path: Path, ca: tuple[bytes, bytes]) -> None:
    cert, key = pki.issue_cert(*ca, "kubernetes-admin", orgs=["system:masters"], client=True)
    path = tmp_path / "admin.kubeconfig"
    write_kubeconfig(path, "https://127.0.0.1:6443", ca[0], cert, key)
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "kubernetes-admin@kubeha"
    assert doc["contexts"] == [
        {"name": "kubernetes-admin@kubeha", "context": {"cluster": "kubeha", "user": "kubernetes-admin"}}
    ]
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca[0]
    user = doc["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == cert
    assert base64.b64decode(user["client-key-data"]) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_certs_quickstart_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["certs", "quickstart", "--dir", str(tmp_path), "--hosts", "127.0.0.1,node1.example"])
    assert rc == 0
    assert "admin.kubeconfig" in capsys.readouterr().out
    names = {p.name for p in tmp_path.iterdir()}
    assert {"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key", "admin.kubeconfig"} <= names
    server = pki.cert_info((tmp_path / "apiserver.crt").read_bytes())
    assert set(server["sans"]) >= {  # type: ignore[arg-type]
        "127.0.0.1",
        "node1.example",
        "10.96.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    admin = pki.cert_info((tmp_path / "admin.crt").read_bytes())
    assert (admin["cn"], admin["orgs"]) == ("kubernetes-admin", ["system:masters"])
    doc = yaml.safe_load((tmp_path / "admin.kubeconfig").read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"


def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("kubeha ")
