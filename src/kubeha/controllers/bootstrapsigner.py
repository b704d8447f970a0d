"""bootstrapsigner: signs the ``kube-public/cluster-info`` ConfigMap with every bootstrap token.

A joining node knows only a bootstrap token ``<id>.<secret>``. It reads ``cluster-info``
anonymously and trusts the ``kubeconfig`` in it (and so the cluster CA) once the
``jws-kubeconfig-<id>`` entry verifies: a detached JWS (HS256, keyed with the token secret, ``kid``
= token id) over the kubeconfig text. This controller keeps one such entry per valid signing token
(Secret ``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token`` with
``usage-bootstrap-signing: "true"``, not expired) and drops entries of tokens that are gone.

It acts only on an existing ``cluster-info`` (``kubeha init`` writes it). The token helpers here
are shared with the token cleaner.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import CONFIGMAPS, SECRETS
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, Requeue
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
TOKEN_NAMESPACE = "kube-system"
TOKEN_SECRET_PREFIX = "bootstrap-token-"
TOKEN_SECRET_SELECTOR = f"type={TOKEN_SECRET_TYPE}"
CLUSTER_INFO_NAMESPACE = "kube-public"
CLUSTER_INFO = "cluster-info"
KUBECONFIG_KEY = "kubeconfig"
JWS_PREFIX = "jws-kubeconfig-"


def secret_data(secret: Obj, key: str) -> str:
    """One ``data`` entry of a Secret, decoded ("" when absent or unreadable)."""
    raw = (secret.get("data") or {}).get(key)
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def parse_rfc3339(value: str) -> float | None:
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # RFC 3339 requires an offset
    return when.timestamp()


def expiration(secret: Obj, now: float) -> tuple[float | None, bool]:
    """(seconds left or None when the token never expires, already expired?). An unreadable
    ``expiration`` counts as expired, as upstream."""
    value = secret_data(secret, "expiration")
    if not value:
        return None, False
    when = parse_rfc3339(value)
    if when is None:
        return 0.0, True
    left = when - now
    if left <= 0:
        return 0.0, True
    return left, False


def signing_token(secret: Obj, now: float) -> tuple[str, str] | None:
    """(token id, token secret) when ``secret`` is a valid, unexpired bootstrap token allowed to sign."""
    if secret.get("type") != TOKEN_SECRET_TYPE:
        return None
    md = secret.get("metadata") or {}
    name = str(md.get("name") or "")
    if md.get("namespace") != TOKEN_NAMESPACE or not name.startswith(TOKEN_SECRET_PREFIX):
        return None
    token_id = secret_data(secret, "token-id")
    if not token_id or name[len(TOKEN_SECRET_PREFIX) :] != token_id:
        return None
    token_secret = secret_data(secret, "token-secret")
    if not token_secret or expiration(secret, now)[1]:
        return None
    if secret_data(secret, "usage-bootstrap-signing") != "true":
        return None
    return token_id, token_secret


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def detached_jws(content: str, token_id: str, token_secret: str) -> str:
    """Compact JWS over ``content`` with the payload left out: ``<header>..<signature>``."""
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    signing_input = f"{header}.{_b64url(content.encode())}".encode("ascii")
    signature = hmac.new(token_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}..{_b64url(signature)}"


def signed_data(data: dict[str, str], tokens: Iterable[tuple[str, str]]) -> dict[str, str] | None:
    """``data`` with exactly one signature per token; None when it needs no change (or has no
    kubeconfig to sign)."""
    content = data.get(KUBECONFIG_KEY)
    if content is None:
        return None
    out = {k: v for k, v in data.items() if not k.startswith(JWS_PREFIX)}
    for token_id, token_secret in tokens:
        out[JWS_PREFIX + token_id] = detached_jws(content, token_id, token_secret)
    return None if out == data else out


class BootstrapSigner:
    def __init__(self, ctx: ControllerContext, *, wall: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.wall = wall
        self.configmaps = ctx.informers.informer_for(
            CONFIGMAPS, namespace=CLUSTER_INFO_NAMESPACE, field_selector=f"metadata.name={CLUSTER_INFO}"
        )
        self.secrets = ctx.informers.informer_for(
            SECRETS, namespace=TOKEN_NAMESPACE, field_selector=TOKEN_SECRET_SELECTOR
        )
        self.queue = RateLimitingQueue(name="bootstrapsigner")
        self.key = f"{CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO}"

        # every change of either side means one thing: look at cluster-info again
        def poke(*_: Any) -> None:
            self.queue.add(self.key)

        for inf in (self.configmaps, self.secrets):
            inf.add_event_handler(on_add=poke, on_update=poke, on_delete=poke)
        self.controller = Controller("bootstrapsigner", self.reconcile, self.queue)

    async def run(self) -> None:
        await self.controller.run([self.configmaps, self.secrets])

    def tokens(self, now: float) -> tuple[list[tuple[str, str]], float | None]:
        """Valid signing tokens, and seconds until the first of them expires (None: none does)."""
        out: list[tuple[str, str]] = []
        soonest: float | None = None
        for secret in self.secrets.indexer.list():
            tok = signing_token(secret, now)
            if tok is None:
                continue
            out.append(tok)
            left, _ = expiration(secret, now)
            if left is not None and (soonest is None or left < soonest):
                soonest = left
        return sorted(out), soonest

    async def reconcile(self, key: str) -> Requeue | None:
        cm = self.configmaps.indexer.get(key)
        if cm is None or (cm.get("metadata") or {}).get("deletionTimestamp"):
            return None
        tokens, soonest = self.tokens(self.wall())
        data = signed_data(dict(cm.get("data") or {}), tokens)
        if data is not None:
            try:
                await self.client.update(CONFIGMAPS, {**cm, "data": data}, CLUSTER_INFO_NAMESPACE)
            except StatusError as e:
                if e.code == 404:
                    return None
                raise
            log.info("bootstrapsigner: cluster-info signed with %d token(s)", len(tokens))
        # an expiring token's signature must go when it expires, even before the cleaner runs
        return Requeue(after=soonest) if soonest is not None else None


# off by default, as upstream: kubeadm-style setups enable it (--controllers=*,bootstrapsigner,tokencleaner)
@register("bootstrapsigner", enabled_by_default=False)
async def start(ctx: ControllerContext) -> None:
    ctl = BootstrapSigner(ctx)
    await ctx.informers.start()
    await ctl.run()
