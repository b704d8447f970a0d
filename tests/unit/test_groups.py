"""policy, coordination.k8s.io, discovery.k8s.io and events.k8s.io declarations and strategies."""

from __future__ import annotations

import copy
from typing import Any

from kubeha.api import registry
from kubeha.api.schema import STRUCTS, ListOf, MapOf, Ref, Scalar, TypeSpec

registry.load_all()

from kubeha.api.coordination import v1 as coordination  # noqa: E402
from kubeha.api.discovery import v1 as discovery  # noqa: E402
from kubeha.api.events import v1 as events  # noqa: E402
from kubeha.api.policy import v1 as policy  # noqa: E402

MINE = (
    "io.k8s.api.apps.v1.",
    "io.k8s.api.autoscaling.v1.",
    "io.k8s.api.policy.v1.",
    "io.k8s.api.coordination.v1.",
    "io.k8s.api.discovery.v1.",
    "io.k8s.api.events.v1.",
)


def fields(causes: list[Any]) -> list[str]:
    return [c.field for c in causes]


def _refs(t: TypeSpec) -> list[str]:
    if isinstance(t, Ref):
        return [t.name]
    if isinstance(t, ListOf):
        return _refs(t.item)
    if isinstance(t, MapOf):
        return _refs(t.value)
    assert isinstance(t, Scalar)
    return []


def test_every_reference_resolves() -> None:
    missing = [
        (s.name, f.json, name)
        for s in STRUCTS.values()
        if s.name.startswith(MINE)
        for f in s.fields
        for name in _refs(f.type)
        if name not in STRUCTS
    ]
    assert missing == []


def test_registrations() -> None:
    lease = registry.lookup("coordination.k8s.io", "v1", "leases")
    assert lease is not None and lease.namespaced and not lease.strategy.track_generation
    assert not lease.strategy.allow_create_on_update
    eps = registry.lookup("discovery.k8s.io", "v1", "endpointslices")
    assert eps is not None and not eps.strategy.has_status and not eps.strategy.track_generation
    ev = registry.lookup("events.k8s.io", "v1", "events")
    assert ev is not None and ev.key("ns1", "e1") == "/registry/events/ns1/e1"
    pdb = registry.lookup("policy", "v1", "poddisruptionbudgets")
    assert pdb is not None and pdb.short_names == ("pdb",) and pdb.subresource("status") is not None
    assert STRUCTS["io.k8s.api.policy.v1.Eviction"].gvk == ("policy", "v1", "Eviction")
    assert registry.lookup("policy", "v1", "evictions") is None  # served only as pods/eviction


def test_protobuf_numbers() -> None:
    assert STRUCTS["io.k8s.api.discovery.v1.EndpointSlice"].by_json["addressType"].number == 4
    assert STRUCTS["io.k8s.api.events.v1.Event"].by_json["deprecatedCount"].number == 15
    lease_spec = STRUCTS["io.k8s.api.coordination.v1.LeaseSpec"]
    assert lease_spec.by_json["renewTime"].type == Scalar("microtime")
    assert lease_spec.by_json["preferredHolder"].number == 7
    assert STRUCTS["io.k8s.api.autoscaling.v1.ScaleStatus"].by_json["selector"].number == 2


# -- leases -----------------------------------------------------------------------------------------


def test_lease_validation() -> None:
    s = coordination.LEASES.strategy
    good = {"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    assert s.validate(good) == []
    bad = {"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1, "strategy": "Newest"}}
    assert sorted(fields(s.validate(bad))) == ["spec.leaseDurationSeconds", "spec.leaseTransitions", "spec.strategy"]
    assert fields(s.validate({"spec": {"preferredHolder": "b"}})) == ["spec.preferredHolder"]


# -- endpoint slices --------------------------------------------------------------------------------


def slice_(**kw: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}, "nodeName": "node-1"}],
        "ports": [{"port": 80}],
    }
    obj.update(kw)
    return obj


