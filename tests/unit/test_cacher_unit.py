"""The watch cache over an in-memory KV: relist on compaction, resume, ring buffer, filtering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from kubeha.storage import cacher as cacher_mod
from kubeha.storage.cacher import Cacher, CacheWatcher, WatcherTooSlow, filter_event
from kubeha.storage.interface import (
    Compacted,
    Compare,
    Delete,
    Event,
    KeyValue,
    Put,
    Range,
    TxnResult,
    Unavailable,
)
from kubeha.storage.store import Obj, ObjEvent, Store


class FakeKV:
    """Enough of etcd's semantics for the cacher: revisions, history, compaction, watches."""

    def __init__(self) -> None:
        self.rev = 1
        self.data: dict[str, KeyValue] = {}
        self.history: list[Event] = []
        self.compacted = 0
        self.watches: list[tuple[str, asyncio.Queue[list[Event] | BaseException]]] = []

    async def get(self, key: str) -> KeyValue | None:
        return self.data.get(key)

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0, start: str | None = None) -> Range:
        if revision and revision < self.compacted:
            raise Compacted(revision, self.compacted)
        state = self._state_at(revision or self.rev)
        keys = sorted(k for k in state if k.startswith(prefix) and (start is None or k >= start))
        page = keys[:limit] if limit else keys
        return Range([state[k] for k in page], revision or self.rev, len(page) < len(keys), len(keys))

    def _state_at(self, revision: int) -> dict[str, KeyValue]:
        state: dict[str, KeyValue] = {}
        for ev in self.history:
            if ev.mod_revision > revision:
                break
            if ev.type == "PUT":
                state[ev.key] = KeyValue(ev.key, ev.value, ev.create_revision, ev.mod_revision)
            else:
                state.pop(ev.key, None)
        return state

    async def txn(self, compares: list[Compare], ops: list[Put | Delete]) -> TxnResult:
        for c in compares:
            cur = self.data.get(c.key)
            if (cur.mod_revision if cur else 0) != c.mod_revision:
                return TxnResult(False, self.rev, {k.key: self.data.get(k.key) for k in compares})
        self.rev += 1
        batch: list[Event] = []
        for op in ops:
            prev = self.data.get(op.key)
            if isinstance(op, Put):
                create = prev.create_revision if prev else self.rev
                self.data[op.key] = KeyValue(op.key, op.value, create, self.rev)
                ev = Event(
                    "PUT",
                    op.key,
                    op.value,
                    prev.value if prev else None,
                    create,
                    self.rev,
                    prev.mod_revision if prev else 0,
                )
            elif prev is not None:
                del self.data[op.key]
                ev = Event("DELETE", op.key, b"", prev.value, 0, self.rev, prev.mod_revision)
            else:
                continue
            batch.append(ev)
        self.history.extend(batch)
        for prefix, q in self.watches:
            mine = [e for e in batch if e.key.startswith(prefix)]
            if mine:
                q.put_nowait(mine)
        return TxnResult(True, self.rev, {})

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        if start_revision and start_revision <= self.compacted:
            raise Compacted(start_revision, self.compacted)
        q: asyncio.Queue[list[Event] | BaseException] = asyncio.Queue()
        backlog = [e for e in self.history if e.mod_revision >= start_revision and e.key.startswith(prefix)]
        if start_revision and backlog:
            q.put_nowait(backlog)
        entry = (prefix, q)
        self.watches.append(entry)
        try:
            while True:
                item = await q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.watches.remove(entry)

    def break_watches(self) -> None:
        for _, q in self.watches:
            q.put_nowait(Unavailable("stream broken"))

    async def request_progress(self, prefix: str | None = None) -> None:
        for p, q in self.watches:
            if prefix is None or p == prefix:
                q.put_nowait([Event("PROGRESS", "", b"", None, 0, self.rev)])

    async def current_revision(self) -> int:
        return self.rev

    async def compact(self, revision: int) -> None:
        self.compacted = revision

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        pass


P = "/registry/pods/"


def pod(name: str, phase: str = "Pending") -> Obj:
    return {"metadata": {"name": name, "namespace": "default"}, "status": {"phase": phase}}


async def settle() -> None:
    # let the cacher's task drain what the fake queued (no timers involved)
    for _ in range(20):
        await asyncio.sleep(0)


async def put(kv: FakeKV, name: str, phase: str = "Pending") -> int:
    await kv.txn([], [Put(P + "default/" + name, orjson.dumps(pod(name, phase)))])
    return kv.rev


def drain(w: CacheWatcher) -> list[ObjEvent]:
    out = []
    while w.pending:
        ev = w._initial[w._pos] if w._pos < len(w._initial) else w._queue[0]
        out.append(ev)
        if w._pos < len(w._initial):
            w._pos += 1
        else:
            w._queue.popleft()
    return out


