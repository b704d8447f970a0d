"""apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision.

Field numbers are upstream's (k8s.io/api/apps/v1/generated.proto). Defaulting and validation
follow upstream's apps/v1 defaults and pkg/apis/apps/validation, reduced to the checks clients
actually trip over.
"""

from __future__ import annotations

import re
from typing import Any

# core/v1 goes first so a PersistentVolumeClaim it declares wins over the minimal one below
import kubeha.api.core.v1  # noqa: F401
from kubeha.api import registry
from kubeha.api.core.pod import default_pod_spec, validate_pod_spec
from kubeha.api.errors import Cause, forbidden_field, invalid_value, not_supported, required
from kubeha.api.registry import ResourceInfo, Strategy, SubresourceInfo
from kubeha.api.schema import (
    BOOL,
    CORE,
    INT32,
    INT64,
    INT_OR_STRING,
    META,
    QUANTITY,
    RAW,
    STRING,
    STRUCTS,
    TIME,
    Field,
    Obj,
    f,
    list_of,
    list_struct,
    map_of,
    object_meta_field,
    struct,
    type_meta_fields,
)
from kubeha.api.validation import validate_immutable, validate_labels, validate_nonnegative

GROUP = "apps"
VERSION = "v1"
P = "io.k8s.api.apps.v1."
ROLLING_UPDATE = "RollingUpdate"


_meta = object_meta_field


def _list_struct(kind: str, doc: str) -> None:
    list_struct(P, (GROUP, VERSION, kind), doc, f"Items is the list of {kind}s.")


def _condition(kind: str, *, with_update_time: bool = False) -> None:
    fields = [
        f("type", 1, STRING, f"Type of {kind.lower()} condition.", required=True),
        f("status", 2, STRING, "Status of the condition, one of True, False, Unknown.", required=True),
        f("lastTransitionTime", 7 if with_update_time else 3, TIME, "Last time the condition changed status."),
        f("reason", 4, STRING, "Machine-readable reason for the last transition."),
        f("message", 5, STRING, "Human-readable details about the last transition."),
    ]
    if with_update_time:
        fields.insert(2, f("lastUpdateTime", 6, TIME, "Last time this condition was updated."))
    struct(P + kind + "Condition", f"Describes the state of a {kind.lower()} at a certain point.", *fields)


def _conditions_field(kind: str, number: int) -> Field:
    return f(
        "conditions",
        number,
        list_of(P + kind + "Condition"),
        "Latest available observations of the object's current state.",
        strategy="merge",
        merge_key="type",
        list_type="map",
        map_keys=("type",),
    )


def _selector(number: int) -> Field:
    return f(
        "selector",
        number,
        META + "LabelSelector",
        "Label query over pods; must match the template's labels.",
        required=True,
    )


def _template(number: int) -> Field:
    return f("template", number, CORE + "PodTemplateSpec", "Pods created from this template.", required=True)


# -- PersistentVolumeClaim (only when core/v1 does not declare it) ---------------------------------


