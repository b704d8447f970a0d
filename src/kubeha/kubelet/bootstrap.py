"""The kubelet's client certificate: TLS bootstrap (``--bootstrap-kubeconfig``) and rotation.

As upstream's ``pkg/kubelet/certificate/bootstrap`` and client-go's certificate manager:

- **Bootstrap.** When ``--kubeconfig`` is missing or its client certificate is missing or expired,
  the kubelet logs in with the bootstrap kubeconfig (a bootstrap token), makes an ECDSA P-256 key
  (kept in ``<cert-dir>/kubelet-client.key.tmp`` until a certificate is issued, so a restart reuses
  it and finds its own request again), and creates a CertificateSigningRequest for
  ``system:node:<node>`` / ``system:nodes`` with signer
  ``kubernetes.io/kube-apiserver-client-kubelet``. The request's name is a digest of the key,
  subject and usages (``node-csr-…``): a restarted kubelet with the same key gets AlreadyExists
  and waits on that request instead of filing another. The wait is a watch, bounded by an hour
  as upstream's; a Denied or Failed condition ends it with an error. The certificate and key go
  to ``<cert-dir>/kubelet-client-<timestamp>.pem`` behind the symlink
  ``kubelet-client-current.pem``, and ``--kubeconfig`` is written to point at that symlink, with
  the bootstrap kubeconfig's server and CA.
- **Rotation** (``--rotate-certificates``). At a random point between 70 % and 90 % of the
  certificate's lifetime a new key is made and a CSR (``generateName: csr-``) is filed with the
  current certificate (approved through ``selfnodeclient``); the new pair replaces the current
  one on disk, and the running client switches to it and drops its connections, so every request
  from then on presents the new certificate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import hashlib
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeha.api.errors import StatusError
from kubeha.client.kubeconfig import ClientConfig, ConfigError, load_kubeconfig
from kubeha.client.resources import CERTIFICATESIGNINGREQUESTS
from kubeha.client.rest import ApiClient

log = logging.getLogger("kubeha.kubelet.bootstrap")

Obj = dict[str, Any]

PAIR_PREFIX = "kubelet-client"
CURRENT_PEM = f"{PAIR_PREFIX}-current.pem"
TMP_KEY_FILE = f"{PAIR_PREFIX}.key.tmp"
SIGNER_NAME = "kubernetes.io/kube-apiserver-client-kubelet"
# an ECDSA key encrypts nothing: no "key encipherment" (client-go drops it for non-RSA keys too)
USAGES = ("digital signature", "client auth")
NODES_GROUP = "system:nodes"
CERT_WAIT_SECONDS = 3600.0  # upstream's bound on the wait for an issued bootstrap certificate
SERVER_WAIT_SECONDS = 60.0
WATCH_SECONDS = 300
# rotation: retry a failed renewal with exponential back-off up to this
ROTATION_BACKOFF_MAX = 300.0


class BootstrapError(Exception):
    """The client certificate could not be obtained (request denied, failed, timed out, …)."""


# -- files ------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) through a temporary file and a rename, so a reader
    never sees half a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def parse_key(pem: bytes) -> ec.EllipticCurvePrivateKey | None:
    """The EC private key in ``pem`` (the first private key block), or None."""
    try:
        key = serialization.load_pem_private_key(_key_block(pem) or b"", password=None)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def load_or_generate_key(path: Path) -> bytes:
    """The PEM key at ``path``, or a new one written there (reused by the next start when the
    request is not answered before a restart)."""
    with contextlib.suppress(FileNotFoundError):
        pem = path.read_bytes()
        if parse_key(pem) is not None:
            return pem
        log.warning("ignoring unreadable private key %s", path)
    pem = new_key_pem()
    _write_private(path, pem)
    return pem


def _blocks(pem: bytes) -> list[bytes]:
    out: list[bytes] = []
    lines: list[bytes] = []
    for line in pem.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN "):
            lines = [line]
        elif lines:
            lines.append(line)
            if line.startswith(b"-----END "):
                out.append(b"".join(lines))
                lines = []
    return out


def _key_block(pem: bytes) -> bytes | None:
    return next((b for b in _blocks(pem) if b"PRIVATE KEY-----" in b.splitlines()[0]), None)


def split_pair(pem: bytes) -> tuple[bytes, bytes]:
    """(certificate chain, key) of a ``kubelet-client-*.pem`` file."""
    certs = b"".join(b for b in _blocks(pem) if b.startswith(b"-----BEGIN CERTIFICATE-----"))
    return certs, _key_block(pem) or b""


def certs_valid(cert_pem: bytes | None, now: float | None = None) -> bool:
    """Whether ``cert_pem`` holds at least one certificate and none has expired."""
    if not cert_pem:
        return False
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return False
    t = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    return bool(certs) and all(t <= c.not_valid_after_utc for c in certs)


def client_config_still_valid(kubeconfig: str) -> bool:
    """Whether ``kubeconfig`` exists and holds an unexpired client certificate (an unreadable one
    is not valid: bootstrap again and overwrite it)."""
    if not os.path.exists(kubeconfig):
        return False
    try:
        cfg = load_kubeconfig(kubeconfig)
    except (ConfigError, OSError, ValueError, yaml.YAMLError) as e:
        log.warning("unable to read existing kubeconfig %s: %s", kubeconfig, e)
        return False
    if not certs_valid(cfg.cert_data):
        log.info("the client certificate of %s is missing or expired", kubeconfig)
        return False
    return True


def current_pair(cert_dir: Path) -> tuple[bytes, bytes] | None:
    """The certificate and key behind ``kubelet-client-current.pem`` (None: none yet)."""
    try:
        pem = (cert_dir / CURRENT_PEM).read_bytes()
    except FileNotFoundError:
        return None
    cert, key = split_pair(pem)
    return (cert, key) if cert and parse_key(key) is not None else None


def write_pair(cert_dir: Path, cert_pem: bytes, key_pem: bytes, now: float | None = None) -> Path:
    """``kubelet-client-<timestamp>.pem`` (certificate then key), then the ``current`` symlink
    swapped to it atomically; returns the symlink's path."""
    t = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    name = f"{PAIR_PREFIX}-{t.strftime('%Y-%m-%d-%H-%M-%S')}.pem"
    _write_private(cert_dir / name, cert_pem.rstrip(b"\n") + b"\n" + key_pem)
    link = cert_dir / CURRENT_PEM
    tmp = cert_dir / f".{CURRENT_PEM}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(name, tmp)  # relative: the link stays right if the directory moves
    os.replace(tmp, link)
    return link


