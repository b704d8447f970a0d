"""Authorization: a chain of authorizers (each says allow, deny or no opinion).

Modes: ``AlwaysAllow`` allows everything. Any other mode (RBAC lands later) currently means the
built-in policy: ``system:masters`` may do anything; everyone may read health and version
(``system:public-info-viewer``); authenticated users may read discovery and OpenAPI
(``system:discovery``); the rest is denied with 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubeha.apiserver.authn import AUTHENTICATED, MASTERS, UserInfo
from kubeha.apiserver.requestinfo import RequestInfo

ALLOW = "allow"
DENY = "deny"
NO_OPINION = "noopinion"

PUBLIC_INFO_PATHS = ("/healthz", "/livez", "/readyz", "/version")
DISCOVERY_PATHS = ("/api", "/apis", "/openapi")


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    is_resource: bool
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @classmethod
    def from_request(cls, user: UserInfo, ri: RequestInfo) -> Attributes:
        return cls(
            user,
            ri.verb,
            ri.is_resource,
            ri.path,
            ri.group,
            ri.version,
            ri.resource,
            ri.subresource,
            ri.namespace,
            ri.name,
        )


Authorizer = Callable[[Attributes], Awaitable[tuple[str, str]]]


async def always_allow(attrs: Attributes) -> tuple[str, str]:
    return ALLOW, ""


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + "/") or path.startswith(r + "?") for r in roots)


async def builtin_policy(attrs: Attributes) -> tuple[str, str]:
    if MASTERS in attrs.user.groups:
        return ALLOW, ""
    if not attrs.is_resource and attrs.verb in ("get", "head"):
        if _under(attrs.path, PUBLIC_INFO_PATHS):
            return ALLOW, ""
        if AUTHENTICATED in attrs.user.groups and _under(attrs.path, DISCOVERY_PATHS):
            return ALLOW, ""
    return NO_OPINION, ""


class AuthorizationChain:
    def __init__(self, modes: tuple[str, ...] | list[str]) -> None:
        self.authorizers: list[Authorizer] = []
        for mode in modes:
            if mode == "AlwaysAllow":
                self.authorizers.append(always_allow)
            elif builtin_policy not in self.authorizers:
                self.authorizers.append(builtin_policy)
        if not self.authorizers:
            self.authorizers.append(builtin_policy)

    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        for a in self.authorizers:
            decision, reason = await a(attrs)
            if decision == ALLOW:
                return True, reason
            if decision == DENY:
                return False, reason
        return False, ""
