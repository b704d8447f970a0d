"""autoscaling/v1 Scale: the ``/scale`` subresource of deployments, replicasets and statefulsets.

Scale is not stored: the REST layer builds it from the parent object with :func:`scale_of` and
writes a client's Scale back with :func:`apply_scale`. HorizontalPodAutoscaler is not served.
"""

from __future__ import annotations

from typing import Any

from kubeha.api.errors import Cause, invalid_value
from kubeha.api.schema import INT32, META, STRING, Obj, f, struct, type_meta_fields

GROUP = "autoscaling"
VERSION = "v1"
P = "io.k8s.api.autoscaling.v1."

struct(
    P + "ScaleSpec",
    "Desired state of a scale subresource.",
    f("replicas", 1, INT32, "Desired number of instances of the scaled object."),
)
struct(
    P + "ScaleStatus",
    "Observed state of a scale subresource.",
    f("replicas", 1, INT32, "Actual number of observed instances of the scaled object.", required=True),
    f("selector", 2, STRING, "Label query over the pods counted in replicas, as a label selector string."),
)
struct(
    P + "Scale",
    "Scaling request for a resource.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("spec", 2, P + "ScaleSpec", "Desired behaviour of the scale."),
    f("status", 3, P + "ScaleStatus", "Current status of the scale (read-only)."),
    gvk=(GROUP, VERSION, "Scale"),
)


def _sorted_values(values: Any) -> str:
    return ",".join(sorted(str(v) for v in (values or [])))


def selector_string(selector: Obj | None) -> str:
    """A metav1.LabelSelector as the label-selector string upstream prints (``a=b,c in (x,y)``).

    Requirements are ordered by key as upstream's selector ``String()`` does; an empty or
    absent selector gives ``""``.
    """
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key", "")
        op = expr.get("operator", "")
        if op == "In":
            reqs.append((key, f"{key} in ({_sorted_values(expr.get('values'))})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({_sorted_values(expr.get('values'))})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def scale_of(info_kind: str, obj: Obj) -> Obj:
    """Build the autoscaling/v1 Scale of a Deployment, ReplicaSet or StatefulSet.

    ``info_kind`` is the parent's kind; the selector reported is the parent's pod selector.
    """
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    smeta: Obj = {}
    for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp"):
        if meta.get(key) is not None:
            smeta[key] = meta[key]
    replicas = spec.get("replicas")
    return {
        "kind": "Scale",
        "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": smeta,
        # a parent always has replicas after defaulting; 1 mirrors that default otherwise
        "spec": {"replicas": 1 if replicas is None else replicas},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": selector_string(spec.get("selector")),
        },
    }


def apply_scale(obj: Obj, scale: Obj) -> None:
    """Write a Scale's desired replicas into its parent object (in place).

    An absent ``spec.replicas`` means 0, as for upstream's non-pointer ScaleSpec field.
    """
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    obj.setdefault("spec", {})["replicas"] = replicas


def validate_scale(scale: Obj) -> list[Cause]:
    """Upstream's Scale validation: replicas must be a non-negative integer."""
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return [invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")]
    return []
