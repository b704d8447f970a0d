"""The scheduler cache: assumed pods, confirmation, expiry, snapshots."""

from __future__ import annotations

from kubeha.scheduler.cache import Cache
from kubeha.scheduler.framework import Snapshot
from kubeha.scheduler.nodeinfo import PodInfo
from tests.unit.test_scheduler_helpers import make_node, make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_assume_confirm_forget_and_expire() -> None:
    clock = Clock()
    c = Cache(clock=clock, assumed_ttl=30)
    c.add_node(make_node("n1", cpu="2"))
    pod = make_pod("p", cpu="500m")
    c.assume_pod(PodInfo(pod).on_node("n1"))
    assert c.nodes["n1"].requested.milli_cpu == 500 and c.is_assumed("default/p")
    # binding failed: forgotten, resources freed
    c.forget_pod("default/p")
    assert c.nodes["n1"].requested.milli_cpu == 0 and not c.is_assumed("default/p")
    # assume again, binding finishes, the informer confirms
    c.assume_pod(PodInfo(pod).on_node("n1"))
    c.finish_binding("default/p")
    bound = make_pod("p", cpu="500m", node="n1")
    c.add_pod(bound)
    assert not c.is_assumed("default/p") and c.nodes["n1"].requested.milli_cpu == 500
    clock.now += 60
    assert c.cleanup_assumed() == 0  # confirmed pods never expire
    # an assumed pod never confirmed expires ttl after its binding finished
    c.assume_pod(PodInfo(make_pod("q", cpu="1")).on_node("n1"))
    c.finish_binding("default/q")
    clock.now += 29
    assert c.cleanup_assumed() == 0
    clock.now += 2
    assert c.cleanup_assumed() == 1
    assert set(c.nodes["n1"].pods) == {"default/p"} and c.nodes["n1"].requested.milli_cpu == 500


def test_pod_moves_and_removal_keep_sums_right() -> None:
    c = Cache()
    c.add_node(make_node("a"))
    c.add_node(make_node("b"))
    c.add_pod(make_pod("p", cpu="1", node="a"))
    c.update_pod(make_pod("p", cpu="1", node="a"), make_pod("p", cpu="2", node="a"))
    assert c.nodes["a"].requested.milli_cpu == 2000
    c.remove_pod(make_pod("p", node="a"))
    assert c.nodes["a"].requested.milli_cpu == 0 and not c.nodes["a"].pods


def test_pods_of_unknown_nodes_and_node_removal() -> None:
    c = Cache()
    c.add_pod(make_pod("p", node="ghost"))
    snap = c.update_snapshot(Snapshot())
    assert snap.node_infos == []  # a node we have not seen is not schedulable
    c.add_node(make_node("ghost"))
    snap = c.update_snapshot(snap)
    assert [n.name for n in snap.node_infos] == ["ghost"] and "default/p" in snap.node_infos[0].pods
    c.remove_node(make_node("ghost"))
    assert c.update_snapshot(snap).node_infos == []
    c.remove_pod(make_pod("p", node="ghost"))
    assert "ghost" not in c.nodes


def test_snapshot_lists_follow_affinity_pods_and_label_keys() -> None:
    c = Cache()
    c.add_node(make_node("a", labels={"zone": "z1"}))
    c.add_node(make_node("b"))
    snap = c.update_snapshot(Snapshot())
    assert snap.have_pods_with_required_anti_affinity == [] and snap.label_keys["zone"] == 1
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    c.add_pod(make_pod("p", node="b", affinity=anti))
    snap = c.update_snapshot(snap)
    assert [n.name for n in snap.have_pods_with_required_anti_affinity] == ["b"]
    assert [n.name for n in snap.have_pods_with_affinity] == ["b"]
    # the snapshot shares NodeInfos with the cache: no copy per cycle
    assert snap.node_map["a"] is c.nodes["a"]
    c.remove_pod(make_pod("p", node="b"))
    assert c.update_snapshot(snap).have_pods_with_required_anti_affinity == []
