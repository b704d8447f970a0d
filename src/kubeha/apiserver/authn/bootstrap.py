"""Bootstrap tokens (``--enable-bootstrap-token-auth``), as upstream's bootstrap authenticator.

A token ``<id>.<secret>`` is valid while the Secret ``kube-system/bootstrap-token-<id>`` of type
``bootstrap.kubernetes.io/token`` exists (not being deleted), holds the same id and secret, allows
``usage-bootstrap-authentication`` and has not passed its ``expiration``. The user is
``system:bootstrap:<id>`` in ``system:bootstrappers`` plus the secret's ``auth-extra-groups``.
Secrets are read from the watch cache through ``lookup``.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from kubeha.api.schema import Obj
from kubeha.apiserver.authn import InvalidToken, TokenAuthenticator, UserInfo

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
NAMESPACE = "kube-system"
USER_PREFIX = "system:bootstrap:"
GROUP = "system:bootstrappers"
EXTRA_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")

# (namespace, name) -> the Secret, or None
SecretLookup = Callable[[str, str], Awaitable[Obj | None]]


def _data(secret: Obj, key: str) -> str:
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        return str((secret.get("stringData") or {}).get(key) or "")
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def _expired(value: str, now: datetime.datetime) -> bool:
    if not value:
        return False
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return True  # an unreadable expiration is treated as expired, as upstream
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return now >= when


class BootstrapTokenAuthenticator(TokenAuthenticator):
    def __init__(self, lookup: SecretLookup, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self._lookup = lookup
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))

    async def authenticate_token(
        self, token: str, audiences: Sequence[str]
    ) -> tuple[UserInfo, list[str] | None] | None:
        m = TOKEN_RE.match(token)
        if m is None:
            return None
        token_id, token_secret = m.groups()
        secret = await self._lookup(NAMESPACE, SECRET_PREFIX + token_id)
        if secret is None:
            raise InvalidToken(f"no bootstrap token secret for {token_id}")
        if (secret.get("metadata") or {}).get("deletionTimestamp"):
            raise InvalidToken(f"bootstrap token {token_id} is being deleted")
        if secret.get("type") != SECRET_TYPE:
            raise InvalidToken(f"secret for bootstrap token {token_id} has the wrong type")
        stored = _data(secret, "token-secret")
        if not hmac.compare_digest(stored.encode(), token_secret.encode()) or _data(secret, "token-id") != token_id:
            raise InvalidToken(f"bootstrap token {token_id}: secret does not match")
        if _expired(_data(secret, "expiration"), self._clock()):
            raise InvalidToken(f"bootstrap token {token_id} has expired")
        if _data(secret, "usage-bootstrap-authentication") != "true":
            raise InvalidToken(f"bootstrap token {token_id} may not be used for authentication")
        groups = [GROUP]
        for g in _data(secret, "auth-extra-groups").split(","):
            g = g.strip()
            if not g:
                continue
            if not EXTRA_GROUP_RE.match(g):
                raise InvalidToken(f"bootstrap token {token_id}: invalid extra group {g!r}")
            if g not in groups:
                groups.append(g)
        return UserInfo(USER_PREFIX + token_id, tuple(groups)), None