def _declare_pvc_if_absent() -> None:
    if CORE + "TypedLocalObjectReference" not in STRUCTS:
        struct(
            CORE + "TypedLocalObjectReference",
            "Reference to an object in the same namespace.",
            f("apiGroup", 1, STRING, "Group of the referenced resource.", pointer=True),
            f("kind", 2, STRING, "Kind of the referenced resource.", required=True),
            f("name", 3, STRING, "Name of the referenced resource.", required=True),
        )
    if CORE + "TypedObjectReference" not in STRUCTS:
        struct(
            CORE + "TypedObjectReference",
            "Reference to an object, possibly in another namespace.",
            f("apiGroup", 1, STRING, "Group of the referenced resource.", pointer=True),
            f("kind", 2, STRING, "Kind of the referenced resource.", required=True),
            f("name", 3, STRING, "Name of the referenced resource.", required=True),
            f("namespace", 4, STRING, "Namespace of the referenced resource.", pointer=True),
        )
    if CORE + "VolumeResourceRequirements" not in STRUCTS:
        struct(
            CORE + "VolumeResourceRequirements",
            "Storage resources a volume claim asks for.",
            f("limits", 1, map_of(QUANTITY), "Maximum amount of storage allowed."),
            f("requests", 2, map_of(QUANTITY), "Minimum amount of storage required."),
        )
    if CORE + "PersistentVolumeClaimSpec" not in STRUCTS:
        struct(
            CORE + "PersistentVolumeClaimSpec",
            "Desired characteristics of a volume claim.",
            f("accessModes", 1, list_of(STRING), "Desired access modes of the volume.", list_type="atomic"),
            f("selector", 4, META + "LabelSelector", "Label query over volumes to bind to."),
            f("resources", 2, CORE + "VolumeResourceRequirements", "Minimum resources the volume should have."),
            f("volumeName", 3, STRING, "Binding reference to the PersistentVolume backing this claim."),
            f("storageClassName", 5, STRING, "Name of the StorageClass required by the claim.", pointer=True),
            f("volumeMode", 6, STRING, "Filesystem or Block.", pointer=True),
            f("dataSource", 7, CORE + "TypedLocalObjectReference", "Object to populate the volume from."),
            f("dataSourceRef", 8, CORE + "TypedObjectReference", "Object to populate the volume from."),
            f("volumeAttributesClassName", 9, STRING, "VolumeAttributesClass used by the claim.", pointer=True),
        )
    if CORE + "PersistentVolumeClaimStatus" not in STRUCTS:
        struct(
            CORE + "PersistentVolumeClaimStatus",
            "Observed state of a volume claim.",
            f("phase", 1, STRING, "Current phase of the claim."),
            f("accessModes", 2, list_of(STRING), "Access modes the volume backing the claim has.", list_type="atomic"),
            f("capacity", 3, map_of(QUANTITY), "Actual resources of the underlying volume."),
        )
    if CORE + "PersistentVolumeClaim" not in STRUCTS:
        struct(
            CORE + "PersistentVolumeClaim",
            "A user's request for and claim to a persistent volume.",
            *type_meta_fields(),
            _meta(),
            f("spec", 2, CORE + "PersistentVolumeClaimSpec", "Desired characteristics of the volume."),
            f("status", 3, CORE + "PersistentVolumeClaimStatus", "Current status of the claim."),
            gvk=("", "v1", "PersistentVolumeClaim"),
        )


_declare_pvc_if_absent()

# -- Deployment ---------------------------------------------------------------------------------------

struct(
    P + "RollingUpdateDeployment",
    "Parameters of a rolling update.",
    f(
        "maxUnavailable",
        1,
        INT_OR_STRING,
        "Pods that may be unavailable during the update (number or percent).",
        default="25%",
    ),
    f(
        "maxSurge",
        2,
        INT_OR_STRING,
        "Pods that may be created above the desired count (number or percent).",
        default="25%",
    ),
)
struct(
    P + "DeploymentStrategy",
    "How to replace existing pods with new ones.",
    f("type", 1, STRING, "Recreate or RollingUpdate.", default=ROLLING_UPDATE, enum=("Recreate", ROLLING_UPDATE)),
    f("rollingUpdate", 2, P + "RollingUpdateDeployment", "Rolling update parameters (type RollingUpdate only)."),
)
struct(
    P + "DeploymentSpec",
    "Desired behaviour of a Deployment.",
    f("replicas", 1, INT32, "Number of desired pods.", default=1, pointer=True),
    _selector(2),
    _template(3),
    f("strategy", 4, P + "DeploymentStrategy", "How to replace existing pods.", strategy="retainKeys"),
    f("minReadySeconds", 5, INT32, "Seconds a new pod must be ready to count as available."),
    f("revisionHistoryLimit", 6, INT32, "Old ReplicaSets to keep for rollback.", default=10, pointer=True),
    f("paused", 7, BOOL, "Whether the deployment is paused."),
    f("progressDeadlineSeconds", 9, INT32, "Seconds before a stalled rollout is reported.", default=600, pointer=True),
)
_condition("Deployment", with_update_time=True)
struct(
    P + "DeploymentStatus",
    "Most recently observed status of a Deployment.",
    f("observedGeneration", 1, INT64, "Generation observed by the deployment controller."),
    f("replicas", 2, INT32, "Non-terminating pods targeted by this deployment."),
    f("updatedReplicas", 3, INT32, "Non-terminating pods with the desired template."),
    f("readyReplicas", 7, INT32, "Pods with a Ready condition."),
    f("availableReplicas", 4, INT32, "Pods ready for at least minReadySeconds."),
    f("unavailableReplicas", 5, INT32, "Pods still needed for 100% capacity."),
    f("terminatingReplicas", 9, INT32, "Terminating pods targeted by this deployment.", pointer=True),
    _conditions_field("Deployment", 6),
    f("collisionCount", 8, INT32, "Hash collision count for naming the newest ReplicaSet.", pointer=True),
)
struct(
    P + "Deployment",
    "Declarative updates for Pods and ReplicaSets.",
    *type_meta_fields(),
    _meta(),
    f("spec", 2, P + "DeploymentSpec", "Desired behaviour of the Deployment."),
    f("status", 3, P + "DeploymentStatus", "Most recently observed status."),
    gvk=(GROUP, VERSION, "Deployment"),
)
_list_struct("Deployment", "A list of Deployments.")

