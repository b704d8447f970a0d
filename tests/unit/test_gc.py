"""Garbage collector graph and decisions, and pod GC selection (pure parts)."""

from __future__ import annotations

from typing import Any

from kubeha.client.resources import CONFIGMAPS
from kubeha.controllers import podgc
from kubeha.controllers.garbagecollector import (
    DANGLING,
    FOREGROUND,
    ORPHAN,
    SOLID,
    WAITING,
    Graph,
    Node,
    blocking_dependents,
    classify,
    decide,
    node_of,
)

Obj = dict[str, Any]


def obj(uid: str, owners: list[str] | None = None, block: bool = False, **md: Any) -> Obj:
    refs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": o, "uid": o, "blockOwnerDeletion": block}
        for o in owners or []
    ]
    return {"metadata": {"name": uid, "namespace": "ns", "uid": uid, "ownerReferences": refs, **md}}


def node(uid: str, owners: list[str] | None = None, block: bool = False, **md: Any) -> Node:
    n = node_of(obj(uid, owners, block, **md), CONFIGMAPS)
    assert n is not None
    return n


def test_graph_tracks_dependents_and_dangling_refs() -> None:
    g = Graph()
    assert g.upsert(node("owner")).delete == set()
    # owner known: nothing to do for the dependent
    assert g.upsert(node("dep", ["owner"])).delete == set()
    assert [d.uid for d in g.dependents_of("owner")] == ["dep"]
    # a reference to an unseen owner: look at it (a live GET decides)
    assert g.upsert(node("lost", ["ghost"])).delete == {"lost"}
    # the owner goes: its dependents are checked
    assert g.remove("owner").delete == {"dep"}
    assert g.remove("nothing").delete == set()


def test_foreground_owner_enqueues_itself_and_dependents_once() -> None:
    g = Graph()
    g.upsert(node("owner"))
    g.upsert(node("a", ["owner"], block=True))
    g.upsert(node("b", ["owner"]))
    fg = node("owner", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=[FOREGROUND])
    assert g.upsert(fg).delete == {"owner", "a", "b"}
    assert [d.uid for d in blocking_dependents(g, "owner")] == ["a"]
    # a dependent vanishing lets the waiting owner re-check
    assert "owner" in g.remove("a").delete
    assert blocking_dependents(g, "owner") == []
    # dropping the reference also frees the owner
    g.upsert(node("c", ["owner"], block=True))
    assert "owner" in g.upsert(node("c")).delete


def test_orphan_finalizer_enqueues_orphaning() -> None:
    g = Graph()
    work = g.upsert(node("owner", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=[ORPHAN]))
    assert work.orphan == {"owner"} and work.delete == set()
    # the finalizer alone (no deletionTimestamp) means nothing yet
    assert Graph().upsert(node("x", finalizers=[ORPHAN])).orphan == set()


def test_classify_owner_states() -> None:
    ref = {"uid": "u1"}
    assert classify(None, ref) == DANGLING
    assert classify({"metadata": {"uid": "other"}}, ref) == DANGLING  # recreated under the same name
    assert classify({"metadata": {"uid": "u1"}}, ref) == SOLID
    deleting = {"metadata": {"uid": "u1", "deletionTimestamp": "t", "finalizers": [FOREGROUND]}}
    assert classify(deleting, ref) == WAITING
    assert classify({"metadata": {"uid": "u1", "deletionTimestamp": "t"}}, ref) == SOLID


def test_decide_like_upstream() -> None:
    n = node("dep", ["a", "b"])
    assert decide(n, {"a": SOLID, "b": SOLID}, False).action == "none"
    d = decide(n, {"a": SOLID, "b": DANGLING}, False)
    assert (d.action, d.unlink) == ("unlink", ["b"])
    assert decide(n, {"a": DANGLING, "b": DANGLING}, False).policy == "Background"
    # owner waits in foreground and this dependent has dependents of its own: foreground too
    assert decide(n, {"a": WAITING, "b": DANGLING}, True).policy == "Foreground"
    assert decide(n, {"a": WAITING}, False).policy == "Background"
    assert decide(node("x", ["a"], finalizers=[ORPHAN]), {"a": DANGLING}, False).policy == "Orphan"
    assert decide(node("x"), {}, False).action == "none"


def pod(name: str, phase: str = "Running", created: str = "2024-01-01T00:00:00Z", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": created},
        "spec": spec,
        "status": {"phase": phase},
    }


def test_podgc_terminated_threshold_oldest_first() -> None:
    pods = [
        pod("new", "Succeeded", "2024-01-03T00:00:00Z"),
        pod("old", "Failed", "2024-01-01T00:00:00Z"),
        pod("mid", "Succeeded", "2024-01-02T00:00:00Z"),
        pod("run"),
    ]
    assert [p["metadata"]["name"] for p in podgc.terminated_to_delete(pods, 1)] == ["old", "mid"]
    assert podgc.terminated_to_delete(pods, 3) == []
    assert podgc.terminated_to_delete(pods, 0) == []  # disabled


def test_podgc_orphans_after_quarantine_and_unscheduled_terminating() -> None:
    pods = [pod("a", nodeName="gone"), pod("b", nodeName="here"), pod("c")]
    assert podgc.missing_nodes(pods, {"here"}) == {"gone"}
    q = podgc.Quarantine()
    assert q.expired({"gone"}, now=100.0, grace=40) == set()
    assert q.expired({"gone"}, now=139.0, grace=40) == set()
    assert q.expired({"gone"}, now=140.0, grace=40) == {"gone"}
    assert q.expired(set(), now=141.0, grace=40) == set() and not q.since  # it came back
    terminating = pod("d")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    bound = pod("e", nodeName="here")
    bound["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert podgc.unscheduled_terminating([terminating, bound, pod("f")]) == [terminating]
