"""Node health, condition taints and NoExecute eviction timing (injected clocks, fake client)."""

from __future__ import annotations

import copy
from typing import Any

from kubeha.client.resources import NODES, PODS
from kubeha.controllers import nodelifecycle as nl
from kubeha.controllers.context import ControllerContext, ControllerOptions
from kubeha.controllers.podcontrol import format_time
from kubeha.machinery.informer import SharedInformerFactory

Obj = dict[str, Any]
T0 = 1_700_000_000.0


def taint(key: str, effect: str = "NoExecute", added: float | None = T0) -> Obj:
    t: Obj = {"key": key, "effect": effect}
    if added is not None:
        t["timeAdded"] = format_time(added)
    return t


def pod(*tolerations: Obj, node: str = "n1", name: str = "p") -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": "u-" + name},
        "spec": {"nodeName": node, "tolerations": list(tolerations)},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


UNREACH = {"key": nl.TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}


def test_toleration_matching() -> None:
    t = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert nl.toleration_tolerates({"key": "k", "operator": "Equal", "value": "v"}, t)
    assert not nl.toleration_tolerates({"key": "k", "value": "w"}, t)
    assert nl.toleration_tolerates({"operator": "Exists"}, t)  # empty key + Exists: everything
    assert not nl.toleration_tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, t)


def test_eviction_timing() -> None:
    taints = [taint(nl.TAINT_UNREACHABLE)]
    # no toleration: at once (from when the taint was added)
    assert nl.eviction_at(pod(), taints, T0 + 9) == T0
    # tolerationSeconds counts from timeAdded
    assert nl.eviction_at(pod({**UNREACH, "tolerationSeconds": 2}), taints, T0 + 1) == T0 + 2
    # the smallest of several matching bounds wins
    two = pod({**UNREACH, "tolerationSeconds": 30}, {"operator": "Exists", "tolerationSeconds": 5})
    assert nl.eviction_at(two, taints, T0) == T0 + 5
    # unbounded toleration: never
    assert nl.eviction_at(pod(UNREACH), taints, T0) is None
    # NoSchedule taints never evict; a taint without timeAdded counts from when it was observed
    assert nl.eviction_at(pod(), [taint("x", "NoSchedule")], T0) is None
    assert (
        nl.eviction_at(pod({**UNREACH, "tolerationSeconds": 3}), [taint(nl.TAINT_UNREACHABLE, added=None)], T0 + 7)
        == T0 + 10
    )
    # one untolerated taint among tolerated ones: at once
    both = [taint(nl.TAINT_UNREACHABLE), taint("other", added=T0 + 4)]
    assert nl.eviction_at(pod({**UNREACH, "tolerationSeconds": 100}), both, T0 + 5) == T0 + 4


def node(ready: str | None = "True", taints: list[Obj] | None = None, heartbeat: str = "h1") -> Obj:
    conds = []
    if ready is not None:
        conds.append({"type": "Ready", "status": ready, "lastHeartbeatTime": heartbeat, "reason": "KubeletReady"})
        conds.append({"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": heartbeat})
    n: Obj = {"metadata": {"name": "n1", "resourceVersion": "1"}, "spec": {}, "status": {"conditions": conds}}
    if taints:
        n["spec"]["taints"] = taints
    return n


def test_desired_taints_follow_ready() -> None:
    user = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    got = nl.desired_taints(node("Unknown", [user]), "NOW")
    assert user in got
    assert {"key": nl.TAINT_UNREACHABLE, "effect": "NoSchedule"} in got
    assert {"key": nl.TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "NOW"} in got
    got = nl.desired_taints(node("False"), "NOW")
    assert {(t["key"], t["effect"]) for t in got} == {
        (nl.TAINT_NOT_READY, "NoSchedule"),
        (nl.TAINT_NOT_READY, "NoExecute"),
    }
    # back to Ready: managed taints go, the user's stays; an existing taint keeps its timeAdded
    assert nl.desired_taints(node("True", [user, taint(nl.TAINT_UNREACHABLE)]), "NOW") == [user]
    kept = nl.desired_taints(node("Unknown", [taint(nl.TAINT_UNREACHABLE)]), "LATER")
    assert taint(nl.TAINT_UNREACHABLE) in kept


def test_observe_uses_local_time_of_change() -> None:
    lease = {"spec": {"renewTime": "r1"}}
    h = nl.observe(None, node(), lease, 10.0)
    assert h.probe_time == 10.0
    h = nl.observe(h, node(), lease, 50.0)
    assert h.probe_time == 10.0  # nothing changed
    h = nl.observe(h, node(), {"spec": {"renewTime": "r2"}}, 60.0)
    assert h.probe_time == 60.0
    h = nl.observe(h, node(heartbeat="h2"), {"spec": {"renewTime": "r2"}}, 70.0)
    assert h.probe_time == 70.0


