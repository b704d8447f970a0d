"""Escalation prevention on RBAC writes, as upstream's policy-based RBAC storage.

Creating or changing a Role/ClusterRole needs every rule it grants to be held already (in that
namespace, or cluster-wide for ClusterRoles), unless the requester may ``escalate`` roles; an
aggregated ClusterRole needs cluster-admin rights. Creating or changing a RoleBinding /
ClusterRoleBinding needs the referenced role's rules, unless the requester may ``bind`` that role.
Server-internal writes (no requesting user) are not checked. Installed as write hooks.
"""

from __future__ import annotations

import json
from typing import Any

from kubeha.api import errors
from kubeha.api.schema import Obj
from kubeha.apiserver import rbac
from kubeha.apiserver.authn import CURRENT_USER, UserInfo
from kubeha.apiserver.authz import ALL_NON_RESOURCE_RULE, ALL_RESOURCE_RULE, CURRENT_AUTHZ, Attributes

GROUP = rbac.RBAC_GROUP


def _go_quote_list(values: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def compact_string(rule: Obj) -> str:
    """Upstream's one-line rule form used in escalation messages."""
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("resourceNames", "ResourceNames"),
        ("verbs", "Verbs"),
    ):
        if rule.get(key):
            parts.append(f"{label}:{_go_quote_list(list(rule[key]))}")
    return "{" + ", ".join(parts) + "}"


def compact_rules(rules: list[Obj]) -> list[Obj]:
    """Merge broken-down rules that differ only in verb (upstream CompactRules), sorted."""
    merged: dict[tuple[Any, ...], Obj] = {}
    out: list[Obj] = []
    for r in rules:
        if r.get("resourceNames") or r.get("nonResourceURLs"):
            out.append(r)
            continue
        key = (tuple(r.get("apiGroups") or []), tuple(r.get("resources") or []))
        if key in merged:
            for v in r.get("verbs") or []:
                if v not in merged[key]["verbs"]:
                    merged[key]["verbs"].append(v)
        else:
            merged[key] = {"apiGroups": list(key[0]), "resources": list(key[1]), "verbs": list(r.get("verbs") or [])}
            out.append(merged[key])
    return sorted(out, key=compact_string)


def escalation_error(
    resource: str, name: str, user: UserInfo, missing: list[Obj], resolution: list[str]
) -> errors.StatusError:
    lines = "\n".join(compact_string(r) for r in compact_rules(missing))
    msg = (
        f"user {json.dumps(user.name)} (groups={_go_quote_list(list(user.groups))}) is attempting to grant RBAC "
        f"permissions not currently held:\n{lines}"
    )
    if resolution:
        msg += f"; resolution errors: [{' '.join(resolution)}]"
    return _forbidden(resource, name, msg)


def _forbidden(resource: str, name: str, detail: str) -> errors.StatusError:
    return errors.StatusError(
        403,
        "Forbidden",
        f'{resource}.{GROUP} "{name}" is forbidden: {detail}',
        {"name": name, "group": GROUP, "kind": resource},
    )


def _requester() -> tuple[UserInfo, Any] | None:
    user, chain = CURRENT_USER.get(), CURRENT_AUTHZ.get()
    if user is None or chain is None or chain.rbac is None:
        return None
    return user, chain


def _allowed(chain: Any, user: UserInfo, verb: str, resource: str, namespace: str, name: str = "") -> bool:
    a = Attributes(user, verb, True, "", GROUP, "v1", resource, "", namespace, name)
    allowed: bool = chain.authorize_sync(a)[0]
    return allowed


def _missing(chain: Any, user: UserInfo, namespace: str, rules: list[Obj]) -> tuple[list[Obj], list[str]]:
    errs: list[str] = []
    held = chain.rbac.policy_rules_for(user.name, user.groups, namespace, errs)
    return rbac.covers(held, rules)[1], errs


async def check_role(ctx: Any, new: Obj, old: Obj | None, plan: Any) -> None:
    who = _requester()
    if who is None:
        return
    user, chain = who
    md = new.get("metadata") or {}
    cluster = new.get("kind") == "ClusterRole" or not md.get("namespace")
    resource = "clusterroles" if cluster else "roles"
    namespace = "" if cluster else str(md.get("namespace") or "")
    if (
        old is not None
        and old.get("rules") == new.get("rules")
        and old.get("aggregationRule") == new.get("aggregationRule")
    ):
        return
    if _allowed(chain, user, "escalate", resource, namespace, str(md.get("name") or "")):
        return
    if cluster and new.get("aggregationRule"):
        missing, errs = _missing(chain, user, "", [ALL_RESOURCE_RULE, ALL_NON_RESOURCE_RULE])
        if missing:
            raise _forbidden(
                resource, str(md.get("name") or ""), "must have cluster-admin privileges to use the aggregationRule"
            )
        return
    missing, errs = _missing(chain, user, namespace, new.get("rules") or [])
    if missing:
        raise escalation_error(resource, str(md.get("name") or ""), user, missing, errs)


async def check_binding(ctx: Any, new: Obj, old: Obj | None, plan: Any) -> None:
    who = _requester()
    if who is None:
        return
    user, chain = who
    md = new.get("metadata") or {}
    cluster = new.get("kind") == "ClusterRoleBinding" or not md.get("namespace")
    resource = "clusterrolebindings" if cluster else "rolebindings"
    namespace = "" if cluster else str(md.get("namespace") or "")
    if old is not None and old.get("subjects") == new.get("subjects") and old.get("roleRef") == new.get("roleRef"):
        return
    ref = new.get("roleRef") or {}
    role_kind, role_name = ref.get("kind"), str(ref.get("name") or "")
    role_resource = "clusterroles" if role_kind == "ClusterRole" else "roles"
    if _allowed(chain, user, "bind", role_resource, namespace, role_name):
        return
    az: rbac.RBACAuthorizer = chain.rbac
    role_rules = az._rules.get(("" if role_kind == "ClusterRole" else namespace, role_name))
    name = str(md.get("name") or "")
    if role_rules is None:
        kind = "clusterrole" if role_kind == "ClusterRole" else "role"
        raise _forbidden(resource, name, f'{kind}.{GROUP} "{role_name}" not found')
    missing, errs = _missing(chain, user, namespace, [r.source for r in role_rules])
    if missing:
        raise escalation_error(resource, name, user, missing, errs)


def install() -> None:
    from kubeha.apiserver.rest import WRITE_HOOKS

    WRITE_HOOKS[f"{GROUP}/roles"] = check_role
    WRITE_HOOKS[f"{GROUP}/clusterroles"] = check_role
    WRITE_HOOKS[f"{GROUP}/rolebindings"] = check_binding
    WRITE_HOOKS[f"{GROUP}/clusterrolebindings"] = check_binding