# -- ReplicaSet ---------------------------------------------------------------------------------------

struct(
    P + "ReplicaSetSpec",
    "Desired behaviour of a ReplicaSet.",
    f("replicas", 1, INT32, "Number of desired pods.", default=1, pointer=True),
    f("minReadySeconds", 4, INT32, "Seconds a new pod must be ready to count as available."),
    _selector(2),
    f("template", 3, CORE + "PodTemplateSpec", "Pods created when too few exist."),
)
_condition("ReplicaSet")
struct(
    P + "ReplicaSetStatus",
    "Most recently observed status of a ReplicaSet.",
    f("replicas", 1, INT32, "Most recently observed number of non-terminating pods.", required=True),
    f("fullyLabeledReplicas", 2, INT32, "Pods whose labels match the template's labels."),
    f("readyReplicas", 4, INT32, "Pods with a Ready condition."),
    f("availableReplicas", 5, INT32, "Pods ready for at least minReadySeconds."),
    f("terminatingReplicas", 7, INT32, "Terminating pods of this ReplicaSet.", pointer=True),
    f("observedGeneration", 3, INT64, "Generation observed by the replicaset controller."),
    _conditions_field("ReplicaSet", 6),
)
struct(
    P + "ReplicaSet",
    "Ensures a number of pod replicas are running.",
    *type_meta_fields(),
    _meta(),
    f("spec", 2, P + "ReplicaSetSpec", "Desired behaviour of the ReplicaSet."),
    f("status", 3, P + "ReplicaSetStatus", "Most recently observed status."),
    gvk=(GROUP, VERSION, "ReplicaSet"),
)
_list_struct("ReplicaSet", "A list of ReplicaSets.")

# -- DaemonSet ----------------------------------------------------------------------------------------

