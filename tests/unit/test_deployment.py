"""deployment controller math: hashing, fenceposts, rollout steps, proportional scaling,
status and conditions, annotations, history cleanup."""

from __future__ import annotations

from typing import Any

from kubeha.controllers.deployment import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    SAFE_ALPHABET,
    calculate_status,
    compute_hash,
    equal_ignore_hash,
    find_active_or_latest,
    find_new_rs,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    old_scale_down_budget,
    proportional_sizes,
    requeue_after_for_deadline,
    resolve_fenceposts,
    rollout_status,
    rss_to_clean,
    set_new_rs_annotations,
)

Obj = dict[str, Any]
TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}


def deploy(
    replicas: int,
    surge: Any = "25%",
    unavailable: Any = "25%",
    *,
    strategy: str = "RollingUpdate",
    generation: int = 1,
    status: Obj | None = None,
    **spec: Any,
) -> Obj:
    st: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "d1", "generation": generation},
        "spec": {
            "replicas": replicas,
            "strategy": st,
            "template": TEMPLATE,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            **spec,
        },
        "status": status or {},
    }


def rs(
    name: str,
    replicas: int,
    available: int = 0,
    *,
    created: str = "2024-01-01T00:00:00Z",
    revision: int = 1,
    max_replicas: int | None = None,
    image: str = "nginx:1",
    status_replicas: int | None = None,
) -> Obj:
    ann = {REVISION: str(revision)}
    if max_replicas is not None:
        ann[MAX_REPLICAS] = str(max_replicas)
    tmpl = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": name}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "annotations": ann,
            "generation": 1,
        },
        "spec": {"replicas": replicas, "template": tmpl},
        "status": {
            "replicas": replicas if status_replicas is None else status_replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "observedGeneration": 1,
        },
    }


def test_hash_is_stable_safe_and_collision_sensitive() -> None:
    h = compute_hash(TEMPLATE)
    assert h == compute_hash({"spec": TEMPLATE["spec"], "metadata": {"labels": {"app": "web"}}})  # key order
    assert set(h) <= set(SAFE_ALPHABET) and 1 <= len(h) <= 10
    assert compute_hash(TEMPLATE, 1) != h
    other = {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert compute_hash(other) != h
    # empty fields do not change the hash (nil and empty are the same in the API)
    assert compute_hash({**TEMPLATE, "metadata": {"labels": {"app": "web"}, "annotations": {}}}) == h


def test_equal_ignore_hash() -> None:
    with_hash = {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": TEMPLATE["spec"]}
    assert equal_ignore_hash(with_hash, TEMPLATE)
    assert not equal_ignore_hash(with_hash, {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "x"}]}})


def test_fenceposts_round_surge_up_and_unavailable_down() -> None:
    assert resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert resolve_fenceposts("25%", "25%", 1) == (1, 0)
    assert resolve_fenceposts(0, "10%", 5) == (0, 1)  # both zero would deadlock: 1 unavailable
    assert resolve_fenceposts(2, 1, 10) == (2, 1)
    assert max_surge(deploy(10)) == 3 and max_unavailable(deploy(10)) == 2
    assert max_unavailable(deploy(2, 0, 5)) == 2  # capped at replicas
    assert max_surge(deploy(3, strategy="Recreate")) == 0 and max_unavailable(deploy(3, strategy="Recreate")) == 0


def test_new_rs_growth_respects_surge() -> None:
    d = deploy(4, 1, 1)
    old = rs("old", 4, 4)
    new = rs("new", 0)
    assert new_rs_new_replicas(d, [old, new], new) == 1  # 4 + surge 1 = 5 total
    new = rs("new", 1)
    assert new_rs_new_replicas(d, [old, new], new) == 1  # already at 5
    old = rs("old", 2, 2)
    assert new_rs_new_replicas(d, [old, new], new) == 3
    assert new_rs_new_replicas(deploy(4, strategy="Recreate"), [old, new], new) == 4


def test_old_scale_down_budget_keeps_min_available() -> None:
    d = deploy(4, 1, 1)
    old, new = rs("old", 4, 4), rs("new", 1, 0)
    # 5 pods, min available 3, 1 new unavailable → 1 old may go
    assert old_scale_down_budget(d, [old, new], new) == 1
    new = rs("new", 1, 1)
    assert old_scale_down_budget(d, [old, new], new) == 2


def test_find_new_and_active_or_latest() -> None:
    d = deploy(3)
    a = rs("a", 0, created="2024-01-01T00:00:00Z", image="nginx:0")
    b = rs("b", 3, created="2024-01-02T00:00:00Z")
    assert find_new_rs(d, [a, b]) is b
    assert find_new_rs(deploy(3, template={"spec": {}}), [a, b]) is None
    assert find_active_or_latest(b, [a]) is b
    assert find_active_or_latest(rs("n", 0), [rs("o", 0)])["metadata"]["name"] == "n"
    assert find_active_or_latest(rs("n", 1), [rs("o", 2)]) is None


