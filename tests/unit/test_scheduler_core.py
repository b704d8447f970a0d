"""The scheduling cycle in-process: a fake API client, real plugins, cache and queue."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.scheduler.profile import ConfigError, Profile, num_feasible_nodes_to_find, parse_config
from kubeha.scheduler.scheduler import Scheduler
from tests.unit.test_scheduler_helpers import make_node, make_pod

Obj = dict[str, Any]


class FakeClient:
    def __init__(self) -> None:
        self.bindings: list[tuple[str, str]] = []
        self.patches: list[tuple[str, Obj]] = []
        self.deleted: list[str] = []
        self.fail_bind = False

    async def create(self, res: Any, obj: Obj, namespace: str | None = None, **kw: Any) -> Obj:
        if self.fail_bind:
            raise StatusError(409, "Conflict", "nope")
        self.bindings.append((f"{namespace}/{obj['metadata']['name']}", obj["target"]["name"]))
        return {}

    async def patch(self, res: Any, name: str, patch: Obj, namespace: str | None = None, **kw: Any) -> Obj:
        self.patches.append((f"{namespace}/{name}", patch))
        return {}

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Obj:
        self.deleted.append(f"{namespace}/{name}")
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))


def build(config: Obj | None = None) -> tuple[Scheduler, FakeClient, FakeRecorder]:
    client, rec = FakeClient(), FakeRecorder()
    cfg = parse_config(config)
    profiles = [Profile(pc, client=client, recorder=rec) for pc in cfg.profiles]  # type: ignore[arg-type]
    return Scheduler(profiles, client=client, rng=random.Random(1)), client, rec


async def drain(s: Scheduler) -> None:
    while (qpi := s.queue.pop_nowait()) is not None:
        await s.schedule_one(qpi)
    for _ in range(5):
        await asyncio.sleep(0)


def test_adaptive_number_of_nodes_to_score() -> None:
    assert num_feasible_nodes_to_find(50, 0) == 50
    assert num_feasible_nodes_to_find(1000, 0) == 420  # 50% - 1000/125 = 42%
    assert num_feasible_nodes_to_find(5000, 0) == 500  # 10%
    assert num_feasible_nodes_to_find(100_000, 0) == 5000  # floor of 5%
    assert num_feasible_nodes_to_find(150, 10) == 100  # never fewer than 100
    assert num_feasible_nodes_to_find(1000, 100) == 1000


async def test_binds_to_the_node_that_fits_and_records_scheduled() -> None:
    s, client, rec = build()
    s.on_node_add(make_node("small", cpu="1"))
    s.on_node_add(make_node("big", cpu="8"))
    s.on_pod_add(make_pod("p", cpu="2"))
    await drain(s)
    assert client.bindings == [("default/p", "big")]
    assert ("Normal", "Scheduled", "Successfully assigned default/p to big") in rec.events
    assert s.cache.is_assumed("default/p")
    # the informer shows the binding: confirmed, and the pod leaves the pending set
    s.on_pod_update(make_pod("p", cpu="2"), make_pod("p", cpu="2", node="big"))
    assert not s.cache.is_assumed("default/p") and "default/p" not in s.pending_pods


async def test_fit_error_message_as_upstream_and_status_patch() -> None:
    s, client, rec = build()
    taint = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    for i in range(2):
        s.on_node_add(make_node(f"cp{i}", taints=taint))
    for i in range(3):
        s.on_node_add(make_node(f"w{i}", cpu="1"))
    s.on_pod_add(make_pod("big", cpu="2"))
    await drain(s)
    msg = (
        "0/5 nodes are available: 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "3 Insufficient cpu. preemption: 0/5 nodes are available: 2 Preemption is not helpful for scheduling, "
        "3 No preemption victims found for incoming pod."
    )
    assert ("Warning", "FailedScheduling", msg) in rec.events
    key, patch = client.patches[0]
    cond = patch["status"]["conditions"][0]
    assert key == "default/big" and cond["type"] == "PodScheduled" and cond["status"] == "False"
    assert cond["reason"] == "Unschedulable" and cond["message"] == msg
    assert s.queue.where("default/big") == "unschedulable"
    # a new big node is an event NodeResourcesFit registered for: the pod is retried and bound
    s.on_node_add(make_node("w-big", cpu="4"))
    assert s.queue.where("default/big") in ("active", "backoff")
    s.queue.clock = lambda: 1e12  # past any backoff
    s.queue.flush_backoff_completed()
    await drain(s)
    assert ("default/big", "w-big") in client.bindings


async def test_no_nodes_message() -> None:
    s, _, rec = build()
    s.on_pod_add(make_pod("p"))
    await drain(s)
    assert rec.events[-1] == ("Warning", "FailedScheduling", "no nodes available to schedule pods")


async def test_anti_affinity_spreads_pods_over_nodes() -> None:
    s, client, _ = build()
    for i in range(3):
        s.on_node_add(make_node(f"n{i}"))
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "w"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    for i in range(4):
        s.on_pod_add(make_pod(f"w{i}", labels={"app": "w"}, affinity=anti))
    await drain(s)
    nodes = [n for _, n in client.bindings]
    assert len(nodes) == 3 and len(set(nodes)) == 3  # assumed pods count at once
    assert s.queue.where("default/w3") == "unschedulable"


async def test_preemption_evicts_lower_priority_and_nominates() -> None:
    s, client, rec = build()
    s.on_node_add(make_node("n", cpu="2"))
    s.on_pod_add(make_pod("low", cpu="1500m", node="n", priority=1))
    s.on_pod_add(make_pod("high", cpu="1", priority=100))
    await drain(s)
    assert client.deleted == ["default/low"]
    patch = next(p for k, p in client.patches if k == "default/high")
    assert patch["status"]["nominatedNodeName"] == "n"
    assert any(r == "Preempted" for _, r, _ in rec.events)
    # the victim's deletion frees the node; the preemptor then binds there
    s.on_pod_delete(make_pod("low", cpu="1500m", node="n", priority=1))
    s.queue.clock = lambda: 1e12
    s.queue.flush_backoff_completed()
    await drain(s)
    assert client.bindings == [("default/high", "n")]


async def test_preemption_policy_never() -> None:
    s, client, rec = build()
    s.on_node_add(make_node("n", cpu="1"))
    s.on_pod_add(make_pod("low", cpu="1", node="n", priority=1))
    s.on_pod_add(make_pod("high", cpu="1", priority=100, preemptionPolicy="Never"))
    await drain(s)
    assert client.deleted == []
    assert rec.events[-1][2] == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )


async def test_binding_failure_forgets_the_pod_and_retries() -> None:
    s, client, rec = build()
    s.on_node_add(make_node("n"))
    client.fail_bind = True
    s.on_pod_add(make_pod("p"))
    await drain(s)
    assert not s.cache.is_assumed("default/p") and not s.cache.nodes["n"].pods
    assert s.queue.where("default/p") == "backoff"
    assert rec.events[-1][1] == "FailedScheduling"


async def test_profiles_and_scheduler_name() -> None:
    cfg = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [
            {"schedulerName": "default-scheduler"},
            {
                "schedulerName": "no-taints",
                "plugins": {"filter": {"disabled": [{"name": "TaintToleration"}]}},
            },
        ],
    }
    s, client, _ = build(cfg)
    s.on_node_add(make_node("cp", taints=[{"key": "k", "effect": "NoSchedule"}]))
    s.on_pod_add(make_pod("a"))
    s.on_pod_add(make_pod("b", schedulerName="no-taints"))
    s.on_pod_add(make_pod("c", schedulerName="someone-else"))
    await drain(s)
    assert client.bindings == [("default/b", "cp")]
    assert "default/c" not in s.pending_pods


def test_config_weights_and_errors() -> None:
    cfg = parse_config(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "profiles": [
                {
                    "plugins": {
                        "score": {
                            "enabled": [{"name": "NodeResourcesFit", "weight": 7}],
                            "disabled": [{"name": "ImageLocality"}],
                        },
                        "multiPoint": {"disabled": [{"name": "InterPodAffinity"}]},
                    }
                }
            ],
        }
    )
    weights = dict(cfg.profiles[0].points["score"])
    assert weights["NodeResourcesFit"] == 7 and weights["TaintToleration"] == 3 and weights["NodeAffinity"] == 2
    assert "ImageLocality" not in weights and "InterPodAffinity" not in weights
    assert "InterPodAffinity" not in dict(cfg.profiles[0].points["filter"])
    default = dict(parse_config(None).profiles[0].points["score"])
    assert default == {
        "TaintToleration": 3,
        "NodeAffinity": 2,
        "NodeResourcesFit": 1,
        "PodTopologySpread": 2,
        "InterPodAffinity": 2,
        "NodeResourcesBalancedAllocation": 1,
        "ImageLocality": 1,
    }
    with pytest.raises(ConfigError):
        parse_config({"profiles": [{"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}]})
    with pytest.raises(ConfigError):
        parse_config({"profiles": [{}, {}]})
