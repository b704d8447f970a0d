"""CSR controllers: ``csrapproving`` (kubelet client certificates) and ``csrsigning`` (the cluster CA).

csrapproving, as upstream's SAR approver: a pending ``kubernetes.io/kube-apiserver-client-kubelet``
request that looks like a node client certificate is approved when a SubjectAccessReview says its
requester may ``create certificatesigningrequests/nodeclient`` (any node's, the TLS bootstrap case)
or, when the requester is the node itself, ``.../selfnodeclient`` (renewal). The approval goes
through the ``approval`` subresource. A request nobody may approve stays pending for a human.

csrsigning, as upstream's local signers: approved, unsigned requests for the three built-in
signers are checked against what each signer allows, then signed with the CA of
``--cluster-signing-cert-file``/``--cluster-signing-key-file``. A request a signer refuses gets a
``Failed`` condition (reason ``SignerValidationFailure``); the certificate is written through the
``status`` subresource. The x509 code lives here because controllers may not import
``kubeha.bootstrap``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeha.api.certificates.v1 import (
    APPROVED,
    DENIED,
    FAILED,
    KUBE_APISERVER_CLIENT,
    KUBE_APISERVER_CLIENT_KUBELET,
    KUBELET_SERVING,
    decode_bytes,
    parse_csr,
)
from kubeha.api.errors import StatusError
from kubeha.client.resources import CERTIFICATESIGNINGREQUESTS
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, enqueue_on
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

# signing: backdate to absorb clock skew, except for short-lived certificates (upstream's numbers)
BACKDATE = 5 * 60.0
SHORT = 8 * 3600.0
MIN_DURATION = 10 * 60.0

# (permission subresource, approval message, must the requester be the node itself)
RECOGNIZERS: tuple[tuple[str, str, bool], ...] = (
    ("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview.", False),
    ("selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview.", True),
)

_CLIENT_USAGES = ({"digital signature", "key encipherment", "client auth"}, {"digital signature", "client auth"})
_SERVING_USAGES = ({"digital signature", "key encipherment", "server auth"}, {"digital signature", "server auth"})


def now_rfc3339(now: float | None = None) -> str:
    t = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(csr: Obj) -> dict[str, Obj]:
    items = (csr.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in items if isinstance(c, dict) and c.get("status", "True") == "True"}


def has_certificate(csr: Obj) -> bool:
    return bool((csr.get("status") or {}).get("certificate"))


def request_of(csr: Obj) -> x509.CertificateSigningRequest:
    """The parsed ``spec.request``; ValueError when it is not a valid PEM CSR."""
    pem = decode_bytes((csr.get("spec") or {}).get("request"))
    if pem is None:
        raise ValueError("spec.request is not valid base64")
    parsed: x509.CertificateSigningRequest = parse_csr(pem)
    return parsed


# -- what each kind of request may contain ---------------------------------------------------


def _subject(req: x509.CertificateSigningRequest, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in req.subject.get_attributes_for_oid(oid)]


def _sans(req: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _usage_error(usages: set[str], allowed: tuple[set[str], set[str]]) -> str | None:
    if usages in allowed:
        return None
    return "usages did not match [" + " ".join(sorted(allowed[0])) + "]"


def validate_kubelet_client(req: x509.CertificateSigningRequest, usages: set[str]) -> str | None:
    """Why ``req`` is not a kubelet client certificate request (None: it is one)."""
    if _subject(req, NameOID.ORGANIZATION_NAME) != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    sans = _sans(req)
    if sans is not None:
        for kind, label in (
            (x509.DNSName, "DNS"),
            (x509.RFC822Name, "Email"),
            (x509.IPAddress, "IP"),
            (x509.UniformResourceIdentifier, "URI"),
        ):
            if sans.get_values_for_type(kind):  # type: ignore[arg-type]
                return f"{label} subjectAltNames are not allowed"
    cn = _subject(req, NameOID.COMMON_NAME)
    if not cn or not cn[0].startswith(NODE_USER_PREFIX):
        return "subject common name does not begin with system:node:"
    return _usage_error(usages, _CLIENT_USAGES)


def validate_kubelet_serving(req: x509.CertificateSigningRequest, usages: set[str]) -> str | None:
    """Why ``req`` is not a kubelet serving certificate request (None: it is one)."""
    if _subject(req, NameOID.ORGANIZATION_NAME) != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    sans = _sans(req)
    dns = sans.get_values_for_type(x509.DNSName) if sans else []
    ips = sans.get_values_for_type(x509.IPAddress) if sans else []
    if sans is not None and sans.get_values_for_type(x509.RFC822Name):
        return "Email subjectAltNames are not allowed"
    if sans is not None and sans.get_values_for_type(x509.UniformResourceIdentifier):
        return "URI subjectAltNames are not allowed"
    if not dns and not ips:
        return "DNS or IP subjectAltName is required"
    cn = _subject(req, NameOID.COMMON_NAME)
    if not cn or not cn[0].startswith(NODE_USER_PREFIX):
        return "subject common name does not begin with system:node:"
    return _usage_error(usages, _SERVING_USAGES)


def validate_apiserver_client_usages(usages: list[str]) -> str | None:
    """``kubernetes.io/kube-apiserver-client``: client auth required; only signature/encipherment beside it."""
    for u in usages:
        if u not in ("digital signature", "key encipherment", "client auth"):
            return f"invalid usage for client certificate: {u}"
    if "client auth" not in usages:
        return "missing required usage for client certificate: client auth"
    return None


SIGNERS = (KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING)


def signer_check(signer: str, req: x509.CertificateSigningRequest, usages: list[str]) -> tuple[bool, str | None]:
    """(is this one of our signers, why it refuses the request or None)."""
    if signer == KUBE_APISERVER_CLIENT_KUBELET:
        return True, validate_kubelet_client(req, set(usages))
    if signer == KUBELET_SERVING:
        return True, validate_kubelet_serving(req, set(usages))
    if signer == KUBE_APISERVER_CLIENT:
        return True, validate_apiserver_client_usages(usages)
    return False, None


# -- approving -----------------------------------------------------------------------------


def approval_candidates(csr: Obj, req: x509.CertificateSigningRequest) -> list[tuple[str, str]]:
    """The (subresource, message) permissions that could approve ``csr``, in upstream's order."""
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBE_APISERVER_CLIENT_KUBELET:
        return []
    if validate_kubelet_client(req, set(spec.get("usages") or [])) is not None:
        return []
    cn = _subject(req, NameOID.COMMON_NAME)
    out = []
    for sub, message, self_only in RECOGNIZERS:
        if self_only and spec.get("username") != (cn[0] if cn else None):
            continue
        out.append((sub, message))
    return out