def write_kubeconfig(path: str, bootstrap: ClientConfig, pem_path: Path) -> None:
    """A kubeconfig with the bootstrap kubeconfig's server and CA whose user is the certificate
    pair at ``pem_path`` (names as upstream's: default-cluster, default-auth, default-context)."""
    cluster: Obj = {"server": bootstrap.server}
    if bootstrap.insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif bootstrap.ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(bootstrap.ca_data).decode("ascii")
    if bootstrap.tls_server_name:
        cluster["tls-server-name"] = bootstrap.tls_server_name
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "users": [{"name": "default-auth", "user": {"client-certificate": str(pem_path), "client-key": str(pem_path)}}],
        "contexts": [
            {
                "name": "default-context",
                "context": {"cluster": "default-cluster", "user": "default-auth", "namespace": "default"},
            }
        ],
        "current-context": "default-context",
    }
    _write_private(Path(path), yaml.safe_dump(doc, default_flow_style=False, sort_keys=False).encode())


# -- the request --------------------------------------------------------------------------------


def node_subject(node_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
        ]
    )


def make_csr(key_pem: bytes, node_name: str) -> bytes:
    key = parse_key(key_pem)
    if key is None:
        raise BootstrapError("invalid private key for certificate request")
    req = x509.CertificateSigningRequestBuilder().subject_name(node_subject(node_name)).sign(key, hashes.SHA256())
    return req.public_bytes(serialization.Encoding.PEM)


def digested_name(key_pem: bytes, node_name: str, usages: tuple[str, ...] = USAGES) -> str:
    """``node-csr-<digest>`` of the public key, subject and usages: the same key asks under the
    same name, so a restart finds its earlier request (the scheme of upstream's digestedName)."""
    key = parse_key(key_pem)
    if key is None:
        raise BootstrapError("invalid private key for certificate request")
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashlib.new("sha512_256")

    def write(data: bytes) -> None:
        # '|' is outside the base64url alphabet: no two inputs stream the same bytes
        h.update(base64.urlsafe_b64encode(data).rstrip(b"="))
        h.update(b"|")

    write(spki)
    write(f"system:node:{node_name}".encode())
    write(NODES_GROUP.encode())
    for u in usages:
        write(u.encode())
    return "node-csr-" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii")