def test_proportional_scaling_mid_rollout() -> None:
    # 10 replicas, surge 3: old 8 + new 5 = 13 (the max); scale to 15 (new max 15 + 3 = 18: +5)
    d = deploy(15, 3, 2)
    old = rs("old", 8, 8, created="2024-01-01T00:00:00Z", max_replicas=13)
    new = rs("new", 5, 0, created="2024-01-02T00:00:00Z", max_replicas=13)
    sizes, op = proportional_sizes(d, [old, new])
    assert op == "up"
    assert sum(sizes.values()) == 18
    assert sizes == {"old": 11, "new": 7}  # 8*18/13 = 11.08 → 11; 5*18/13 = 6.9 → 7
    # scale down to 5 (max 5 + 2 = 7: -6)
    d = deploy(5, 2, 1)
    sizes, op = proportional_sizes(d, [old, new])
    assert op == "down" and sum(sizes.values()) == 7
    assert all(v >= 0 for v in sizes.values())
    # to zero: everything goes
    sizes, _ = proportional_sizes(deploy(0), [old, new])
    assert sizes == {"old": 0, "new": 0}


def test_calculate_status_and_available_condition() -> None:
    d = deploy(4, 1, 1, generation=3)
    old, new = rs("old", 2, 2), rs("new", 3, 1)
    st = calculate_status([old, new], new, d, now=0)
    assert st["observedGeneration"] == 3
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (5, 3, 3, 3)
    assert st["unavailableReplicas"] == 2
    avail = st["conditions"][0]
    assert (avail["type"], avail["status"], avail["reason"]) == ("Available", "True", "MinimumReplicasAvailable")
    st = calculate_status([rs("new", 4, 1)], None, d, now=0)
    assert st["conditions"][0]["reason"] == "MinimumReplicasUnavailable"
    assert st["conditions"][0]["message"] == "Deployment does not have minimum availability."


def test_rollout_status_progressing_reasons() -> None:
    d = deploy(2, status={"replicas": 2, "updatedReplicas": 0, "availableReplicas": 2, "readyReplicas": 2})
    new = rs("web-abc", 1, 0)
    st = rollout_status(d, [rs("old", 2, 2), new], new, now=100)
    prog = next(c for c in st["conditions"] if c["type"] == "Progressing")
    assert (prog["status"], prog["reason"]) == ("True", "ReplicaSetUpdated")
    assert prog["message"] == 'ReplicaSet "web-abc" is progressing.'
    done = rs("web-abc", 2, 2)
    d = deploy(2, status={**st})
    st = rollout_status(d, [rs("old", 0, 0), done], done, now=200)
    prog = next(c for c in st["conditions"] if c["type"] == "Progressing")
    assert prog["reason"] == "NewReplicaSetAvailable"
    assert prog["message"] == 'ReplicaSet "web-abc" has successfully progressed.'
    # no progress for longer than the deadline: timed out
    stuck_cond = {
        "type": "Progressing",
        "status": "True",
        "reason": "ReplicaSetUpdated",
        "message": "",
        "lastUpdateTime": "2024-01-01T00:00:00Z",
        "lastTransitionTime": "2024-01-01T00:00:00Z",
    }
    stuck = rs("web-abc", 2, 0)
    d = deploy(2, status={"replicas": 2, "updatedReplicas": 2, "conditions": [stuck_cond]}, progressDeadlineSeconds=60)
    t0 = 1704067200.0
    assert requeue_after_for_deadline(d, d["status"], now=t0 + 30) == 31.0
    st = rollout_status(d, [stuck], stuck, now=t0 + 61)
    prog = next(c for c in st["conditions"] if c["type"] == "Progressing")
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert prog["message"] == 'ReplicaSet "web-abc" has timed out progressing.'


def test_replica_failure_is_surfaced() -> None:
    failing = rs("web-abc", 2, 0)
    failing["status"]["conditions"] = [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": "quota",
            "lastTransitionTime": "2024-01-01T00:00:00Z",
        }
    ]
    st = rollout_status(deploy(2), [failing], failing, now=0)
    fail = next(c for c in st["conditions"] if c["type"] == "ReplicaFailure")
    assert (fail["reason"], fail["message"]) == ("FailedCreate", "quota")


def test_annotations_on_new_and_reused_replica_sets() -> None:
    d = deploy(3, 1, 0)
    d["metadata"]["annotations"] = {
        "kubernetes.io/change-cause": "v2",
        REVISION: "9",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    new: Obj = {"metadata": {}, "spec": {}}
    assert set_new_rs_annotations(d, new, 4, exists=False)
    ann = new["metadata"]["annotations"]
    assert ann == {"kubernetes.io/change-cause": "v2", REVISION: "4", DESIRED_REPLICAS: "3", MAX_REPLICAS: "4"}
    # a reused (rolled back) ReplicaSet gets the next revision and remembers the old one
    old = rs("old", 0, revision=1)
    assert set_new_rs_annotations(d, old, 3, exists=True)
    assert old["metadata"]["annotations"][REVISION] == "3"
    assert old["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert not set_new_rs_annotations(d, old, 3, exists=True)


def test_history_cleanup_only_empty_old_sets() -> None:
    d = deploy(1, revisionHistoryLimit=1)
    olds = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 1, 1, revision=3), rs("r4", 0, revision=4)]
    assert [x["metadata"]["name"] for x in rss_to_clean(d, olds)] == ["r1", "r2"]  # r3 still has a pod
    assert rss_to_clean(deploy(1), olds) == []
    lagging = rs("r0", 0, revision=0, status_replicas=1)
    assert rss_to_clean(d, [lagging, rs("r5", 0, revision=5)]) == []
