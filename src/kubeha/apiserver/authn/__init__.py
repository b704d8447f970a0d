"""Authentication: a chain of authenticators, the first that recognises the request wins.

Client certificates map CN -> user and each O -> group (plus ``system:authenticated``). With no
credentials the request is ``system:anonymous`` in ``system:unauthenticated`` when anonymous
access is enabled, else 401. Token authenticators (bootstrap tokens, service accounts) are added
to the chain later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubeha.api import errors

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


# an authenticator returns the user, None when the request carries no credential it knows, or
# raises StatusError(401) when it carries a bad one
Authenticator = Callable[[web.Request], Awaitable[UserInfo | None]]


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
    groups = [*orgs]
    if AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(cn, tuple(groups))


async def client_cert_authenticator(request: web.Request) -> UserInfo | None:
    transport = request.transport
    if transport is None:
        return None
    return user_from_peercert(transport.get_extra_info("peercert"))


class AuthenticationChain:
    def __init__(self, authenticators: list[Authenticator] | None = None, anonymous: bool = True) -> None:
        self.authenticators: list[Authenticator] = list(authenticators or [client_cert_authenticator])
        self.anonymous = anonymous

    async def authenticate(self, request: web.Request) -> UserInfo:
        for auth in self.authenticators:
            user = await auth(request)
            if user is not None:
                return user
        if self.anonymous:
            return UserInfo(ANONYMOUS, (UNAUTHENTICATED,))
        raise errors.unauthorized()