def csr_object(csr_pem: bytes, name: str = "", usages: tuple[str, ...] = USAGES) -> Obj:
    meta: Obj = {"name": name} if name else {"generateName": "csr-"}
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": meta,
        "spec": {
            "request": base64.b64encode(csr_pem).decode("ascii"),
            "signerName": SIGNER_NAME,
            "usages": list(usages),
        },
    }


def ensure_compatible(existing: Obj, key_pem: bytes, node_name: str) -> None:
    """An earlier request found under our name must be ours: same subject, signer and key, and
    not carrying an expired certificate."""
    spec = existing.get("spec") or {}
    try:
        req = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError as e:
        raise BootstrapError(f"retrieved csr is not compatible: unable to parse it: {e}") from e
    if req.subject != node_subject(node_name):
        raise BootstrapError(f"retrieved csr is not compatible: subjects differ ({req.subject.rfc4514_string()})")
    if spec.get("signerName") and spec["signerName"] != SIGNER_NAME:
        raise BootstrapError(f"retrieved csr is not compatible: signerName {spec['signerName']!r}")
    key = parse_key(key_pem)
    assert key is not None
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if req.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
        raise BootstrapError("retrieved csr is not compatible: signed by another key")
    cert = (existing.get("status") or {}).get("certificate")
    if cert and not certs_valid(base64.b64decode(cert)):
        raise BootstrapError("retrieved csr is not compatible: its certificate has expired")


def verdict(csr: Obj) -> bytes | None:
    """The issued certificate (PEM) of ``csr``; None while pending or approved but unsigned.
    Raises BootstrapError when it was denied or failed."""
    name = (csr.get("metadata") or {}).get("name")
    approved = False
    for c in (csr.get("status") or {}).get("conditions") or ():
        if c.get("status", "True") != "True":
            continue
        if c.get("type") == "Denied":
            raise BootstrapError(
                f"certificate signing request {name} is denied, reason: {c.get('reason', '')}, "
                f"message: {c.get('message', '')}"
            )
        if c.get("type") == "Failed":
            raise BootstrapError(
                f"certificate signing request {name} failed, reason: {c.get('reason', '')}, "
                f"message: {c.get('message', '')}"
            )
        approved = approved or c.get("type") == "Approved"
    cert = (csr.get("status") or {}).get("certificate")
    if approved and cert:
        return base64.b64decode(cert)
    return None


async def wait_for_certificate(client: ApiClient, name: str, uid: str) -> bytes:
    """Watch request ``name`` (uid ``uid``) until it is issued; list then watch from that
    revision, again after every ended watch (client-go's UntilWithSync). Unbounded: callers
    bound it (asyncio.timeout)."""
    selector = f"metadata.name={name}"

    def check(csr: Obj) -> bytes | None:
        if (csr.get("metadata") or {}).get("uid") != uid:
            raise BootstrapError(f"csr {name!r} changed UIDs")
        return verdict(csr)

    pause = 0.0
    while True:
        if pause:
            await asyncio.sleep(pause)
        try:
            listed = await client.list(CERTIFICATESIGNINGREQUESTS, field_selector=selector)
        except (OSError, StatusError) as e:
            # the api-server is away (a control-plane failover): keep waiting, as a reflector would
            if isinstance(e, StatusError) and e.code < 500 and e.code != 429:
                raise
            pause = min(max(pause * 2, 1.0), 30.0)
            log.info("listing certificate signing request %s: %s; retrying in %.0fs", name, e, pause)
            continue
        items = listed.get("items") or []
        if not items:
            raise BootstrapError(f"csr {name!r} was deleted")
        if (cert := check(items[0])) is not None:
            return cert
        log.info("waiting for certificate signing request %s to be approved and issued", name)
        rv = (listed.get("metadata") or {}).get("resourceVersion")
        started = time.monotonic()
        try:
            async with contextlib.aclosing(
                # a server-side end to every watch (then a fresh list): a silently dead
                # connection cannot hold the wait until its deadline
                client.watch(
                    CERTIFICATESIGNINGREQUESTS,
                    field_selector=selector,
                    resource_version=rv,
                    timeout_seconds=WATCH_SECONDS,
                )
            ) as events:
                async for typ, obj in events:
                    if typ == "DELETED":
                        raise BootstrapError(f"csr {name!r} was deleted")
                    if typ in ("ADDED", "MODIFIED") and (cert := check(obj)) is not None:
                        return cert
        except StatusError as e:
            if e.code != 410:
                raise
        except OSError as e:
            log.info("watching certificate signing request %s: %s", name, e)
        # the watch ended (server timeout, 410 Gone, dropped connection): list again, after a
        # pause when it ended at once so a broken stream cannot spin
        pause = 1.0 if time.monotonic() - started < 1.0 else 0.0


