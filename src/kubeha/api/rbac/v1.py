"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

Names and protobuf numbers follow k8s.io/api/rbac/v1/generated.proto; validation follows upstream's
pkg/apis/rbac/validation (RBAC names are path segments, so ``system:node`` is a valid name).
The authorizer that evaluates these objects lives in :mod:`kubeha.apiserver.rbac`.
"""

from __future__ import annotations

from typing import Any

import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta, LabelSelector)
from kubeha.api import validation
from kubeha.api.errors import Cause, invalid_value, not_supported, required
from kubeha.api.registry import ResourceInfo, Strategy, register
from kubeha.api.schema import META, STRING, Obj, f, list_of, struct, type_meta_fields

GROUP = "rbac.authorization.k8s.io"
VERSION = "v1"
P = "io.k8s.api.rbac.v1."

SUBJECT_KINDS = ("ServiceAccount", "User", "Group")

struct(
    P + "PolicyRule",
    "Actions allowed on resources or non-resource URLs; says nothing about who or where.",
    f("verbs", 1, list_of(STRING), "Verbs the rule allows; '*' means all.", required=True, list_type="atomic"),
    f("apiGroups", 2, list_of(STRING), "API groups of the resources; '' is core, '*' all.", list_type="atomic"),
    f("resources", 3, list_of(STRING), "Resources ('pods', 'pods/log', '*', '*/scale').", list_type="atomic"),
    f("resourceNames", 4, list_of(STRING), "Object names the rule is limited to; empty = all.", list_type="atomic"),
    f("nonResourceURLs", 5, list_of(STRING), "URL paths; a final '*' matches a prefix.", list_type="atomic"),
)
struct(
    P + "AggregationRule",
    "Where a ClusterRole's rules come from when they are aggregated.",
    f(
        "clusterRoleSelectors",
        1,
        list_of(META + "LabelSelector"),
        "ClusterRoles matching any selector contribute their rules.",
        list_type="atomic",
    ),
)
struct(
    P + "Subject",
    "Who a binding applies to: a user, a group or a service account.",
    f("kind", 1, STRING, "User, Group or ServiceAccount.", required=True),
    f("apiGroup", 2, STRING, "'' for ServiceAccount, rbac.authorization.k8s.io for User and Group."),
    f("name", 3, STRING, "Name of the subject.", required=True),
    f("namespace", 4, STRING, "Namespace of a ServiceAccount subject."),
)
struct(
    P + "RoleRef",
    "The role a binding grants.",
    f("apiGroup", 1, STRING, "API group of the role.", required=True),
    f("kind", 2, STRING, "Role or ClusterRole.", required=True),
    f("name", 3, STRING, "Name of the role.", required=True),
)


def _kind(kind: str, doc: str, *fields: Any) -> None:
    struct(
        P + kind,
        doc,
        *type_meta_fields(),
        f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
        *fields,
        gvk=(GROUP, VERSION, kind),
    )
    struct(
        P + kind + "List",
        f"A list of {kind} objects.",
        *type_meta_fields(),
        f("metadata", 1, META + "ListMeta", "Standard list metadata."),
        f("items", 2, list_of(P + kind), f"The {kind} objects.", required=True),
        gvk=(GROUP, VERSION, kind + "List"),
    )


_RULES = f("rules", 2, list_of(P + "PolicyRule"), "The rules granted.", list_type="atomic")
_SUBJECTS = f("subjects", 2, list_of(P + "Subject"), "Who the role is granted to.", list_type="atomic")
_ROLE_REF = f("roleRef", 3, P + "RoleRef", "The role granted; immutable.", required=True)

_kind("Role", "Namespaced rules, granted by RoleBindings in the same namespace.", _RULES)
_kind(
    "ClusterRole",
    "Cluster-wide rules, granted by ClusterRoleBindings or (within a namespace) by RoleBindings.",
    _RULES,
    f("aggregationRule", 3, P + "AggregationRule", "When set, rules are computed from matching ClusterRoles."),
)
_kind("RoleBinding", "Grants a Role or ClusterRole within the binding's namespace.", _SUBJECTS, _ROLE_REF)
_kind("ClusterRoleBinding", "Grants a ClusterRole in every namespace and at cluster scope.", _SUBJECTS, _ROLE_REF)


# -- defaulting -----------------------------------------------------------------------------------


def default_subjects(obj: Obj) -> None:
    """Upstream SetDefaults_Subject / SetDefaults_*Binding: fill the apiGroups clients may omit."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = GROUP


# -- validation -----------------------------------------------------------------------------------


