"""Authorization: a chain of authorizers (each says allow, deny or no opinion), as upstream's union.

``--authorization-mode`` lists the modes in order: ``AlwaysAllow``, ``AlwaysDeny``, ``Node`` (the
kubelet graph authorizer, :mod:`kubeha.apiserver.nodeauthz`) and ``RBAC`` (an in-memory
:class:`~kubeha.apiserver.rbac.RBACAuthorizer` fed from the watch caches by
:mod:`kubeha.apiserver.authz.sync`). The ``system:masters`` group is allowed everything before any
mode is asked, as upstream's privileged-group authorizer. When every authorizer has no opinion the
request is denied; the reasons they gave are joined into the 403 message.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubeha.api.schema import Obj
from kubeha.apiserver import rbac
from kubeha.apiserver.authn import MASTERS, UserInfo
from kubeha.apiserver.requestinfo import RequestInfo

ALLOW = "allow"
DENY = "deny"
NO_OPINION = "noopinion"

MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")

ALL_RESOURCE_RULE: Obj = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
ALL_NON_RESOURCE_RULE: Obj = {"verbs": ["*"], "nonResourceURLs": ["*"]}


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
    def from_request(cls, user: UserInfo, ri: RequestInfo, query: Any = None) -> Attributes:
        name = ri.name
        if not name and query is not None and ri.verb in ("list", "watch"):
            # upstream: a list/watch of one object by metadata.name is authorized as that object
            name = _name_from_field_selector(query.get("fieldSelector", ""))
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
            name,
        )

    def to_rbac(self) -> rbac.Attributes:
        return rbac.Attributes(
            self.user.name,
            self.user.groups,
            self.verb,
            self.namespace,
            self.group,
            self.resource,
            self.subresource,
            self.name,
            self.path,
            self.is_resource,
        )


def _name_from_field_selector(selector: str) -> str:
    terms = [t.strip() for t in selector.split(",") if t.strip()]
    for t in terms:
        for op in ("==", "="):
            key, sep, value = t.partition(op)
            if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                return value.strip()
    return ""


class AuthorizationChain:
    def __init__(self, modes: tuple[str, ...] | list[str]) -> None:
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown authorization mode(s) {unknown}; supported: {', '.join(MODES)}")
        self.modes = tuple(modes) or ("AlwaysAllow",)
        self.rbac: rbac.RBACAuthorizer | None = rbac.RBACAuthorizer() if "RBAC" in self.modes else None
        self.node: Any = None
        if "Node" in self.modes:
            from kubeha.apiserver.nodeauthz import NodeAuthorizer

            self.node = NodeAuthorizer()
        self.always_allow = self.modes[0] == "AlwaysAllow"

    @property
    def needs_policy(self) -> bool:
        """Whether the server must feed RBAC / Node state from its watch caches."""
        return self.rbac is not None or self.node is not None

    def _decide(self, mode: str, a: Attributes) -> tuple[str, str]:
        if mode == "AlwaysAllow":
            return ALLOW, ""
        if mode == "AlwaysDeny":
            return DENY, "Everything is forbidden."
        if mode == "Node":
            return self.node.authorize(a) if self.node is not None else (NO_OPINION, "")
        if mode == "RBAC" and self.rbac is not None:
            d = self.rbac.authorize(a.to_rbac())
            return (ALLOW if d.allowed else NO_OPINION), d.reason
        return NO_OPINION, ""

    async def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        return self.authorize_sync(attrs)

    def authorize_sync(self, attrs: Attributes) -> tuple[bool, str]:
        if self.always_allow or MASTERS in attrs.user.groups:
            return True, ""
        reasons: list[str] = []
        for mode in self.modes:
            decision, reason = self._decide(mode, attrs)
            if decision == ALLOW:
                return True, reason
            if reason:
                reasons.append(reason)
            if decision == DENY:
                return False, "\n".join(reasons)
        return False, "\n".join(reasons)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[Obj], bool, str]:
        """What ``user`` may do in ``namespace`` (SelfSubjectRulesReview): resource rules,
        non-resource rules, whether the list is incomplete, and evaluation errors."""
        resource: list[Obj] = []
        non_resource: list[Obj] = []
        incomplete = False
        errors: list[str] = []
        if MASTERS in user.groups:
            resource.append(dict(ALL_RESOURCE_RULE))
            non_resource.append(dict(ALL_NON_RESOURCE_RULE))
        for mode in self.modes:
            if mode == "AlwaysAllow":
                resource.append(dict(ALL_RESOURCE_RULE))
                non_resource.append(dict(ALL_NON_RESOURCE_RULE))
            elif mode == "Node" and self.node is not None and self.node.node_name(user) is not None:
                incomplete = True
                errors.append("node authorizer does not support user rule resolution")
            elif mode == "RBAC" and self.rbac is not None:
                errs: list[str] = []
                for r in self.rbac.policy_rules_for(user.name, user.groups, namespace, errs):
                    _add_rule(r, resource, non_resource)
                if errs:
                    incomplete = True
                    errors.extend(errs)
        return resource, non_resource, incomplete, ", ".join(errors)


def _add_rule(rule: Obj, resource: list[Obj], non_resource: list[Obj]) -> None:
    if rule.get("nonResourceURLs"):
        non_resource.append({"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule["nonResourceURLs"])})
        return
    rr: Obj = {"verbs": list(rule.get("verbs") or [])}
    for k in ("apiGroups", "resources", "resourceNames"):
        if rule.get(k):
            rr[k] = list(rule[k])
    resource.append(rr)


# the authorizer of the app serving the current request (write hooks run without the request)
CURRENT_AUTHZ: contextvars.ContextVar[AuthorizationChain | None] = contextvars.ContextVar("kubeha_authz", default=None)


def groups_of(user: UserInfo) -> Iterable[str]:
    return user.groups
