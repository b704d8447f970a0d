"""Service-account tokens: JWT signing and checking (RS256 / ES256 with ``cryptography``).

Claims follow upstream's bound tokens: ``iss``, ``sub`` (``system:serviceaccount:<ns>:<name>``),
``aud`` (a list), ``exp``, ``iat``, ``nbf``, ``jti`` and a private ``kubernetes.io`` claim with the
namespace, the service account (name, uid) and the object the token is bound to (pod, secret or
node: name, uid). A token is valid while it is unexpired, its issuer and an audience match, its
signature verifies with one of the ``--service-account-key-file`` keys, and the service account
and bound object it names still exist with the same uids (checked by
:class:`ServiceAccountAuthenticator` through the watch caches).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from kubeha.api.schema import Obj
from kubeha.apiserver.authn import InvalidToken, TokenAuthenticator, UserInfo

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
# extra keys upstream puts on a service account user with a bound token
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
# tolerated clock skew for nbf / iat, as upstream's validator
LEEWAY = 60

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


# -- keys -------------------------------------------------------------------------------------


def load_private_key(path: str | Path) -> PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: only RSA and EC private keys can sign service account tokens")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name != "secp256r1":
        raise ValueError(f"{path}: EC keys must use P-256 (ES256)")
    return key


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks: list[bytes] = []
    for part in data.split(b"-----BEGIN ")[1:]:
        end = part.find(b"-----END ")
        tail = part.find(b"-----", end + 9)
        if end < 0 or tail < 0:
            continue
        blocks.append(b"-----BEGIN " + part[: tail + 5] + b"\n")
    return blocks


def load_public_keys(path: str | Path) -> list[PublicKey]:
    """Every public key in a PEM file: public keys, certificates and private keys (their public half)."""
    keys: list[PublicKey] = []
    for block in _pem_blocks(Path(path).read_bytes()):
        header = block.split(b"\n", 1)[0]
        key: Any
        if b"CERTIFICATE" in header:
            key = x509.load_pem_x509_certificate(block).public_key()
        elif b"PRIVATE KEY" in header:
            key = serialization.load_pem_private_key(block, password=None).public_key()
        elif b"PUBLIC KEY" in header:
            key = serialization.load_pem_public_key(block)
        else:
            continue
        if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            keys.append(key)
    if not keys:
        raise ValueError(f"{path}: no RSA or EC public key found")
    return keys


def key_id(public: PublicKey) -> str:
    """Upstream's key id: unpadded base64url of the SHA-256 of the DER public key."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())


# -- JWT --------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], key: PrivateKey) -> str:
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    header = {"alg": alg, "kid": key_id(key.public_key())}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    data = signing_input.encode()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + "." + _b64(sig)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature); raises InvalidToken on malformed input."""
    try:
        h, c, s = token.split(".")
        header = json.loads(_unb64(h))
        claims = json.loads(_unb64(c))
        sig = _unb64(s)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidToken(f"malformed token: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("malformed token")
    return header, claims, f"{h}.{c}".encode(), sig


def verify_signature(token: str, keys: Sequence[PublicKey]) -> dict[str, Any]:
    """The claims of a token whose signature one of ``keys`` verifies."""
    header, claims, data, sig = decode_unverified(token)
    alg = header.get("alg")
    for key in keys:
        try:
            if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
                return claims
            if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(sig) == 64:
                der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
                key.verify(der, data, ec.ECDSA(hashes.SHA256()))
                return claims
        except InvalidSignature:
            continue
    raise InvalidToken("invalid signature")


# -- issuing ----------------------------------------------------------------------------------


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a service account user name, or None."""
    if not username.startswith(SA_PREFIX):
        return None
    ns, sep, name = username[len(SA_PREFIX) :].partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