def test_unknown_conditions() -> None:
    conds = nl.unknown_conditions(node(), "NOW")
    assert conds is not None
    ready = next(c for c in conds if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    assert {c["type"] for c in conds} >= set(nl.KUBELET_CONDITIONS)
    assert nl.unknown_conditions({"status": {"conditions": conds}}, "NOW") is None


class FakeClient:
    def __init__(self) -> None:
        self.updates: list[tuple[str, str | None, Obj]] = []
        self.deleted: list[str] = []

    async def update(self, res: Any, obj: Obj, namespace: str | None = None, *, subresource: str | None = None) -> Obj:
        self.updates.append((res.resource, subresource, copy.deepcopy(obj)))
        return obj

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Obj:
        assert res == PODS
        self.deleted.append(name)
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.reasons.append(reason)


def controller(now: list[float], wall: list[float]) -> tuple[nl.NodeLifecycleController, FakeClient, FakeRecorder]:
    client, rec = FakeClient(), FakeRecorder()
    ctx = ControllerContext(
        client=client,  # type: ignore[arg-type]
        informers=SharedInformerFactory(client),  # type: ignore[arg-type]
        options=ControllerOptions(node_monitor_grace_period=4.0, node_startup_grace_period=4.0),
        recorders={"node-controller": rec},  # type: ignore[dict-item]
    )
    ctl = nl.NodeLifecycleController(ctx, clock=lambda: now[0], wall=lambda: wall[0])
    return ctl, client, rec


async def test_silent_node_goes_unknown_then_tainted_and_pods_not_ready() -> None:
    now, wall = [100.0], [T0]
    ctl, client, rec = controller(now, wall)
    ctl.nodes.indexer.add(node())
    ctl.leases.indexer.add({"metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": {"renewTime": "r1"}})
    ctl.pods.indexer.add(pod())
    await ctl.monitor_once()
    assert client.updates == []  # healthy
    now[0] = 103.0
    await ctl.monitor_once()
    assert client.updates == []  # within grace
    now[0] = 105.0
    await ctl.monitor_once()
    kinds = [(r, s) for r, s, _ in client.updates]
    assert kinds == [("nodes", "status"), ("pods", "status"), ("nodes", None)]
    status_obj, pod_obj, taint_obj = (u[2] for u in client.updates)
    assert nl.condition(status_obj, "Ready")["status"] == "Unknown"  # type: ignore[index]
    assert pod_obj["status"]["conditions"][0]["status"] == "False"
    assert {(t["key"], t["effect"]) for t in taint_obj["spec"]["taints"]} == {
        (nl.TAINT_UNREACHABLE, "NoSchedule"),
        (nl.TAINT_UNREACHABLE, "NoExecute"),
    }
    assert rec.reasons == ["NodeNotReady", "NodeNotReady"]


async def test_lease_renewal_keeps_node_healthy() -> None:
    now, wall = [0.0], [T0]
    ctl, client, _ = controller(now, wall)
    ctl.nodes.indexer.add(node())
    for i in range(5):
        now[0] = i * 3.0
        ctl.leases.indexer.add(
            {"metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": {"renewTime": f"r{i}"}}
        )
        await ctl.monitor_once()
    assert client.updates == []


async def test_taint_manager_waits_then_evicts() -> None:
    now, wall = [0.0], [T0 + 1]
    ctl, client, rec = controller(now, wall)
    ctl.nodes.indexer.add(node("Unknown", [taint(nl.TAINT_UNREACHABLE)]))
    ctl.pods.indexer.add(pod({**UNREACH, "tolerationSeconds": 2}, name="tolerant"))
    ctl.pods.indexer.add(pod(name="plain"))
    ctl.pods.indexer.add(pod(UNREACH, name="forever"))
    r = await ctl.sync_pod("default/tolerant")
    assert r is not None and r.after == 1.0
    assert await ctl.sync_pod("default/plain") is None
    assert await ctl.sync_pod("default/forever") is None
    assert client.deleted == ["plain"]
    wall[0] = T0 + 2
    await ctl.sync_pod("default/tolerant")
    assert client.deleted == ["plain", "tolerant"]
    assert rec.reasons == ["TaintManagerEviction", "TaintManagerEviction"]


async def test_node_taint_change_enqueues_its_pods() -> None:
    now, wall = [0.0], [T0]
    ctl, _, _ = controller(now, wall)
    ctl.pods.indexer.add(pod(name="a"))
    ctl.pods.indexer.add(pod(name="b", node="n2"))
    ctl._node_updated(node(), node("Unknown", [taint(nl.TAINT_UNREACHABLE)]))
    assert len(ctl.queue) == 1
    assert await ctl.queue.get() == "default/a"
    assert NODES.resource == "nodes"
