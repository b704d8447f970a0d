"""coordination.k8s.io/v1 Lease: leader election and node heartbeats."""

from __future__ import annotations

from kubeha.api import registry
from kubeha.api.errors import Cause, forbidden_field, invalid_value, not_supported
from kubeha.api.registry import ResourceInfo, Strategy
from kubeha.api.schema import INT32, META, MICROTIME, STRING, Obj, f, list_of, struct, type_meta_fields
from kubeha.api.validation import validate_nonnegative

GROUP = "coordination.k8s.io"
VERSION = "v1"
P = "io.k8s.api.coordination.v1."
STRATEGIES = ("OldestEmulationVersion",)

struct(
    P + "LeaseSpec",
    "Specification of a lease.",
    f("holderIdentity", 1, STRING, "Identity of the current holder.", pointer=True),
    f("leaseDurationSeconds", 2, INT32, "Seconds candidates wait before forcing acquisition.", pointer=True),
    f("acquireTime", 3, MICROTIME, "When the current holder acquired the lease."),
    f("renewTime", 4, MICROTIME, "When the current holder last renewed the lease."),
    f("leaseTransitions", 5, INT32, "Number of holder changes.", pointer=True),
    f("strategy", 6, STRING, "Strategy for picking the leader in coordinated election.", pointer=True),
    f("preferredHolder", 7, STRING, "Holder that should take over the lease when possible.", pointer=True),
)
struct(
    P + "Lease",
    "A lease concept.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, P + "LeaseSpec", "Specification of the lease."),
    gvk=(GROUP, VERSION, "Lease"),
)
struct(
    P + "LeaseList",
    "A list of Lease objects.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "Lease"), "The leases.", required=True),
    gvk=(GROUP, VERSION, "LeaseList"),
)


class LeaseStrategy(Strategy):
    track_generation = False
    allow_create_on_update = False

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0):
            causes.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if transitions is not None:
            causes += validate_nonnegative(transitions, "spec.leaseTransitions")
        strategy = spec.get("strategy")
        if strategy is not None and strategy not in STRATEGIES:
            causes.append(not_supported("spec.strategy", strategy, list(STRATEGIES)))
        if spec.get("preferredHolder") and strategy is None:
            causes.append(forbidden_field("spec.preferredHolder", "may only be specified if `strategy` is defined"))
        return causes


LEASES = registry.register(ResourceInfo(GROUP, VERSION, "leases", "Lease", True, P + "Lease", strategy=LeaseStrategy()))
