"""bootstrapsigner (JWS signatures on cluster-info) and tokencleaner (expired token Secrets)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from kubeha.controllers import bootstrapsigner as bs
from kubeha.controllers import certificates  # noqa: F401  (registers csrapproving, csrsigning)
from kubeha.controllers import tokencleaner as tc
from kubeha.controllers.context import CONTROLLERS, ControllerContext, enabled
from kubeha.machinery.informer import SharedInformerFactory

Obj = dict[str, Any]

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def token_secret(
    token_id: str = "abcdef",
    secret: str = "0123456789abcdef",
    *,
    expiration: str | None = None,
    signing: bool = True,
    name: str | None = None,
    uid: str = "uid-1",
) -> Obj:
    data = {"token-id": token_id, "token-secret": secret}
    if signing:
        data["usage-bootstrap-signing"] = "true"
    if expiration is not None:
        data["expiration"] = expiration
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": name or f"bootstrap-token-{token_id}", "namespace": "kube-system", "uid": uid},
        "data": {k: b64(v) for k, v in data.items()},
    }


def independent_jws(content: str, kid: str, key: str) -> str:
    """RFC 7515 by hand: base64url(header) . base64url(payload), HMAC-SHA256, payload dropped."""

    def enc(b: bytes) -> str:
        return base64.b64encode(b).decode().replace("+", "-").replace("/", "_").rstrip("=")

    header = enc(('{"alg":"HS256","kid":"' + kid + '"}').encode())
    mac = hmac.new(key.encode(), (header + "." + enc(content.encode())).encode(), hashlib.sha256).digest()
    return header + ".." + enc(mac)


def test_detached_jws_matches_independent_computation_and_upstream_vector() -> None:
    for content in ("apiVersion: v1\nkind: Config\n", "", "ünïcode ✓"):
        assert bs.detached_jws(content, "abcdef", "0123456789abcdef") == independent_jws(
            content, "abcdef", "0123456789abcdef"
        )
    # the value upstream's own test expects for these inputs
    got = bs.detached_jws(
        "Hello from the other side. I must have called a thousand times.", "joshua", "my voice is my passcode"
    )
    assert got == "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"
    header = json.loads(base64.urlsafe_b64decode(got.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "kid": "joshua"}


def test_expiration() -> None:
    assert bs.expiration(token_secret(), NOW) == (None, False)
    assert bs.expiration(token_secret(expiration="2025-06-15T15:07:40Z"), NOW) == (60.0, False)
    assert bs.expiration(token_secret(expiration="2025-06-15T17:07:40+02:00"), NOW) == (60.0, False)
    assert bs.expiration(token_secret(expiration="2025-06-15T15:06:40Z"), NOW) == (0.0, True)
    assert bs.expiration(token_secret(expiration="not a time"), NOW) == (0.0, True)


def test_signing_token_rules() -> None:
    assert bs.signing_token(token_secret(), NOW) == ("abcdef", "0123456789abcdef")
    assert bs.signing_token(token_secret(signing=False), NOW) is None
    assert bs.signing_token(token_secret(expiration="2025-01-01T00:00:00Z"), NOW) is None
    assert bs.signing_token(token_secret(expiration="2026-01-01T00:00:00Z"), NOW) is not None
    assert bs.signing_token(token_secret(name="bootstrap-token-zzzzzz"), NOW) is None  # id mismatch
    assert bs.signing_token({**token_secret(), "type": "Opaque"}, NOW) is None


def test_signed_data_adds_and_removes() -> None:
    kc = "apiVersion: v1\nkind: Config\n"
    data = {"kubeconfig": kc, "jws-kubeconfig-gone00": "stale", "other": "kept"}
    out = bs.signed_data(data, [("abcdef", "0123456789abcdef")])
    assert out == {
        "kubeconfig": kc,
        "other": "kept",
        "jws-kubeconfig-abcdef": independent_jws(kc, "abcdef", "0123456789abcdef"),
    }
    assert bs.signed_data(out, [("abcdef", "0123456789abcdef")]) is None  # already right
    assert bs.signed_data({"other": "x"}, [("abcdef", "0123456789abcdef")]) is None  # nothing to sign


class FakeClient:
    def __init__(self) -> None:
        self.updates: list[Obj] = []
        self.deletes: list[tuple[str, str | None, Obj | None]] = []

    async def update(self, res: Any, obj: Obj, namespace: str | None = None, **kw: Any) -> Obj:
        self.updates.append(obj)
        return obj

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Obj:
        self.deletes.append((name, namespace, kw.get("preconditions")))
        return {}


def context(client: FakeClient) -> ControllerContext:
    return ControllerContext(client=client, informers=SharedInformerFactory(client))  # type: ignore[arg-type]


def cluster_info(data: dict[str, str]) -> Obj:
    return {"metadata": {"name": "cluster-info", "namespace": "kube-public", "resourceVersion": "3"}, "data": data}


async def test_bootstrap_signer_reconcile() -> None:
    client = FakeClient()
    ctl = bs.BootstrapSigner(context(client), wall=lambda: NOW)
    key = "kube-public/cluster-info"
    # no cluster-info yet: nothing to do
    assert await ctl.reconcile(key) is None and client.updates == []
    ctl.configmaps.indexer.add(cluster_info({"kubeconfig": "kc"}))
    ctl.secrets.indexer.add(token_secret())
    ctl.secrets.indexer.add(token_secret("ghijkl", "ghijklmnopqrstuv", expiration="2025-06-15T15:16:40Z", uid="u2"))
    ctl.secrets.indexer.add(token_secret("mnopqr", "mnopqrstuvwxyzab", signing=False, uid="u3"))
    result = await ctl.reconcile(key)
    # signed by the two signing tokens; looked at again when the expiring one expires
    assert result is not None and result.after == 600.0
    (written,) = client.updates
    assert written["metadata"]["resourceVersion"] == "3"
    assert written["data"] == {
        "kubeconfig": "kc",
        "jws-kubeconfig-abcdef": independent_jws("kc", "abcdef", "0123456789abcdef"),
        "jws-kubeconfig-ghijkl": independent_jws("kc", "ghijkl", "ghijklmnopqrstuv"),
    }


async def test_token_cleaner_schedules_and_deletes() -> None:
    now = [NOW]
    client = FakeClient()
    ctl = tc.TokenCleaner(context(client), wall=lambda: now[0])
    ctl.secrets.indexer.add(token_secret(expiration="2025-06-15T15:07:40Z"))
    key = "kube-system/bootstrap-token-abcdef"
    result = await ctl.reconcile(key)
    assert result is not None and result.after == 60.0 and client.deletes == []
    now[0] += 60.0
    assert await ctl.reconcile(key) is None
    assert client.deletes == [("bootstrap-token-abcdef", "kube-system", {"uid": "uid-1"})]


async def test_token_cleaner_keeps_tokens_without_expiry() -> None:
    client = FakeClient()
    ctl = tc.TokenCleaner(context(client), wall=lambda: NOW)
    ctl.secrets.indexer.add(token_secret())
    assert await ctl.reconcile("kube-system/bootstrap-token-abcdef") is None
    assert await ctl.reconcile("kube-system/bootstrap-token-absent") is None
    assert client.deletes == []


def test_registered_off_by_default_as_upstream() -> None:
    assert not CONTROLLERS["bootstrapsigner"].enabled_by_default
    assert not CONTROLLERS["tokencleaner"].enabled_by_default
    assert {"bootstrapsigner", "tokencleaner"} <= set(enabled(["*", "bootstrapsigner", "tokencleaner"]))
    assert "csrsigning" in enabled(["*"]) and "csrapproving" in enabled(["*"])
