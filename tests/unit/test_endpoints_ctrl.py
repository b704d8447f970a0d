"""Endpoint computation of the endpoints and EndpointSlice controllers (pure parts)."""

from __future__ import annotations

from typing import Any

from kubeha.controllers import endpoints as ep
from kubeha.controllers import endpointslice as eps

Obj = dict[str, Any]


def svc(ports: list[Obj] | None = None, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"app": "web"}},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.5",
            "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http"}],
            **spec,
        },
    }


def pod(name: str, ip: str, ready: bool = True, **extra: Any) -> Obj:
    p: Obj = {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "web"}},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    for k, v in extra.items():
        p[k].update(v)
    return p


def test_ready_and_not_ready_addresses_with_named_port() -> None:
    subsets = ep.compute_subsets(svc(), [pod("b", "10.0.0.2", ready=False), pod("a", "10.0.0.1")])
    assert len(subsets) == 1
    s = subsets[0]
    assert [a["ip"] for a in s["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in s["notReadyAddresses"]] == ["10.0.0.2"]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert s["addresses"][0]["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}
    assert s["addresses"][0]["nodeName"] == "n1"


def test_publish_not_ready_and_exclusions() -> None:
    pods = [
        pod("a", "10.0.0.1", ready=False),
        pod("noip", ""),
        pod("done", "10.0.0.3", status={"phase": "Succeeded"}),
        pod("gone", "10.0.0.4", metadata={"deletionTimestamp": "2024-01-01T00:00:00Z"}),
        pod("other", "10.0.0.5", metadata={"labels": {"app": "db"}}),
    ]
    subsets = ep.compute_subsets(svc(publishNotReadyAddresses=True), pods)
    # publishNotReadyAddresses: unready and terminating pods are published as ready
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.0.0.1", "10.0.0.4"]
    plain = ep.compute_subsets(svc(), pods)
    assert [a["ip"] for a in plain[0]["notReadyAddresses"]] == ["10.0.0.1"]
    assert "addresses" not in plain[0]


def test_unresolvable_named_port_drops_pod_and_ports_group_subsets() -> None:
    other = pod("b", "10.0.0.2")
    other["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 9090}]
    lonely = pod("c", "10.0.0.3")
    lonely["spec"]["containers"][0]["ports"] = []
    subsets = ep.compute_subsets(svc(), [pod("a", "10.0.0.1"), other, lonely])
    assert sorted(s["ports"][0]["port"] for s in subsets) == [8080, 9090]
    assert all(len(s["addresses"]) == 1 for s in subsets)


def test_numeric_target_and_hostname_in_subdomain() -> None:
    p = pod("a", "10.0.0.1", spec={"hostname": "web-0", "subdomain": "web"})
    subsets = ep.compute_subsets(svc([{"port": 80, "targetPort": 8000, "protocol": "UDP"}]), [p])
    assert subsets[0]["ports"] == [{"name": "", "port": 8000, "protocol": "UDP"}]
    assert subsets[0]["addresses"][0]["hostname"] == "web-0"


def test_desired_endpoints_writes_only_on_change() -> None:
    s = svc(clusterIP="None")
    want = ep.desired_endpoints(s, [pod("a", "10.0.0.1")], None)
    assert want is not None
    assert want["metadata"]["labels"] == {"app": "web", ep.HEADLESS_LABEL: ""}
    # what the server stores (defaults filled, resourceVersion) compares equal
    stored = {**want, "metadata": {**want["metadata"], "resourceVersion": "7"}}
    assert ep.desired_endpoints(s, [pod("a", "10.0.0.1")], stored) is None
    changed = ep.desired_endpoints(s, [pod("a", "10.0.0.1", ready=False)], stored)
    assert changed is not None and changed["metadata"]["resourceVersion"] == "7"


def test_truncate_over_capacity() -> None:
    subsets = [
        {"addresses": [{"ip": f"10.0.{i // 250}.{i % 250}"} for i in range(5)], "notReadyAddresses": [{"ip": "x"}]}
    ]
    out, over = ep.truncate(subsets, limit=3)
    assert over and len(out[0]["addresses"]) == 3 and "notReadyAddresses" not in out[0]


def test_pod_changed_ignores_irrelevant_status() -> None:
    a = pod("a", "10.0.0.1")
    b = pod("a", "10.0.0.1", status={"containerStatuses": [{"name": "c", "restartCount": 1}]})
    assert not ep.pod_changed(a, b)
    assert ep.pod_changed(a, pod("a", "10.0.0.1", ready=False))


def test_slices_conditions_and_ownership() -> None:
    pods = [
        pod("a", "10.0.0.1"),
        pod("b", "10.0.0.2", ready=False),
        pod("t", "10.0.0.3", metadata={"deletionTimestamp": "2024-01-01T00:00:00Z"}),
    ]
    creates, updates, deletes = eps.plan_slices(svc(), pods, [])
    assert not updates and not deletes and len(creates) == 1
    s = creates[0]
    assert s["addressType"] == "IPv4"
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"][eps.SERVICE_NAME_LABEL] == "web"
    assert s["metadata"]["labels"][eps.MANAGED_BY_LABEL] == eps.MANAGED_BY
    assert s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    conds = {e["targetRef"]["name"]: e["conditions"] for e in s["endpoints"]}
    assert conds["a"] == {"ready": True, "serving": True, "terminating": False}
    assert conds["b"] == {"ready": False, "serving": False, "terminating": False}
    assert conds["t"] == {"ready": False, "serving": True, "terminating": True}


def test_slices_chunked_and_stable() -> None:
    pods = [pod(f"p{i}", f"10.0.{i // 200}.{i % 200 + 1}") for i in range(250)]
    creates, _, _ = eps.plan_slices(svc(), pods, [])
    assert [len(s["endpoints"]) for s in creates] == [100, 100, 50]
    # stored as created: no writes on the next pass
    stored = []
    for i, s in enumerate(creates):
        md = {k: v for k, v in s["metadata"].items() if k != "generateName"}
        stored.append({**s, "metadata": {**md, "name": f"web-{i}", "uid": f"s{i}", "resourceVersion": "1"}})
    assert eps.plan_slices(svc(), pods, stored) == ([], [], [])
    # one pod fewer: slices are rewritten in place, none created
    creates2, updates2, deletes2 = eps.plan_slices(svc(), pods[:-1], stored)
    assert not creates2 and not deletes2 and len(updates2) == 1
    assert updates2[0]["metadata"]["name"] == "web-2" and len(updates2[0]["endpoints"]) == 49


def test_empty_service_gets_placeholder_slice_and_surplus_deleted() -> None:
    creates, _, _ = eps.plan_slices(svc(), [], [])
    assert len(creates) == 1 and creates[0]["endpoints"] == [] and creates[0]["ports"] == []
    extra = {"metadata": {"name": "web-x"}, "addressType": "IPv4", "endpoints": [], "ports": []}
    placeholder = {**creates[0], "metadata": {**creates[0]["metadata"], "name": "web-a"}}
    c, u, d = eps.plan_slices(svc(), [], [placeholder, extra])
    assert not c and not u and [x["metadata"]["name"] for x in d] == ["web-x"]