struct(
    P + "RollingUpdateDaemonSet",
    "Parameters of a daemon set rolling update.",
    f("maxUnavailable", 1, INT_OR_STRING, "Nodes whose pod may be unavailable during the update.", default=1),
    f("maxSurge", 2, INT_OR_STRING, "Nodes that may run an extra updated pod during the update.", default=0),
)
struct(
    P + "DaemonSetUpdateStrategy",
    "How to replace daemon pods.",
    f("type", 1, STRING, "RollingUpdate or OnDelete.", default=ROLLING_UPDATE, enum=(ROLLING_UPDATE, "OnDelete")),
    f("rollingUpdate", 2, P + "RollingUpdateDaemonSet", "Rolling update parameters (type RollingUpdate only)."),
)
struct(
    P + "DaemonSetSpec",
    "Desired behaviour of a DaemonSet.",
    _selector(1),
    _template(2),
    f("updateStrategy", 3, P + "DaemonSetUpdateStrategy", "How to replace existing daemon pods."),
    f("minReadySeconds", 4, INT32, "Seconds a new pod must be ready to count as available."),
    f("revisionHistoryLimit", 6, INT32, "Old revisions to keep for rollback.", default=10, pointer=True),
)
_condition("DaemonSet")
struct(
    P + "DaemonSetStatus",
    "Most recently observed status of a DaemonSet.",
    f("currentNumberScheduled", 1, INT32, "Nodes running at least one daemon pod that should.", required=True),
    f("numberMisscheduled", 2, INT32, "Nodes running a daemon pod that should not.", required=True),
    f("desiredNumberScheduled", 3, INT32, "Nodes that should run the daemon pod.", required=True),
    f("numberReady", 4, INT32, "Nodes whose daemon pod is ready.", required=True),
    f("observedGeneration", 5, INT64, "Generation observed by the daemon set controller."),
    f("updatedNumberScheduled", 6, INT32, "Nodes running the updated daemon pod."),
    f("numberAvailable", 7, INT32, "Nodes whose daemon pod is available."),
    f("numberUnavailable", 8, INT32, "Nodes whose daemon pod is not available."),
    f("collisionCount", 9, INT32, "Hash collision count for naming the newest revision.", pointer=True),
    _conditions_field("DaemonSet", 10),
)
struct(
    P + "DaemonSet",
    "Runs a copy of a pod on each eligible node.",
    *type_meta_fields(),
    _meta(),
    f("spec", 2, P + "DaemonSetSpec", "Desired behaviour of the DaemonSet."),
    f("status", 3, P + "DaemonSetStatus", "Most recently observed status."),
    gvk=(GROUP, VERSION, "DaemonSet"),
)
_list_struct("DaemonSet", "A list of DaemonSets.")

# -- StatefulSet --------------------------------------------------------------------------------------

struct(
    P + "RollingUpdateStatefulSetStrategy",
    "Parameters of a stateful set rolling update.",
    f("partition", 1, INT32, "Ordinal at which to partition the update.", default=0, pointer=True),
    f("maxUnavailable", 2, INT_OR_STRING, "Pods that may be unavailable during the update."),
)
struct(
    P + "StatefulSetUpdateStrategy",
    "How the controller updates pods.",
    f("type", 1, STRING, "RollingUpdate or OnDelete.", default=ROLLING_UPDATE, enum=(ROLLING_UPDATE, "OnDelete")),
    f("rollingUpdate", 2, P + "RollingUpdateStatefulSetStrategy", "Rolling update parameters."),
)
struct(
    P + "StatefulSetPersistentVolumeClaimRetentionPolicy",
    "What happens to claims created from volumeClaimTemplates.",
    f("whenDeleted", 1, STRING, "Retain or Delete when the StatefulSet is deleted.", default="Retain"),
    f("whenScaled", 2, STRING, "Retain or Delete when the StatefulSet is scaled down.", default="Retain"),
)
struct(
    P + "StatefulSetOrdinals",
    "Numbering of replica indices.",
    f("start", 1, INT32, "First replica index.", required=True),
)
struct(
    P + "StatefulSetSpec",
    "Desired behaviour of a StatefulSet.",
    f("replicas", 1, INT32, "Desired number of replicas.", default=1, pointer=True),
    _selector(2),
    _template(3),
    f(
        "volumeClaimTemplates",
        4,
        list_of(CORE + "PersistentVolumeClaim"),
        "Claims each pod may reference.",
        list_type="atomic",
    ),
    f("serviceName", 5, STRING, "Governing headless service for pod DNS names."),
    f(
        "podManagementPolicy",
        6,
        STRING,
        "OrderedReady or Parallel.",
        default="OrderedReady",
        enum=("OrderedReady", "Parallel"),
    ),
    f("updateStrategy", 7, P + "StatefulSetUpdateStrategy", "How pods are updated."),
    f("revisionHistoryLimit", 8, INT32, "Old revisions to keep.", default=10, pointer=True),
    f("minReadySeconds", 9, INT32, "Seconds a new pod must be ready to count as available."),
    f(
        "persistentVolumeClaimRetentionPolicy",
        10,
        P + "StatefulSetPersistentVolumeClaimRetentionPolicy",
        "Lifecycle of claims created from volumeClaimTemplates.",
    ),
    f("ordinals", 11, P + "StatefulSetOrdinals", "Numbering of replica indices."),
)
_condition("StatefulSet")
struct(
    P + "StatefulSetStatus",
    "Most recently observed status of a StatefulSet.",
    f("observedGeneration", 1, INT64, "Generation observed by the stateful set controller."),
    f("replicas", 2, INT32, "Pods created by the controller.", required=True),
    f("readyReplicas", 3, INT32, "Pods with a Ready condition."),
    f("currentReplicas", 4, INT32, "Pods at currentRevision."),
    f("updatedReplicas", 5, INT32, "Pods at updateRevision."),
    f("currentRevision", 6, STRING, "Revision used for pods below currentReplicas."),
    f("updateRevision", 7, STRING, "Revision used for pods being updated."),
    f("collisionCount", 9, INT32, "Hash collision count for naming revisions.", pointer=True),
    _conditions_field("StatefulSet", 10),
    f("availableReplicas", 11, INT32, "Pods ready for at least minReadySeconds."),
)
struct(
    P + "StatefulSet",
    "Pods with stable identities and storage.",
    *type_meta_fields(),
    _meta(),
    f("spec", 2, P + "StatefulSetSpec", "Desired identities of pods in this set."),
    f("status", 3, P + "StatefulSetStatus", "Most recently observed status."),
    gvk=(GROUP, VERSION, "StatefulSet"),
)
_list_struct("StatefulSet", "A list of StatefulSets.")

