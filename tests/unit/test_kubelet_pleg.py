"""The PLEG's shared listings and evented mode, and the status manager's parallel writes, against
in-memory runtimes and a recording client (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubeha.kubelet.pleg import Pleg
from kubeha.kubelet.runtime import RUNNING, ContainerState, RuntimePod
from kubeha.kubelet.status_manager import StatusManager
from tests.support import waiting

Obj = dict[str, Any]


async def eventually(cond: Callable[[], bool]) -> None:
    async def check() -> bool:
        return cond()

    await waiting.eventually(check, within=5, every=0.01)


class ListedRuntime:
    """Lists ``pods``; each listing takes ``delay`` and is counted."""

    name = "fake"

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.lists = 0
        self.pods: list[RuntimePod] = []

    async def list_pods(self) -> list[RuntimePod]:
        self.lists += 1
        snapshot = list(self.pods)  # what the runtime holds when the listing begins
        await asyncio.sleep(self.delay)
        return snapshot


class EventedRuntime(ListedRuntime):
    name = "evented"

    def __init__(self) -> None:
        super().__init__(0.0)
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def watch_events(self) -> AsyncIterator[str]:
        while True:
            yield await self.queue.get()


class Multi:
    """The shape of MultiRuntime the PLEG relies on: ``runtimes`` and the merged event stream."""

    name = "evented"

    def __init__(self, runtimes: dict[str, Any]) -> None:
        self.runtimes = runtimes

    async def list_pods(self) -> list[RuntimePod]:
        return [p for rt in self.runtimes.values() for p in await rt.list_pods()]

    async def watch_events(self) -> AsyncIterator[str]:
        async for uid in self.runtimes["evented"].watch_events():
            yield uid


def running(uid: str, cid: str = "c1") -> RuntimePod:
    return RuntimePod(uid, uid, "ns", containers=[ContainerState(cid, "main", 0, RUNNING)])


async def test_concurrent_fresh_callers_share_listings() -> None:
    rt = ListedRuntime()
    woken: list[str] = []
    pleg = Pleg(rt, woken.append)  # type: ignore[arg-type]
    rt.pods = [running(f"p{i}") for i in range(30)]
    await asyncio.gather(*(pleg.fresh(quiet=f"p{i}") for i in range(30)))
    # one listing served all 30 callers (each needed one that began after its call)
    assert rt.lists == 1
    assert set(pleg.pods) == {f"p{i}" for i in range(30)}
    assert woken == []  # every changed pod's worker asked itself


async def test_fresh_waits_for_a_listing_that_began_after_the_call() -> None:
    rt = ListedRuntime(delay=0.1)
    pleg = Pleg(rt, lambda _uid: None)  # type: ignore[arg-type]
    first = asyncio.create_task(pleg.fresh())
    await asyncio.sleep(0.02)  # the first listing is under way and began before p1 existed
    rt.pods = [running("p1")]
    await pleg.fresh()
    assert "p1" in pleg.pods and rt.lists == 2
    await first


async def test_changes_seen_by_a_shared_listing_wake_the_other_pods() -> None:
    rt = ListedRuntime(delay=0.0)
    woken: list[str] = []
    pleg = Pleg(rt, woken.append)  # type: ignore[arg-type]
    rt.pods = [running("a"), running("b")]
    await pleg.fresh(quiet="a")
    assert woken == ["b"]


async def test_evented_pleg_wakes_on_events_and_polls_only_the_runtime_without_events() -> None:
    docker, host = EventedRuntime(), ListedRuntime(delay=0.0)
    woken: list[str] = []
    pleg = Pleg(Multi({"evented": docker, "host": host}), woken.append, period=0.05, slow_period=60)  # type: ignore[arg-type]
    task = asyncio.create_task(pleg.run())
    try:
        await asyncio.sleep(0.3)
        assert pleg.evented
        # Docker is listed once after the stream began (what changed before it), then not while
        # idle; the host runtime, without events, is relisted every period
        assert docker.lists == 1 and host.lists >= 3
        # a pod with no event since that listing syncs from the cache
        await pleg.fresh(quiet="u1")
        assert docker.lists == 1
        docker.queue.put_nowait("u1")
        await asyncio.sleep(0.05)
        assert woken == ["u1"]
        await pleg.fresh(quiet="u1")  # an event arrived: its worker gets a new listing
        assert docker.lists == 2
        await pleg.fresh(quiet="u1")
        assert docker.lists == 2
        docker.pods = [running("u2")]
        docker.queue.put_nowait("")  # a reconnect: relist everything
        await asyncio.sleep(0.05)
        assert docker.lists == 3 and "u2" in pleg.pods and "u2" in woken
        host.pods = [running("h1")]
        await asyncio.sleep(0.15)
        assert "h1" in woken  # a host pod's change is seen by the 1 s (here 0.05 s) relist
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_pleg_without_events_relists_every_period() -> None:
    rt = ListedRuntime(delay=0.0)
    woken: list[str] = []
    pleg = Pleg(rt, woken.append, period=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(pleg.run())
    try:
        rt.pods = [running("x")]
        await asyncio.sleep(0.2)
        assert not pleg.evented and rt.lists >= 2 and woken == ["x"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class SlowClient:
    """Records status patches; each takes ``delay``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.inflight = 0
        self.most = 0
        self.patches: list[tuple[str, Obj]] = []

    async def patch(self, _res: object, name: str, body: Obj, _ns: str, subresource: str = "") -> Obj:
        self.inflight += 1
        self.most = max(self.most, self.inflight)
        await asyncio.sleep(self.delay)
        self.inflight -= 1
        self.patches.append((name, body))
        return body


def api_pod(name: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}, "status": {}}


async def test_status_writes_run_in_parallel_and_keep_each_pods_order() -> None:
    client = SlowClient(0.1)
    sm = StatusManager(client, parallel=8)  # type: ignore[arg-type]
    task = asyncio.create_task(sm.run())
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(16):
            sm.set(f"k{i}", api_pod(f"p{i}"), {"phase": "Running"})
        await eventually(lambda: sm.writes >= 16)
        # 16 writes of 0.1 s, 8 at a time: about 0.2 s, not 1.6 s
        assert loop.time() - t0 < 0.8 and client.most == 8
        # a newer status set while the first write is in flight is written after it, never before
        sm.set("k0", api_pod("p0"), {"phase": "Running", "podIP": "1"})
        await asyncio.sleep(0.01)
        sm.set("k0", api_pod("p0"), {"phase": "Running", "podIP": "2"})
        await eventually(lambda: sm.writes >= 18)
        mine = [b["status"].get("podIP") for n, b in client.patches if n == "p0"]
        assert mine == [None, "1", "2"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class FlakyRuntime(ListedRuntime):
    """Fails its first listings, as a runtime that is restarting."""

    def __init__(self, failures: int) -> None:
        super().__init__(0.0)
        self.failures = failures

    async def list_pods(self) -> list[RuntimePod]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("engine restarting")
        return await super().list_pods()


async def test_a_failed_relist_is_tried_again_next_period() -> None:
    docker, host = EventedRuntime(), FlakyRuntime(failures=2)
    woken: list[str] = []
    pleg = Pleg(Multi({"evented": docker, "host": host}), woken.append, period=0.05, slow_period=60)  # type: ignore[arg-type]
    host.pods = [running("h1")]
    task = asyncio.create_task(pleg.run())
    try:
        await eventually(lambda: "h1" in woken)
        assert host.failures == 0 and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
