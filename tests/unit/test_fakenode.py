"""kubeha fake-nodes: object shapes, flag parsing, and the fake kubelet's decisions (fake client)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.client.resources import LEASES, NODES, PODS
from kubeha.fakenode import objects
from kubeha.fakenode.fakenode import FakeNodeOptions, FakeNodes, build_parser, options_from_args
from kubeha.machinery.controller import Requeue

NOW = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_parse_labels_and_taints() -> None:
    assert objects.parse_labels("zone=a, tier=web,empty=") == {"zone": "a", "tier": "web", "empty": ""}
    assert objects.parse_labels("") == {}
    with pytest.raises(ValueError):
        objects.parse_labels("novalue")
    assert objects.parse_taints("node-role.kubernetes.io/control-plane:NoSchedule,k=v:NoExecute") == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        {"key": "k", "value": "v", "effect": "NoExecute"},
    ]
    for bad in ("k=v", "k=v:Sometimes", ":NoSchedule"):
        with pytest.raises(ValueError):
            objects.parse_taints(bad)


def test_new_node_shape() -> None:
    tpl = objects.NodeTemplate(
        cpu="8", memory="16Gi", pods="50", labels={"zone": "b"}, taints=[{"key": "x", "effect": "NoSchedule"}]
    )
    node = objects.new_node("fake-3", tpl, NOW)
    meta, spec, status = node["metadata"], node["spec"], node["status"]
    assert meta["labels"]["kubernetes.io/hostname"] == "fake-3"
    assert meta["labels"]["zone"] == "b" and meta["labels"]["type"] == "kwok"
    assert meta["annotations"][objects.FAKE_ANNOTATION] == "fake"
    assert spec["taints"] == [{"key": "x", "effect": "NoSchedule"}]
    assert status["capacity"] == status["allocatable"]
    assert status["capacity"]["cpu"] == "8" and status["capacity"]["pods"] == "50"
    ready = objects.condition(node, "Ready")
    assert ready is not None and ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert ready["lastHeartbeatTime"] == "2025-01-02T03:04:05Z"
    assert {c["type"] for c in status["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert status["addresses"][0] == {"type": "InternalIP", "address": objects.node_ip("fake-3")}
    assert status["nodeInfo"]["kubeletVersion"] == tpl.kubelet_version
    assert objects.node_ready(node)
    # no taints flag: no taints field at all (as a kubelet without --register-with-taints)
    assert objects.new_node("n", objects.NodeTemplate(), NOW)["spec"] == {}


def test_addresses_are_stable_and_outside_cluster_ranges() -> None:
    ip = ipaddress.ip_address(objects.node_ip("fake-0"))
    assert ip == ipaddress.ip_address(objects.node_ip("fake-0"))
    assert ip in objects.NODE_IP_NET
    assert objects.node_ip("fake-0") != objects.node_ip("fake-1")
    cidr = ipaddress.ip_network(objects.fallback_pod_cidr("fake-0"))
    assert cidr.prefixlen == objects.FALLBACK_POD_PREFIX and cidr.subnet_of(objects.FALLBACK_POD_NET)  # type: ignore[arg-type]
    for cluster in ("10.244.0.0/16", "10.96.0.0/12"):
        assert not cidr.overlaps(ipaddress.ip_network(cluster))


def test_pod_ips_allocate_lowest_free_and_reuse() -> None:
    ips = objects.PodIPs("10.244.3.0/24")
    assert ips.allocate("ns/a") == "10.244.3.2"  # .1 is the node's gateway
    assert ips.allocate("ns/b") == "10.244.3.3"
    assert ips.allocate("ns/a") == "10.244.3.2"  # idempotent per pod
    ips.release("ns/a")
    assert ips.allocate("ns/c") == "10.244.3.2"
    ips.claim("ns/d", "10.244.3.4")
    assert ips.allocate("ns/e") == "10.244.3.5"
    small = objects.PodIPs("10.0.0.0/30")  # hosts .1 .2: only .2 usable
    small.allocate("x/1")
    with pytest.raises(RuntimeError):
        small.allocate("x/2")


def test_node_status_patch_keeps_transition_only_when_ready() -> None:
    node = objects.new_node("n", objects.NodeTemplate(), datetime(2024, 1, 1, tzinfo=UTC))
    later = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    ready = objects.condition(objects.node_status_patch(node, later), "Ready")
    assert ready is not None
    assert (
        ready["lastTransitionTime"] == "2024-01-01T00:00:00Z" and ready["lastHeartbeatTime"] == "2024-01-01T00:05:00Z"
    )
    # the node lifecycle controller set Unknown: reporting Ready again is a transition
    node["status"]["conditions"][-1]["status"] = "Unknown"
    assert not objects.node_ready(node)
    ready = objects.condition(objects.node_status_patch(node, later), "Ready")
    assert ready is not None and ready["status"] == "True" and ready["lastTransitionTime"] == "2024-01-01T00:05:00Z"


def test_lease_objects() -> None:
    lease = objects.new_lease("fake-1", "uid-1", 40, NOW)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "fake-1", "uid": "uid-1"}
    ]
    assert lease["spec"] == {
        "holderIdentity": "fake-1",
        "leaseDurationSeconds": 40,
        "renewTime": "2025-01-02T03:04:05.678901Z",
    }
    assert "ownerReferences" not in objects.new_lease("fake-1", None, 40, NOW)["metadata"]
    assert objects.lease_renewal("fake-1", 40, NOW)["spec"]["renewTime"] == "2025-01-02T03:04:05.678901Z"


def _pod(name: str = "p", node: str = "fake-0", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": {
            "nodeName": node,
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "a", "image": "nginx:1.25"}, {"name": "b", "image": "redis"}],
        },
        "status": {"phase": "Pending", **status},
    }


def test_running_status_patch() -> None:
    sched = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
    gate = {"type": "example.com/gate", "status": "True"}
    pod = _pod(conditions=[sched, gate])
    st = objects.running_status_patch(pod, "172.16.0.9", "100.64.0.2", NOW)["status"]
    assert st["phase"] == "Running"
    assert st["podIP"] == "100.64.0.2" and st["podIPs"] == [{"ip": "100.64.0.2"}]
    assert st["hostIP"] == "172.16.0.9" and st["startTime"] == "2025-01-02T03:04:05Z"
    conds = {c["type"]: c for c in st["conditions"]}
    assert {"Initialized", "Ready", "ContainersReady", "PodScheduled", "example.com/gate"} <= set(conds)
    assert all(c["status"] == "True" for c in conds.values())
    assert conds["PodScheduled"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"  # unchanged condition
    assert [c["name"] for c in st["containerStatuses"]] == ["a", "b"]
    a = st["containerStatuses"][0]
    assert a["ready"] and a["started"] and a["restartCount"] == 0 and "running" in a["state"]
    assert a["imageID"].startswith("nginx:1.25@sha256:") and a["containerID"].startswith("fake://")
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert objects.is_running_ready({"status": st}) and not objects.needs_start({"status": st})
    # host network pods share the node's address
    pod["spec"]["hostNetwork"] = True
    assert objects.running_status_patch(pod, "172.16.0.9", "100.64.0.2", NOW)["status"]["podIP"] == "172.16.0.9"


def test_needs_start() -> None:
    assert objects.needs_start(_pod())
    assert not objects.needs_start(_pod(phase="Succeeded"))
    terminating = _pod()
    terminating["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert objects.is_terminating(terminating) and not objects.needs_start(terminating)


def test_flags() -> None:
    args = build_parser().parse_args(
        [
            "--count=3",
            "--name-prefix=n-",
            "--start-index=5",
            "--labels=zone=a",
            "--taints=k:NoSchedule",
            "--heartbeat=500ms",
            "--pod-startup=1s",
            "--manage-pods=false",
        ]
    )
    opts = options_from_args(args)
    assert opts.node_names() == ["n-5", "n-6", "n-7"]
    assert opts.heartbeat == 0.5 and opts.pod_startup == 1.0 and not opts.manage_pods
    assert opts.template.labels == {"zone": "a"} and opts.template.taints == [{"key": "k", "effect": "NoSchedule"}]
    assert options_from_args(build_parser().parse_args([])).manage_pods


class FakeClient:
    """Records writes; answers creates with a uid, optional errors per (verb, resource)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, Any]] = []
        self.errors: dict[tuple[str, str], StatusError] = {}

    def _fail(self, verb: str, res: Any) -> None:
        err = self.errors.get((verb, res.resource))
        if err is not None:
            raise err

    async def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        self.calls.append(("create", res.resource, obj["metadata"]["name"], obj))
        self._fail("create", res)
        return {**obj, "metadata": {**obj["metadata"], "uid": "u-" + obj["metadata"]["name"]}}

    async def patch(self, res: Any, name: str, patch: Any, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        self.calls.append(
            ("patch" + ("/" + kw["subresource"] if kw.get("subresource") else ""), res.resource, name, patch)
        )
        self._fail("patch", res)
        return {"metadata": {"name": name, "uid": "u-" + name}}

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete", res.resource, name, kw))
        self._fail("delete", res)
        return {}


def _fake(**kw: Any) -> tuple[FakeNodes, FakeClient]:
    client = FakeClient()
    fake = FakeNodes(client, FakeNodeOptions(count=2, **kw))  # type: ignore[arg-type]
    return fake, client


async def test_register_creates_nodes_and_owned_leases() -> None:
    fake, client = _fake()
    await fake.register_all()
    created = [(r, n) for verb, r, n, _ in client.calls if verb == "create"]
    assert sorted(created) == [("leases", "fake-0"), ("leases", "fake-1"), ("nodes", "fake-0"), ("nodes", "fake-1")]
    lease = next(obj for verb, r, n, obj in client.calls if r == "leases" and n == "fake-0")
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "u-fake-0"


async def test_register_existing_node_reports_it_healthy() -> None:
    fake, client = _fake()
    client.errors[("create", "nodes")] = StatusError(409, "AlreadyExists", "exists")
    await fake.register_all()
    verbs = {(verb, r) for verb, r, _, _ in client.calls}
    assert ("patch", "nodes") in verbs and ("patch/status", "nodes") in verbs


async def test_renew_recreates_a_missing_lease() -> None:
    fake, client = _fake()
    client.errors[("patch", "leases")] = StatusError(404, "NotFound", "gone")
    await fake._renew("fake-0")
    assert [(v, r) for v, r, _, _ in client.calls] == [("patch", "leases"), ("create", "leases")]


async def test_beat_reports_ready_again_after_unknown() -> None:
    fake, client = _fake()
    node = objects.new_node("fake-0", objects.NodeTemplate(), NOW)
    fake.nodes.indexer.add({**node, "metadata": {**node["metadata"], "resourceVersion": "1"}})
    fake._last_status["fake-0"] = 1e18  # status was just written: only a bad condition triggers a write
    await fake._beat("fake-0")
    assert [(v, r) for v, r, _, _ in client.calls] == [("patch", "leases")]
    node["status"]["conditions"][-1]["status"] = "Unknown"
    fake.nodes.indexer.add({**node, "metadata": {**node["metadata"], "resourceVersion": "2"}})
    client.calls.clear()
    await fake._beat("fake-0")
    assert [(v, r) for v, r, _, _ in client.calls] == [("patch", "leases"), ("patch/status", "nodes")]


async def test_pods_on_our_nodes_are_started_and_terminating_ones_deleted() -> None:
    fake, client = _fake()
    assert fake.pods is not None and fake._pod_ctl is not None
    mine, other = _pod("mine"), _pod("other", node="elsewhere")
    for p in (mine, other):
        fake.pods.indexer.add(p)
        fake._on_pod(p)
    assert len(fake._pod_ctl.queue) == 1  # only the pod on our node was enqueued
    assert await fake._sync_pod("ns/mine") is None
    verb, res, name, patch = client.calls[-1]
    assert (verb, res, name) == ("patch/status", "pods", "mine")
    assert patch["status"]["phase"] == "Running"
    assert ipaddress.ip_address(patch["status"]["podIP"]) in ipaddress.ip_network(objects.fallback_pod_cidr("fake-0"))
    assert await fake._sync_pod("ns/other") is None and len(client.calls) == 1

    dying = _pod("mine")
    dying["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    fake.pods.indexer.add(dying)
    await fake._sync_pod("ns/mine")
    verb, res, name, kw = client.calls[-1]
    assert (verb, res, name) == ("delete", "pods", "mine")
    assert kw == {"grace_period_seconds": 0, "preconditions": {"uid": "uid-mine"}}
    # the pod is gone already (404): nothing to retry
    client.errors[("delete", "pods")] = StatusError(404, "NotFound", "gone")
    assert await fake._sync_pod("ns/mine") is None
    fake._on_pod_gone(dying)
    assert fake._ips_for("fake-0").used == {}


async def test_pod_startup_delay_requeues() -> None:
    fake, client = _fake(pod_startup=30.0)
    assert fake.pods is not None
    pod = _pod()
    fake.pods.indexer.add(pod)
    fake._on_pod(pod)
    result = await fake._sync_pod("ns/p")
    assert isinstance(result, Requeue) and result.after is not None and 29 < result.after <= 30
    assert client.calls == []


async def test_pod_ips_follow_the_node_pod_cidr() -> None:
    fake, client = _fake()
    assert fake.pods is not None
    node = objects.new_node("fake-1", objects.NodeTemplate(), NOW)
    node["spec"]["podCIDR"] = "10.244.7.0/24"
    fake.nodes.indexer.add(node)
    pod = _pod(node="fake-1")
    fake.pods.indexer.add(pod)
    await fake._sync_pod("ns/p")
    assert client.calls[-1][3]["status"]["podIP"] == "10.244.7.2"


def test_resources_used() -> None:
    # the fake kubelet writes exactly these resources
    assert {NODES.resource, LEASES.resource, PODS.resource} == {"nodes", "leases", "pods"}
