"""The scheduling queue with a fake clock and no timers."""

from __future__ import annotations

from kubeha.scheduler.framework import NODE_ADD, Action, ClusterEvent, Resource_
from kubeha.scheduler.nodeinfo import PodInfo
from kubeha.scheduler.plugins.basic import SchedulingGates
from kubeha.scheduler.queue import SchedulingQueue
from tests.unit.test_scheduler_helpers import make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


EVENTS = {
    "NodeResourcesFit": [ClusterEvent(Resource_.ASSIGNED_POD, Action.DELETE, "AssignedPodDelete"), NODE_ADD],
    "TaintToleration": [ClusterEvent(Resource_.NODE, Action.ADD | Action.UPDATE_NODE_TAINT)],
}


def queue(clock: Clock) -> SchedulingQueue:
    gates = SchedulingGates()
    return SchedulingQueue(
        clock=clock,
        timers=False,
        events_by_plugin=EVENTS,
        gated=lambda pi: not gates.pre_enqueue(pi).is_success(),
    )


def test_pop_orders_by_priority_then_fifo() -> None:
    clock = Clock()
    q = queue(clock)
    for name, prio in (("a", 1), ("b", 5), ("c", 1)):
        clock.now += 1
        q.add(PodInfo(make_pod(name, priority=prio)))
    order = []
    while (qpi := q.pop_nowait()) is not None:
        order.append(qpi.key)
    assert order == ["default/b", "default/a", "default/c"]
    assert q.in_flight == {"default/a", "default/b", "default/c"}


def test_unschedulable_pods_move_only_on_relevant_events_then_back_off() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(PodInfo(make_pod("p")))
    qpi = q.pop_nowait()
    assert qpi is not None and qpi.attempts == 1
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable_if_not_present(qpi)
    assert q.where("default/p") == "unschedulable"
    # a taint change does not help a pod that lacked cpu
    assert q.move_all_to_active_or_backoff(ClusterEvent(Resource_.NODE, Action.UPDATE_NODE_TAINT)) == 0
    assert q.where("default/p") == "unschedulable"
    # a deleted pod frees resources: moved, but still inside its 1 s backoff
    assert q.move_all_to_active_or_backoff(ClusterEvent(Resource_.ASSIGNED_POD, Action.DELETE)) == 1
    assert q.where("default/p") == "backoff"
    assert q.pop_nowait() is None
    clock.now += 0.5
    assert q.flush_backoff_completed() == 0
    clock.now += 0.6
    assert q.flush_backoff_completed() == 1
    assert q.where("default/p") == "active"


def test_backoff_doubles_and_is_capped() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(PodInfo(make_pod("p")))
    delays = []
    for _ in range(6):
        qpi = q.pop_nowait()
        assert qpi is not None
        q.add_unschedulable_if_not_present(qpi, backoff_only=True)
        start = clock.now
        while q.where("default/p") != "active":
            clock.now += 0.25
            q.flush_backoff_completed()
        delays.append(clock.now - start)
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_event_during_cycle_sends_failure_to_backoff() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(PodInfo(make_pod("p")))
    qpi = q.pop_nowait()
    assert qpi is not None
    q.move_all_to_active_or_backoff(NODE_ADD)  # a node appeared while the pod was being scheduled
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable_if_not_present(qpi)
    assert q.where("default/p") == "backoff"


def test_leftover_unschedulable_pods_flushed_after_five_minutes() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(PodInfo(make_pod("p")))
    qpi = q.pop_nowait()
    assert qpi is not None
    qpi.unschedulable_plugins = {"TaintToleration"}
    q.add_unschedulable_if_not_present(qpi)
    clock.now += 299
    assert q.flush_unschedulable_leftover() == 0
    clock.now += 2
    assert q.flush_unschedulable_leftover() == 1
    assert q.where("default/p") == "active"


def test_gated_pods_wait_until_gates_are_removed() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(PodInfo(make_pod("g", schedulingGates=[{"name": "wait"}])))
    assert q.pop_nowait() is None and q.where("default/g") == "unschedulable"
    assert q.move_all_to_active_or_backoff(NODE_ADD) == 0  # events do not ungate
    q.update(PodInfo(make_pod("g")))
    assert q.where("default/g") == "active"


def test_update_and_delete() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(PodInfo(make_pod("p")))
    q.update(PodInfo(make_pod("p", labels={"x": "y"})))
    qpi = q.pop_nowait()
    assert qpi is not None and qpi.pod_info.labels == {"x": "y"}
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable_if_not_present(qpi)
    q.update(PodInfo(make_pod("p")), spec_changed=False)  # a status-only change: stays parked
    assert q.where("default/p") == "unschedulable"
    q.update(PodInfo(make_pod("p", cpu="1")))  # a spec change may make it fit
    assert q.where("default/p") == "backoff"
    q.delete("default/p")
    assert q.where("default/p") == "" and len(q) == 0
