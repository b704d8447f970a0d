"""core/v1 LimitRange (``limits``) and ResourceQuota (``quota``, with a status subresource).

Numbers follow k8s.io/api/core/v1/generated.proto; validation follows upstream's
ValidateLimitRange / ValidateResourceQuota. Imported only by ``registry.load_all`` so core/v1
stays the module everyone else imports; the admission plugins that enforce these come later.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import kubeha.api.core.pod as pod
import kubeha.api.core.v1  # noqa: F401  (registers core structs this module refers to)
from kubeha.api.errors import Cause, invalid_value, not_supported, required
from kubeha.api.registry import ResourceInfo, Strategy, SubresourceInfo, register
from kubeha.api.schema import CORE, META, QUANTITY, STRING, Obj, f, list_of, map_of, struct, type_meta_fields

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
QUOTA_SCOPES = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
)
SCOPE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

struct(
    CORE + "LimitRangeItem",
    "Limits and defaults for one kind of object (Pod, Container, PersistentVolumeClaim).",
    f("type", 1, STRING, "Kind of object the limits apply to.", required=True),
    f("max", 2, map_of(QUANTITY), "Maximum usage per resource."),
    f("min", 3, map_of(QUANTITY), "Minimum usage per resource."),
    f("default", 4, map_of(QUANTITY), "Default limits when a container sets none."),
    f("defaultRequest", 5, map_of(QUANTITY), "Default requests when a container sets none."),
    f("maxLimitRequestRatio", 6, map_of(QUANTITY), "Largest allowed limit / request ratio per resource."),
)
struct(
    CORE + "LimitRangeSpec",
    "The limits enforced in a namespace.",
    f("limits", 1, list_of(CORE + "LimitRangeItem"), "The limit items.", required=True, list_type="atomic"),
)
struct(
    CORE + "LimitRange",
    "Resource limits and defaults for objects in a namespace.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, CORE + "LimitRangeSpec", "The limits enforced."),
    gvk=("", "v1", "LimitRange"),
)
struct(
    CORE + "LimitRangeList",
    "A list of LimitRanges.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(CORE + "LimitRange"), "The limit ranges.", required=True),
    gvk=("", "v1", "LimitRangeList"),
)
struct(
    CORE + "ScopedResourceSelectorRequirement",
    "A scope name with an operator and values.",
    f("scopeName", 1, STRING, "The scope the requirement applies to.", required=True),
    f("operator", 2, STRING, "In, NotIn, Exists or DoesNotExist.", required=True),
    f("values", 3, list_of(STRING), "Values for In and NotIn.", list_type="atomic"),
)
struct(
    CORE + "ScopeSelector",
    "Scope requirements, all of which must match.",
    f(
        "matchExpressions",
        1,
        list_of(CORE + "ScopedResourceSelectorRequirement"),
        "The requirements.",
        list_type="atomic",
    ),
)
struct(
    CORE + "ResourceQuotaSpec",
    "The desired hard limits of a quota.",
    f("hard", 1, map_of(QUANTITY), "Hard limit per named resource."),
    f("scopes", 2, list_of(STRING), "Scopes every tracked object must match.", list_type="atomic"),
    f("scopeSelector", 3, CORE + "ScopeSelector", "Scope filter, like scopes but with operators."),
)
struct(
    CORE + "ResourceQuotaStatus",
    "Enforced hard limits and observed usage.",
    f("hard", 1, map_of(QUANTITY), "Enforced hard limits."),
    f("used", 2, map_of(QUANTITY), "Current observed usage."),
)
struct(
    CORE + "ResourceQuota",
    "Aggregate resource limits for a namespace.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, CORE + "ResourceQuotaSpec", "The desired quota."),
    f("status", 3, CORE + "ResourceQuotaStatus", "The enforced quota and usage."),
    gvk=("", "v1", "ResourceQuota"),
)
struct(
    CORE + "ResourceQuotaList",
    "A list of ResourceQuotas.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(CORE + "ResourceQuota"), "The quotas.", required=True),
    gvk=("", "v1", "ResourceQuotaList"),
)


def _quantities(resources: Any, path: str) -> tuple[list[Cause], dict[str, Decimal]]:
    causes: list[Cause] = []
    values: dict[str, Decimal] = {}
    if not isinstance(resources, dict):
        return causes, values
    for name, q in resources.items():
        try:
            value = pod.parse_quantity(q)
        except (ValueError, ArithmeticError):
            causes.append(invalid_value(f"{path}[{name}]", q, "must be a valid quantity"))
            continue
        if value < 0:
            causes.append(invalid_value(f"{path}[{name}]", q, "must be greater than or equal to 0"))
        values[name] = value
    return causes, values


def validate_limit_range(obj: Obj) -> list[Cause]:
    """Upstream ValidateLimitRange: types, quantities, and min <= defaultRequest <= default <= max."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate((obj.get("spec") or {}).get("limits") or []):
        p = f"spec.limits[{i}]"
        if not isinstance(item, dict):
            causes.append(invalid_value(p, item, "must be an object"))
            continue
        kind = item.get("type") or ""
        if not kind:
            causes.append(required(f"{p}.type"))
        elif kind in seen:
            causes.append(Cause("FieldValueDuplicate", f"{p}.type", f'Duplicate value: "{kind}"'))
        seen.add(kind)
        parsed: dict[str, dict[str, Decimal]] = {}
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            c, parsed[key] = _quantities(item.get(key), f"{p}.{key}")
            causes += c
        if kind == "Pod":
            for key in ("default", "defaultRequest"):
                if item.get(key):
                    causes.append(
                        Cause(
                            "FieldValueForbidden", f"{p}.{key}", "Forbidden: may not be specified when `type` is 'Pod'"
                        )
                    )
        mx, mn, dflt, dreq = parsed["max"], parsed["min"], parsed["default"], parsed["defaultRequest"]
        for name in sorted(set(mx) | set(mn) | set(dflt) | set(dreq)):
            raw = {k: (item.get(k) or {}).get(name) for k in ("max", "min", "default", "defaultRequest")}
            if name in mn and name in mx and mn[name] > mx[name]:
                causes.append(
                    invalid_value(
                        f"{p}.min[{name}]", raw["min"], f"min value {raw['min']} is greater than max value {raw['max']}"
                    )
                )
            if name in dreq and name in dflt and dreq[name] > dflt[name]:
                causes.append(
                    invalid_value(
                        f"{p}.defaultRequest[{name}]",
                        raw["defaultRequest"],
                        f"default request value {raw['defaultRequest']} is greater than default limit value "
                        f"{raw['default']}",
                    )
                )
            if name in dreq and name in mx and dreq[name] > mx[name]:
                causes.append(
                    invalid_value(
                        f"{p}.defaultRequest[{name}]",
                        raw["defaultRequest"],
                        f"default request value {raw['defaultRequest']} is greater than max value {raw['max']}",
                    )
                )
            if name in dflt and name in mx and dflt[name] > mx[name]:
                causes.append(
                    invalid_value(
                        f"{p}.default[{name}]",
                        raw["default"],
                        f"default value {raw['default']} is greater than max value {raw['max']}",
                    )
                )
            if name in mn and name in dflt and mn[name] > dflt[name]:
                causes.append(
                    invalid_value(
                        f"{p}.default[{name}]",
                        raw["default"],
                        f"min value {raw['min']} is greater than default value {raw['default']}",
                    )
                )
        for name, ratio in parsed["maxLimitRequestRatio"].items():
            if ratio < 1:
                q = (item.get("maxLimitRequestRatio") or {}).get(name)
                causes.append(invalid_value(f"{p}.maxLimitRequestRatio[{name}]", q, f"ratio {q} is less than 1"))
    return causes


