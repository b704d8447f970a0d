"""StatefulSet ordering decisions (which ordinal to create or delete next)."""

from __future__ import annotations

from typing import Any

from kubeha.controllers import statefulset as s

Obj = dict[str, Any]


def sts(replicas: int = 3, policy: str = "OrderedReady", partition: int = 0, strategy: str = "RollingUpdate") -> Obj:
    us: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        us["rollingUpdate"] = {"partition": partition}
    return {
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "podManagementPolicy": policy, "updateStrategy": us},
    }


def pod(i: int, rev: str = "r1", ready: bool = True, phase: str = "Running", deleting: bool = False) -> Obj:
    md: Obj = {"name": f"web-{i}", "labels": {"controller-revision-hash": rev}}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {
        "metadata": md,
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_ordinals() -> None:
    assert s.ordinal_of("web", "web-12") == 12
    assert s.ordinal_of("web", "web-x") is None
    assert s.ordinal_of("web", "webby-1") is None


def test_ordered_ready_creates_one_at_a_time() -> None:
    assert s.plan(sts(), {}, "r1", "r1") == ([0], [])
    assert s.plan(sts(), {0: pod(0, ready=False)}, "r1", "r1") == ([], [])  # wait for web-0
    assert s.plan(sts(), {0: pod(0)}, "r1", "r1") == ([1], [])
    # Parallel: everything at once
    assert s.plan(sts(policy="Parallel"), {0: pod(0, ready=False)}, "r1", "r1") == ([1, 2], [])


def test_failed_pods_are_replaced() -> None:
    create, delete = s.plan(sts(), {0: pod(0, phase="Failed")}, "r1", "r1")
    assert create == [] and names(delete) == ["web-0"]


def test_scale_down_from_the_highest_ordinal() -> None:
    pods = {i: pod(i) for i in range(5)}
    create, delete = s.plan(sts(replicas=2), pods, "r1", "r1")
    assert create == [] and names(delete) == ["web-4"]
    create, delete = s.plan(sts(replicas=2, policy="Parallel"), pods, "r1", "r1")
    assert names(delete) == ["web-4", "web-3", "web-2"]
    pods[4] = pod(4, deleting=True)
    assert s.plan(sts(replicas=2), pods, "r1", "r1") == ([], [])  # wait until web-4 is gone


def test_rolling_update_reverse_order_with_partition() -> None:
    pods = {i: pod(i, rev="old") for i in range(3)}
    assert names(s.plan(sts(), pods, "new", "old")[1]) == ["web-2"]
    pods[2] = pod(2, rev="new", ready=False)
    assert s.plan(sts(), pods, "new", "old") == ([], [])  # one at a time, only while all are healthy
    pods[2] = pod(2, rev="new")
    assert names(s.plan(sts(), pods, "new", "old")[1]) == ["web-1"]
    # partition 2: ordinals below it keep the old revision
    pods = {0: pod(0, rev="old"), 1: pod(1, rev="old"), 2: pod(2, rev="new")}
    assert s.plan(sts(partition=2), pods, "new", "old") == ([], [])
    # OnDelete: never deletes for an update
    assert s.plan(sts(strategy="OnDelete"), {i: pod(i, rev="old") for i in range(3)}, "new", "old") == ([], [])
