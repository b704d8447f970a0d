"""LimitRanger: the namespace's LimitRange objects give containers default requests and limits
(mutating) and bound what pods and persistent volume claims may ask for (validating), as upstream's
plugin/pkg/admission/limitranger.

Per LimitRange item ``type``:
- ``Container``: ``default`` (limits) and ``defaultRequest`` fill what a container leaves out;
  ``min``/``max``/``maxLimitRequestRatio`` bound each container and init container;
- ``Pod``: ``min``/``max``/``maxLimitRequestRatio`` bound the pod's effective total (regular and
  sidecar containers summed, other init containers taken at their peak);
- ``PersistentVolumeClaim``: ``min``/``max`` bound the claim's requests.

Pods are only checked on create (their resources are immutable afterwards, as upstream reasons);
objects being deleted are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubeha.api.core.pod import parse_quantity
from kubeha.api.schema import Obj
from kubeha.apiserver.admission import (
    CREATE,
    UPDATE,
    Attributes,
    MutatingPlugin,
    ValidatingPlugin,
    aggregate,
    forbidden,
    register_plugin,
)
from kubeha.apiserver.admission import lookup as lk
from kubeha.apiserver.admission.quotausage import format_quantity

ANNOTATION = "kubernetes.io/limit-ranger"
CONTAINER = "Container"
POD = "Pod"
PVC = "PersistentVolumeClaim"

Resources = dict[str, Decimal]


def _q(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def _parsed(rl: Any) -> Resources:
    """A ResourceList as numbers (unparseable entries are validation's business, skipped here)."""
    out: Resources = {}
    for k, v in (rl or {}).items() if isinstance(rl, dict) else ():
        value = _q(v)
        if value is not None:
            out[str(k)] = value
    return out


def _text(value: Decimal) -> str:
    return format_quantity(value)


def _items(limit_range: Obj) -> list[Obj]:
    return [i for i in ((limit_range.get("spec") or {}).get("limits") or []) if isinstance(i, dict)]


# -- defaults ------------------------------------------------------------------------------------------


def container_defaults(limit_range: Obj) -> tuple[dict[str, Any], dict[str, Any]]:
    """(default requests, default limits) of the Container items. As the LimitRange's own defaulting
    does upstream, a missing ``default`` falls back to ``max`` and a missing ``defaultRequest`` to
    ``default``."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in _items(limit_range):
        if item.get("type") != CONTAINER:
            continue
        dflt = dict(item.get("max") or {})
        dflt.update(item.get("default") or {})
        dreq = dict(dflt)
        dreq.update(item.get("defaultRequest") or {})
        requests.update(dreq)
        limits.update(dflt)
    return requests, limits


def _merge_container(c: Obj, requests: Mapping[str, Any], limits: Mapping[str, Any], prefix: str) -> list[str]:
    res = c.get("resources")
    if not isinstance(res, dict):
        res = c["resources"] = {}
    have_limits: dict[str, Any] = res["limits"] if isinstance(res.get("limits"), dict) else {}
    have_requests: dict[str, Any] = res["requests"] if isinstance(res.get("requests"), dict) else {}
    set_limits = sorted(k for k in limits if k not in have_limits)
    set_requests = sorted(k for k in requests if k not in have_requests)
    if set_limits:
        res["limits"] = {**have_limits, **{k: limits[k] for k in set_limits}}
    if set_requests:
        res["requests"] = {**have_requests, **{k: requests[k] for k in set_requests}}
    notes = []
    name = c.get("name", "")
    if set_requests:
        notes.append(f"{', '.join(set_requests)} request for {prefix} {name}")
    if set_limits:
        notes.append(f"{', '.join(set_limits)} limit for {prefix} {name}")
    return notes


def apply_defaults(limit_range: Obj, pod: Obj) -> None:
    """Fill each container's missing requests/limits from ``limit_range`` and record what was set in
    the ``kubernetes.io/limit-ranger`` annotation (upstream's text)."""
    requests, limits = container_defaults(limit_range)
    if not requests and not limits:
        return
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for key, prefix in (("containers", "container"), ("initContainers", "init container")):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                notes += _merge_container(c, requests, limits, prefix)
    if notes:
        md = pod.setdefault("metadata", {})
        annotations = md.get("annotations") if isinstance(md.get("annotations"), dict) else {}
        md["annotations"] = {**annotations, ANNOTATION: "LimitRanger plugin set: " + "; ".join(notes)}


# -- constraints ---------------------------------------------------------------------------------------


def min_violation(kind: str, name: str, enforced: Decimal, request: Resources, limit: Resources) -> str | None:
    if name not in request:
        return f"minimum {name} usage per {kind} is {_text(enforced)}.  No request is specified"
    if request[name] < enforced:
        return f"minimum {name} usage per {kind} is {_text(enforced)}, but request is {_text(request[name])}"
    if name in limit and limit[name] < enforced:
        return f"minimum {name} usage per {kind} is {_text(enforced)}, but limit is {_text(limit[name])}"
    return None


def max_violation(kind: str, name: str, enforced: Decimal, request: Resources, limit: Resources) -> str | None:
    if name not in limit:
        return f"maximum {name} usage per {kind} is {_text(enforced)}.  No limit is specified"
    if limit[name] > enforced:
        return f"maximum {name} usage per {kind} is {_text(enforced)}, but limit is {_text(limit[name])}"
    if name in request and request[name] > enforced:
        return f"maximum {name} usage per {kind} is {_text(enforced)}, but request is {_text(request[name])}"
    return None


def max_request_violation(kind: str, name: str, enforced: Decimal, request: Resources) -> str | None:
    """For kinds without limits (claims): the maximum bounds the request."""
    if name not in request:
        return f"maximum {name} usage per {kind} is {_text(enforced)}.  No request is specified"
    if request[name] > enforced:
        return f"maximum {name} usage per {kind} is {_text(enforced)}, but request is {_text(request[name])}"
    return None


def ratio_violation(kind: str, name: str, enforced: Decimal, request: Resources, limit: Resources) -> str | None:
    head = f"{name} max limit to request ratio per {kind} is {_text(enforced)}"
    if not request.get(name):
        return f"{head}, but no request is specified or request is 0"
    if not limit.get(name):
        return f"{head}, but no limit is specified or limit is 0"
    ratio = limit[name] / request[name]
    if ratio > enforced:
        return f"{head}, but provided ratio is {float(ratio):f}"
    return None


def _check(item: Obj, kind: str, request: Resources, limit: Resources) -> list[str]:
    out: list[str] = []
    for key, fn in (("min", min_violation), ("max", max_violation), ("maxLimitRequestRatio", ratio_violation)):
        for name, enforced in sorted(_parsed(item.get(key)).items()):
            msg = fn(kind, name, enforced, request, limit)
            if msg:
                out.append(msg)
    return out


def _add(total: Resources, more: Resources) -> None:
    for k, v in more.items():
        total[k] = total.get(k, Decimal(0)) + v


def _peak(total: Resources, more: Resources) -> None:
    for k, v in more.items():
        if k not in total or v > total[k]:
            total[k] = v


def _container_resources(c: Obj, which: str) -> Resources:
    return _parsed((c.get("resources") or {}).get(which))


def pod_total(pod: Obj, which: str) -> Resources:
    """The pod's effective ``requests`` or ``limits``: regular containers and sidecars (restartable
    init containers) add up; other init containers run one at a time beside the sidecars started
    before them, so only the peak counts."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for c in spec.get("containers") or []:
        _add(total, _container_resources(c, which))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for c in spec.get("initContainers") or []:
        own = _container_resources(c, which)
        if c.get("restartPolicy") == "Always":
            _add(total, own)
            _add(sidecars, own)
            step = dict(sidecars)
        else:
            step = dict(own)
            _add(step, sidecars)
        _peak(init_peak, step)
    _peak(total, init_peak)
    return total


def pod_violations(limit_range: Obj, pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    out: list[str] = []
    for item in _items(limit_range):
        kind = item.get("type")
        if kind == CONTAINER:
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    if isinstance(c, dict):
                        out += _check(
                            item, CONTAINER, _container_resources(c, "requests"), _container_resources(c, "limits")
                        )
        elif kind == POD:
            out += _check(item, POD, pod_total(pod, "requests"), pod_total(pod, "limits"))
    return out


def pvc_violations(limit_range: Obj, pvc: Obj) -> list[str]:
    request = _parsed(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))
    out: list[str] = []
    for item in _items(limit_range):
        if item.get("type") != PVC:
            continue
        for name, enforced in sorted(_parsed(item.get("min")).items()):
            msg = min_violation(PVC, name, enforced, request, {})
            if msg:
                out.append(msg)
        for name, enforced in sorted(_parsed(item.get("max")).items()):
            msg = max_request_violation(PVC, name, enforced, request)
            if msg:
                out.append(msg)
    return out


# -- the plugin ---------------------------------------------------------------------------------------


class LimitRanger(MutatingPlugin, ValidatingPlugin):
    def handles(self, attrs: Attributes) -> bool:
        if attrs.subresource or attrs.group != "" or attrs.obj is None or not attrs.namespace:
            return False
        if attrs.resource == "pods":
            # a pod's resources cannot change after create, so updates are not checked (as upstream)
            return attrs.operation == CREATE
        return attrs.resource == "persistentvolumeclaims" and attrs.operation in (CREATE, UPDATE)

    def _being_deleted(self, attrs: Attributes) -> bool:
        return bool(((attrs.old_obj or {}).get("metadata") or {}).get("deletionTimestamp"))

    async def _ranges(self, namespace: str) -> list[Obj]:
        ranges = await lk.cached_list(self.ctx, lk.resource("", "v1", "limitranges"), namespace)
        return sorted(ranges, key=lambda o: str((o.get("metadata") or {}).get("name") or ""))

    async def admit(self, attrs: Attributes) -> None:
        if attrs.resource != "pods" or self._being_deleted(attrs) or attrs.obj is None:
            return
        for lr in await self._ranges(attrs.namespace):
            apply_defaults(lr, attrs.obj)

    async def validate(self, attrs: Attributes) -> None:
        if self._being_deleted(attrs) or attrs.obj is None:
            return
        check = pod_violations if attrs.resource == "pods" else pvc_violations
        for lr in await self._ranges(attrs.namespace):
            problems = check(lr, attrs.obj)
            if problems:
                raise forbidden(attrs, aggregate(problems))


register_plugin("LimitRanger", LimitRanger)