def validate_resource_quota_spec(spec: Any) -> list[Cause]:
    spec = spec if isinstance(spec, dict) else {}
    causes, _ = _quantities(spec.get("hard"), "spec.hard")
    for i, scope in enumerate(spec.get("scopes") or []):
        if scope not in QUOTA_SCOPES:
            causes.append(not_supported(f"spec.scopes[{i}]", scope, list(QUOTA_SCOPES)))
    selector = spec.get("scopeSelector")
    if isinstance(selector, dict):
        for i, req in enumerate(selector.get("matchExpressions") or []):
            p = f"spec.scopeSelector.matchExpressions[{i}]"
            req = req if isinstance(req, dict) else {}
            scope = req.get("scopeName") or ""
            if scope not in QUOTA_SCOPES:
                causes.append(not_supported(f"{p}.scopeName", scope, list(QUOTA_SCOPES)))
            op = req.get("operator") or ""
            if op not in SCOPE_OPERATORS:
                causes.append(not_supported(f"{p}.operator", op, list(SCOPE_OPERATORS)))
            elif op in ("In", "NotIn") and not req.get("values"):
                causes.append(required(f"{p}.values", "must be at least one value when `operator` is 'In' or 'NotIn'"))
            elif op in ("Exists", "DoesNotExist") and req.get("values"):
                causes.append(
                    invalid_value(
                        f"{p}.values",
                        req.get("values"),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist'",
                    )
                )
    return causes


class LimitRangeStrategy(Strategy):
    track_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_limit_range(obj)


class ResourceQuotaStrategy(Strategy):
    has_status = True
    track_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_resource_quota_spec(obj.get("spec"))

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = new.get("status") or {}
        causes, _ = _quantities(status.get("hard"), "status.hard")
        more, _ = _quantities(status.get("used"), "status.used")
        return causes + more


LIMITRANGES = register(
    ResourceInfo(
        "",
        "v1",
        "limitranges",
        "LimitRange",
        namespaced=True,
        schema=CORE + "LimitRange",
        strategy=LimitRangeStrategy(),
        short_names=("limits",),
    )
)
RESOURCEQUOTAS = register(
    ResourceInfo(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        namespaced=True,
        schema=CORE + "ResourceQuota",
        strategy=ResourceQuotaStrategy(),
        short_names=("quota",),
        subresources=(SubresourceInfo("status", "ResourceQuota"),),
    )
)
