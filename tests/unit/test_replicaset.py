"""replicaset controller: status computation, and sync against fake informers and client
(creates in slow-start batches with expectations, deletes least valuable pods, adoption)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.controllers.context import ControllerContext
from kubeha.controllers.replicaset import ReplicaSetController, calculate_status, rs_matches
from kubeha.machinery.informer import SharedInformerFactory

Obj = dict[str, Any]


def make_rs(replicas: int, min_ready: int = 0) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "rs1", "generation": 2, "resourceVersion": "5"},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"containers": [{"name": "c"}]}},
        },
        "status": {"replicas": 0},
    }


def make_pod(name: str, *, ready: bool = False, labels: Obj | None = None, owned: bool = True, node: str = "") -> Obj:
    md: Obj = {
        "name": name,
        "namespace": "ns",
        "uid": f"u-{name}",
        "labels": labels or {"app": "web", "tier": "fe"},
        "creationTimestamp": "2024-01-01T00:00:00Z",
    }
    if owned:
        md["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs1", "controller": True}
        ]
    return {
        "metadata": md,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": "Running" if node else "Pending",
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2024-01-01T00:00:00Z"}
            ],
        },
    }


def test_status_counts() -> None:
    rs = make_rs(3, min_ready=10)
    pods = [make_pod("a", ready=True), make_pod("b", ready=True, labels={"app": "web"}), make_pod("c")]
    st = calculate_status(rs, pods, None, now=1704067200.0 + 5)
    assert st == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "observedGeneration": 2}
    st = calculate_status(rs, pods, None, now=1704067200.0 + 10)
    assert st["availableReplicas"] == 2


def test_replica_failure_condition_set_and_cleared() -> None:
    rs = make_rs(3)
    st = calculate_status(rs, [], StatusError(403, "Forbidden", "exceeded quota"), now=0)
    cond = st["conditions"][0]
    assert (cond["type"], cond["reason"], cond["status"]) == ("ReplicaFailure", "FailedCreate", "True")
    assert "exceeded quota" in cond["message"]
    rs["status"] = st
    assert "conditions" not in calculate_status(rs, [], None, now=0)


def test_selector_matching() -> None:
    rs = make_rs(1)
    assert rs_matches(rs, make_pod("a"))
    assert not rs_matches(rs, make_pod("a", labels={"app": "db"}))
    rs["spec"]["selector"] = {}
    assert not rs_matches(rs, make_pod("a")), "an empty selector selects nothing here"


class FakeClient:
    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.deleted: list[str] = []
        self.patched: list[str] = []
        self.status_writes: list[Obj] = []
        self.n = 0

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        if obj.get("kind") == "Event":  # the event recorder's writes
            return obj
        self.n += 1
        self.created.append(obj)
        return {**obj, "metadata": {**obj["metadata"], "name": f"web-{self.n}"}}

    async def delete(self, res: Any, name: str, namespace: str | None = None) -> Obj:
        self.deleted.append(name)
        return {}

    async def patch(
        self, res: Any, name: str, patch: Any, namespace: str | None = None, *, patch_type: str = "merge"
    ) -> Obj:
        self.patched.append(name)
        pod = make_pod(name)
        return pod

    async def update(self, res: Any, obj: Obj, namespace: str | None = None, *, subresource: str | None = None) -> Obj:
        assert subresource == "status"
        self.status_writes.append(obj["status"])
        return obj


def controller(rs: Obj, pods: list[Obj]) -> tuple[ReplicaSetController, FakeClient]:
    client = FakeClient()
    ctx = ControllerContext(client, SharedInformerFactory(client))  # type: ignore[arg-type]
    c = ReplicaSetController(ctx)
    c.rs_informer.indexer.add(rs)
    for p in pods:
        c.pod_informer.indexer.add(p)
    return c, client


def test_sync_creates_with_expectations() -> None:
    async def run() -> None:
        c, client = controller(make_rs(3), [make_pod("a")])
        await c.sync("ns/web")
        assert len(client.created) == 2
        pod = client.created[0]
        assert pod["metadata"]["generateName"] == "web-" and pod["metadata"]["labels"] == {"app": "web", "tier": "fe"}
        assert pod["metadata"]["ownerReferences"][0]["uid"] == "rs1"
        assert client.status_writes[-1]["replicas"] == 1
        # not observed yet: a second sync must not create again
        await c.sync("ns/web")
        assert len(client.created) == 2
        for name in ("web-1", "web-2"):  # what the informer does: cache, then notify
            c.pod_informer.indexer.add(make_pod(name))
            c._add_pod(make_pod(name))
        assert c.expectations.satisfied("ns/web")
        await c.sync("ns/web")
        assert len(client.created) == 2  # 3 pods now: nothing to do

    asyncio.run(run())


def test_sync_deletes_not_ready_first_and_adopts_orphans() -> None:
    async def run() -> None:
        pods = [make_pod("ready", ready=True, node="n1"), make_pod("pending"), make_pod("orphan", owned=False)]
        c, client = controller(make_rs(1), pods)
        await c.sync("ns/web")
        assert client.patched == ["orphan"]  # adopted before counting
        assert sorted(client.deleted) == ["orphan", "pending"]
        assert c.expectations.pending("ns/web") == (0, 2)
        c._delete_pod(make_pod("pending"))
        c._delete_pod(make_pod("orphan"))
        assert c.expectations.satisfied("ns/web")

    asyncio.run(run())


def test_deleted_replicaset_forgets_expectations() -> None:
    async def run() -> None:
        rs = make_rs(2)
        c, _client = controller(rs, [])
        await c.sync("ns/web")
        assert not c.expectations.satisfied("ns/web")
        c.rs_informer.indexer.delete(rs)
        c._delete_rs(rs)
        assert await c.sync("ns/web") is None
        assert c.expectations.pending("ns/web") == (0, 0)

    asyncio.run(run())