async def request_certificate(
    client: ApiClient, key_pem: bytes, node_name: str, name: str = "", wait: float = CERT_WAIT_SECONDS
) -> bytes:
    """File a node client request for ``key_pem`` (under ``name``, else ``generateName: csr-``)
    and wait up to ``wait`` seconds for its certificate. With ``name``, an existing request of
    ours is reused."""
    body = csr_object(make_csr(key_pem, node_name), name)
    try:
        created = await client.create(CERTIFICATESIGNINGREQUESTS, body)
        log.info("created certificate signing request %s", (created.get("metadata") or {}).get("name"))
    except StatusError as e:
        if e.code != 409 or not name:
            raise BootstrapError(f"cannot create certificate signing request: {e}") from e
        log.info("csr %s for this node already exists, reusing it", name)
        created = await client.get(CERTIFICATESIGNINGREQUESTS, name)
        ensure_compatible(created, key_pem, node_name)
    meta = created.get("metadata") or {}
    try:
        async with asyncio.timeout(wait):
            return await wait_for_certificate(client, str(meta.get("name")), str(meta.get("uid")))
    except TimeoutError:
        raise BootstrapError(
            f"timed out after {wait:.0f}s waiting for certificate signing request {meta.get('name')} to be issued"
        ) from None


async def wait_for_server(client: ApiClient, deadline: float = SERVER_WAIT_SECONDS) -> bool:
    """Until ``/healthz`` answers (every ~2 s, at most ``deadline``): a node often starts before
    its control plane does. Only a wait before the first request, as upstream's waitForServer."""
    end = time.monotonic() + deadline
    while True:
        try:
            await client.request("GET", "/healthz")
            return True
        except Exception as e:  # any failure means "not yet"; the request itself reports later
            log.info("failed to connect to the api-server: %s", e)
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(2.0 * (1 + 0.2 * random.random()))


def _store_key(certs: Path) -> bytes | None:
    """The key for a new request (None: the store's current pair is still valid). An expired
    current pair lends its key; else the temporary key file, made when missing."""
    certs.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (pair := current_pair(certs)) is not None:
        if certs_valid(pair[0]):
            return None
        return pair[1]
    return load_or_generate_key(certs / TMP_KEY_FILE)


def load_bootstrap_config(path: str) -> ClientConfig:
    """The bootstrap kubeconfig; BootstrapError when it is missing or unreadable."""
    try:
        return load_kubeconfig(path)
    except (ConfigError, OSError, ValueError, yaml.YAMLError) as e:
        raise BootstrapError(f"unable to load bootstrap kubeconfig: {e}") from e


async def load_client_cert(
    kubeconfig: str,
    bootstrap_kubeconfig: str,
    cert_dir: str | os.PathLike[str],
    node_name: str,
    *,
    wait: float = CERT_WAIT_SECONDS,
) -> bool:
    """Make ``kubeconfig`` usable: keep it when its certificate is valid, else obtain one with
    the bootstrap kubeconfig and write it. Returns whether a bootstrap happened."""
    if client_config_still_valid(kubeconfig):
        log.info("kubeconfig %s exists and is valid, skipping bootstrap", kubeconfig)
        return False
    log.info("using bootstrap kubeconfig %s to obtain a client certificate", bootstrap_kubeconfig)
    boot = load_bootstrap_config(bootstrap_kubeconfig)
    certs = Path(cert_dir)
    key_pem = _store_key(certs)
    if key_pem is None:
        log.info("current client certificate %s is still valid", certs / CURRENT_PEM)
        write_kubeconfig(kubeconfig, boot, certs / CURRENT_PEM)
        return True
    async with ApiClient(boot, user_agent=f"kubelet/{node_name} (bootstrap)", timeout=10) as client:
        if not await wait_for_server(client):
            log.warning("timed out waiting for the api-server; requesting anyway")
        name = digested_name(key_pem, node_name)
        cert = await request_certificate(client, key_pem, node_name, name=name, wait=wait)
    link = write_pair(certs, cert, key_pem)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(certs / TMP_KEY_FILE)
    write_kubeconfig(kubeconfig, boot, link)
    log.info("client certificate issued for system:node:%s, kubeconfig %s written", node_name, kubeconfig)
    return True


