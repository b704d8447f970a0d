"""Certificates for the cluster: a CA and the leaf certificates issued from it.

Keys are ECDSA P-256: generating one takes well under a millisecond (RSA-2048 takes ~50 ms),
which matters because tests build a fresh PKI per session, and Go's TLS stack (kubectl, etcd)
accepts them everywhere upstream accepts RSA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeha.bootstrap.kubeconfig import write_kubeconfig

# Clock skew allowance: a cert minted now must already be valid on a host whose clock lags a bit.
_BACKDATE = datetime.timedelta(minutes=5)

# The names every api-server certificate carries, as kubeadm issues them: the in-cluster service
# ("kubernetes.default...") and its ClusterIP, the first address of the service CIDR.
APISERVER_SANS = [
    "10.96.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]

KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"
CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, orgs: list[str] | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs or []]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - _BACKDATE, now + datetime.timedelta(days=days)


def san_entries(sans: list[str]) -> list[x509.GeneralName]:
    """IP addresses become IP SANs, everything else a DNS name; duplicates are dropped."""
    out: list[x509.GeneralName] = []
    for san in dict.fromkeys(s.strip() for s in sans if s.strip()):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            out.append(x509.DNSName(san))
    return out


def generate_ca(cn: str, days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed CA; returns (cert_pem, key_pem)."""
    key = _new_key()
    not_before, not_after = _validity(days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def issue_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    cn: str,
    orgs: list[str] | None = None,
    sans: list[str] | None = None,
    server: bool = False,
    client: bool = False,
    days: int = 365,
) -> tuple[bytes, bytes]:
    """A leaf certificate signed by the CA; returns (cert_pem, key_pem).

    ``orgs`` become O= entries (upstream maps them to groups), ``sans`` IP or DNS SANs,
    ``server``/``client`` select the extended key usages.
    """
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    # CAs made elsewhere (kubeadm) are often RSA; accept them as issuers too.
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("unsupported CA key type")
    key = _new_key()
    not_before, not_after = _validity(days)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names = san_entries(sans or [])
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_pair(directory: str | os.PathLike[str], name: str, cert: bytes, key: bytes) -> tuple[Path, Path]:
    """Write ``<name>.crt`` and ``<name>.key`` (mode 0600) into ``directory``; returns both paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    crt_path, key_path = d / f"{name}.crt", d / f"{name}.key"
    crt_path.write_bytes(cert)
    # Create the key file with its final mode so it is never readable by others, even briefly.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.chmod(key_path, 0o600)
    return crt_path, key_path


def read_pair(directory: str | os.PathLike[str], name: str) -> tuple[bytes, bytes]:
    d = Path(directory)
    return (d / f"{name}.crt").read_bytes(), (d / f"{name}.key").read_bytes()


def cert_info(cert_pem: bytes) -> dict[str, object]:
    """Subject CN, O list and SANs of a certificate (used by tests and `kubeha certs`)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in san_ext.get_values_for_type(x509.IPAddress)] + list(
            san_ext.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        sans = []
    return {
        "cn": str(cns[0].value) if cns else "",
        "orgs": [str(o.value) for o in orgs],
        "sans": sans,
        "not_after": cert.not_valid_after_utc,
    }


def write_service_account_keys(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``sa.key`` (signs service-account tokens) and ``sa.pub`` (verifies them), as kubeadm's."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_path, pub_path = d / "sa.key", d / "sa.pub"
    key_path.write_bytes(_key_pem(key))
    os.chmod(key_path, 0o600)
    pub_path.write_bytes(pub)
    return key_path, pub_path


def quickstart(directory: str | os.PathLike[str], hosts: list[str], server: str, days: int = 365) -> Path:
    """A single-cluster PKI for development and tests; returns the admin kubeconfig path.

    Writes ``ca``, ``apiserver`` (``hosts`` plus the in-cluster names), ``admin`` (CN
    kubernetes-admin, O system:masters), ``apiserver-kubelet-client`` pairs, the service-account key pair ``sa.key``/``sa.pub``
    and ``admin.kubeconfig`` pointing at ``server``.
    """
    d = Path(directory)
    ca_cert, ca_key = generate_ca("kubeha-ca")
    write_pair(d, "ca", ca_cert, ca_key)
    srv = issue_cert(ca_cert, ca_key, "kube-apiserver", sans=[*hosts, *APISERVER_SANS], server=True, days=days)
    write_pair(d, "apiserver", *srv)
    admin = issue_cert(ca_cert, ca_key, "kubernetes-admin", orgs=["system:masters"], client=True, days=days)
    write_pair(d, "admin", *admin)
    # the api-server's identity towards kubelets (logs, exec, port-forward), as kubeadm 1.32 issues it
    kubelet_client = issue_cert(ca_cert, ca_key, KUBELET_CLIENT_CN, orgs=[CLUSTER_ADMINS_GROUP], client=True, days=days)
    write_pair(d, "apiserver-kubelet-client", *kubelet_client)
    write_service_account_keys(d)
    kubeconfig = d / "admin.kubeconfig"
    write_kubeconfig(kubeconfig, server, ca_cert, *admin)
    return kubeconfig
