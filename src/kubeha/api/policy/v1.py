"""policy/v1: Eviction (served as ``pods/eviction``) and PodDisruptionBudget."""

from __future__ import annotations

import re
from typing import Any

from kubeha.api import registry
from kubeha.api.errors import Cause, invalid_value, not_supported
from kubeha.api.registry import ResourceInfo, Strategy, SubresourceInfo
from kubeha.api.schema import (
    INT32,
    INT64,
    INT_OR_STRING,
    META,
    STRING,
    TIME,
    Obj,
    f,
    list_of,
    map_of,
    struct,
    type_meta_fields,
)
from kubeha.api.validation import validate_labels, validate_nonnegative

GROUP = "policy"
VERSION = "v1"
P = "io.k8s.api.policy.v1."

struct(
    P + "Eviction",
    "Evicts a pod from its node, subject to disruption budgets (POST to pods/<name>/eviction).",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Names the pod to evict."),
    f("deleteOptions", 2, META + "DeleteOptions", "Options for the pod deletion."),
    gvk=(GROUP, VERSION, "Eviction"),
)

struct(
    P + "PodDisruptionBudgetSpec",
    "Desired disruption limits for a set of pods.",
    f("minAvailable", 1, INT_OR_STRING, "Pods that must stay available after an eviction (number or percent)."),
    f("selector", 2, META + "LabelSelector", "Label query over the pods the budget covers.", strategy="replace"),
    f("maxUnavailable", 3, INT_OR_STRING, "Pods that may be unavailable after an eviction (number or percent)."),
    f(
        "unhealthyPodEvictionPolicy",
        4,
        STRING,
        "When unhealthy running pods may be evicted: IfHealthyBudget or AlwaysAllow.",
        pointer=True,
        enum=("IfHealthyBudget", "AlwaysAllow"),
    ),
)
struct(
    P + "PodDisruptionBudgetStatus",
    "Observed state of a disruption budget.",
    f("observedGeneration", 1, INT64, "Generation observed when updating this status."),
    f("disruptedPods", 2, map_of(TIME), "Pods evicted but not yet deleted, with the eviction time."),
    f("disruptionsAllowed", 3, INT32, "Pod disruptions currently allowed.", required=True),
    f("currentHealthy", 4, INT32, "Current number of healthy pods.", required=True),
    f("desiredHealthy", 5, INT32, "Minimum desired number of healthy pods.", required=True),
    f("expectedPods", 6, INT32, "Pods counted by this budget.", required=True),
    f(
        "conditions",
        7,
        list_of(META + "Condition"),
        "Conditions of the budget (DisruptionAllowed).",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    ),
)
struct(
    P + "PodDisruptionBudget",
    "Maximum disruption that can be caused to a collection of pods.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, P + "PodDisruptionBudgetSpec", "Desired behaviour of the budget."),
    f("status", 3, P + "PodDisruptionBudgetStatus", "Most recently observed status."),
    gvk=(GROUP, VERSION, "PodDisruptionBudget"),
)
struct(
    P + "PodDisruptionBudgetList",
    "A list of PodDisruptionBudgets.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "PodDisruptionBudget"), "The budgets.", required=True),
    gvk=(GROUP, VERSION, "PodDisruptionBudgetList"),
)

_PERCENT = re.compile(r"^[0-9]+%$")


def _validate_int_or_percent(v: Any, path: str) -> list[Cause]:
    if isinstance(v, int) and not isinstance(v, bool):
        return list(validate_nonnegative(v, path))
    if isinstance(v, str) and _PERCENT.match(v):
        if int(v[:-1]) > 100:
            return [invalid_value(path, v, "must not be greater than 100%")]
        return []
    return [invalid_value(path, v, "a valid percent string must be a numeric string followed by an ending '%'")]


class PodDisruptionBudgetStrategy(Strategy):
    has_status = True
    track_generation = True

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        min_a, max_u = spec.get("minAvailable"), spec.get("maxUnavailable")
        if min_a is not None and max_u is not None:
            causes.append(invalid_value("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
        if min_a is not None:
            causes += _validate_int_or_percent(min_a, "spec.minAvailable")
        if max_u is not None:
            causes += _validate_int_or_percent(max_u, "spec.maxUnavailable")
        sel = spec.get("selector")
        if isinstance(sel, dict):
            causes += validate_labels(sel.get("matchLabels") or {}, "spec.selector.matchLabels")
        policy = spec.get("unhealthyPodEvictionPolicy")
        if policy is not None and policy not in ("IfHealthyBudget", "AlwaysAllow"):
            causes.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, ["AlwaysAllow", "IfHealthyBudget"]))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = new.get("status") or {}
        causes: list[Cause] = []
        for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
            if status.get(key) is not None:
                causes += validate_nonnegative(status[key], f"status.{key}")
        return causes


PODDISRUPTIONBUDGETS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        P + "PodDisruptionBudget",
        strategy=PodDisruptionBudgetStrategy(),
        short_names=("pdb",),
        subresources=(SubresourceInfo("status", "PodDisruptionBudget"),),
    )
)
