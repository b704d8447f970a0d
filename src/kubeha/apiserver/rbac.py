"""RBAC authorization over in-memory roles and bindings, as upstream's RBAC authorizer.

The api-server feeds :class:`RBACAuthorizer` from its watch caches (``set_*`` / ``delete_*``, or
:meth:`RBACAuthorizer.replace_all`); this module does no I/O. Bindings are indexed by subject (user
name, group name; service accounts as their ``system:serviceaccount:<ns>:<name>`` user name), so a
decision is a few dict lookups plus the rules of the roles the requester is actually bound to, not
a scan over every binding. Roles are compiled once when they change.

Also here: ClusterRole aggregation (:func:`aggregate`) and the escalation check (:func:`covers`) that
keeps anyone from granting rights they do not hold. ``system:masters`` is the superuser group and
is handled before this authorizer is asked, as upstream does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubeha.api.schema import Obj
from kubeha.api.selectors import selector_from_match

RBAC_GROUP = "rbac.authorization.k8s.io"
SA_PREFIX = "system:serviceaccount:"
SUPERUSER_GROUP = "system:masters"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request wants to do (upstream authorizer.Attributes)."""

    user: str
    groups: tuple[str, ...] = ()
    verb: str = ""
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


# -- compiled rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """A PolicyRule with its lists as sets; ``None`` stands for a "*" entry (matches everything)."""

    verbs: frozenset[str] | None
    groups: frozenset[str] | None
    resources: frozenset[str] | None  # "pods", "pods/log", "*/scale"
    names: frozenset[str]  # empty = every name
    urls: frozenset[str] | None  # exact non-resource URLs
    url_prefixes: tuple[str, ...]  # from entries ending in "*"
    source: Obj = field(compare=False, hash=False)


def _set_or_all(values: Iterable[str]) -> frozenset[str] | None:
    s = frozenset(values)
    return None if "*" in s else s


def compile_rule(rule: Obj) -> _Rule:
    urls = [u for u in rule.get("nonResourceURLs") or [] if isinstance(u, str)]
    exact = _set_or_all(u for u in urls if not (u.endswith("*") and u != "*"))
    prefixes = tuple(u[:-1] for u in urls if u.endswith("*") and u != "*")
    return _Rule(
        verbs=_set_or_all(rule.get("verbs") or ()),
        groups=_set_or_all(rule.get("apiGroups") or ()),
        resources=_set_or_all(rule.get("resources") or ()),
        names=frozenset(rule.get("resourceNames") or ()),
        urls=exact,
        url_prefixes=prefixes,
        source=rule,
    )


def rule_allows(rule: _Rule, a: Attributes) -> bool:
    """Upstream RuleAllows."""
    if rule.verbs is not None and a.verb not in rule.verbs:
        return False
    if a.resource_request:
        if rule.groups is not None and a.api_group not in rule.groups:
            return False
        res = rule.resources
        if res is not None:
            if a.subresource:
                combined = f"{a.resource}/{a.subresource}"
                if combined not in res and f"*/{a.subresource}" not in res:
                    return False
            elif a.resource not in res:
                return False
        return not rule.names or a.name in rule.names
    # a rule with only resources has no URLs and so never matches a non-resource request
    if rule.urls is None or a.path in rule.urls:
        return True
    return any(a.path.startswith(p) for p in rule.url_prefixes)


# -- the authorizer -------------------------------------------------------------------------------

# A role key: ("", name) for a ClusterRole, (namespace, name) for a Role.
RoleKey = tuple[str, str]
# A binding key: ("", name) for a ClusterRoleBinding, (namespace, name) for a RoleBinding.
BindingKey = tuple[str, str]


@dataclass(slots=True)
class _Binding:
    key: BindingKey
    role: RoleKey
    role_kind: str
    users: tuple[str, ...]
    groups: tuple[str, ...]


