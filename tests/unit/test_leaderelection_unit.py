"""Leader election against an in-memory Lease store with compare-and-swap, a fake monotonic clock
and a fake sleep: expiry by local observation, optimistic concurrency, release, stepping down."""

from __future__ import annotations

import argparse
import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.machinery.leaderelection import (
    LeaderElectionConfig,
    LeaderElector,
    add_leader_election_flags,
    format_microtime,
)
from kubeha.machinery.process import parse_duration

Obj = dict[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay
        await asyncio.sleep(0)


class FakeLeases:
    """One namespace's leases with resourceVersion checks, like the api-server."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.rv = 10
        self.fail: StatusError | None = None
        self.writes = 0

    def _check(self) -> None:
        if self.fail is not None:
            raise self.fail

    async def get(self, res: Any, name: str, namespace: str | None = None) -> Obj:
        self._check()
        if name not in self.objects:
            raise StatusError(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
        return copy.deepcopy(self.objects[name])

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        self._check()
        name = obj["metadata"]["name"]
        if name in self.objects:
            raise StatusError(409, "AlreadyExists", "exists")
        return self._store(obj)

    async def update(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        self._check()
        name = obj["metadata"]["name"]
        if name not in self.objects:
            raise StatusError(404, "NotFound", "gone")
        if obj["metadata"].get("resourceVersion") != self.objects[name]["metadata"]["resourceVersion"]:
            raise StatusError(409, "Conflict", "the object has been modified")
        return self._store(obj)

    def _store(self, obj: Obj) -> Obj:
        self.rv += 1
        self.writes += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)


async def _idle() -> None:
    await asyncio.Event().wait()


def elector(store: FakeLeases, clock: FakeClock, identity: str, **kw: Any) -> LeaderElector:
    kw.setdefault("on_started_leading", _idle)
    return LeaderElector(
        store,
        "kube-system",
        "kube-controller-manager",
        identity,
        lease_duration=4,
        renew_deadline=3,
        retry_period=0.5,
        clock=clock,
        wall_clock=lambda: datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        sleep=clock.sleep,
        **kw,
    )


def test_microtime_format() -> None:
    assert format_microtime(datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)) == "2024-01-02T03:04:05.123456Z"
    assert format_microtime(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000000Z"


async def test_first_candidate_creates_the_lease() -> None:
    store, clock = FakeLeases(), FakeClock()
    seen: list[str] = []
    a = elector(store, clock, "a", on_new_leader=seen.append)
    assert await a.try_acquire_or_renew()
    spec = store.objects["kube-controller-manager"]["spec"]
    assert spec == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 4,
        "acquireTime": "2024-01-02T03:04:05.123456Z",
        "renewTime": "2024-01-02T03:04:05.123456Z",
        "leaseTransitions": 0,
    }
    assert a.get_leader() == "a" and seen == ["a"]


async def test_standby_takes_over_after_lease_duration_without_change() -> None:
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert b.get_leader() == "a"
    clock.now += 3.9
    assert not await b.try_acquire_or_renew()  # unchanged for 3.9 s < 4 s
    clock.now += 0.2
    assert await b.try_acquire_or_renew()
    spec = store.objects["kube-controller-manager"]["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1


async def test_renewal_with_new_renew_time_restarts_the_standby_timer() -> None:
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    wall = [datetime(2024, 1, 1, tzinfo=UTC)]
    a._wall = lambda: wall[0]
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 3
    wall[0] = datetime(2024, 1, 1, 0, 0, 3, tzinfo=UTC)
    assert await a.try_acquire_or_renew()
    acquired = store.objects["kube-controller-manager"]["spec"]["acquireTime"]
    assert acquired == "2024-01-01T00:00:00.000000Z"  # a renewal keeps acquireTime
    clock.now += 0.5
    assert not await b.try_acquire_or_renew()  # sees the change at t=3.5: expires at 7.5
    clock.now += 3.9
    assert not await b.try_acquire_or_renew()
    clock.now += 0.2
    assert await b.try_acquire_or_renew()


async def test_remote_timestamps_are_never_compared_with_the_local_clock() -> None:
    store, clock = FakeLeases(), FakeClock()
    ancient = datetime(2000, 1, 1, tzinfo=UTC)
    old = elector(store, clock, "old")
    old._wall = lambda: ancient
    assert await old.try_acquire_or_renew()
    b = elector(store, clock, "b")
    # renewTime is 24 years ago by b's wall clock, but b only just observed it: still held.
    assert not await b.try_acquire_or_renew()
    assert b.expires_in() == pytest.approx(4)


async def test_conflicting_writers_only_one_wins() -> None:
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    clock.now += 10
    # Both think the lease expired; they read the same version, then race to update.
    lease = await store.get(None, "kube-controller-manager")
    a._observe(lease)
    b._observe(lease)
    clock.now += 10
    assert await b._update(lease)
    assert not await a._update(lease)  # 409: stale resourceVersion
    assert store.objects["kube-controller-manager"]["spec"]["holderIdentity"] == "b"


async def test_leader_fast_path_falls_back_to_a_read_on_conflict() -> None:
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()
    a._leading = True
    # Someone else touched the lease (e.g. a label): a's cached copy is stale, the renewal re-reads.
    store.objects["kube-controller-manager"]["metadata"]["labels"] = {"x": "y"}
    store.rv += 1
    store.objects["kube-controller-manager"]["metadata"]["resourceVersion"] = str(store.rv)
    assert await a.try_acquire_or_renew()
    assert store.objects["kube-controller-manager"]["metadata"]["labels"] == {"x": "y"}


async def test_release_lets_a_standby_take_over_at_once() -> None:
    store, clock = FakeLeases(), FakeClock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    spec = store.objects["kube-controller-manager"]["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert await b.try_acquire_or_renew()  # no waiting: nobody holds it
    assert store.objects["kube-controller-manager"]["spec"]["leaseTransitions"] == 1
    assert not await a.release()  # not ours any more


async def test_run_leads_then_steps_down_within_the_renew_deadline() -> None:
    store, clock = FakeLeases(), FakeClock()
    started = asyncio.Event()
    work_cancelled = asyncio.Event()
    stopped: list[float] = []

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            work_cancelled.set()
            raise

    a = elector(store, clock, "a", on_started_leading=work, on_stopped_leading=lambda: stopped.append(clock.now))
    run = asyncio.ensure_future(a.run())
    await asyncio.wait_for(started.wait(), 1)
    assert a.is_leader()
    for _ in range(20):  # a few renewals go through
        await asyncio.sleep(0)
    last_ok_write = clock.now
    store.fail = StatusError(500, "InternalError", "etcd unavailable")
    await asyncio.wait_for(run, 5)
    assert work_cancelled.is_set() and not a.is_leader()
    assert len(stopped) == 1
    # Stepped down no later than renew_deadline after the last successful renewal started.
    assert stopped[0] - last_ok_write <= 3.0 + 1e-9
    # Lost (not cancelled): no release attempt could succeed anyway, but the holder is unchanged.
    assert store.objects["kube-controller-manager"]["spec"]["holderIdentity"] == "a"


async def test_run_steps_down_at_once_when_another_holder_is_seen() -> None:
    store, clock = FakeLeases(), FakeClock()
    stopped: list[bool] = []
    a = elector(store, clock, "a", on_stopped_leading=lambda: stopped.append(True))
    run = asyncio.ensure_future(a.run())
    for _ in range(5):
        await asyncio.sleep(0)
    assert a.is_leader()
    lease = store.objects["kube-controller-manager"]
    lease["spec"]["holderIdentity"] = "intruder"
    store.rv += 1
    lease["metadata"]["resourceVersion"] = str(store.rv)
    await asyncio.wait_for(run, 5)
    assert stopped == [True]


async def test_cancel_releases_when_asked_and_keeps_lease_when_not() -> None:
    for release in (True, False):
        store, clock = FakeLeases(), FakeClock()
        stopped: list[bool] = [True]
        a = elector(store, clock, "a", release_on_cancel=release, on_stopped_leading=stopped.clear)
        run = asyncio.ensure_future(a.run())
        for _ in range(5):
            await asyncio.sleep(0)
        assert a.is_leader()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        holder = store.objects["kube-controller-manager"]["spec"]["holderIdentity"]
        assert holder == ("" if release else "a")
        assert stopped == []  # on_stopped_leading ran (it clears the list)


async def test_run_ends_and_releases_when_the_leader_work_returns() -> None:
    store, clock = FakeLeases(), FakeClock()

    async def short_work() -> None:
        return None

    a = elector(store, clock, "a", on_started_leading=short_work)
    await asyncio.wait_for(a.run(), 5)
    assert store.objects["kube-controller-manager"]["spec"]["holderIdentity"] == ""


async def test_standby_run_acquires_right_after_expiry() -> None:
    store, clock = FakeLeases(), FakeClock()
    a = elector(store, clock, "a")
    assert await a.try_acquire_or_renew()  # a holds it and then dies (never renews)
    won: list[float] = []
    t0 = clock.now

    async def work() -> None:
        won.append(clock.now)
        await asyncio.Event().wait()

    b = elector(store, clock, "b", on_started_leading=work)
    run = asyncio.ensure_future(b.run())
    for _ in range(100):
        await asyncio.sleep(0)
        if won:
            break
    assert won and 4.0 <= won[0] - t0 <= 4.0 + 0.01  # sleeps until expiry, not a whole period more
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


def test_rejects_unsafe_timings() -> None:
    store = FakeLeases()
    with pytest.raises(ValueError):
        LeaderElector(store, "ns", "n", "id", lease_duration=3, renew_deadline=3, on_started_leading=_idle)
    with pytest.raises(ValueError):
        LeaderElector(store, "ns", "n", "id", renew_deadline=1, retry_period=1, on_started_leading=_idle)
    with pytest.raises(ValueError):
        LeaderElector(store, "ns", "n", "", on_started_leading=_idle)


def test_flags_and_config() -> None:
    parser = argparse.ArgumentParser()
    add_leader_election_flags(parser, "kube-scheduler")
    args = parser.parse_args([])
    cfg = LeaderElectionConfig.from_args(args)
    assert (cfg.enabled, cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (True, 4.0, 3.0, 0.5)
    assert (cfg.namespace, cfg.name) == ("kube-system", "kube-scheduler")
    assert "_" in cfg.identity
    args = parser.parse_args(
        [
            "--leader-elect=false",
            "--leader-elect-lease-duration=15s",
            "--leader-elect-renew-deadline",
            "10s",
            "--leader-elect-retry-period=500ms",
            "--leader-elect-resource-namespace=other",
            "--leader-elect-resource-name=x",
        ]
    )
    cfg = LeaderElectionConfig.from_args(args, identity="me")
    assert (cfg.enabled, cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (False, 15.0, 10.0, 0.5)
    assert (cfg.namespace, cfg.name, cfg.identity) == ("other", "x", "me")
    assert parser.parse_args(["--leader-elect"]).leader_elect is True
    el = cfg.elector(FakeLeases(), _idle)
    assert (el.namespace, el.name, el.lease_duration) == ("other", "x", 15.0)


def test_parse_duration() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("2.5") == 2.5
    assert parse_duration("250ms") == pytest.approx(0.25)
    for bad in ("", "5x", "s", "1s2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)
