"""Work queue semantics (client-go): dedupe, one worker per key, delayed and rate-limited adds,
shutdown; plus the guarded-task helpers and the controller runner. Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.machinery.controller import Controller, Requeue, enqueue_on, enqueue_owner, owner_key
from kubeha.machinery.ratelimit import ItemExponentialFailureRateLimiter
from kubeha.machinery.tasks import Backoff, TaskSet, guarded
from kubeha.machinery.workqueue import QueueMetrics, RateLimitingQueue, ShutDown


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_queue(clock: FakeClock | None = None) -> RateLimitingQueue:
    return RateLimitingQueue(
        ItemExponentialFailureRateLimiter(base=1.0, cap=8.0), name="test", clock=clock or FakeClock()
    )


async def test_add_dedupes_waiting_keys_and_keeps_order() -> None:
    q = make_queue()
    for key in ["a", "b", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "c"]
    assert q.metrics.adds == 3


async def test_key_in_processing_is_not_handed_out_again_until_done() -> None:
    q = make_queue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # while processing: marked dirty, not queued
    q.add("a")
    assert len(q) == 0
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.done("a")  # now re-queued exactly once
    assert len(q) == 1
    assert await getter == "a"
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_does_not_requeue() -> None:
    q = make_queue()
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0
    assert q.metrics.processed == 1


async def test_blocked_getters_are_woken_one_per_key() -> None:
    q = make_queue()
    getters = [asyncio.ensure_future(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add("x")
    q.add("y")
    await asyncio.sleep(0)
    done = [g for g in getters if g.done()]
    assert sorted(g.result() for g in done) == ["x", "y"]
    q.shutdown()
    pending = [g for g in getters if g not in done]
    with pytest.raises(ShutDown):
        await pending[0]


async def test_cancelled_getter_does_not_strand_a_key() -> None:
    q = make_queue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add("k")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs: `second` must get the key
    await asyncio.sleep(0)
    assert await asyncio.wait_for(second, 1) == "k"


async def test_shutdown_hands_out_queued_keys_then_raises_and_ignores_adds() -> None:
    q = make_queue()
    q.add("a")
    q.shutdown()
    q.add("b")
    assert len(q) == 1
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()


async def test_shutdown_with_drain_waits_for_processing_keys() -> None:
    q = make_queue()
    q.add("a")
    key = await q.get()
    drained = asyncio.ensure_future(q.shutdown_with_drain())
    await asyncio.sleep(0)
    assert not drained.done()
    q.done(key)
    await asyncio.wait_for(drained, 1)
    assert q.shutting_down


async def test_add_after_uses_heap_and_keeps_earliest_time() -> None:
    clock = FakeClock()
    q = RateLimitingQueue(name="t", clock=clock)
    q.add_after("late", 10)
    q.add_after("soon", 2)
    q.add_after("late", 5)  # earlier: moves it up
    q.add_after("soon", 7)  # later than already waiting: ignored
    q.add_after("now", 0)  # no delay: queued at once
    assert len(q) == 1 and q.waiting() == 2
    assert q.next_ready_in() == pytest.approx(2)
    clock.now += 2
    assert q.process_delayed() == 1
    clock.now += 3
    assert q.process_delayed() == 1
    assert [await q.get() for _ in range(3)] == ["now", "soon", "late"]
    assert q.waiting() == 0 and q.next_ready_in() is None
    q.shutdown()


async def test_one_timer_task_moves_delayed_keys_with_the_real_loop() -> None:
    q = RateLimitingQueue(name="timer")
    for i in range(50):
        q.add_after(f"k{i}", 0.001)
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "workqueue-timer-timer"]
    assert len(tasks) == 1
    got = {await asyncio.wait_for(q.get(), 2) for _ in range(50)}
    assert len(got) == 50
    q.shutdown()
    await asyncio.sleep(0)
    assert tasks[0].done()


async def test_add_rate_limited_backs_off_per_key_and_forget_resets() -> None:
    clock = FakeClock()
    q = make_queue(clock)
    q.add_rate_limited("k")
    assert q.next_ready_in() == pytest.approx(1.0)
    clock.now += 1
    q.process_delayed()
    assert await q.get() == "k"
    q.done("k")
    q.add_rate_limited("k")
    assert q.next_ready_in() == pytest.approx(2.0)
    assert q.num_requeues("k") == 2
    assert q.metrics.retries == 2
    q.forget("k")
    assert q.num_requeues("k") == 0
    q.shutdown()


async def test_metrics_hook_sees_depth() -> None:
    depths: list[int] = []
    metrics = QueueMetrics(on_change=lambda m, depth: depths.append(depth))
    q = RateLimitingQueue(name="m", metrics=metrics)
    q.add("a")
    q.add("b")
    await q.get()
    assert depths == [1, 2, 1]


# -- guarded tasks ----------------------------------------------------------------------------


async def test_guarded_restarts_crashes_with_capped_backoff(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    delays: list[float] = []

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 5:
            raise RuntimeError(f"boom {runs}")

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    with caplog.at_level(logging.INFO, logger="kubeha.machinery.tasks"):
        await guarded("flaky", flaky, backoff=Backoff(initial=1, cap=3, factor=2), sleep=fake_sleep)
    assert runs == 5
    assert delays == [1, 2, 3, 3]
    assert "task flaky crashed" in caplog.text and "boom 4" in caplog.text


async def test_guarded_resets_backoff_after_a_long_healthy_run() -> None:
    clock = FakeClock()
    runs = 0
    delays: list[float] = []

    async def crash() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            clock.now += 100  # this run was healthy for a long time before crashing
        if runs < 4:
            raise RuntimeError("x")

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    await guarded("c", crash, backoff=Backoff(initial=1, cap=30, reset_after=60), sleep=fake_sleep, clock=clock)
    assert delays == [1, 2, 1]


async def test_guarded_restart_on_return_and_cancel_propagates() -> None:
    runs = 0

    async def loop_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            await asyncio.Event().wait()  # blocks until cancelled

    async def no_sleep(delay: float) -> None:
        pass

    task = asyncio.ensure_future(guarded("l", loop_once, restart_on_return=True, sleep=no_sleep))
    for _ in range(10):
        await asyncio.sleep(0)
    assert runs == 3 and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_taskset_logs_failures_and_stops_all(caplog: pytest.LogCaptureFixture) -> None:
    ts = TaskSet("comp")
    blocker = asyncio.Event()

    async def fail() -> None:
        raise ValueError("lost?")

    ts.spawn("fails", fail())
    long = ts.spawn("blocks", blocker.wait())
    with caplog.at_level(logging.ERROR, logger="kubeha.machinery.tasks"):
        for _ in range(3):
            await asyncio.sleep(0)
    assert "task fails failed" in caplog.text
    assert len(ts) == 1
    await ts.stop(timeout=1)
    assert long.cancelled() and len(ts) == 0
    with pytest.raises(RuntimeError):
        coro = blocker.wait()
        ts.spawn("late", coro)


# -- controller runner ------------------------------------------------------------------------


class FakeInformer:
    def __init__(self) -> None:
        self.handlers: list[tuple[Any, Any, Any]] = []
        self.synced = False

    def add_event_handler(self, on_add: Any = None, on_update: Any = None, on_delete: Any = None) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    async def wait_for_sync(self) -> bool:
        self.synced = True
        return True


class Tombstone:
    def __init__(self, key: str, obj: dict[str, Any]) -> None:
        self.key, self.obj = key, obj


def pod(name: str, ns: str = "default", owner: str | None = None, kind: str = "ReplicaSet") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "2", "controller": True},
        ]
    return {"metadata": meta}


async def test_enqueue_on_adds_keys_for_all_event_kinds() -> None:
    inf, q = FakeInformer(), make_queue()
    enqueue_on(inf, q)
    on_add, on_update, on_delete = inf.handlers[0]
    on_add(pod("a"))
    on_update(pod("a"), pod("b", "kube-system"))
    on_delete(Tombstone("ns/gone", pod("gone", "ns")))
    on_add({"metadata": {"name": "node-1"}})
    assert [await q.get() for _ in range(4)] == ["default/a", "kube-system/b", "ns/gone", "node-1"]


async def test_enqueue_owner_maps_to_controller_reference() -> None:
    inf, q = FakeInformer(), make_queue()
    enqueue_owner(inf, q, "ReplicaSet", "apps")
    on_add, on_update, on_delete = inf.handlers[0]
    on_add(pod("p1", owner="rs1"))
    on_add(pod("p2"))  # no owner: ignored
    on_add(pod("p3", owner="ss", kind="StatefulSet"))  # other kind: ignored
    on_update(pod("p1", owner="rs1"), pod("p1", owner="rs2"))  # adopted elsewhere: both owners
    on_delete(Tombstone("default/p4", pod("p4", owner="rs3")))
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["default/rs1", "default/rs2", "default/rs3"]
    assert owner_key(pod("x", owner="rs"), "ReplicaSet", "") is None  # wrong group


async def test_controller_outcomes_drive_the_queue() -> None:
    clock = FakeClock()
    q = make_queue(clock)
    outcomes: dict[str, Any] = {
        "ok": None,
        "boom": RuntimeError("bug"),
        "conflict": StatusError(409, "Conflict", "modified"),
        "later": Requeue(after=30),
        "again": Requeue(),
    }
    seen: list[str] = []

    async def reconcile(key: str) -> Requeue | None:
        seen.append(key)
        out = outcomes[key]
        if isinstance(out, Exception) and not isinstance(out, Requeue):
            raise out
        return out  # type: ignore[no-any-return]

    c = Controller("test", reconcile, q)
    for key in outcomes:
        q.add_rate_limited(key)  # give each some history: ok/later must forget it
    clock.now += 1
    q.process_delayed()
    for _ in outcomes:
        key = await q.get()
        await c.process(key)
        q.done(key)
    assert seen == list(outcomes)
    assert q.num_requeues("ok") == 0
    assert q.num_requeues("later") == 0
    assert q.num_requeues("boom") == 2 and q.num_requeues("conflict") == 2 and q.num_requeues("again") == 2
    assert q.waiting() == 4
    clock.now += 2  # backoff 2 s for the failures; "later" waits 30 s
    assert q.process_delayed() == 3
    q.shutdown()


async def test_controller_drops_after_max_retries() -> None:
    q = make_queue()

    async def reconcile(key: str) -> None:
        raise RuntimeError("always")

    c = Controller("drop", reconcile, q, max_retries=2)
    for _ in range(3):
        await c.process("k")
    assert q.num_requeues("k") == 0  # two retries, then forgotten
    q.shutdown()


async def test_controller_run_never_reconciles_a_key_twice_at_once() -> None:
    q = RateLimitingQueue(name="run")
    inf = FakeInformer()
    active: set[str] = set()
    overlaps = 0
    calls = 0
    gate = asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal overlaps, calls
        calls += 1
        if key in active:
            overlaps += 1
        active.add(key)
        await gate.wait()
        active.discard(key)

    c = Controller("run", reconcile, q, workers=4)
    runner = asyncio.ensure_future(c.run(wait_for=[inf]))
    q.add("a")
    q.add("b")
    for _ in range(5):
        await asyncio.sleep(0)
    q.add("a")  # while "a" is being reconciled
    q.add("a")
    for _ in range(5):
        await asyncio.sleep(0)
    assert inf.synced and active == {"a", "b"} and calls == 2
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert calls == 3 and overlaps == 0  # "a" once more, after the first finished
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert q.shutting_down