def validate_policy_rule(rule: Any, namespaced: bool, path: str) -> list[Cause]:
    """Upstream ValidatePolicyRule: verbs always; either non-resource URLs or groups + resources."""
    if not isinstance(rule, dict):
        return [invalid_value(path, rule, "must be an object")]
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            causes.append(
                _invalid_list(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
            )
        if rule.get("apiGroups") or rule.get("resources"):
            causes.append(
                _invalid_list(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return causes
    if not rule.get("apiGroups"):
        causes.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _invalid_list(path: str, values: list[Any], detail: str) -> Cause:
    shown = "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"
    return Cause("FieldValueInvalid", path, f"Invalid value: {shown}: {detail}")


def validate_subject(subject: Any, namespaced: bool, path: str) -> list[Cause]:
    """Upstream ValidateRoleBindingSubject."""
    if not isinstance(subject, dict):
        return [invalid_value(path, subject, "must be an object")]
    causes: list[Cause] = []
    name = subject.get("name") or ""
    if not name:
        causes.append(required(f"{path}.name"))
    kind = subject.get("kind") or ""
    group = subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            causes += [invalid_value(f"{path}.name", name, m) for m in validation.is_dns1123_subdomain(name)]
        if group:
            causes.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        causes.append(not_supported(f"{path}.kind", kind, list(SUBJECT_KINDS)))
    return causes


def _validate_role_ref(ref: Any, kinds: tuple[str, ...]) -> list[Cause]:
    ref = ref if isinstance(ref, dict) else {}
    causes: list[Cause] = []
    group = ref.get("apiGroup") or ""
    if group != GROUP:
        causes.append(not_supported("roleRef.apiGroup", group, [GROUP]))
    kind = ref.get("kind") or ""
    if kind not in kinds:
        causes.append(not_supported("roleRef.kind", kind, list(kinds)))
    name = ref.get("name") or ""
    if not name:
        causes.append(required("roleRef.name"))
    else:
        causes += [invalid_value("roleRef.name", name, m) for m in validation.is_valid_path_segment_name(name)]
    return causes


def _role_ref_text(ref: Any) -> str:
    ref = ref if isinstance(ref, dict) else {}
    return (
        f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup") or ""}", Kind:"{ref.get("kind") or ""}", '
        f'Name:"{ref.get("name") or ""}"}}'
    )


def validate_role_ref_update(new: Obj, old: Obj) -> list[Cause]:
    """roleRef is immutable: changing it would silently move every subject to another role."""
    if (new.get("roleRef") or {}) != (old.get("roleRef") or {}):
        text = _role_ref_text(new.get("roleRef"))
        return [Cause("FieldValueInvalid", "roleRef", f"Invalid value: {text}: cannot change roleRef")]
    return []


class RoleStrategy(Strategy):
    track_generation = False
    name_kind = "path"
    namespaced_rules = True

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, rule in enumerate(obj.get("rules") or []):
            causes += validate_policy_rule(rule, self.namespaced_rules, f"rules[{i}]")
        return causes


class ClusterRoleStrategy(RoleStrategy):
    namespaced_rules = False

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        agg = obj.get("aggregationRule")
        if agg is not None:
            selectors = (agg or {}).get("clusterRoleSelectors") or []
            if not selectors:
                causes.append(
                    required(
                        "aggregationRule.clusterRoleSelectors",
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    )
                )
            for i, sel in enumerate(selectors):
                if isinstance(sel, dict):
                    causes += validation.validate_labels(
                        sel.get("matchLabels") or {}, f"aggregationRule.clusterRoleSelectors[{i}].matchLabels"
                    )
        return causes


class RoleBindingStrategy(Strategy):
    track_generation = False
    name_kind = "path"
    namespaced = True
    ref_kinds: tuple[str, ...] = ("Role", "ClusterRole")

    def default(self, obj: Obj) -> None:
        default_subjects(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        causes = _validate_role_ref(obj.get("roleRef"), self.ref_kinds)
        for i, s in enumerate(obj.get("subjects") or []):
            causes += validate_subject(s, self.namespaced, f"subjects[{i}]")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + validate_role_ref_update(new, old)


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    namespaced = False
    ref_kinds = ("ClusterRole",)


ROLES = register(ResourceInfo(GROUP, VERSION, "roles", "Role", True, P + "Role", strategy=RoleStrategy()))
CLUSTERROLES = register(
    ResourceInfo(
        GROUP, VERSION, "clusterroles", "ClusterRole", False, P + "ClusterRole", strategy=ClusterRoleStrategy()
    )
)
ROLEBINDINGS = register(
    ResourceInfo(GROUP, VERSION, "rolebindings", "RoleBinding", True, P + "RoleBinding", strategy=RoleBindingStrategy())
)
CLUSTERROLEBINDINGS = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "clusterrolebindings",
        "ClusterRoleBinding",
        False,
        P + "ClusterRoleBinding",
        strategy=ClusterRoleBindingStrategy(),
    )
)