# -- ControllerRevision -------------------------------------------------------------------------------

struct(
    P + "ControllerRevision",
    "An immutable snapshot of state data used by controllers for rollbacks.",
    *type_meta_fields(),
    _meta(),
    f("data", 2, RAW, "Serialized state of the revision."),
    f("revision", 3, INT64, "Revision number of the state in data.", required=True),
    gvk=(GROUP, VERSION, "ControllerRevision"),
)
_list_struct("ControllerRevision", "A list of ControllerRevisions.")

# -- shared validation --------------------------------------------------------------------------------

_PERCENT = re.compile(r"^[0-9]+%$")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_label_selector(sel: Obj, path: str) -> list[Cause]:
    """Structural checks of a metav1.LabelSelector (keys/values of matchLabels, operators)."""
    causes = list(validate_labels(sel.get("matchLabels") or {}, f"{path}.matchLabels"))
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator", "")
        values = expr.get("values") or []
        if not expr.get("key"):
            causes.append(required(f"{p}.key"))
        if op in ("In", "NotIn"):
            if not values:
                causes.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    forbidden_field(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
                )
        else:
            causes.append(not_supported(f"{p}.operator", op, ["In", "NotIn", "Exists", "DoesNotExist"]))
    return causes


def selector_matches(sel: Obj, labels: dict[str, str]) -> bool:
    """Whether a metav1.LabelSelector selects an object with these labels."""
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _validate_int_or_percent(v: Any, path: str) -> list[Cause]:
    if _is_int(v):
        return validate_nonnegative(v, path)
    if isinstance(v, str):
        if not _PERCENT.match(v):
            return [invalid_value(path, v, "a valid percent string must be a numeric string followed by an ending '%'")]
        return []
    return [invalid_value(path, v, "must be an integer or percentage")]


def _int_or_percent_value(v: Any) -> int:
    if _is_int(v):
        return int(v)
    if isinstance(v, str) and _PERCENT.match(v):
        return int(v[:-1])
    return 0


