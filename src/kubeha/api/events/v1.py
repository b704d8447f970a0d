"""events.k8s.io/v1 Event and its conversion to and from core/v1 Event.

Both APIs share one store (``/registry/events/``) holding core/v1 Events, as upstream: the REST
layer converts with :func:`to_core_v1` before writing and :func:`to_events_v1` after reading.
"""

from __future__ import annotations

from typing import Any

from kubeha.api import registry
from kubeha.api.errors import Cause, invalid_value, required
from kubeha.api.registry import ResourceInfo, Strategy
from kubeha.api.schema import CORE, INT32, META, MICROTIME, STRING, TIME, Obj, f, list_of, struct, type_meta_fields
from kubeha.api.validation import validate_immutable

GROUP = "events.k8s.io"
VERSION = "v1"
P = "io.k8s.api.events.v1."
LIMITS = {"reportingInstance": 128, "action": 128, "reason": 128, "note": 1024}

struct(
    P + "EventSeries",
    "Data about a series of events that keep happening.",
    f("count", 1, INT32, "Occurrences in this series up to lastObservedTime.", required=True),
    f("lastObservedTime", 2, MICROTIME, "Time of the last occurrence observed.", required=True),
)
struct(
    P + "Event",
    "A report of an event somewhere in the cluster.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f("eventTime", 2, MICROTIME, "When this event was first observed.", required=True),
    f("series", 3, P + "EventSeries", "Data about a series of these events, if any."),
    f("reportingController", 4, STRING, "Controller that emitted the event, e.g. kubernetes.io/kubelet."),
    f("reportingInstance", 5, STRING, "ID of the controller instance, e.g. kubelet-xyzf."),
    f("action", 6, STRING, "What was done, or what failed, about the regarding object."),
    f("reason", 7, STRING, "Why the action was taken (machine-readable)."),
    f("regarding", 8, CORE + "ObjectReference", "The object this event is about."),
    f("related", 9, CORE + "ObjectReference", "Optional secondary object for more complex actions."),
    f("note", 10, STRING, "Human-readable description of the status of this operation."),
    f("type", 11, STRING, "Normal or Warning."),
    f("deprecatedSource", 12, CORE + "EventSource", "Deprecated: core/v1 source, kept for compatibility."),
    f("deprecatedFirstTimestamp", 13, TIME, "Deprecated: core/v1 firstTimestamp."),
    f("deprecatedLastTimestamp", 14, TIME, "Deprecated: core/v1 lastTimestamp."),
    f("deprecatedCount", 15, INT32, "Deprecated: core/v1 count."),
    gvk=(GROUP, VERSION, "Event"),
)
struct(
    P + "EventList",
    "A list of Events.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "Event"), "The events.", required=True),
    gvk=(GROUP, VERSION, "EventList"),
)

# events.k8s.io/v1 field <-> core/v1 field, for fields that only change name
_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def _copy(src: Obj, dst: Obj, pairs: Any) -> None:
    for a, b in pairs:
        if a in src and src[a] is not None:
            dst[b] = src[a]


def to_events_v1(core_event: Obj) -> Obj:
    """core/v1 Event -> events.k8s.io/v1 Event (a new dict; nested values are shared)."""
    out: Obj = {"kind": "Event", "apiVersion": f"{GROUP}/{VERSION}"}
    _copy(core_event, out, ((k, k) for k in _SAME))
    _copy(core_event, out, ((b, a) for a, b in _RENAMES))
    return out


def to_core_v1(ev: Obj) -> Obj:
    """events.k8s.io/v1 Event -> core/v1 Event (a new dict; nested values are shared)."""
    out: Obj = {"kind": "Event", "apiVersion": "v1"}
    _copy(ev, out, ((k, k) for k in _SAME))
    _copy(ev, out, _RENAMES)
    return out


def _validate_series(ev: Obj) -> list[Cause]:
    series = ev.get("series")
    if series is None:
        return []
    causes: list[Cause] = []
    count = series.get("count", 0)
    if not isinstance(count, int) or count < 2:
        causes.append(invalid_value("series.count", count, "should be at least 2"))
    if not series.get("lastObservedTime"):
        causes.append(required("series.lastObservedTime"))
    return causes


class EventStrategy(Strategy):
    track_generation = False
    name_kind = "subdomain"  # the events.k8s.io API validates names strictly, as upstream

    def validate(self, obj: Obj) -> list[Cause]:
        causes = _validate_series(obj)
        if not obj.get("eventTime"):
            causes.append(required("eventTime"))
        typ = obj.get("type", "")
        if typ not in ("Normal", "Warning"):
            causes.append(invalid_value("type", typ, f"has invalid value: {typ}"))
        ns = (obj.get("metadata") or {}).get("namespace", "")
        regarding_ns = (obj.get("regarding") or {}).get("namespace", "")
        if not regarding_ns and ns not in ("default", "kube-system"):
            causes.append(invalid_value("regarding.namespace", regarding_ns, "does not match event.namespace"))
        for key in ("reportingController", "reportingInstance", "action", "reason"):
            if not obj.get(key):
                causes.append(required(key))
        for key, limit in LIMITS.items():
            v = obj.get(key) or ""
            if len(v) > limit:
                causes.append(invalid_value(key, "", f"can have at most {limit} characters"))
        for key in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount", "deprecatedSource"):
            if obj.get(key):
                causes.append(invalid_value(key, "", "needs to be unset"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        if new.get("series") != old.get("series"):
            causes += _validate_series(new)
        for key in (
            "regarding",
            "reason",
            "note",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount",
            "type",
            "eventTime",
            "action",
            "related",
            "reportingController",
            "reportingInstance",
        ):
            causes += validate_immutable(new.get(key), old.get(key), key)
        return causes


EVENTS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "events",
        "Event",
        True,
        P + "Event",
        strategy=EventStrategy(),
        short_names=("ev",),
        storage_prefix="/registry/events/",
        to_storage=to_core_v1,
        from_storage=to_events_v1,
    )
)