def subject_access_review(csr: Obj, subresource: str) -> Obj:
    """The SAR asking whether the CSR's requester may create ``certificatesigningrequests/<sub>``."""
    spec = csr.get("spec") or {}
    review: Obj = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": spec.get("username") or "",
            "groups": list(spec.get("groups") or []),
            "resourceAttributes": {
                "group": "certificates.k8s.io",
                "resource": "certificatesigningrequests",
                "verb": "create",
                "subresource": subresource,
            },
        },
    }
    if spec.get("uid"):
        review["spec"]["uid"] = spec["uid"]
    if spec.get("extra"):
        review["spec"]["extra"] = spec["extra"]
    return review


def with_condition(csr: Obj, kind: str, reason: str, message: str, now: float | None = None) -> Obj:
    """A copy of ``csr`` with one more True condition."""
    stamp = now_rfc3339(now)
    out = dict(csr)
    status = dict(csr.get("status") or {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    conds.append(
        {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    status["conditions"] = conds
    out["status"] = status
    return out


class CSRApprovingController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.csrs = ctx.informers.informer_for(CERTIFICATESIGNINGREQUESTS)
        self.queue = RateLimitingQueue(name="csrapproving")
        enqueue_on(self.csrs, self.queue)
        self.controller = Controller("csrapproving", self.reconcile, self.queue, ctx.options.concurrent_syncs)

    async def run(self) -> None:
        await self.controller.run([self.csrs])

    async def allowed(self, csr: Obj, subresource: str) -> bool:
        answer = await self.client.request("POST", SAR_PATH, body=subject_access_review(csr, subresource))
        return bool(((answer or {}).get("status") or {}).get("allowed"))

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.indexer.get(key)
        if csr is None or has_certificate(csr):
            return
        conds = conditions(csr)
        if APPROVED in conds or DENIED in conds:
            return
        try:
            req = request_of(csr)
        except ValueError as e:
            log.info("csrapproving: %s: unable to parse request: %s", key, e)
            return
        tried = []
        for subresource, message in approval_candidates(csr, req):
            tried.append(subresource)
            if await self.allowed(csr, subresource):
                approved = with_condition(csr, APPROVED, "AutoApproved", message)
                try:
                    await self.client.update(CERTIFICATESIGNINGREQUESTS, approved, subresource="approval")
                except StatusError as e:
                    if e.code == 404:
                        return
                    raise
                log.info("csrapproving: approved %s (%s)", key, subresource)
                return
        if tried:
            # not an error worth retrying: a human (or a later RBAC change plus a CSR edit) decides
            log.info("csrapproving: recognized %s as %s but subject access review was not approved", key, tried)


# -- signing ----------------------------------------------------------------------------------

_KEY_USAGE_BITS = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_EXT_USAGES = {
    "any": x509.ObjectIdentifier("2.5.29.37.0"),
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


def key_usages(usages: list[str]) -> tuple[x509.KeyUsage | None, list[x509.ObjectIdentifier]]:
    """The KeyUsage extension (None: no bits) and extended key usages for CSR usage names."""
    bits: set[str] = set()
    ext: list[x509.ObjectIdentifier] = []
    unknown = []
    for u in usages:
        if u in _KEY_USAGE_BITS:
            bits.add(_KEY_USAGE_BITS[u])
        elif u in _EXT_USAGES:
            if _EXT_USAGES[u] not in ext:
                ext.append(_EXT_USAGES[u])
        else:
            unknown.append(u)
    if unknown:
        raise ValueError(f"unrecognized usage values: {unknown}")
    if not bits:
        return None, ext
    ku = x509.KeyUsage(**{n: n in bits for n in set(_KEY_USAGE_BITS.values())})
    return ku, ext


def signing_duration(expiration_seconds: int | None, cert_ttl: float) -> float:
    """Requested lifetime, capped at ``--cluster-signing-duration`` and floored at 10 minutes."""
    if expiration_seconds is None:
        return cert_ttl
    return max(MIN_DURATION, min(float(expiration_seconds), cert_ttl))


def validity(now: float, ttl: float, ca_not_after: float) -> tuple[float, float]:
    """(notBefore, notAfter): backdated 5 minutes unless short-lived, never past the CA's expiry."""
    not_before = now - BACKDATE
    not_after = now + ttl if ttl < SHORT else not_before + ttl
    not_after = min(not_after, ca_not_after)
    if now >= ca_not_after:
        raise ValueError(
            f"refusing to sign a certificate that expired in the past: NotAfter={now_rfc3339(ca_not_after)}"
        )
    return not_before, not_after


@dataclass
class CertificateAuthority:
    cert: x509.Certificate
    key: Any  # an RSA, ECDSA or Ed25519 private key

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError("unsupported CA key type")
        return cls(cert, key)

    @classmethod
    def from_files(cls, cert_file: str, key_file: str) -> CertificateAuthority:
        with open(cert_file, "rb") as c, open(key_file, "rb") as k:
            return cls.load(c.read(), k.read())

    def sign(self, req: x509.CertificateSigningRequest, usages: list[str], ttl: float, now: float) -> bytes:
        """Issue a PEM certificate for ``req``: its subject, SANs and key; the given usages;
        every other requested extension dropped (as upstream's permissive policy)."""
        if not req.is_signature_valid:
            raise ValueError("unable to verify certificate request signature")
        not_before, not_after = validity(now, ttl, self.cert.not_valid_after_utc.timestamp())
        ku, ext = key_usages(usages)
        builder = (
            x509.CertificateBuilder()
            .subject_name(req.subject)
            .issuer_name(self.cert.subject)
            .public_key(req.public_key())
            # 128 random bits, positive
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
            .not_valid_before(datetime.datetime.fromtimestamp(not_before, datetime.UTC))
            .not_valid_after(datetime.datetime.fromtimestamp(not_after, datetime.UTC))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if ku is not None:
            builder = builder.add_extension(ku, critical=True)
        if ext:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ext), critical=False)
        sans = _sans(req)
        if sans is not None and len(sans) > 0:
            builder = builder.add_extension(sans, critical=False)
        algorithm = None if isinstance(self.key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(self.key, algorithm)
        return cert.public_bytes(serialization.Encoding.PEM)


class CSRSigningController:
    def __init__(
        self, ctx: ControllerContext, ca: CertificateAuthority, *, wall: Callable[[], float] = time.time
    ) -> None:
        self.client = ctx.client
        self.ca = ca
        self.cert_ttl = ctx.options.cluster_signing_duration
        self.wall = wall
        self.csrs = ctx.informers.informer_for(CERTIFICATESIGNINGREQUESTS)
        self.queue = RateLimitingQueue(name="csrsigning")
        enqueue_on(self.csrs, self.queue)
        self.controller = Controller("csrsigning", self.reconcile, self.queue, ctx.options.concurrent_syncs)

    async def run(self) -> None:
        await self.controller.run([self.csrs])

    def decide(self, csr: Obj) -> Obj | None:
        """The CSR to write back (signed, or Failed), or None when it is not ours to act on."""
        conds = conditions(csr)
        if APPROVED not in conds or FAILED in conds or has_certificate(csr):
            return None
        spec = csr.get("spec") or {}
        signer = str(spec.get("signerName") or "")
        if signer not in SIGNERS:
            return None
        usages = [str(u) for u in spec.get("usages") or []]
        try:
            req = request_of(csr)
        except ValueError as e:
            return with_condition(csr, FAILED, "SignerValidationFailure", f"unable to parse csr: {e}", self.wall())
        _, why = signer_check(signer, req, usages)
        if why is not None:
            return with_condition(csr, FAILED, "SignerValidationFailure", why, self.wall())
        ttl = signing_duration(spec.get("expirationSeconds"), self.cert_ttl)
        try:
            pem = self.ca.sign(req, usages, ttl, self.wall())
        except ValueError as e:
            return with_condition(csr, FAILED, "SigningError", str(e), self.wall())
        out = dict(csr)
        out["status"] = {**(csr.get("status") or {}), "certificate": base64.b64encode(pem).decode("ascii")}
        return out

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.indexer.get(key)
        if csr is None:
            return
        out = self.decide(csr)
        if out is None:
            return
        try:
            await self.client.update(CERTIFICATESIGNINGREQUESTS, out, subresource="status")
        except StatusError as e:
            if e.code == 404:
                return
            raise
        log.info("csrsigning: %s %s", "signed" if has_certificate(out) else "failed", key)


@register("csrapproving")
async def start_approving(ctx: ControllerContext) -> None:
    ctl = CSRApprovingController(ctx)
    await ctx.informers.start()
    await ctl.run()


@register("csrsigning")
async def start_signing(ctx: ControllerContext) -> None:
    opts = ctx.options
    if not opts.cluster_signing_cert_file or not opts.cluster_signing_key_file:
        log.info("csrsigning: no --cluster-signing-cert-file/--cluster-signing-key-file; not signing")
        # the manager restarts start functions that return: stay idle instead
        await asyncio.Event().wait()
        return
    ca = CertificateAuthority.from_files(opts.cluster_signing_cert_file, opts.cluster_signing_key_file)
    ctl = CSRSigningController(ctx, ca)
    await ctx.informers.start()
    await ctl.run()