def _not_more_than_100_percent(v: Any, path: str) -> list[Cause]:
    if isinstance(v, str) and _PERCENT.match(v) and int(v[:-1]) > 100:
        return [invalid_value(path, v, "must not be greater than 100%")]
    return []


def _validate_opt_nonneg(spec: Obj, key: str, path: str) -> list[Cause]:
    v = spec.get(key)
    return [] if v is None else list(validate_nonnegative(v, f"{path}.{key}"))


def validate_selector_and_template(
    spec: Obj, path: str, what: str = "deployment", *, template_required: bool = True
) -> list[Cause]:
    """Selector present, non-empty, valid; template labels matched; template pod spec valid."""
    causes: list[Cause] = []
    sel = spec.get("selector")
    if sel is None:
        causes.append(required(f"{path}.selector"))
    else:
        causes.extend(validate_label_selector(sel, f"{path}.selector"))
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            causes.append(invalid_value(f"{path}.selector", sel, f"empty selector is invalid for {what}"))
    template = spec.get("template")
    if template is None:
        if template_required:
            causes.append(required(f"{path}.template"))
        return causes
    tmeta = template.get("metadata") or {}
    labels = tmeta.get("labels") or {}
    lpath = f"{path}.template.metadata.labels"
    causes.extend(validate_labels(labels, lpath))
    if sel and (sel.get("matchLabels") or sel.get("matchExpressions")) and not selector_matches(sel, labels):
        causes.append(invalid_value(lpath, labels, "`selector` does not match template `labels`"))
    pod_spec = template.get("spec") or {}
    causes.extend(validate_pod_spec(pod_spec, f"{path}.template.spec"))
    restart = pod_spec.get("restartPolicy", "Always")
    if restart != "Always":
        causes.append(not_supported(f"{path}.template.spec.restartPolicy", restart, ["Always"]))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(
            forbidden_field(
                f"{path}.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported"
            )
        )
    return causes


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))


def _status_nonneg(obj: Obj, keys: tuple[str, ...]) -> list[Cause]:
    status = obj.get("status") or {}
    causes: list[Cause] = []
    for key in keys:
        if status.get(key) is not None:
            causes.extend(validate_nonnegative(status[key], f"status.{key}"))
    return causes


def _selector_immutable(new: Obj, old: Obj) -> list[Cause]:
    return list(
        validate_immutable(
            (new.get("spec") or {}).get("selector"), (old.get("spec") or {}).get("selector"), "spec.selector"
        )
    )


# -- strategies ---------------------------------------------------------------------------------------


