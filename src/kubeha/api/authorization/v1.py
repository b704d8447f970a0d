"""authorization.k8s.io/v1: access reviews and rules reviews (kubectl auth can-i).

Numbers follow k8s.io/api/authorization/v1/generated.proto. Every kind here is create-only and
never stored: the server evaluates ``spec`` with its authorizer and answers with ``status``.
Validation follows upstream's pkg/apis/authorization/validation.
"""

from __future__ import annotations

from typing import Any

import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta, LabelSelectorRequirement)
from kubeha.api.errors import Cause, invalid_value, required
from kubeha.api.registry import ResourceInfo, Strategy, register
from kubeha.api.schema import BOOL, META, STRING, Obj, f, list_of, map_of, struct, type_meta_fields

GROUP = "authorization.k8s.io"
VERSION = "v1"
P = "io.k8s.api.authorization.v1."

struct(
    P + "FieldSelectorRequirement",
    "One parsed field selector term.",
    f("key", 1, STRING, "Field the requirement applies to.", required=True),
    f("operator", 2, STRING, "In, NotIn, Exists or DoesNotExist.", required=True),
    f("values", 3, list_of(STRING), "Values for In and NotIn.", list_type="atomic"),
)
struct(
    P + "FieldSelectorAttributes",
    "A field selector that limits the access asked about.",
    f("rawSelector", 1, STRING, "The selector as written in a query parameter."),
    f("requirements", 2, list_of(P + "FieldSelectorRequirement"), "The parsed selector.", list_type="atomic"),
)
struct(
    P + "LabelSelectorAttributes",
    "A label selector that limits the access asked about.",
    f("rawSelector", 1, STRING, "The selector as written in a query parameter."),
    f(
        "requirements",
        2,
        list_of(META + "LabelSelectorRequirement"),
        "The parsed selector.",
        list_type="atomic",
    ),
)
struct(
    P + "ResourceAttributes",
    "A resource request to authorize.",
    f("namespace", 1, STRING, "Namespace; empty means all namespaces for namespaced resources."),
    f("verb", 2, STRING, "API verb: get, list, watch, create, update, delete, ...; '*' means all."),
    f("group", 3, STRING, "API group; '*' means all."),
    f("version", 4, STRING, "API version; '*' means all."),
    f("resource", 5, STRING, "Resource; '*' means all."),
    f("subresource", 6, STRING, "Subresource; empty means none."),
    f("name", 7, STRING, "Object name; empty means all."),
    f("fieldSelector", 8, P + "FieldSelectorAttributes", "Field selector limiting the request."),
    f("labelSelector", 9, P + "LabelSelectorAttributes", "Label selector limiting the request."),
)
struct(
    P + "NonResourceAttributes",
    "A non-resource request to authorize.",
    f("path", 1, STRING, "URL path."),
    f("verb", 2, STRING, "HTTP verb in lower case (get, post, ...)."),
)
struct(
    P + "SubjectAccessReviewSpec",
    "Who asks to do what; exactly one of resourceAttributes and nonResourceAttributes.",
    f("resourceAttributes", 1, P + "ResourceAttributes", "A resource request."),
    f("nonResourceAttributes", 2, P + "NonResourceAttributes", "A non-resource request."),
    f("user", 3, STRING, "The user to check."),
    f("groups", 4, list_of(STRING), "The user's groups.", list_type="atomic"),
    f("extra", 5, map_of(list_of(STRING)), "Extra attributes of the user."),
    f("uid", 6, STRING, "UID of the user."),
)
struct(
    P + "SelfSubjectAccessReviewSpec",
    "What the requester asks to do; exactly one of the two attribute sets.",
    f("resourceAttributes", 1, P + "ResourceAttributes", "A resource request."),
    f("nonResourceAttributes", 2, P + "NonResourceAttributes", "A non-resource request."),
)
struct(
    P + "SubjectAccessReviewStatus",
    "The decision.",
    f("allowed", 1, BOOL, "Whether the action is allowed.", required=True),
    f("reason", 2, STRING, "Why it was allowed or denied."),
    f("evaluationError", 3, STRING, "An error met while evaluating, if any."),
    f("denied", 4, BOOL, "Whether the action is explicitly denied."),
)
struct(
    P + "ResourceRule",
    "Actions the subject may perform on resources.",
    f("verbs", 1, list_of(STRING), "Verbs; '*' means all.", required=True, list_type="atomic"),
    f("apiGroups", 2, list_of(STRING), "API groups; '*' means all.", list_type="atomic"),
    f("resources", 3, list_of(STRING), "Resources; '*' means all, '*/foo' a subresource of all.", list_type="atomic"),
    f("resourceNames", 4, list_of(STRING), "Object names; empty means all.", list_type="atomic"),
)
struct(
    P + "NonResourceRule",
    "Actions the subject may perform on non-resource URLs.",
    f("verbs", 1, list_of(STRING), "Verbs; '*' means all.", required=True, list_type="atomic"),
    f("nonResourceURLs", 2, list_of(STRING), "URL paths; a final '*' matches a prefix.", list_type="atomic"),
)
struct(
    P + "SubjectRulesReviewStatus",
    "What the subject may do in a namespace (possibly incomplete).",
    f("resourceRules", 1, list_of(P + "ResourceRule"), "Resource rules.", required=True, list_type="atomic"),
    f(
        "nonResourceRules",
        2,
        list_of(P + "NonResourceRule"),
        "Non-resource rules.",
        required=True,
        list_type="atomic",
    ),
    f("incomplete", 3, BOOL, "True when the authorizer could not list every rule.", required=True),
    f("evaluationError", 4, STRING, "Errors met while listing rules."),
)
struct(
    P + "SelfSubjectRulesReviewSpec",
    "The namespace to list the requester's rules in.",
    f("namespace", 1, STRING, "Namespace to evaluate rules for."),
)


