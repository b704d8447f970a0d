"""node.k8s.io/v1 RuntimeClass: names a container runtime configuration (the CRI handler).

Numbers follow k8s.io/api/node/v1/generated.proto; validation follows upstream's
pkg/apis/node/validation. kubeha's kubelet knows the handlers ``docker`` and ``host``.
"""

from __future__ import annotations

import kubeha.api.core.pod as pod
import kubeha.api.meta.v1  # noqa: F401  (registers ObjectMeta)
from kubeha.api import validation
from kubeha.api.errors import Cause, invalid_value, required
from kubeha.api.registry import ResourceInfo, Strategy, register
from kubeha.api.schema import CORE, META, QUANTITY, STRING, Obj, f, list_of, map_of, struct, type_meta_fields

GROUP = "node.k8s.io"
VERSION = "v1"
P = "io.k8s.api.node.v1."

struct(
    P + "Overhead",
    "Resources a pod of this runtime class uses on top of its containers.",
    f("podFixed", 1, map_of(QUANTITY), "Fixed overhead per pod."),
)
struct(
    P + "Scheduling",
    "Constraints that keep pods of this runtime class on nodes that support it.",
    f("nodeSelector", 1, map_of(STRING), "Labels the node must have."),
    f("tolerations", 2, list_of(CORE + "Toleration"), "Tolerations added to the pods.", list_type="atomic"),
)
struct(
    P + "RuntimeClass",
    "A container runtime configuration pods can ask for with runtimeClassName.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("handler", 2, STRING, "The CRI handler that runs the pods; immutable.", required=True, immutable=True),
    f("overhead", 3, P + "Overhead", "Per-pod resource overhead."),
    f("scheduling", 4, P + "Scheduling", "Where pods of this class may run."),
    gvk=(GROUP, VERSION, "RuntimeClass"),
)
struct(
    P + "RuntimeClassList",
    "A list of RuntimeClasses.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "RuntimeClass"), "The runtime classes.", required=True),
    gvk=(GROUP, VERSION, "RuntimeClassList"),
)


class RuntimeClassStrategy(Strategy):
    track_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        handler = obj.get("handler") or ""
        if not handler:
            causes.append(required("handler"))
        else:
            causes += [invalid_value("handler", handler, m) for m in validation.is_dns1123_label(handler)]
        overhead = obj.get("overhead")
        if isinstance(overhead, dict):
            causes += _validate_quantities(overhead.get("podFixed"), "overhead.podFixed")
        sched = obj.get("scheduling")
        if isinstance(sched, dict):
            causes += validation.validate_labels(sched.get("nodeSelector") or {}, "scheduling.nodeSelector")
            causes += pod.validate_tolerations(sched.get("tolerations"), "scheduling.tolerations")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + validation.validate_immutable(new.get("handler"), old.get("handler"), "handler")


def _validate_quantities(resources: object, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(resources, dict):
        return causes
    for name, q in resources.items():
        try:
            value = pod.parse_quantity(q)
        except (ValueError, ArithmeticError):
            causes.append(invalid_value(f"{path}[{name}]", q, "must be a valid quantity"))
            continue
        if value < 0:
            causes.append(invalid_value(f"{path}[{name}]", q, "must be greater than or equal to 0"))
    return causes


RUNTIMECLASSES = register(
    ResourceInfo(
        GROUP,
        VERSION,
        "runtimeclasses",
        "RuntimeClass",
        False,
        P + "RuntimeClass",
        strategy=RuntimeClassStrategy(),
    )
)
