"""scheduling.k8s.io/v1 PriorityClass: names a pod priority (pods refer to it by name).

Numbers follow k8s.io/api/scheduling/v1/generated.proto; validation follows upstream's
pkg/apis/scheduling/validation. The two built-in system classes are data here so the api-server
can create them at start-up (as upstream's scheduling REST storage does).
"""

from __future__ import annotations

import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta)
from kubeha.api import validation
from kubeha.api.errors import Cause, forbidden_field, not_supported
from kubeha.api.registry import ResourceInfo, Strategy, register
from kubeha.api.schema import BOOL, INT32, META, STRING, Obj, f, list_of, struct, type_meta_fields

GROUP = "scheduling.k8s.io"
VERSION = "v1"
P = "io.k8s.api.scheduling.v1."

PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
SYSTEM_PREFIX = "system-"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"

struct(
    P + "PriorityClass",
    "Maps a priority class name to an integer priority.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("value", 2, INT32, "The priority; higher is more important.", required=True, immutable=True),
    f("globalDefault", 3, BOOL, "Use this class for pods that name none (at most one class)."),
    f("description", 4, STRING, "When to use this class."),
    f(
        "preemptionPolicy",
        5,
        STRING,
        "Whether pods of this class may preempt lower-priority pods.",
        pointer=True,
        default="PreemptLowerPriority",
        enum=PREEMPTION_POLICIES,
        immutable=True,
    ),
    gvk=(GROUP, VERSION, "PriorityClass"),
)
struct(
    P + "PriorityClassList",
    "A list of PriorityClasses.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "PriorityClass"), "The priority classes.", required=True),
    gvk=(GROUP, VERSION, "PriorityClassList"),
)


def system_priority_classes() -> list[Obj]:
    """The classes every cluster has (upstream creates them when the api-server starts)."""
    return [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PriorityClass",
            "metadata": {"name": SYSTEM_NODE_CRITICAL},
            "value": SYSTEM_CRITICAL_PRIORITY + 1000,
            "description": "Used for system critical pods that must not be moved from their current node.",
            "preemptionPolicy": "PreemptLowerPriority",
        },
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PriorityClass",
            "metadata": {"name": SYSTEM_CLUSTER_CRITICAL},
            "value": SYSTEM_CRITICAL_PRIORITY,
            "description": "Used for system critical pods that must run in the cluster, "
            "but can be moved to another node if necessary.",
            "preemptionPolicy": "PreemptLowerPriority",
        },
    ]


def _known_system_class(name: str, value: object, global_default: bool) -> str | None:
    """None when (name, value) is one of the built-in classes, else why not."""
    for pc in system_priority_classes():
        if pc["metadata"]["name"] == name:
            if pc["value"] != value:
                return f"value of {name} PriorityClass must be {pc['value']}"
            if global_default:
                return f"{name} cannot be marked as the global default"
            return None
    return f"{name} is not a known system priority class"


class PriorityClassStrategy(Strategy):
    track_generation = False

    def default(self, obj: Obj) -> None:
        if obj.get("preemptionPolicy") is None:
            obj["preemptionPolicy"] = "PreemptLowerPriority"

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        name = (obj.get("metadata") or {}).get("name") or ""
        value = obj.get("value", 0)
        if name.startswith(SYSTEM_PREFIX):
            why = _known_system_class(name, value, bool(obj.get("globalDefault")))
            if why:
                causes.append(
                    forbidden_field(
                        "metadata.name",
                        f"priority class names with 'system-' prefix are reserved for system use only. error: {why}",
                    )
                )
        elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
            causes.append(
                forbidden_field(
                    "value",
                    f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}",
                )
            )
        policy = obj.get("preemptionPolicy")
        if policy is not None and policy not in PREEMPTION_POLICIES:
            causes.append(not_supported("preemptionPolicy", policy, list(PREEMPTION_POLICIES)))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if new.get("value", 0) != old.get("value", 0):
            causes.append(forbidden_field("value", "may not be changed in an update."))
        causes += validation.validate_immutable(
            new.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy"
        )
        return causes


PRIORITYCLASSES = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "priorityclasses",
        "PriorityClass",
        False,
        P + "PriorityClass",
        strategy=PriorityClassStrategy(),
        short_names=("pc",),
    )
)