class RBACAuthorizer:
    def __init__(
        self,
        roles: Iterable[Obj] = (),
        cluster_roles: Iterable[Obj] = (),
        role_bindings: Iterable[Obj] = (),
        cluster_role_bindings: Iterable[Obj] = (),
    ) -> None:
        self._rules: dict[RoleKey, tuple[_Rule, ...]] = {}
        self._bindings: dict[BindingKey, _Binding] = {}
        # subject -> binding keys. Cluster bindings under namespace "", role bindings under their own.
        self._by_user: dict[tuple[str, str], set[BindingKey]] = {}
        self._by_group: dict[tuple[str, str], set[BindingKey]] = {}
        self.replace_all(roles, cluster_roles, role_bindings, cluster_role_bindings)

    # -- feeding ----------------------------------------------------------------------------------

    def replace_all(
        self,
        roles: Iterable[Obj] = (),
        cluster_roles: Iterable[Obj] = (),
        role_bindings: Iterable[Obj] = (),
        cluster_role_bindings: Iterable[Obj] = (),
    ) -> None:
        self._rules.clear()
        self._bindings.clear()
        self._by_user.clear()
        self._by_group.clear()
        for r in roles:
            self.set_role(r)
        for r in cluster_roles:
            self.set_cluster_role(r)
        for b in role_bindings:
            self.set_role_binding(b)
        for b in cluster_role_bindings:
            self.set_cluster_role_binding(b)

    def set_role(self, role: Obj) -> None:
        meta = role.get("metadata") or {}
        self._rules[(meta.get("namespace") or "", meta.get("name") or "")] = _compile(role)

    def delete_role(self, namespace: str, name: str) -> None:
        self._rules.pop((namespace, name), None)

    def set_cluster_role(self, role: Obj) -> None:
        self._rules[("", (role.get("metadata") or {}).get("name") or "")] = _compile(role)

    def delete_cluster_role(self, name: str) -> None:
        self._rules.pop(("", name), None)

    def set_role_binding(self, binding: Obj) -> None:
        meta = binding.get("metadata") or {}
        self._set_binding(meta.get("namespace") or "", meta.get("name") or "", binding)

    def delete_role_binding(self, namespace: str, name: str) -> None:
        self._unindex((namespace, name))

    def set_cluster_role_binding(self, binding: Obj) -> None:
        self._set_binding("", (binding.get("metadata") or {}).get("name") or "", binding)

    def delete_cluster_role_binding(self, name: str) -> None:
        self._unindex(("", name))

    def _set_binding(self, namespace: str, name: str, binding: Obj) -> None:
        key = (namespace, name)
        self._unindex(key)
        ref = binding.get("roleRef") or {}
        kind = ref.get("kind") or ""
        role = (namespace if kind == "Role" else "", ref.get("name") or "")
        users: list[str] = []
        groups: list[str] = []
        for s in binding.get("subjects") or []:
            if not isinstance(s, dict):
                continue
            skind, sname = s.get("kind"), s.get("name") or ""
            if skind == "User":
                users.append(sname)
            elif skind == "Group":
                groups.append(sname)
            elif skind == "ServiceAccount":
                # a RoleBinding's service account subject defaults to the binding's namespace
                sa_ns = s.get("namespace") or namespace
                if sa_ns:
                    users.append(service_account_user(sa_ns, sname))
        b = _Binding(key, role, kind, tuple(users), tuple(groups))
        self._bindings[key] = b
        for u in b.users:
            self._by_user.setdefault((namespace, u), set()).add(key)
        for g in b.groups:
            self._by_group.setdefault((namespace, g), set()).add(key)

    def _unindex(self, key: BindingKey) -> None:
        old = self._bindings.pop(key, None)
        if old is None:
            return
        ns = key[0]
        for index, names in ((self._by_user, old.users), (self._by_group, old.groups)):
            for n in names:
                keys = index.get((ns, n))
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[(ns, n)]

    # -- evaluation -------------------------------------------------------------------------------

    def _binding_keys(self, user: str, groups: Iterable[str], namespace: str) -> list[BindingKey]:
        """Bindings that apply to the user: cluster-wide first, then the namespace's (upstream order)."""
        out: list[BindingKey] = []
        scopes = ("", namespace) if namespace else ("",)
        by_user, by_group = self._by_user, self._by_group
        for ns in scopes:
            keys = by_user.get((ns, user))
            if keys:
                out.extend(keys)
            for g in groups:
                keys = by_group.get((ns, g))
                if keys:
                    out.extend(keys)
        return out

    def authorize(self, a: Attributes) -> Decision:
        missing: list[str] = []
        seen: set[BindingKey] = set()
        for key in self._binding_keys(a.user, a.groups, a.namespace):
            if key in seen:
                continue
            seen.add(key)
            b = self._bindings[key]
            rules = self._rules.get(b.role)
            if rules is None:
                missing.append(_not_found(b))
                continue
            for rule in rules:
                if rule_allows(rule, a):
                    return Decision(True, _allowed_reason(b, a))
        if missing:
            return Decision(False, "RBAC: [" + ", ".join(missing) + "]")
        return Decision(False, "")

    def rules_for(self, user: str, groups: Iterable[str], namespace: str) -> tuple[list[Obj], list[Obj], bool]:
        """The rules the user holds in a namespace, in SelfSubjectRulesReview form.

        Returns ``(resource_rules, non_resource_rules, incomplete)``; incomplete is true when a
        binding refers to a role that does not exist (upstream reports that as an evaluation error).
        """
        resource_rules: list[Obj] = []
        non_resource_rules: list[Obj] = []
        errors: list[str] = []
        for rule in self.policy_rules_for(user, groups, namespace, errors):
            if rule.get("nonResourceURLs"):
                non_resource_rules.append(
                    {"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule["nonResourceURLs"])}
                )
            else:
                rr: Obj = {"verbs": list(rule.get("verbs") or [])}
                for k in ("apiGroups", "resources", "resourceNames"):
                    if rule.get(k):
                        rr[k] = list(rule[k])
                resource_rules.append(rr)
        return resource_rules, non_resource_rules, bool(errors)

    def policy_rules_for(
        self, user: str, groups: Iterable[str], namespace: str, errors: list[str] | None = None
    ) -> list[Obj]:
        """Every PolicyRule the user holds in the namespace (cluster-wide ones included)."""
        out: list[Obj] = []
        seen: set[BindingKey] = set()
        groups = tuple(groups)
        for key in self._binding_keys(user, groups, namespace):
            if key in seen:
                continue
            seen.add(key)
            b = self._bindings[key]
            rules = self._rules.get(b.role)
            if rules is None:
                if errors is not None:
                    errors.append(_not_found(b))
                continue
            out.extend(r.source for r in rules)
        return out

    # -- escalation prevention helpers (used by role/binding create and update) --------------------

    def escalation_allowed(self, user: str, groups: Iterable[str], namespace: str, cluster: bool) -> bool:
        """Upstream EscalationAllowed: superusers, or holders of the `escalate` verb on the role type."""
        groups = tuple(groups)
        if SUPERUSER_GROUP in groups:
            return True
        a = Attributes(
            user,
            groups,
            "escalate",
            namespace,
            RBAC_GROUP,
            "clusterroles" if cluster else "roles",
        )
        return self.authorize(a).allowed

    def bind_allowed(self, user: str, groups: Iterable[str], namespace: str, role_ref: Obj) -> bool:
        """Upstream BindingAuthorized: the `bind` verb on the referenced role (by name)."""
        groups = tuple(groups)
        if SUPERUSER_GROUP in groups:
            return True
        kind = role_ref.get("kind")
        a = Attributes(
            user,
            groups,
            "bind",
            namespace,
            RBAC_GROUP,
            "clusterroles" if kind == "ClusterRole" else "roles",
            name=role_ref.get("name") or "",
        )
        return self.authorize(a).allowed

    def confirm_no_escalation(
        self, user: str, groups: Iterable[str], namespace: str, requested: list[Obj]
    ) -> list[Obj]:
        """Rules in ``requested`` the user does not hold in ``namespace`` (empty: no escalation)."""
        groups = tuple(groups)
        if SUPERUSER_GROUP in groups:
            return []
        _, missing = covers(self.policy_rules_for(user, groups, namespace), requested)
        return missing


def _compile(role: Obj) -> tuple[_Rule, ...]:
    return tuple(compile_rule(r) for r in role.get("rules") or [] if isinstance(r, dict))


def _not_found(b: _Binding) -> str:
    if b.role_kind == "Role":
        return f'role.rbac.authorization.k8s.io "{b.role[1]}" not found'
    return f'clusterrole.rbac.authorization.k8s.io "{b.role[1]}" not found'


def _allowed_reason(b: _Binding, a: Attributes) -> str:
    if b.key[0]:
        binding = f'RoleBinding "{b.key[1]}/{b.key[0]}"'
    else:
        binding = f'ClusterRoleBinding "{b.key[1]}"'
    role = f'{b.role_kind} "{b.role[1]}"' if b.role_kind == "ClusterRole" else f'Role "{b.role[1]}/{b.role[0]}"'
    if a.user in b.users:
        who = f'User "{a.user}"'
    else:
        who = next((f'Group "{g}"' for g in a.groups if g in b.groups), f'User "{a.user}"')
    return f"RBAC: allowed by {binding} of {role} to {who}"


# -- aggregation ----------------------------------------------------------------------------------


def aggregate(cluster_roles: list[Obj]) -> list[Obj]:
    """Compute aggregated rules for ClusterRoles with an aggregationRule.

    Returns updated copies of the roles whose rules change; the input is not modified. Rules come
    from every other ClusterRole matching any selector, roles in name order, duplicates dropped.
    Aggregation chains (view -> edit -> admin) are followed to a fixed point, as repeated runs of
    upstream's controller would.
    """
    current: dict[str, Obj] = {(r.get("metadata") or {}).get("name") or "": r for r in cluster_roles}
    changed: dict[str, Obj] = {}
    for _ in range(len(current) + 1):
        progress = False
        for name in sorted(current):
            role = current[name]
            agg = role.get("aggregationRule")
            if not isinstance(agg, dict):
                continue
            rules: list[Obj] = []
            for sel_obj in agg.get("clusterRoleSelectors") or []:
                sel = selector_from_match(sel_obj)
                for other_name in sorted(current):
                    if other_name == name:
                        continue
                    other = current[other_name]
                    if not sel.matches((other.get("metadata") or {}).get("labels") or {}):
                        continue
                    for rule in other.get("rules") or []:
                        if rule not in rules:
                            rules.append(copy.deepcopy(rule))
            if rules != (role.get("rules") or []):
                updated = copy.deepcopy(role)
                updated["rules"] = rules
                current[name] = changed[name] = updated
                progress = True
        if not progress:
            break
    return [changed[n] for n in sorted(changed)]


# -- escalation check (upstream validation.Covers) --------------------------------------------------


def breakdown_rule(rule: Obj) -> list[Obj]:
    """Split a rule into rules of one verb, one group, one resource (one name) or one URL each."""
    out: list[Obj] = []
    verbs = list(rule.get("verbs") or [])
    names = list(rule.get("resourceNames") or [])
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                if names:
                    out.extend({**base, "resourceNames": [n]} for n in names)
                else:
                    out.append(base)
    for url in rule.get("nonResourceURLs") or []:
        for verb in verbs:
            out.append({"nonResourceURLs": [url], "verbs": [verb]})
    return out


def _has_all(have: list[Any], want: list[Any]) -> bool:
    return set(want) <= set(have)


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path:
            return False
        if "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    for url in wanted:
        if not any(o == url or o == "*" or (o.endswith("*") and url.startswith(o[:-1])) for o in owner):
            return False
    return True


def rule_covers(owner: Obj, sub: Obj) -> bool:
    """Whether ``owner`` grants everything the broken-down rule ``sub`` grants."""
    o_verbs = owner.get("verbs") or []
    o_groups = owner.get("apiGroups") or []
    o_names = owner.get("resourceNames") or []
    s_names = sub.get("resourceNames") or []
    if not ("*" in o_verbs or _has_all(o_verbs, sub.get("verbs") or [])):
        return False
    if not ("*" in o_groups or _has_all(o_groups, sub.get("apiGroups") or [])):
        return False
    if not _resources_cover(owner.get("resources") or [], sub.get("resources") or []):
        return False
    if not _urls_cover(owner.get("nonResourceURLs") or [], sub.get("nonResourceURLs") or []):
        return False
    if s_names:
        return not o_names or _has_all(o_names, s_names)
    return not o_names


def covers(owner_rules: list[Obj], requested_rules: list[Obj]) -> tuple[bool, list[Obj]]:
    """Upstream validation.Covers: does the owner hold every right in the requested rules?

    Returns ``(covered, missing)`` where missing lists the uncovered broken-down rules.
    """
    missing: list[Obj] = []
    for rule in requested_rules:
        for sub in breakdown_rule(rule):
            if not any(rule_covers(o, sub) for o in owner_rules):
                missing.append(sub)
    return not missing, missing