def _review(kind: str, doc: str, spec: str, status: str) -> None:
    struct(
        P + kind,
        doc,
        *type_meta_fields(),
        f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
        f("spec", 2, P + spec, "The question asked.", required=True),
        f("status", 3, P + status, "Filled in by the server."),
        gvk=(GROUP, VERSION, kind),
    )


_review(
    "SubjectAccessReview",
    "Checks whether a user or group may perform an action.",
    "SubjectAccessReviewSpec",
    "SubjectAccessReviewStatus",
)
_review(
    "SelfSubjectAccessReview",
    "Checks whether the requester may perform an action (kubectl auth can-i).",
    "SelfSubjectAccessReviewSpec",
    "SubjectAccessReviewStatus",
)
_review(
    "LocalSubjectAccessReview",
    "A SubjectAccessReview limited to one namespace.",
    "SubjectAccessReviewSpec",
    "SubjectAccessReviewStatus",
)
_review(
    "SelfSubjectRulesReview",
    "Lists what the requester may do in a namespace (kubectl auth can-i --list).",
    "SelfSubjectRulesReviewSpec",
    "SubjectRulesReviewStatus",
)


# -- validation -----------------------------------------------------------------------------------


def _selector_attrs(attrs: Any, path: str) -> list[Cause]:
    if not isinstance(attrs, dict):
        return []
    if attrs.get("rawSelector") and attrs.get("requirements"):
        return [
            invalid_value(
                f"{path}.rawSelector", attrs["rawSelector"], "may not specified at the same time as requirements"
            )
        ]
    return []


def _validate_attributes(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res is not None and non is not None:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "spec.nonResourceAttributes",
                'Invalid value: "": cannot be specified in combination with resourceAttributes',
            )
        )
    if res is None and non is None:
        causes.append(
            invalid_value(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    if isinstance(res, dict):
        causes += _selector_attrs(res.get("fieldSelector"), "spec.resourceAttributes.fieldSelector")
        causes += _selector_attrs(res.get("labelSelector"), "spec.resourceAttributes.labelSelector")
    return causes


def _meta_empty(obj: Obj, allow_namespace: bool = False) -> list[Cause]:
    """Reviews are not stored, so metadata carries nothing (clients send creationTimestamp: null)."""
    meta = {
        k: v
        for k, v in (obj.get("metadata") or {}).items()
        if v not in (None, "", {}, []) and k != "managedFields" and not (allow_namespace and k == "namespace")
    }
    if meta:
        return [Cause("FieldValueInvalid", "metadata", "Invalid value: metadata: must be empty")]
    return []


def validate_subject_access_review(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _meta_empty(obj) + _validate_attributes(spec)
    if not spec.get("user") and not spec.get("groups"):
        causes.append(
            invalid_value("spec.user", spec.get("user") or "", "at least one of user or group must be specified")
        )
    return causes


def validate_self_subject_access_review(obj: Obj) -> list[Cause]:
    return _meta_empty(obj) + _validate_attributes(obj.get("spec") or {})


def validate_local_subject_access_review(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _meta_empty(obj, allow_namespace=True) + _validate_attributes(spec)
    if not spec.get("user") and not spec.get("groups"):
        causes.append(
            invalid_value("spec.user", spec.get("user") or "", "at least one of user or group must be specified")
        )
    if spec.get("nonResourceAttributes") is not None:
        causes.append(
            Cause(
                "FieldValueInvalid",
                "spec.nonResourceAttributes",
                'Invalid value: "": disallowed on this kind of request',
            )
        )
    return causes


def local_namespace_mismatch(obj: Obj) -> str | None:
    """Upstream answers 400 when spec.resourceAttributes.namespace differs from the URL's namespace."""
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    res = (obj.get("spec") or {}).get("resourceAttributes")
    if isinstance(res, dict) and (res.get("namespace") or "") != ns:
        return f"spec.resourceAttributes.namespace must match namespace: {ns}"
    return None


def validate_self_subject_rules_review(obj: Obj) -> list[Cause]:
    causes = _meta_empty(obj)
    if not (obj.get("spec") or {}).get("namespace"):
        causes.append(required("spec.namespace"))
    return causes


class _ReviewStrategy(Strategy):
    track_generation = False

    def __init__(self, check: Any) -> None:
        self._check = check

    def validate(self, obj: Obj) -> list[Cause]:
        result: list[Cause] = self._check(obj)
        return result


def _register(resource: str, kind: str, namespaced: bool, check: Any) -> ResourceInfo:
    return register(
        ResourceInfo(
            GROUP,
            VERSION,
            resource,
            kind,
            namespaced,
            P + kind,
            strategy=_ReviewStrategy(check),
            verbs=("create",),
        )
    )


SUBJECTACCESSREVIEWS = _register("subjectaccessreviews", "SubjectAccessReview", False, validate_subject_access_review)
SELFSUBJECTACCESSREVIEWS = _register(
    "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, validate_self_subject_access_review
)
LOCALSUBJECTACCESSREVIEWS = _register(
    "localsubjectaccessreviews", "LocalSubjectAccessReview", True, validate_local_subject_access_review
)
SELFSUBJECTRULESREVIEWS = _register(
    "selfsubjectrulesreviews", "SelfSubjectRulesReview", False, validate_self_subject_rules_review
)