def test_endpointslice_defaults_ports() -> None:
    obj = slice_()
    discovery.ENDPOINTSLICES.strategy.default(obj)
    assert obj["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


def test_endpointslice_validation() -> None:
    s = discovery.ENDPOINTSLICES.strategy
    assert s.validate(slice_()) == []
    assert fields(s.validate(slice_(addressType=None))) == ["addressType"]
    assert [c.reason for c in s.validate(slice_(addressType="IPv5"))] == ["FieldValueNotSupported"]
    wrong_family = slice_(endpoints=[{"addresses": ["fd00::1"]}])
    assert fields(s.validate(wrong_family)) == ["endpoints[0].addresses[0]"]
    assert fields(s.validate(slice_(endpoints=[{"addresses": []}]))) == ["endpoints[0].addresses"]
    dup = slice_(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}])
    assert fields(s.validate(dup)) == ["ports[1].name"]
    assert fields(s.validate(slice_(ports=[{"port": 70000, "protocol": "TCP"}]))) == ["ports[0].port"]
    assert s.validate(slice_(addressType="FQDN", endpoints=[{"addresses": ["db.example.com"]}])) == []


def test_endpointslice_address_type_is_immutable() -> None:
    s = discovery.ENDPOINTSLICES.strategy
    old = slice_()
    new = copy.deepcopy(old)
    new["endpoints"][0]["addresses"] = ["10.244.1.6"]
    assert s.validate_update(new, old) == []
    new["addressType"] = "IPv6"
    new["endpoints"][0]["addresses"] = ["fd00::6"]
    assert fields(s.validate_update(new, old)) == ["addressType"]


# -- events -----------------------------------------------------------------------------------------

CORE_EVENT = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {"name": "web.17a", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "fieldPath": "spec.containers{c}"},
    "reason": "Pulled",
    "message": "Pulled image",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": "2024-01-01T00:00:00Z",
    "lastTimestamp": "2024-01-01T00:01:00Z",
    "count": 2,
    "type": "Normal",
    "eventTime": None,
    "reportingComponent": "kubelet",
    "reportingInstance": "node-1",
}


def test_event_conversion_round_trip() -> None:
    ev = events.to_events_v1(CORE_EVENT)
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert ev["regarding"] == CORE_EVENT["involvedObject"]
    assert ev["note"] == "Pulled image"
    assert ev["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
    assert ev["deprecatedFirstTimestamp"] == "2024-01-01T00:00:00Z"
    assert ev["deprecatedCount"] == 2
    assert ev["reportingController"] == "kubelet"
    assert "eventTime" not in ev  # null stays absent
    back = events.to_core_v1(ev)
    expected = {k: v for k, v in CORE_EVENT.items() if v is not None}
    assert back == expected


def new_event(**kw: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "e1", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Reconcile",
        "reason": "Synced",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "note": "all good",
        "type": "Normal",
    }
    obj.update(kw)
    return obj


def test_event_validation() -> None:
    s = events.EVENTS.strategy
    assert s.validate(new_event()) == []
    causes = s.validate(new_event(eventTime=None, type="Info", action="", note="x" * 1025))
    assert sorted(fields(causes)) == ["action", "eventTime", "note", "type"]
    assert fields(s.validate(new_event(series={"count": 1, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}))) == [
        "series.count"
    ]
    assert fields(s.validate(new_event(deprecatedCount=3))) == ["deprecatedCount"]


def test_event_update_keeps_identity_fields() -> None:
    s = events.EVENTS.strategy
    old = new_event()
    new = new_event(series={"count": 2, "lastObservedTime": "2024-01-01T00:05:00.000000Z"})
    assert s.validate_update(new, old) == []
    assert fields(s.validate_update(new_event(note="changed"), old)) == ["note"]


# -- pod disruption budgets -------------------------------------------------------------------------


def test_pdb_validation() -> None:
    s = policy.PODDISRUPTIONBUDGETS.strategy
    assert s.validate({"spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}}) == []
    assert fields(s.validate({"spec": {"minAvailable": 1, "maxUnavailable": 1}})) == ["spec"]
    assert fields(s.validate({"spec": {"maxUnavailable": "120%"}})) == ["spec.maxUnavailable"]
    assert fields(s.validate_status_update({"status": {"disruptionsAllowed": -1}}, {})) == ["status.disruptionsAllowed"]
