"""podcontrol: pods from templates, expectations, slow-start batches, deletion ranking, claims."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.controllers.podcontrol import (
    Expectations,
    PodControl,
    batches,
    claim,
    claim_decision,
    is_pod_active,
    is_pod_available,
    owner_reference,
    pod_from_template,
    pods_to_delete,
    slow_start_batch,
)

Obj = dict[str, Any]
OWNER: Obj = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
}


def pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready: bool = False,
    since: str = "2024-01-01T00:00:00Z",
    created: str = "2024-01-01T00:00:00Z",
    restarts: int = 0,
    labels: Obj | None = None,
    owner: str | None = None,
) -> Obj:
    md: Obj = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "labels": labels if labels is not None else {"app": "web"},
    }
    if owner:
        md["ownerReferences"] = [{"kind": "ReplicaSet", "name": "x", "uid": owner, "controller": True}]
    return {
        "metadata": md,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": since}],
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


def test_pod_from_template_carries_owner_and_template() -> None:
    ref = owner_reference(OWNER)
    assert ref == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "u1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    tmpl = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}
    p = pod_from_template(tmpl, OWNER, ref)
    assert p["metadata"]["generateName"] == "web-"
    assert p["metadata"]["namespace"] == "ns"
    assert p["metadata"]["labels"] == {"app": "web"} and p["metadata"]["annotations"] == {"a": "b"}
    assert p["metadata"]["ownerReferences"] == [ref]
    p["spec"]["containers"][0]["name"] = "changed"
    assert tmpl["spec"]["containers"][0]["name"] == "c", "the template is copied, not shared"
    assert pod_from_template(tmpl, OWNER, ref, name="web-0")["metadata"]["name"] == "web-0"


def test_expectations_block_until_observed() -> None:
    now = [0.0]
    e = Expectations(timeout=300, clock=lambda: now[0])
    assert e.satisfied("ns/web")
    e.expect_creations("ns/web", 2)
    assert not e.satisfied("ns/web")
    e.creation_observed("ns/web")
    assert not e.satisfied("ns/web")
    e.creation_observed("ns/web")
    assert e.satisfied("ns/web")
    e.expect_deletions("ns/web", ["ns/a", "ns/b"])
    e.deletion_observed("ns/web", "ns/zzz")  # not one we deleted
    e.deletion_observed("ns/web", "ns/a")
    e.deletion_observed("ns/web", "ns/a")  # seen twice counts once
    assert e.pending("ns/web") == (0, 1) and not e.satisfied("ns/web")
    now[0] = 301  # a lost event must not wedge the controller
    assert e.satisfied("ns/web")
    e.delete("ns/web")
    assert e.pending("ns/web") == (0, 0)


def test_slow_start_batches_stop_at_first_failure() -> None:
    assert batches(10) == [1, 2, 4, 3]
    assert batches(0) == []
    calls = 0

    async def ok() -> None:
        nonlocal calls
        calls += 1

    assert asyncio.run(slow_start_batch(10, ok)) == (10, None)
    assert calls == 10

    calls = 0

    async def fail_from_4th() -> None:
        nonlocal calls
        calls += 1
        if calls >= 4:
            raise StatusError(403, "Forbidden", "quota")

    done, err = asyncio.run(slow_start_batch(10, fail_from_4th))
    # batches 1, 2 succeed; the batch of 4 has failures and nothing after it runs
    assert calls == 7 and done == 3 and isinstance(err, StatusError)


def test_deletion_ranking_prefers_least_valuable() -> None:
    pods = [
        pod("ready-old", node="n1", ready=True, since="2024-01-01T00:00:00Z"),
        pod("unscheduled", phase="Pending"),
        pod("pending", node="n1", phase="Pending"),
        pod("notready", node="n2"),
        pod("ready-new", node="n2", ready=True, since="2024-01-02T00:00:00Z"),
        pod("restarts", node="n3", ready=True, since="2024-01-01T00:00:00Z", restarts=5),
    ]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods, None, len(pods))]
    assert order[:3] == ["unscheduled", "pending", "notready"]
    assert order.index("ready-new") < order.index("ready-old")
    assert pods_to_delete(pods, None, 0) == []


def test_deletion_ranking_crowded_nodes_and_age() -> None:
    a = pod("a", node="n1", ready=True)
    b = pod("b", node="n1", ready=True)
    c = pod("c", node="n2", ready=True)
    assert pods_to_delete([c, a, b], None, 1)[0]["metadata"]["name"] in ("a", "b")
    old = pod("old", node="n", ready=True, created="2024-01-01T00:00:00Z")
    new = pod("new", node="n", ready=True, created="2024-02-01T00:00:00Z")
    assert pods_to_delete([old, new], None, 1)[0]["metadata"]["name"] == "new"


def test_pod_state_predicates() -> None:
    assert is_pod_active(pod("a"))
    assert not is_pod_active(pod("a", phase="Succeeded"))
    deleting = pod("a")
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert not is_pod_active(deleting)
    p = pod("a", ready=True, since="2024-01-01T00:00:00Z")
    t0 = 1704067200.0  # 2024-01-01T00:00:00Z
    assert is_pod_available(p, 0)
    assert not is_pod_available(p, 10, now=t0 + 5)
    assert is_pod_available(p, 10, now=t0 + 10)
    assert not is_pod_available(pod("b"), 0)


def test_claim_decisions() -> None:
    assert claim_decision(pod("a"), OWNER, True) == "adopt"
    assert claim_decision(pod("a"), OWNER, False) == "ignore"
    assert claim_decision(pod("a", owner="u1"), OWNER, True) == "own"
    assert claim_decision(pod("a", owner="u1"), OWNER, False) == "release"
    assert claim_decision(pod("a", owner="other"), OWNER, True) == "ignore"
    deleting_owner = {**OWNER, "metadata": {**OWNER["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    assert claim_decision(pod("a"), deleting_owner, True) == "ignore"
    assert claim_decision(pod("a", owner="u1"), deleting_owner, False) == "ignore"


class FakeClient:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Obj, str]] = []
        self.created: list[Obj] = []
        self.fail_create: StatusError | None = None

    async def patch(
        self, res: Any, name: str, patch: Any, namespace: str | None = None, *, patch_type: str = "merge"
    ) -> Obj:
        self.patches.append((name, patch, patch_type))
        if name == "gone":
            raise StatusError(404, "NotFound", "gone")
        return {"metadata": {"name": name, "uid": patch["metadata"]["uid"]}}

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        if self.fail_create is not None:
            raise self.fail_create
        self.created.append(obj)
        return {**obj, "metadata": {**obj["metadata"], "name": "web-abcde"}}

    async def delete(self, res: Any, name: str, namespace: str | None = None) -> Obj:
        if name == "gone":
            raise StatusError(404, "NotFound", "gone")
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))


def test_claim_adopts_and_releases() -> None:
    client = FakeClient()
    ref = owner_reference(OWNER)
    objs = [pod("orphan"), pod("mine", owner="u1"), pod("stray", owner="u1", labels={"app": "other"}), pod("gone")]
    owned = asyncio.run(claim(client, None, OWNER, ref, objs, lambda p: p["metadata"]["labels"].get("app") == "web"))
    assert sorted(p["metadata"]["name"] for p in owned) == ["mine", "orphan"]
    by_name = {name: patch for name, patch, _ in client.patches}
    assert by_name["orphan"] == {"metadata": {"ownerReferences": [ref], "uid": "uid-orphan"}}
    assert by_name["stray"] == {
        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u1"}], "uid": "uid-stray"}
    }
    assert all(t == "strategic" for _, _, t in client.patches)


def test_pod_control_events() -> None:
    client, rec = FakeClient(), FakeRecorder()
    pc = PodControl(client, rec)
    tmpl = {"metadata": {"labels": {"app": "web"}}, "spec": {}}
    asyncio.run(pc.create_pod(tmpl, OWNER, owner_reference(OWNER)))
    asyncio.run(pc.delete_pod("ns", "web-x", OWNER))
    asyncio.run(pc.delete_pod("ns", "gone", OWNER))  # already gone: fine, no event
    client.fail_create = StatusError(403, "Forbidden", "exceeded quota")
    with pytest.raises(StatusError):
        asyncio.run(pc.create_pod(tmpl, OWNER, owner_reference(OWNER)))
    assert rec.events[0] == ("Normal", "SuccessfulCreate", "Created pod: web-abcde")
    assert rec.events[1] == ("Normal", "SuccessfulDelete", "Deleted pod: web-x")
    assert rec.events[2][:2] == ("Warning", "FailedCreate") and rec.events[2][2].startswith("Error creating: ")
    assert len(rec.events) == 3
    with pytest.raises(ValueError):
        asyncio.run(pc.create_pod({"spec": {}}, OWNER, None))
