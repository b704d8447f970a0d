"""The watch cache against a real etcd."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from kubeha.api.errors import StatusError
from kubeha.storage.cacher import Cacher, CacheWatcher, WatcherTooSlow
from kubeha.storage.etcd import EtcdKV
from kubeha.storage.interface import Compacted, Put
from kubeha.storage.store import Obj, ObjEvent, Store
from tests.support.etcd import EtcdServer, etcd_server  # noqa: F401


@pytest.fixture
async def store(etcd_server: EtcdServer) -> AsyncIterator[Store]:  # noqa: F811
    kv = EtcdKV([etcd_server.endpoint])
    await kv.connect()
    yield Store(kv)
    await kv.close()


@pytest.fixture
def prefix() -> str:
    return f"/registry/c{uuid.uuid4().hex[:8]}/"


@pytest.fixture
async def cacher(store: Store, prefix: str) -> AsyncIterator[Cacher]:
    c = Cacher(store, prefix)
    await c.start()
    yield c
    await c.stop()


def pod(name: str, ns: str = "default", phase: str = "Pending", **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "status": {"phase": phase},
    }


async def take(w: CacheWatcher, n: int, wait: float = 5.0) -> list[ObjEvent]:
    out: list[ObjEvent] = []

    async def run() -> None:
        async for ev in w:
            out.append(ev)
            if len(out) >= n:
                return

    await asyncio.wait_for(run(), wait)
    return out


async def sync(cacher: Cacher, store: Store) -> None:
    """Wait until the cache has applied every write made so far.

    Waits on ``applied_revision``: etcd 3.4 may report progress (which ``wait_fresh`` trusts)
    before it has delivered the events, so the cache's contents are checked by what it applied.
    The tests' own writes are the newest revisions, so the cache does reach them.
    """
    target = await store.kv.current_revision()
    await cacher.wait_fresh(target)
    async with asyncio.timeout(5):
        while cacher.applied_revision < target:  # noqa: ASYNC110 - the cache signals no event for it
            await asyncio.sleep(0.01)


async def test_list_and_get(store: Store, prefix: str) -> None:
    await store.create(prefix + "default/a", pod("a"))
    await store.create(prefix + "kube-system/b", pod("b", "kube-system"))
    c = Cacher(store, prefix)
    await c.start()
    try:
        assert c.ready.is_set()
        items, rev = await c.list()
        assert [o["metadata"]["name"] for o in items] == ["a", "b"] and rev == c.revision
        created = await store.create(prefix + "default/c", pod("c", phase="Running"))
        await sync(c, store)
        items, rev = await c.list(min_revision=int(created["metadata"]["resourceVersion"]))
        assert [o["metadata"]["name"] for o in items] == ["a", "c", "b"]  # sorted by key
        assert rev >= int(created["metadata"]["resourceVersion"])
        got = c.get(prefix + "default/c")
        assert got is not None and got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert c.get(prefix + "default/zzz") is None

        ns_items, _ = await c.list(namespace_prefix=prefix + "default/")
        assert [o["metadata"]["name"] for o in ns_items] == ["a", "c"]
        ns_items, _ = await c.list(namespace_prefix="kube-system")
        assert [o["metadata"]["name"] for o in ns_items] == ["b"]
        running, _ = await c.list(predicate=lambda o: o["status"]["phase"] == "Running")
        assert [o["metadata"]["name"] for o in running] == ["c"]

        await store.delete(prefix + "default/a")
        await sync(c, store)
        assert c.get(prefix + "default/a") is None and len(c) == 2
    finally:
        await c.stop()


async def test_wait_fresh_uses_progress(cacher: Cacher, store: Store, prefix: str) -> None:
    # a write under another prefix: no event for this cache, a progress notification instead
    await store.kv.txn([], [Put(prefix + "x", b"{}"), Put("/registry/other/" + prefix, b"{}")])
    await store.kv.txn([], [Put("/registry/other/" + prefix, b"{}")])
    rev = await store.kv.current_revision()
    await asyncio.wait_for(cacher.wait_fresh(rev), 2)
    assert cacher.revision >= rev
    with pytest.raises(StatusError) as info:
        await cacher.wait_fresh(rev + 1000, timeout=0.3)
    assert info.value.code == 504 and "Too large resource version" in info.value.message


async def test_watch_from_zero_then_live(cacher: Cacher, store: Store, prefix: str) -> None:
    await store.create(prefix + "default/a", pod("a"))
    await store.create(prefix + "default/b", pod("b"))
    await sync(cacher, store)
    w = cacher.watch(0)
    evs = await take(w, 2)
    assert [(e.type, e.obj["metadata"]["name"]) for e in evs] == [("ADDED", "a"), ("ADDED", "b")]
    await store.guaranteed_update(prefix + "default/a", _phase("Running"))
    (ev,) = await take(w, 1)
    assert ev.type == "MODIFIED" and ev.obj["status"]["phase"] == "Running"
    assert ev.prev is not None and ev.prev["status"]["phase"] == "Pending"
    assert w.bookmark_revision == cacher.revision
    w.close()
    assert await w.next() is None
    assert cacher.watcher_count == 0


async def test_watch_from_revision_replays_buffer(cacher: Cacher, store: Store, prefix: str) -> None:
    a = await store.create(prefix + "default/a", pod("a"))
    rv = int(a["metadata"]["resourceVersion"])
    await store.guaranteed_update(prefix + "default/a", _phase("Running"))
    await store.delete(prefix + "default/a")
    await sync(cacher, store)
    w = cacher.watch(rv)
    evs = await take(w, 2)
    assert [e.type for e in evs] == ["MODIFIED", "DELETED"]
    assert evs[1].obj["metadata"]["resourceVersion"] == str(evs[1].revision)
    w.close()
    # watching from before the cache's start is too old: 410 at the REST layer
    with pytest.raises(Compacted):
        cacher.watch(1)


async def test_predicate_transitions(cacher: Cacher, store: Store, prefix: str) -> None:
    def running(o: Obj) -> bool:
        return bool(o["status"]["phase"] == "Running")

    w = cacher.watch(cacher.revision, predicate=running)
    key = prefix + "default/a"
    await store.create(key, pod("a"))  # not matching: nothing
    await store.guaranteed_update(key, _phase("Running"))  # enters: ADDED
    await store.guaranteed_update(key, _label("x"))  # stays: MODIFIED
    await store.guaranteed_update(key, _phase("Succeeded"))  # leaves: DELETED with the new state
    await store.guaranteed_update(key, _phase("Running"))  # enters again
    await store.delete(key)  # deleted while matching
    evs = await take(w, 5)
    assert [e.type for e in evs] == ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
    assert evs[2].obj["status"]["phase"] == "Succeeded"
    w.close()


async def test_key_prefix_watch(cacher: Cacher, store: Store, prefix: str) -> None:
    w = cacher.watch(cacher.revision, key_prefix="ns1")
    await store.create(prefix + "ns2/a", pod("a", "ns2"))
    await store.create(prefix + "ns1/b", pod("b", "ns1"))
    (ev,) = await take(w, 1)
    assert ev.obj["metadata"]["name"] == "b"
    w.close()


async def test_many_watchers_get_every_event(cacher: Cacher, store: Store, prefix: str) -> None:
    watchers = [cacher.watch(cacher.revision) for _ in range(100)]
    for i in range(20):
        await store.create(f"{prefix}default/p{i}", pod(f"p{i}"))
    results = await asyncio.gather(*(take(w, 20) for w in watchers))
    for evs in results:
        assert [e.obj["metadata"]["name"] for e in evs] == [f"p{i}" for i in range(20)]
        assert all(e.type == "ADDED" for e in evs)
    for w in watchers:
        w.close()


async def test_slow_watcher_is_terminated(store: Store, prefix: str) -> None:
    c = Cacher(store, prefix, watcher_queue=5)
    await c.start()
    try:
        slow = c.watch(c.revision)
        fast = c.watch(c.revision, queue_size=100)  # never behind, however etcd batches events
        fast_task = asyncio.ensure_future(take(fast, 12))
        for i in range(12):
            await store.create(f"{prefix}default/p{i}", pod(f"p{i}"))
        assert len(await fast_task) == 12
        with pytest.raises(WatcherTooSlow):
            await take(slow, 12)
        assert c.watcher_count == 1
    finally:
        await c.stop()


async def test_stop_ends_watchers(store: Store, prefix: str) -> None:
    c = Cacher(store, prefix)
    await c.start()
    w = c.watch(0)
    waiting = asyncio.ensure_future(take(w, 1))
    await asyncio.sleep(0.05)
    await c.stop()
    await asyncio.wait_for(waiting, 2)  # the iterator ended cleanly
    assert waiting.result() == []


async def test_recovery_after_etcd_restart() -> None:
    with EtcdServer() as srv:
        kv = EtcdKV([srv.endpoint], timeout=2.0)
        await kv.connect()
        store = Store(kv)
        c = Cacher(store, "/registry/pods/")
        await c.start()
        try:
            w = c.watch(c.revision)
            await store.create("/registry/pods/default/a", pod("a"))
            assert [e.type for e in await take(w, 1)] == ["ADDED"]
            srv.kill()
            await asyncio.sleep(0.3)  # the watch notices
            srv.start()
            for _ in range(50):
                if await kv.healthy():
                    break
                await asyncio.sleep(0.1)
            await store.create("/registry/pods/default/b", pod("b"))
            # the cache resumed from its revision: same watcher, no gap, no relist
            evs = await take(w, 1, wait=10)
            assert evs[0].obj["metadata"]["name"] == "b"
            assert c.relists == 0
            await asyncio.wait_for(sync(c, store), 5)
            assert c.get("/registry/pods/default/b") is not None
        finally:
            await c.stop()
            await kv.close()


def _phase(phase: str):  # type: ignore[no-untyped-def]
    async def fn(o: Obj) -> Obj:
        o["status"]["phase"] = phase
        return o

    return fn


def _label(v: str):  # type: ignore[no-untyped-def]
    async def fn(o: Obj) -> Obj:
        o["metadata"]["labels"]["x"] = v
        return o

    return fn
