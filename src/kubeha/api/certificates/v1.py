"""certificates.k8s.io/v1 CertificateSigningRequest, with ``status`` and ``approval`` subresources.

Numbers follow k8s.io/api/certificates/v1/generated.proto; validation follows upstream's
pkg/apis/certificates/validation. ``spec.request`` must be a PEM "CERTIFICATE REQUEST" with a valid
signature (checked with ``cryptography``). The requester fields (username, uid, groups, extra) are
written by the server at creation (:func:`set_requester`); spec never changes afterwards.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta)
from kubeha.api import validation
from kubeha.api.errors import Cause, duplicate, forbidden_field, invalid_value, not_supported, required
from kubeha.api.registry import ResourceInfo, Strategy, SubresourceInfo, register
from kubeha.api.schema import BYTES, INT32, META, STRING, TIME, Obj, f, list_of, map_of, struct, type_meta_fields

GROUP = "certificates.k8s.io"
VERSION = "v1"
P = "io.k8s.api.certificates.v1."

KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBE_APISERVER_CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"

KEY_USAGES = (
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
)
# Conditions that, once added, stay; Approved and Denied exclude each other.
APPROVED, DENIED, FAILED = "Approved", "Denied", "Failed"
MIN_EXPIRATION_SECONDS = 600

struct(
    P + "CertificateSigningRequestSpec",
    "The certificate request; immutable after creation.",
    f("request", 1, BYTES, "PEM-encoded x509 certificate request.", required=True, list_type="atomic"),
    f("username", 2, STRING, "User that created the request (set by the server)."),
    f("uid", 3, STRING, "UID of that user (set by the server)."),
    f("groups", 4, list_of(STRING), "Groups of that user (set by the server).", list_type="atomic"),
    f("usages", 5, list_of(STRING), "Key usages requested.", list_type="atomic", enum=KEY_USAGES),
    f("extra", 6, map_of(list_of(STRING)), "Extra attributes of that user (set by the server)."),
    f("signerName", 7, STRING, "The signer asked to issue the certificate.", required=True),
    f("expirationSeconds", 8, INT32, "Requested certificate lifetime (at least 600).", pointer=True),
)
struct(
    P + "CertificateSigningRequestCondition",
    "A condition of a request: Approved, Denied or Failed.",
    f("type", 1, STRING, "Type of the condition.", required=True),
    f("reason", 2, STRING, "Short reason."),
    f("message", 3, STRING, "Human-readable details."),
    f("lastUpdateTime", 4, TIME, "When the condition was last updated."),
    f("lastTransitionTime", 5, TIME, "When the condition last changed status."),
    f("status", 6, STRING, "True, False or Unknown.", required=True),
)
struct(
    P + "CertificateSigningRequestStatus",
    "Approval state and the issued certificate.",
    f(
        "conditions",
        1,
        list_of(P + "CertificateSigningRequestCondition"),
        "Approved / Denied / Failed conditions.",
        list_type="map",
        map_keys=("type",),
    ),
    f("certificate", 2, BYTES, "The issued certificate chain (PEM); immutable once set.", list_type="atomic"),
)
struct(
    P + "CertificateSigningRequest",
    "A request for an x509 certificate from a signer, approved and issued asynchronously.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, P + "CertificateSigningRequestSpec", "The request.", required=True),
    f("status", 3, P + "CertificateSigningRequestStatus", "Approval state and certificate."),
    gvk=(GROUP, VERSION, "CertificateSigningRequest"),
)
struct(
    P + "CertificateSigningRequestList",
    "A list of CertificateSigningRequests.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "CertificateSigningRequest"), "The requests.", required=True),
    gvk=(GROUP, VERSION, "CertificateSigningRequestList"),
)

_PATH_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")


def decode_bytes(value: Any) -> bytes | None:
    """A BYTES field's JSON form (base64) as bytes; None when not valid base64."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_csr(pem: bytes) -> Any:
    """The x509 CSR in a PEM "CERTIFICATE REQUEST" block; ValueError with upstream's message."""
    from cryptography import x509

    text = pem.decode("latin-1")
    begin = text.find("-----BEGIN ")
    if begin < 0 or not text[begin:].startswith("-----BEGIN CERTIFICATE REQUEST-----"):
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        csr = x509.load_pem_x509_csr(pem[begin:])
    except ValueError as e:
        raise ValueError(f"x509: malformed certificate request: {e}") from None
    if not csr.is_signature_valid:
        raise ValueError("x509: ECDSA verification failure")
    return csr