# -- rotation ------------------------------------------------------------------------------------


def rotation_deadline(cert_pem: bytes, rand: Callable[[], float] = random.random) -> float:
    """A random point (epoch seconds) between 70 % and 90 % of the certificate's lifetime, as
    client-go's certificate manager picks it (jitter spreads the renewals of many nodes)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start = cert.not_valid_before_utc.timestamp()
    total = cert.not_valid_after_utc.timestamp() - start
    return start + total * (0.7 + 0.2 * rand())


async def switch_credentials(client: ApiClient, cert_pem: bytes, key_pem: bytes) -> None:
    """Make ``client`` present the new pair: new config, and its connections closed (a busy
    keep-alive connection would otherwise present the old certificate until it expires)."""
    client.config = dataclasses.replace(client.config, cert_data=cert_pem, key_data=key_pem)
    log.info("certificate rotation detected, shutting down client connections to use new credentials")
    await client.close()


class ClientCertRotator:
    """Renews the kubelet's client certificate before it expires (``--rotate-certificates``)."""

    def __init__(
        self,
        client: ApiClient,
        cert_dir: str | os.PathLike[str],
        node_name: str,
        *,
        wall: Callable[[], float] = time.time,
        wait: float = CERT_WAIT_SECONDS,
        bootstrap: ClientConfig | None = None,
    ) -> None:
        self.client = client
        self.cert_dir = Path(cert_dir)
        self.node_name = node_name
        self.wall = wall
        self.wait = wait
        # the credentials a renewal falls back to once the current certificate has expired
        # (upstream's certificate manager then has no current certificate and uses these)
        self.bootstrap = bootstrap
        self.rotations = 0

    def current_cert(self) -> bytes | None:
        return self.client.config.cert_data

    async def rotate(self) -> None:
        """One renewal: new key, new request with the current identity, new pair in use."""
        key_pem = new_key_pem()
        current = self.current_cert()
        if self.bootstrap is not None and not certs_valid(current, now=self.wall()):
            # an expired certificate cannot authenticate the request: a renewal that failed
            # until past the end would otherwise never succeed
            log.warning("the client certificate has expired; renewing with the bootstrap credentials")
            async with ApiClient(
                self.bootstrap, user_agent=f"kubelet/{self.node_name} (bootstrap)", timeout=10
            ) as boot:
                cert = await request_certificate(boot, key_pem, self.node_name, wait=self.wait)
        else:
            cert = await request_certificate(self.client, key_pem, self.node_name, wait=self.wait)
        write_pair(self.cert_dir, cert, key_pem, now=self.wall())
        await switch_credentials(self.client, cert, key_pem)
        self.rotations += 1
        info = x509.load_pem_x509_certificate(cert)
        log.info("rotated the client certificate, valid until %s", info.not_valid_after_utc.isoformat())

    async def run(self) -> None:
        backoff = 2.0
        planned: tuple[bytes, float] | None = None  # (certificate, its rotation point): drawn once
        while True:
            cert = self.current_cert()
            if not cert:
                log.warning("client certificate rotation: the kubeconfig has no client certificate; not rotating")
                return
            if planned is None or planned[0] != cert:
                planned = (cert, rotation_deadline(cert))
            deadline = planned[1]
            wait = deadline - self.wall()
            if wait > 0:
                log.info(
                    "client certificate rotation at %s",
                    datetime.datetime.fromtimestamp(deadline, datetime.UTC).isoformat(),
                )
                await asyncio.sleep(wait)  # one timer, not a poll: nothing changes the certificate but us
            try:
                await self.rotate()
                backoff = 2.0
            except Exception as e:  # any failure: keep the current pair and try again, as client-go
                log.error("client certificate rotation failed: %s; retrying in %.0fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, ROTATION_BACKOFF_MAX)
