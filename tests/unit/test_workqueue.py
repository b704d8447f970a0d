"""Work queue semantics (client-go): dedupe, one worker per key, delayed and rate-limited adds,
shutdown; plus the guarded-task helpers. Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import asyncio
import logging

import pytest

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
