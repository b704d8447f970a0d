"""Impersonation headers (``kubectl --as``, ``--as-group``, ``--as-uid``), as upstream's filter.

Each requested attribute needs the ``impersonate`` verb for the real user: ``users`` (or
``serviceaccounts`` in the account's namespace for ``system:serviceaccount:<ns>:<name>``),
``groups``, ``uids`` and ``userextras/<key>`` (the last two in ``authentication.k8s.io``), each
checked by name. Denial is a 403 naming the first attribute refused.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping

from kubeha.api import errors
from kubeha.apiserver.authn import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo

HEADER_USER = "Impersonate-User"
HEADER_GROUP = "Impersonate-Group"
HEADER_UID = "Impersonate-Uid"
HEADER_EXTRA_PREFIX = "Impersonate-Extra-"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
AUTH_GROUP = "authentication.k8s.io"

# (real user, verb, api group, resource, namespace, name) -> (allowed, reason)
Check = Callable[[UserInfo, str, str, str, str, str], Awaitable[tuple[bool, str]]]


class Requested:
    """The impersonation asked for in one request's headers."""

    def __init__(self, user: str, groups: list[str], uid: str, extra: dict[str, list[str]]) -> None:
        self.user = user
        self.groups = groups
        self.uid = uid
        self.extra = extra


def requested(headers: Mapping[str, str]) -> Requested | None:
    """Parse the headers (a multi-dict: ``Impersonate-Group`` may repeat); None when the request
    impersonates nobody."""
    user = ""
    groups: list[str] = []
    uid = ""
    extra: dict[str, list[str]] = {}
    found = False
    for k, v in headers.items():
        lk = k.lower()
        if lk == "impersonate-user":
            user, found = v, True
        elif lk == "impersonate-group":
            groups.append(v)
            found = True
        elif lk == "impersonate-uid":
            uid, found = v, True
        elif lk.startswith("impersonate-extra-"):
            found = True
            key = urllib.parse.unquote(lk[len(HEADER_EXTRA_PREFIX) :])
            extra.setdefault(key, []).append(v)
    if not found:
        return None
    if not user:
        raise errors.bad_request(f"requested {_describe(groups, uid, extra)} without impersonating a user")
    return Requested(user, groups, uid, extra)


def _describe(groups: list[str], uid: str, extra: dict[str, list[str]]) -> str:
    parts = [f"group {g!r}" for g in groups]
    if uid:
        parts.append(f"uid {uid!r}")
    parts += [f"extra {k}" for k in extra]
    return "[" + ", ".join(parts) + "]"


async def impersonate(real: UserInfo, req: Requested, check: Check) -> UserInfo:
    """The impersonated user, after checking every attribute against the real user's rights."""

    async def need(verb_group: str, resource: str, namespace: str, name: str) -> None:
        allowed, reason = await check(real, "impersonate", verb_group, resource, namespace, name)
        if not allowed:
            raise errors.forbidden(real.name, "impersonate", verb_group, resource, name, namespace, reason)

    groups: list[str] = []
    if req.user.startswith(SA_PREFIX):
        ns, _, name = req.user[len(SA_PREFIX) :].partition(":")
        await need("", "serviceaccounts", ns, name)
        # a service account's groups come with it unless groups were asked for explicitly
        if not req.groups:
            groups = [SA_GROUP, f"{SA_GROUP}:{ns}"]
    else:
        await need("", "users", "", req.user)
    for g in req.groups:
        await need("", "groups", "", g)
        groups.append(g)
    if req.uid:
        await need(AUTH_GROUP, "uids", "", req.uid)
    for key, values in req.extra.items():
        for v in values:
            await need(AUTH_GROUP, f"userextras/{key}", "", v)
    if req.user == ANONYMOUS:
        if UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(req.user, tuple(groups), req.uid, {k: list(v) for k, v in req.extra.items()})