def validate_signer_name(name: Any, path: str = "spec.signerName") -> list[Cause]:
    """Upstream ValidateSignerName: ``<fully.qualified.domain>/<path>``."""
    if not name:
        return [required(path)]
    if not isinstance(name, str) or "/" not in name:
        return [
            invalid_value(path, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")
        ]
    domain, _, rest = name.partition("/")
    causes: list[Cause] = []
    domain_errors = validation.is_dns1123_subdomain(domain)
    if "." not in domain and not domain_errors:
        domain_errors = ["should be a domain with at least two segments separated by dots"]
    causes += [invalid_value(path, name, f"validating domain component: {m}") for m in domain_errors]
    if not rest:
        causes.append(invalid_value(path, name, "validating path component: must not be empty"))
    elif len(rest) > 253 or not _PATH_RE.match(rest):
        causes.append(
            invalid_value(
                path,
                name,
                "validating path component: must consist of alphanumeric characters, '-', '_', '.' or '/', "
                "and must start and end with an alphanumeric character",
            )
        )
    return causes


def _bytes_value() -> str:
    return "[]byte{...}"


def validate_spec(spec: Any) -> list[Cause]:
    spec = spec if isinstance(spec, dict) else {}
    causes: list[Cause] = []
    raw = spec.get("request")
    pem = decode_bytes(raw) if raw else None
    if not raw:
        causes.append(required("spec.request"))
    elif pem is None:
        causes.append(Cause("FieldValueInvalid", "spec.request", "Invalid value: []byte{...}: illegal base64 data"))
    else:
        try:
            parse_csr(pem)
        except ValueError as e:
            causes.append(Cause("FieldValueInvalid", "spec.request", f"Invalid value: {_bytes_value()}: {e}"))
    usages = spec.get("usages") or []
    if not usages:
        causes.append(required("spec.usages", "usages must be provided"))
    seen: set[str] = set()
    for i, usage in enumerate(usages):
        if usage not in KEY_USAGES:
            causes.append(not_supported(f"spec.usages[{i}]", usage, sorted(KEY_USAGES)))
        elif usage in seen:
            causes.append(duplicate(f"spec.usages[{i}]", usage))
        seen.add(usage)
    causes += validate_signer_name(spec.get("signerName"))
    seconds = spec.get("expirationSeconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 600):
        causes.append(
            invalid_value(
                "spec.expirationSeconds", seconds, "may not specify a duration less than 600 seconds (10 minutes)"
            )
        )
    return causes


def validate_status(status: Any) -> list[Cause]:
    status = status if isinstance(status, dict) else {}
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, c in enumerate(status.get("conditions") or []):
        p = f"status.conditions[{i}]"
        c = c if isinstance(c, dict) else {}
        kind = c.get("type") or ""
        if not kind:
            causes.append(required(f"{p}.type"))
        st = c.get("status") or ""
        if not st:
            causes.append(required(f"{p}.status"))
        elif kind in (APPROVED, DENIED, FAILED) and st != "True":
            causes.append(not_supported(f"{p}.status", st, ["True"]))
        elif st not in ("True", "False", "Unknown"):
            causes.append(not_supported(f"{p}.status", st, ["False", "True", "Unknown"]))
        if kind in seen:
            causes.append(duplicate(f"{p}.type", kind))
        seen.add(kind)
    if APPROVED in seen and DENIED in seen:
        causes.append(invalid_value("status.conditions", "", "Approved and Denied conditions are mutually exclusive"))
    cert = status.get("certificate")
    if cert:
        data = decode_bytes(cert)
        if data is None:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "status.certificate",
                    'Invalid value: "<certificate data>": illegal base64 data',
                )
            )
        else:
            why = _certificate_problem(data)
            if why:
                causes.append(
                    Cause("FieldValueInvalid", "status.certificate", f'Invalid value: "<certificate data>": {why}')
                )
        if APPROVED not in seen:
            causes.append(
                forbidden_field(
                    "status.certificate", "certificate may only be set if the Approved condition is present"
                )
            )
    return causes


