"""Table printing: columns, cells and upstream's age / pod status formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeha.api import registry
from kubeha.api.registry import ResourceInfo
from kubeha.apiserver import tables

registry.load_all()

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def info(group: str, resource: str, kind: str = "Thing") -> ResourceInfo:
    return registry.lookup(group, "v1", resource) or ResourceInfo(group, "v1", resource, kind, True, "x")


def table(group: str, resource: str, objs: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return tables.table_for(info(group, resource), objs, at=NOW, **kw)


def cells(group: str, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    t = table(group, resource, [obj])
    return {c["name"]: v for c, v in zip(t["columnDefinitions"], t["rows"][0]["cells"], strict=True)}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (302, "5m2s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600 + 4 * 60, "3h4m"),
        (5 * 3600, "5h"),
        (12 * 3600, "12h"),
        (47 * 3600, "47h"),
        (3 * 86400, "3d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (30 * 86400, "30d"),
        (2 * 365 * 86400 + 3 * 86400, "2y3d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_table_envelope_and_row_objects() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default", "creationTimestamp": ts(timedelta(minutes=5))}}
    t = table("", "pods", [pod], list_meta={"resourceVersion": "77"})
    assert (t["kind"], t["apiVersion"], t["metadata"]) == ("Table", "meta.k8s.io/v1", {"resourceVersion": "77"})
    first = t["columnDefinitions"][0]
    assert first == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": first["description"],
        "priority": 0,
    }
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert table("", "pods", [pod], include_object="Object")["rows"][0]["object"] is pod
    assert "object" not in table("", "pods", [pod], include_object="None")["rows"][0]
    assert table("", "pods", [pod], with_columns=False)["columnDefinitions"] is None


def test_clock_is_injectable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "now", lambda: NOW + timedelta(hours=1))
    obj = {"metadata": {"name": "x", "creationTimestamp": ts(timedelta(0))}}
    t = tables.table_for(info("example.com", "widgets"), [obj])
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["x", "60m"]


# -- pods -------------------------------------------------------------------------------------------


def pod(status: dict[str, Any], spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "creationTimestamp": ts(timedelta(days=3)), **meta},
        "spec": spec or {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node-1"},
        "status": status,
    }


def running(name: str, ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}, **extra}


def test_pod_columns() -> None:
    t = table("", "pods", [])
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]


def test_running_pod() -> None:
    c = cells(
        "",
        "pods",
        pod(
            {
                "phase": "Running",
                "podIPs": [{"ip": "10.244.1.4"}],
                "containerStatuses": [running("a"), running("b", ready=False)],
            }
        ),
    )
    assert c == {
        "Name": "web",
        "Ready": "1/2",
        "Status": "Running",
        "Restarts": "0",
        "Age": "3d",
        "IP": "10.244.1.4",
        "Node": "node-1",
        "Nominated Node": "<none>",
        "Readiness Gates": "<none>",
    }


def test_restarts_with_last_time() -> None:
    last = {"terminated": {"exitCode": 1, "finishedAt": ts(timedelta(minutes=2))}}
    c = cells("", "pods", pod({"phase": "Running", "containerStatuses": [running("a", restarts=3, lastState=last)]}))
    assert c["Restarts"] == "3 (2m ago)"


def test_crashloop_and_completed() -> None:
    waiting = {"name": "a", "ready": False, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    assert cells("", "pods", pod({"phase": "Running", "containerStatuses": [waiting]}))["Status"] == "CrashLoopBackOff"
    done = {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    t = table("", "pods", [pod({"phase": "Succeeded", "containerStatuses": [done]})])
    assert t["rows"][0]["cells"][2] == "Completed"
    assert t["rows"][0]["conditions"][0]["reason"] == "Succeeded"
    signal = {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}
    assert cells("", "pods", pod({"phase": "Failed", "containerStatuses": [signal]}))["Status"] == "Signal:9"


def test_completed_with_running_sibling_reports_running() -> None:
    done = {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    st = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [running("b"), done],
    }
    # statuses are walked from the last one, so "Completed" is seen before the running container
    assert cells("", "pods", pod(st))["Status"] == "Running"


def test_init_containers() -> None:
    spec = {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}
    st = {
        "phase": "Pending",
        "initContainerStatuses": [
            {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "state": {"running": {}}},
        ],
        "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}],
    }
    c = cells("", "pods", pod(st, spec))
    assert (c["Status"], c["Ready"]) == ("Init:1/2", "0/1")
    st["initContainerStatuses"][1] = {"name": "i2", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    assert cells("", "pods", pod(st, spec))["Status"] == "Init:ImagePullBackOff"
    st["initContainerStatuses"][1] = {"name": "i2", "state": {"terminated": {"exitCode": 2}}}
    assert cells("", "pods", pod(st, spec))["Status"] == "Init:ExitCode:2"


def test_sidecar_init_container_counts_towards_ready() -> None:
    spec = {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]}
    st = {
        "phase": "Running",
        "initContainerStatuses": [running("proxy", started=True)],
        "containerStatuses": [running("a")],
    }
    assert cells("", "pods", pod(st, spec))["Ready"] == "2/2"


def test_terminating_and_gated_and_gates() -> None:
    c = cells(
        "", "pods", pod({"phase": "Running", "containerStatuses": [running("a")]}, deletionTimestamp=ts(timedelta(0)))
    )
    assert c["Status"] == "Terminating"
    gated = pod(
        {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}
    )
    assert cells("", "pods", gated)["Status"] == "SchedulingGated"
    spec = {"containers": [{"name": "a"}], "readinessGates": [{"conditionType": "x/ok"}, {"conditionType": "x/other"}]}
    st = {"phase": "Running", "conditions": [{"type": "x/ok", "status": "True"}]}
    assert cells("", "pods", pod(st, spec))["Readiness Gates"] == "1/2"


# -- other resources --------------------------------------------------------------------------------


def test_node() -> None:
    node = {
        "metadata": {
            "name": "cp-1",
            "creationTimestamp": ts(timedelta(hours=5)),
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "etcd"},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "10.0.0.2"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Debian 12",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "docker://20.10",
            },
        },
    }
    assert table("", "nodes", [node])["rows"][0]["cells"] == [
        "cp-1",
        "Ready,SchedulingDisabled",
        "control-plane,etcd",
        "5h",
        "v1.32.0",
        "10.0.0.2",
        "<none>",
        "Debian 12",
        "6.1",
        "docker://20.10",
    ]


def test_deployment_and_replicaset() -> None:
    d = {
        "metadata": {"name": "web", "creationTimestamp": ts(timedelta(seconds=30))},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    t = table("apps", "deployments", [d])
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert t["rows"][0]["cells"] == ["web", "2/3", 3, 2, "30s", "a,b", "nginx,redis", "app=web"]
    rs = dict(d, spec={**d["spec"], "selector": {}}, status={"replicas": 3, "readyReplicas": 1})
    assert table("apps", "replicasets", [rs])["rows"][0]["cells"] == [
        "web",
        3,
        3,
        1,
        "30s",
        "a,b",
        "nginx,redis",
        "<none>",
    ]


def test_daemonset_statefulset_controllerrevision() -> None:
    base = {"metadata": {"name": "x", "creationTimestamp": ts(timedelta(minutes=1))}}
    ds = {
        **base,
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"nodeSelector": {"os": "linux"}, "containers": []}},
        },
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    assert table("apps", "daemonsets", [ds])["rows"][0]["cells"] == [
        "x",
        3,
        3,
        2,
        3,
        2,
        "os=linux",
        "60s",
        "",
        "",
        "a=b",
    ]
    sts = {**base, "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}
    assert table("apps", "statefulsets", [sts])["rows"][0]["cells"][:3] == ["x", "1/3", "60s"]
    cr = {
        "metadata": {
            "name": "web-6d4",
            "creationTimestamp": ts(timedelta(minutes=1)),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}],
        },
        "revision": 2,
    }
    assert table("apps", "controllerrevisions", [cr])["rows"][0]["cells"] == [
        "web-6d4",
        "statefulset.apps/web",
        2,
        "60s",
    ]


def test_service_and_endpoints() -> None:
    svc = {
        "metadata": {"name": "web", "creationTimestamp": ts(timedelta(days=10))},
        "spec": {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.20"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"},
        },
    }
    assert table("", "services", [svc])["rows"][0]["cells"] == [
        "web",
        "NodePort",
        "10.96.0.20",
        "<none>",
        "80:30080/TCP,53/UDP",
        "10d",
        "app=web",
    ]
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": []}}
    assert table("", "services", [lb])["rows"][0]["cells"][2:5] == ["<none>", "<pending>", "<none>"]
    ep = {
        "metadata": {"name": "web"},
        "subsets": [
            {"addresses": [{"ip": "10.244.1.2"}, {"ip": "10.244.2.2"}], "ports": [{"port": 80}, {"port": 443}]}
        ],
    }
    assert (
        table("", "endpoints", [ep])["rows"][0]["cells"][1] == "10.244.1.2:80,10.244.2.2:80,10.244.1.2:443 + 1 more..."
    )
    assert table("", "endpoints", [{"metadata": {"name": "e"}}])["rows"][0]["cells"][1] == "<none>"


def test_small_core_kinds() -> None:
    m = {"name": "n", "creationTimestamp": ts(timedelta(seconds=5))}
    assert table("", "namespaces", [{"metadata": m, "status": {"phase": "Active"}}])["rows"][0]["cells"] == [
        "n",
        "Active",
        "5s",
    ]
    cm = {"metadata": m, "data": {"a": "1"}, "binaryData": {"b": ""}}
    assert table("", "configmaps", [cm])["rows"][0]["cells"] == ["n", 2, "5s"]
    secret = {"metadata": m, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    assert table("", "secrets", [secret])["rows"][0]["cells"] == ["n", "kubernetes.io/tls", 2, "5s"]
    assert table("", "serviceaccounts", [{"metadata": m}])["rows"][0]["cells"] == ["n", 0, "5s"]
    lease = {"metadata": m, "spec": {"holderIdentity": "cp-1_abc"}}
    assert table("coordination.k8s.io", "leases", [lease])["rows"][0]["cells"] == ["n", "cp-1_abc", "5s"]


def test_endpointslice() -> None:
    es = {
        "metadata": {"name": "web-x", "creationTimestamp": ts(timedelta(seconds=5))},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)],
        "ports": [{"port": 80}, {"name": "metrics"}],
    }
    assert table("discovery.k8s.io", "endpointslices", [es])["rows"][0]["cells"] == [
        "web-x",
        "IPv4",
        "80,metrics",
        "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more...",
        "5s",
    ]
    empty = {"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []}
    assert table("discovery.k8s.io", "endpointslices", [empty])["rows"][0]["cells"][2:4] == ["<unset>", "<unset>"]


def test_events() -> None:
    ev = {
        "metadata": {"name": "web.1"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
        "reason": "Pulled",
        "message": " Pulled image \n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ts(timedelta(minutes=20)),
        "lastTimestamp": ts(timedelta(minutes=1)),
        "count": 4,
        "type": "Normal",
    }
    t = table("", "events", [ev])
    assert [c["name"] for c in t["columnDefinitions"]][:4] == ["Last Seen", "Type", "Reason", "Object"]
    assert t["rows"][0]["cells"] == [
        "60s",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{a}",
        "kubelet, node-1",
        "Pulled image",
        "20m",
        4,
        "web.1",
    ]
    new_api = {
        "metadata": {"name": "e2"},
        "eventTime": ts(timedelta(seconds=10)),
        "regarding": {"kind": "Node", "name": "n1"},
        "reason": "Ready",
        "note": "ok",
        "type": "Normal",
        "reportingController": "kubelet",
    }
    cells_ = table("events.k8s.io", "events", [new_api])["rows"][0]["cells"]
    assert cells_ == ["10s", "Normal", "Ready", "node/n1", "", "kubelet", "ok", "10s", 1, "e2"]
