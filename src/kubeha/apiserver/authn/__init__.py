"""Authentication: a chain of authenticators, the first that recognises the request wins.

Order, as upstream: client certificates (CN -> user, each O -> group), then bearer tokens (static
token file, bootstrap tokens, service-account JWTs). A credential that is presented but not valid
is a 401 -- it never falls through to anonymous. With no credential at all the request is
``system:anonymous`` in ``system:unauthenticated`` when anonymous access is enabled, else 401.
Every authenticated user also gets ``system:authenticated``.

Impersonation (``Impersonate-*`` headers) is applied after authentication and authorized against
the real user (``kubeha.apiserver.authn.impersonation``).
"""

from __future__ import annotations

import contextvars
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeha.api import errors
from kubeha.apiserver.httpserver import Key, Request

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)

    def to_api(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo form."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def with_authenticated(groups: Sequence[str]) -> tuple[str, ...]:
    out = list(groups)
    if AUTHENTICATED not in out:
        out.append(AUTHENTICATED)
    return tuple(out)


# A request authenticator returns the user, None when the request carries no credential it knows,
# or raises StatusError(401) when it carries a bad one.
Authenticator = Callable[[Request], Awaitable[UserInfo | None]]


class TokenAuthenticator:
    """Base of bearer-token authenticators. ``authenticate_token`` returns the user and the audiences
    the token is good for (None: audience-agnostic), None when the token is not of its kind, and
    raises :class:`InvalidToken` when it is of its kind but not valid."""

    async def authenticate_token(
        self, token: str, audiences: Sequence[str]
    ) -> tuple[UserInfo, list[str] | None] | None:
        raise NotImplementedError


class InvalidToken(Exception):
    """A token this authenticator recognises but rejects (expired, revoked, bad signature...)."""


# who is calling, for code that runs inside a request but gets no request object (write hooks)
CURRENT_USER: contextvars.ContextVar[UserInfo | None] = contextvars.ContextVar("kubeha_user", default=None)


def user_from_peercert(cert: dict[str, Any] | None) -> UserInfo | None:
    """The user of a verified client certificate (ssl.SSLSocket.getpeercert() form)."""
    if not cert:
        return None
    cn = ""
    orgs: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and not cn:
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        return None
    return UserInfo(cn, with_authenticated(orgs))


# the user of each TLS connection and when its certificate ends, kept with the connection: the
# certificate cannot change, and getpeercert() decodes it anew on every call
_CERT_USER: Key[tuple[UserInfo | None, float]] = Key("client_cert_user")
# per request: who is calling, once authenticated (for authz, audit, admission)
USER: Key[UserInfo] = Key("user")


def _not_after(cert: dict[str, Any] | None) -> float:
    try:
        return float(ssl.cert_time_to_seconds(cert["notAfter"])) if cert else math.inf
    except (KeyError, ValueError):
        return math.inf


async def client_cert_authenticator(request: Request) -> UserInfo | None:
    transport = request.transport
    if transport is None:
        return None
    state = request.connection_state
    cached = state.get(_CERT_USER)
    if cached is None:
        cert = transport.get_extra_info("peercert")
        cached = state[_CERT_USER] = (user_from_peercert(cert), _not_after(cert))
    user, not_after = cached
    if user is not None and time.time() > not_after:
        # checked on every request, as upstream verifies the chain per request: a certificate
        # that expires while its connection is kept alive stops authenticating then (401, not
        # anonymous, unless a bearer token authenticates the request instead)
        if "Authorization" in request.headers:
            return None
        raise errors.unauthorized()
    return user


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request; "" for a malformed Authorization header, None for none."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None  # basic auth and others are not supported: as if absent (upstream ignores them too)
    return token.strip()


class AuthenticationChain:
    def __init__(
        self,
        authenticators: list[Authenticator] | None = None,
        anonymous: bool = True,
        tokens: list[TokenAuthenticator] | None = None,
        api_audiences: Sequence[str] = (),
    ) -> None:
        self.authenticators: list[Authenticator] = list(authenticators or [client_cert_authenticator])
        self.tokens: list[TokenAuthenticator] = list(tokens or [])
        self.anonymous = anonymous
        self.api_audiences: tuple[str, ...] = tuple(api_audiences)

    async def authenticate(self, request: Request) -> UserInfo:
        for auth in self.authenticators:
            user = await auth(request)
            if user is not None:
                return user
        token = bearer_token(request)
        if token is not None:
            try:
                found = await self.authenticate_token(token, self.api_audiences)
            except InvalidToken:
                raise errors.unauthorized() from None
            if found is None:
                raise errors.unauthorized()
            return found[0]
        if self.anonymous:
            return UserInfo(ANONYMOUS, (UNAUTHENTICATED,))
        raise errors.unauthorized()

    async def authenticate_token(self, token: str, audiences: Sequence[str] = ()) -> tuple[UserInfo, list[str]] | None:
        """Run a bearer token through the token authenticators (TokenReview uses this too).

        Returns the user and the audiences it was accepted for, None when no authenticator knows
        the token; raises InvalidToken for a recognised but invalid one.
        """
        if not token:
            return None
        wanted = list(audiences or self.api_audiences)
        for auth in self.tokens:
            res = await auth.authenticate_token(token, wanted)
            if res is None:
                continue
            user, auds = res
            return UserInfo(user.name, with_authenticated(user.groups), user.uid, user.extra), (
                wanted if auds is None else auds
            )
        return None
