"""Service-account JWTs: signing, verification, and the checks against live objects."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeha.apiserver import serviceaccounts as sat
from kubeha.apiserver.authn import InvalidToken

SA = {"metadata": {"name": "robot", "namespace": "ns1", "uid": "sa-uid"}}
POD = {"metadata": {"name": "p1", "namespace": "ns1", "uid": "pod-uid"}}


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("make", [_rsa, _ec], ids=["RS256", "ES256"])
def test_sign_and_verify(make: object) -> None:
    key = make()  # type: ignore[operator]
    token = sat.sign({"sub": "x", "n": 1}, key)
    header, _, _, sig = sat.decode_unverified(token)
    assert header["alg"] == ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
    assert header["kid"] == sat.key_id(key.public_key())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert len(sig) == 64  # raw r||s, not DER
    assert sat.verify_signature(token, [key.public_key()]) == {"sub": "x", "n": 1}
    with pytest.raises(InvalidToken):
        sat.verify_signature(token, [make().public_key()])  # type: ignore[operator]
    h, c, s = token.split(".")
    with pytest.raises(InvalidToken):
        sat.verify_signature(f"{h}.{c}x.{s}", [key.public_key()])


def test_load_keys(tmp_path: Path) -> None:
    key = _rsa()
    priv = tmp_path / "sa.key"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    other = _ec()
    pub = tmp_path / "sa.pub"
    pub.write_bytes(
        other.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        + key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    loaded = sat.load_private_key(priv)
    assert sat.key_id(loaded.public_key()) == sat.key_id(key.public_key())
    assert [sat.key_id(k) for k in sat.load_public_keys(pub)] == [
        sat.key_id(other.public_key()),
        sat.key_id(key.public_key()),
    ]
    assert len(sat.load_public_keys(priv)) == 1  # a private key file verifies too
    (tmp_path / "empty.pem").write_text("nothing")
    with pytest.raises(ValueError):
        sat.load_public_keys(tmp_path / "empty.pem")


def test_claims_shape() -> None:
    issuer = sat.TokenIssuer(_rsa(), clock=lambda: 1000.0)
    claims = issuer.claims(SA, ["api"], 3600, ("Pod", POD))
    assert claims["iss"] == sat.DEFAULT_ISSUER
    assert claims["sub"] == "system:serviceaccount:ns1:robot"
    assert (claims["aud"], claims["iat"], claims["nbf"], claims["exp"]) == (["api"], 1000, 1000, 4600)
    assert claims["kubernetes.io"] == {
        "namespace": "ns1",
        "serviceaccount": {"name": "robot", "uid": "sa-uid"},
        "pod": {"name": "p1", "uid": "pod-uid"},
    }
    assert sat.split_username("system:serviceaccount:ns1:robot") == ("ns1", "robot")
    assert sat.split_username("system:serviceaccount:bad") is None


class _World:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, object]] = {
            ("serviceaccounts", "ns1", "robot"): SA,
            ("pods", "ns1", "p1"): POD,
        }

    async def lookup(self, resource: str, ns: str, name: str) -> dict[str, object] | None:
        return self.objects.get((resource, ns, name))


def _auth(token: str, world: _World, key: rsa.RSAPrivateKey, auds: list[str] | None = None) -> object:
    a = sat.ServiceAccountAuthenticator([key.public_key()], [sat.DEFAULT_ISSUER], world.lookup)
    return asyncio.run(a.authenticate_token(token, auds if auds is not None else [sat.DEFAULT_ISSUER]))


def test_authenticator_checks_live_objects() -> None:
    key = _rsa()
    issuer = sat.TokenIssuer(key)
    world = _World()
    token = issuer.issue(issuer.claims(SA, [sat.DEFAULT_ISSUER], 3600, ("Pod", POD)))
    res = _auth(token, world, key)
    assert res is not None
    user, auds = res  # type: ignore[misc]
    assert user.name == "system:serviceaccount:ns1:robot" and user.uid == "sa-uid"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns1")
    assert user.extra[sat.EXTRA_POD_NAME] == ["p1"] and user.extra[sat.EXTRA_CREDENTIAL_ID][0].startswith("JTI=")
    assert auds == [sat.DEFAULT_ISSUER]
    with pytest.raises(InvalidToken, match="audiences"):
        _auth(token, world, key, ["other"])
    # a re-created pod (new uid) or a deleted account revokes the token
    world.objects[("pods", "ns1", "p1")] = {"metadata": {"name": "p1", "uid": "new"}}
    with pytest.raises(InvalidToken, match="pod"):
        _auth(token, world, key)
    world.objects[("pods", "ns1", "p1")] = {"metadata": {"name": "p1", "uid": "pod-uid", "deletionTimestamp": "x"}}
    with pytest.raises(InvalidToken, match="being deleted"):
        _auth(token, world, key)
    del world.objects[("serviceaccounts", "ns1", "robot")]
    with pytest.raises(InvalidToken, match="deleted"):
        _auth(issuer.issue(issuer.claims(SA, [sat.DEFAULT_ISSUER], 3600)), world, key)


def test_authenticator_expiry_and_foreign_tokens() -> None:
    key = _rsa()
    world = _World()
    old = sat.TokenIssuer(key, clock=lambda: time.time() - 7200)
    with pytest.raises(InvalidToken, match="expired"):
        _auth(old.issue(old.claims(SA, [sat.DEFAULT_ISSUER], 3600)), world, key)
    other_issuer = sat.TokenIssuer(key, issuer="https://elsewhere")
    assert _auth(other_issuer.issue(other_issuer.claims(SA, ["x"], 3600)), world, key) is None
    assert _auth("not-a-jwt", world, key) is None