@pytest.fixture
async def setup(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeKV, Cacher]]:
    monkeypatch.setattr(cacher_mod, "RETRY_INITIAL", 0.0)
    monkeypatch.setattr(cacher_mod, "RETRY_MAX", 0.0)
    kv = FakeKV()
    await put(kv, "a")
    c = Cacher(Store(kv), P, capacity=3)
    await c.start()
    await settle()
    yield kv, c
    await c.stop()


def test_filter_event() -> None:
    def running(o: Obj) -> bool:
        return bool(o["status"]["phase"] == "Running")

    pending, run = pod("a"), pod("a", "Running")
    assert filter_event(ObjEvent("ADDED", pending, None, 2, "k"), running) is None
    ev = filter_event(ObjEvent("MODIFIED", run, pending, 3, "k"), running)
    assert ev is not None and ev.type == "ADDED"
    ev = filter_event(ObjEvent("MODIFIED", pending, run, 4, "k"), running)
    assert ev is not None and ev.type == "DELETED" and ev.obj is pending
    assert filter_event(ObjEvent("MODIFIED", pending, pending, 5, "k"), running) is None
    ev = filter_event(ObjEvent("DELETED", run, run, 6, "k"), running)
    assert ev is not None and ev.type == "DELETED"
    same = ObjEvent("MODIFIED", run, run, 7, "k")
    assert filter_event(same, running) is same and filter_event(same, None) is same


async def test_initial_state_and_events(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    assert c.revision == 2 and c.get(P + "default/a") is not None
    w = c.watch(0)
    await put(kv, "b")
    await put(kv, "a", "Running")
    await settle()
    evs = drain(w)
    assert [(e.type, e.key.rsplit("/", 1)[1]) for e in evs] == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a")]
    assert evs[2].prev is not None and evs[2].prev["status"]["phase"] == "Pending"
    assert c.revision == 4


async def test_ring_buffer_window(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    revs = [await put(kv, f"p{i}") for i in range(5)]  # capacity 3: the first two fall out
    await settle()
    assert [e.type for e in drain(c.watch(revs[1]))] == ["ADDED"] * 3
    with pytest.raises(Compacted):
        c.watch(revs[0])
    assert drain(c.watch(revs[-1])) == []


async def test_resume_after_broken_watch(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    w = c.watch(c.revision)
    kv.break_watches()
    await settle()
    await put(kv, "b")
    await settle()
    assert [e.type for e in drain(w)] == ["ADDED"]
    assert c.relists == 0 and not w.done


async def test_relist_after_compaction_terminates_watchers(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    w = c.watch(c.revision)
    # the watch breaks; meanwhile the world moves on and history is compacted
    watches = list(kv.watches)
    kv.watches.clear()
    await put(kv, "b")
    await kv.txn([], [Delete(P + "default/a")])
    await kv.compact(kv.rev)
    kv.watches.extend(watches)
    kv.break_watches()
    await settle()
    assert c.relists == 1 and c.revision == kv.rev
    assert c.get(P + "default/a") is None and c.get(P + "default/b") is not None
    with pytest.raises(Compacted):
        await w.next()
    assert await w.next() is None
    # a new watch from before the relist is too old; from now works
    with pytest.raises(Compacted):
        c.watch(2)
    w2 = c.watch(c.revision)
    await put(kv, "c")
    await settle()
    assert [e.key for e in drain(w2)] == [P + "default/c"]


async def test_slow_watcher(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    c.watcher_queue = 2
    slow, fast = c.watch(c.revision), c.watch(c.revision)
    got: list[ObjEvent] = []
    for i in range(4):
        await put(kv, f"p{i}")
        await settle()
        got += drain(fast)
    assert len(got) == 4
    with pytest.raises(WatcherTooSlow):
        await slow.next()
    assert c.watcher_count == 1


async def test_wait_fresh_by_progress(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    await kv.txn([], [Put("/registry/other/x", b"{}")])  # no event for this cache
    waiter = asyncio.ensure_future(c.wait_fresh(kv.rev, timeout=5))
    await settle()
    assert waiter.done() and waiter.exception() is None
    assert c.revision == kv.rev


async def test_not_ready() -> None:
    c = Cacher(Store(FakeKV()), P)
    with pytest.raises(Unavailable):
        c.watch(0)


async def test_next_timeout_and_bookmark(setup: tuple[FakeKV, Cacher]) -> None:
    kv, c = setup
    w = c.watch(c.revision)
    assert await w.next(timeout=0) is None and not w.done
    await kv.txn([], [Put("/registry/other/x", b"{}")])
    await kv.request_progress(P)
    await settle()
    # progress alone moves the cache's revision (for freshness waits) but not bookmarks: etcd 3.4
    # may report progress ahead of undelivered events, and a bookmark promises they were sent
    assert c.revision == kv.rev
    assert w.bookmark_revision == c.applied_revision < kv.rev