def _certificate_problem(data: bytes) -> str | None:
    from cryptography import x509

    text = data.decode("latin-1")
    blocks = re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", text, flags=re.S)
    if not blocks:
        return "must contain at least one CERTIFICATE PEM block"
    for label, _ in blocks:
        if label != "CERTIFICATE":
            return f'only CERTIFICATE PEM blocks are allowed, found "{label}"'
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError as e:
        return str(e)
    return None


def _conditions(obj: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, dict)}


def set_requester(obj: Obj, username: str, uid: str, groups: list[str], extra: dict[str, list[str]]) -> None:
    """Record who created the request (upstream's PrepareForCreate does this from the request context)."""
    spec = obj.setdefault("spec", {})
    spec["username"] = username
    if uid:
        spec["uid"] = uid
    else:
        spec.pop("uid", None)
    spec["groups"] = list(groups)
    if extra:
        spec["extra"] = {k: list(v) for k, v in extra.items()}
    else:
        spec.pop("extra", None)


class CertificateSigningRequestStrategy(Strategy):
    has_status = True
    track_generation = False
    name_kind = "path"

    def prepare_for_create(self, obj: Obj) -> None:
        obj.pop("status", None)
        spec = obj.get("spec")
        if isinstance(spec, dict):
            # clients cannot claim an identity: the server writes it with set_requester
            for key in ("username", "uid", "groups", "extra"):
                spec.pop(key, None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        # the main endpoint changes metadata only
        new["spec"] = old.get("spec")
        super().prepare_for_update(new, old)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_spec(obj.get("spec"))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_status(new.get("status"))

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validate_status(new.get("status"))
        causes += _approval_unchanged(new, old)
        causes += _kept_conditions(new, old, (FAILED,))
        old_cert = (old.get("status") or {}).get("certificate")
        if old_cert and (new.get("status") or {}).get("certificate") != old_cert:
            causes.append(forbidden_field("status.certificate", "updates may not modify existing certificate content"))
        return causes


def _approval_unchanged(new: Obj, old: Obj) -> list[Cause]:
    """The status subresource may not add or remove Approved/Denied (that is what approval is for)."""
    causes: list[Cause] = []
    nc, oc = _conditions(new), _conditions(old)
    for kind in (APPROVED, DENIED):
        if kind in nc and kind not in oc:
            causes.append(forbidden_field("status.conditions", f'updates may not add a condition of type "{kind}"'))
        if kind in oc and kind not in nc:
            causes.append(forbidden_field("status.conditions", f'updates may not remove a condition of type "{kind}"'))
    return causes


def _kept_conditions(new: Obj, old: Obj, kinds: tuple[str, ...]) -> list[Cause]:
    nc, oc = _conditions(new), _conditions(old)
    return [
        forbidden_field("status.conditions", f'updates may not remove a condition of type "{k}"')
        for k in kinds
        if k in oc and k not in nc
    ]


def prepare_for_approval_update(new: Obj, old: Obj) -> None:
    """approval subresource: only status.conditions change; spec, metadata and certificate are kept."""
    conditions = (new.get("status") or {}).get("conditions")
    new.clear()
    new.update({k: v for k, v in old.items() if k != "status"})
    status = dict(old.get("status") or {})
    if conditions is not None:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    new["status"] = status


def validate_approval_update(new: Obj, old: Obj) -> list[Cause]:
    """Approved and Denied conditions, once added, cannot be removed; Failed belongs to the signer."""
    causes = validate_status(new.get("status"))
    causes += _kept_conditions(new, old, (APPROVED, DENIED, FAILED))
    nc, oc = _conditions(new), _conditions(old)
    if FAILED in nc and FAILED not in oc:
        causes.append(forbidden_field("status.conditions", 'updates may not add a condition of type "Failed"'))
    return causes


CERTIFICATESIGNINGREQUESTS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "certificatesigningrequests",
        "CertificateSigningRequest",
        False,
        P + "CertificateSigningRequest",
        strategy=CertificateSigningRequestStrategy(),
        short_names=("csr",),
        subresources=(
            SubresourceInfo("approval", "CertificateSigningRequest"),
            SubresourceInfo("status", "CertificateSigningRequest"),
        ),
        field_selectors={"spec.signerName": lambda o: str((o.get("spec") or {}).get("signerName") or "")},
    )
)