class TokenIssuer:
    def __init__(self, key: PrivateKey, issuer: str = DEFAULT_ISSUER, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.issuer = issuer
        self.clock = clock

    def claims(
        self,
        sa: Obj,
        audiences: Sequence[str],
        expiration_seconds: int,
        bound: tuple[str, Obj] | None = None,
        node: Obj | None = None,
    ) -> dict[str, Any]:
        """Claims for a token of service account ``sa``; ``bound`` is ("Pod"|"Secret"|"Node", object)."""
        md = sa.get("metadata") or {}
        now = int(self.clock())
        private: dict[str, Any] = {
            "namespace": md.get("namespace", ""),
            "serviceaccount": {"name": md.get("name", ""), "uid": md.get("uid", "")},
        }
        if bound is not None:
            kind, obj = bound
            bmd = obj.get("metadata") or {}
            private[kind.lower()] = {"name": bmd.get("name", ""), "uid": bmd.get("uid", "")}
        if node is not None and "node" not in private:
            nmd = node.get("metadata") or {}
            private["node"] = {"name": nmd.get("name", ""), "uid": nmd.get("uid", "")}
        return {
            "aud": list(audiences),
            "exp": now + int(expiration_seconds),
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": now,
            "sub": service_account_user(md.get("namespace", ""), md.get("name", "")),
        }

    def issue(self, claims: dict[str, Any]) -> str:
        return sign(claims, self.key)


# -- authenticating ---------------------------------------------------------------------------

# (resource, namespace, name) -> the object from the watch cache (or None)
ObjectLookup = Callable[[str, str, str], Awaitable[Obj | None]]


class ServiceAccountAuthenticator(TokenAuthenticator):
    """Bound service-account JWTs, checked against the live ServiceAccount and bound object."""

    def __init__(
        self,
        keys: Sequence[PublicKey],
        issuers: Sequence[str],
        lookup: ObjectLookup,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = list(keys)
        self.issuers = set(issuers)
        self.lookup = lookup
        self.clock = clock

    async def authenticate_token(
        self, token: str, audiences: Sequence[str]
    ) -> tuple[UserInfo, list[str] | None] | None:
        if not looks_like_jwt(token):
            return None
        _, unverified, _, _ = decode_unverified(token)
        if unverified.get("iss") not in self.issuers:
            return None  # another issuer's token: not ours to judge
        claims = verify_signature(token, self.keys)
        now = self.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now >= exp:
            raise InvalidToken("service account token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + LEEWAY < nbf:
            raise InvalidToken("service account token is not valid yet")
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
        matched = [a for a in audiences if a in token_auds] if audiences else token_auds
        if not matched:
            raise InvalidToken("token audiences do not match")
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            raise InvalidToken("token carries no kubernetes.io claim")
        ns = str(private.get("namespace") or "")
        sa_ref = private.get("serviceaccount") or {}
        sa_name = str(sa_ref.get("name") or "")
        if not ns or not sa_name or claims.get("sub") != service_account_user(ns, sa_name):
            raise InvalidToken("token subject does not match its service account")
        sa = await self.lookup("serviceaccounts", ns, sa_name)
        sa_uid = str((sa or {}).get("metadata", {}).get("uid") or "")
        if sa is None or (sa_ref.get("uid") and sa_ref.get("uid") != sa_uid):
            raise InvalidToken(f"service account {ns}/{sa_name} has been deleted")
        if (sa.get("metadata") or {}).get("deletionTimestamp"):
            raise InvalidToken(f"service account {ns}/{sa_name} is being deleted")
        extra: dict[str, list[str]] = {}
        for kind, resource in (("pod", "pods"), ("secret", "secrets")):
            ref = private.get(kind)
            if not isinstance(ref, dict):
                continue
            obj = await self.lookup(resource, ns, str(ref.get("name") or ""))
            md = (obj or {}).get("metadata") or {}
            if obj is None or (ref.get("uid") and md.get("uid") != ref.get("uid")):
                raise InvalidToken(f"{kind} {ns}/{ref.get('name')} bound to the token has been deleted")
            if md.get("deletionTimestamp"):
                raise InvalidToken(f"{kind} {ns}/{ref.get('name')} bound to the token is being deleted")
            if kind == "pod":
                extra[EXTRA_POD_NAME] = [str(ref.get("name") or "")]
                extra[EXTRA_POD_UID] = [str(ref.get("uid") or "")]
        node_ref = private.get("node")
        if isinstance(node_ref, dict):
            extra[EXTRA_NODE_NAME] = [str(node_ref.get("name") or "")]
            if node_ref.get("uid"):
                extra[EXTRA_NODE_UID] = [str(node_ref["uid"])]
        if claims.get("jti"):
            extra[EXTRA_CREDENTIAL_ID] = [f"JTI={claims['jti']}"]
        user = UserInfo(service_account_user(ns, sa_name), (SA_GROUP, f"{SA_GROUP}:{ns}"), sa_uid, extra)
        return user, matched