class DeploymentStrategy(Strategy):
    has_status = True
    track_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", ROLLING_UPDATE)
        if strategy["type"] == ROLLING_UPDATE:
            ru = strategy.get("rollingUpdate")
            if not isinstance(ru, dict):
                ru = strategy["rollingUpdate"] = {}
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        causes += _validate_opt_nonneg(spec, "replicas", "spec")
        causes += validate_selector_and_template(spec, "spec")
        causes += _validate_deployment_strategy(spec.get("strategy") or {}, "spec.strategy")
        causes += _validate_opt_nonneg(spec, "minReadySeconds", "spec")
        causes += _validate_opt_nonneg(spec, "revisionHistoryLimit", "spec")
        pds = spec.get("progressDeadlineSeconds")
        if pds is not None:
            causes += validate_nonnegative(pds, "spec.progressDeadlineSeconds")
            if _is_int(pds) and pds <= (spec.get("minReadySeconds") or 0):
                causes.append(
                    invalid_value("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")
                )
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + _selector_immutable(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _status_nonneg(
            new,
            (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
            ),
        )
        status = new.get("status") or {}
        replicas = status.get("replicas", 0)
        for key in ("updatedReplicas", "readyReplicas", "availableReplicas"):
            v = status.get(key, 0)
            if _is_int(v) and _is_int(replicas) and v > replicas:
                causes.append(invalid_value(f"status.{key}", v, "cannot be greater than status.replicas"))
        avail, ready = status.get("availableReplicas", 0), status.get("readyReplicas", 0)
        if _is_int(avail) and _is_int(ready) and avail > ready:
            causes.append(invalid_value("status.availableReplicas", avail, "cannot be greater than readyReplicas"))
        return causes


def _validate_deployment_strategy(strategy: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    typ = strategy.get("type", ROLLING_UPDATE)
    ru = strategy.get("rollingUpdate")
    if typ == "Recreate":
        if ru is not None:
            causes.append(
                forbidden_field(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
            )
    elif typ == ROLLING_UPDATE:
        if ru is None:
            causes.append(required(f"{path}.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            causes += _validate_rolling_update(ru, f"{path}.rollingUpdate")
    else:
        causes.append(not_supported(f"{path}.type", typ, ["Recreate", ROLLING_UPDATE]))
    return causes


def _validate_rolling_update(ru: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    if mu is not None:
        causes += _validate_int_or_percent(mu, f"{path}.maxUnavailable")
        causes += _not_more_than_100_percent(mu, f"{path}.maxUnavailable")
    if ms is not None:
        causes += _validate_int_or_percent(ms, f"{path}.maxSurge")
    if _int_or_percent_value(mu) == 0 and _int_or_percent_value(ms) == 0:
        causes.append(
            invalid_value(f"{path}.maxUnavailable", mu if mu is not None else 0, "may not be 0 when `maxSurge` is 0")
        )
    return causes


class ReplicaSetStrategy(Strategy):
    has_status = True
    track_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = _validate_opt_nonneg(spec, "replicas", "spec")
        causes += _validate_opt_nonneg(spec, "minReadySeconds", "spec")
        # upstream allows a ReplicaSet without template only when replicas is 0
        causes += validate_selector_and_template(spec, "spec", template_required=(spec.get("replicas") or 0) > 0)
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + _selector_immutable(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _status_nonneg(
            new, ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")
        )
        status = new.get("status") or {}
        replicas = status.get("replicas", 0)
        for key in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            v = status.get(key, 0)
            if _is_int(v) and _is_int(replicas) and v > replicas:
                causes.append(invalid_value(f"status.{key}", v, "cannot be greater than status.replicas"))
        return causes


class DaemonSetStrategy(Strategy):
    has_status = True
    track_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", ROLLING_UPDATE)
        if us["type"] == ROLLING_UPDATE:
            ru = us.get("rollingUpdate")
            if not isinstance(ru, dict):
                ru = us["rollingUpdate"] = {}
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = validate_selector_and_template(spec, "spec", "daemonset")
        causes += _validate_opt_nonneg(spec, "minReadySeconds", "spec")
        causes += _validate_opt_nonneg(spec, "revisionHistoryLimit", "spec")
        us = spec.get("updateStrategy") or {}
        typ = us.get("type", ROLLING_UPDATE)
        if typ == ROLLING_UPDATE:
            ru = us.get("rollingUpdate")
            if ru is None:
                causes.append(required("spec.updateStrategy.rollingUpdate"))
            else:
                causes += _validate_rolling_update(ru, "spec.updateStrategy.rollingUpdate")
        elif typ != "OnDelete":
            causes.append(not_supported("spec.updateStrategy.type", typ, ["OnDelete", ROLLING_UPDATE]))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + _selector_immutable(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _status_nonneg(
            new,
            (
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
            ),
        )


# StatefulSet spec fields an update may change (everything else is fixed at creation, as upstream)
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
)


class StatefulSetStrategy(Strategy):
    has_status = True
    track_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        us = spec.setdefault("updateStrategy", {})
        us.setdefault("type", ROLLING_UPDATE)
        if us["type"] == ROLLING_UPDATE:
            ru = us.get("rollingUpdate")
            if not isinstance(ru, dict):
                ru = us["rollingUpdate"] = {}
            ru.setdefault("partition", 0)
        policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
        spec.setdefault("revisionHistoryLimit", 10)
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = _validate_opt_nonneg(spec, "replicas", "spec")
        causes += _validate_opt_nonneg(spec, "minReadySeconds", "spec")
        causes += _validate_opt_nonneg(spec, "revisionHistoryLimit", "spec")
        causes += validate_selector_and_template(spec, "spec", "statefulset")
        pmp = spec.get("podManagementPolicy", "OrderedReady")
        if pmp not in ("OrderedReady", "Parallel"):
            causes.append(not_supported("spec.podManagementPolicy", pmp, ["OrderedReady", "Parallel"]))
        us = spec.get("updateStrategy") or {}
        typ = us.get("type", ROLLING_UPDATE)
        if typ == ROLLING_UPDATE:
            ru = us.get("rollingUpdate") or {}
            if ru.get("partition") is not None:
                causes += validate_nonnegative(ru["partition"], "spec.updateStrategy.rollingUpdate.partition")
            if ru.get("maxUnavailable") is not None:
                causes += _validate_int_or_percent(
                    ru["maxUnavailable"], "spec.updateStrategy.rollingUpdate.maxUnavailable"
                )
        elif typ == "OnDelete":
            if us.get("rollingUpdate") is not None:
                causes.append(
                    forbidden_field(
                        "spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'"
                    )
                )
        else:
            causes.append(not_supported("spec.updateStrategy.type", typ, ["OnDelete", ROLLING_UPDATE]))
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for key in ("whenDeleted", "whenScaled"):
            v = policy.get(key)
            if v is not None and v not in ("Retain", "Delete"):
                causes.append(
                    not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", v, ["Retain", "Delete"])
                )
        ordinals = spec.get("ordinals")
        if isinstance(ordinals, dict) and ordinals.get("start") is not None:
            causes += validate_nonnegative(ordinals["start"], "spec.ordinals.start")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        new_rest = {k: v for k, v in (new.get("spec") or {}).items() if k not in _STS_MUTABLE}
        old_rest = {k: v for k, v in (old.get("spec") or {}).items() if k not in _STS_MUTABLE}
        if new_rest != old_rest:
            causes.append(
                forbidden_field(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _status_nonneg(
            new,
            (
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
                "observedGeneration",
            ),
        )


class ControllerRevisionStrategy(Strategy):
    track_generation = False

    def validate(self, obj: Obj) -> list[Cause]:
        rev = obj.get("revision")
        if rev is None:
            return []
        return list(validate_nonnegative(rev, "revision"))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + list(validate_immutable(new.get("data"), old.get("data"), "data"))


# -- registrations ------------------------------------------------------------------------------------

_SCALE = SubresourceInfo("scale", "Scale", group="autoscaling", version="v1")


def _status(kind: str) -> SubresourceInfo:
    return SubresourceInfo("status", kind)


DEPLOYMENTS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "deployments",
        "Deployment",
        True,
        P + "Deployment",
        strategy=DeploymentStrategy(),
        short_names=("deploy",),
        categories=("all",),
        subresources=(_status("Deployment"), _SCALE),
    )
)
REPLICASETS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "replicasets",
        "ReplicaSet",
        True,
        P + "ReplicaSet",
        strategy=ReplicaSetStrategy(),
        short_names=("rs",),
        categories=("all",),
        subresources=(_status("ReplicaSet"), _SCALE),
    )
)
DAEMONSETS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "daemonsets",
        "DaemonSet",
        True,
        P + "DaemonSet",
        strategy=DaemonSetStrategy(),
        short_names=("ds",),
        categories=("all",),
        subresources=(_status("DaemonSet"),),
    )
)
STATEFULSETS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "statefulsets",
        "StatefulSet",
        True,
        P + "StatefulSet",
        strategy=StatefulSetStrategy(),
        short_names=("sts",),
        categories=("all",),
        subresources=(_status("StatefulSet"), _SCALE),
    )
)
CONTROLLERREVISIONS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "controllerrevisions",
        "ControllerRevision",
        True,
        P + "ControllerRevision",
        strategy=ControllerRevisionStrategy(),
    )
)
