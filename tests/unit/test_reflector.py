"""The reflector against a scripted fake client (no sockets, no real sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from kubeha.api import errors
from kubeha.client.resources import CONFIGMAPS, ResourceRef
from kubeha.machinery.reflector import Backoff, Reflector

Obj = dict[str, Any]


def cm(name: str, rv: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class FakeClient:
    """Lists answer from ``pages``; each watch plays the next script (a list of events, or an
    exception raised when the watch is opened)."""

    def __init__(self, pages: list[list[Obj]], rv: str, watches: list[Any]) -> None:
        self.pages, self.rv, self.watches = pages, rv, watches
        self.list_calls: list[dict[str, Any]] = []
        self.watch_calls: list[dict[str, Any]] = []
        self.done = asyncio.Event()

    async def list(self, res: ResourceRef, namespace: str | None = None, **kw: Any) -> Obj:
        self.list_calls.append(kw)
        i = int(kw.get("continue_") or 0)
        meta: Obj = {"resourceVersion": self.rv}
        if i + 1 < len(self.pages):
            meta = {"continue": str(i + 1), "resourceVersion": self.rv}
        return {"items": list(self.pages[i]), "metadata": meta}

    async def watch(self, res: ResourceRef, namespace: str | None = None, **kw: Any) -> AsyncGenerator[tuple[str, Obj]]:
        self.watch_calls.append(kw)
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # idle until cancelled
        script = self.watches.pop(0)
        if isinstance(script, BaseException):
            raise script
        for ev in script:
            if isinstance(ev, BaseException):
                raise ev
            yield ev


class Recorder:
    def __init__(self) -> None:
        self.ops: list[tuple[str, Any]] = []

    def replace(self, objs: list[Obj], rv: str) -> None:
        self.ops.append(("replace", ([o["metadata"]["name"] for o in objs], rv)))

    def add(self, obj: Obj) -> None:
        self.ops.append(("add", obj["metadata"]["name"]))

    def update(self, obj: Obj) -> None:
        self.ops.append(("update", obj["metadata"]["name"]))

    def delete(self, obj: Obj) -> None:
        self.ops.append(("delete", obj["metadata"]["name"]))


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        slept.append(delay)
        await real_sleep(0)
        return result

    monkeypatch.setattr("kubeha.machinery.reflector.asyncio.sleep", fake_sleep)
    return slept


async def run_until_idle(r: Reflector, client: FakeClient) -> None:
    task = asyncio.create_task(r.run())
    try:
        await asyncio.wait_for(client.done.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_paged_list_then_watch_from_list_rv(no_sleep: list[float]) -> None:
    client = FakeClient(
        [[cm("a", "5")], [cm("b", "6")]],
        "10",
        [
            [
                ("ADDED", cm("c", "11")),
                ("MODIFIED", cm("a", "12")),
                ("BOOKMARK", {"metadata": {"resourceVersion": "15"}}),
                ("DELETED", cm("b", "16")),
            ]
        ],
    )
    store = Recorder()
    r = Reflector(client, CONFIGMAPS, store, namespace="ns", page_size=1)  # type: ignore[arg-type]
    await run_until_idle(r, client)
    assert store.ops == [
        ("replace", (["a", "b"], "10")),
        ("add", "c"),
        ("update", "a"),
        ("delete", "b"),
    ]
    assert [c["limit"] for c in client.list_calls] == [1, 1]
    assert [c["resource_version"] for c in client.list_calls] == ["0", None]  # pages follow the token
    assert client.watch_calls[0]["resource_version"] == "10"
    assert client.watch_calls[0]["allow_bookmarks"] is True
    assert 300 <= client.watch_calls[0]["timeout_seconds"] <= 600
    # a watch that ends normally is resumed from the last seen resourceVersion (the delete's)
    assert client.watch_calls[1]["resource_version"] == "16"
    assert r.has_synced and r.lists == 1 and no_sleep == []


async def test_expired_relists(no_sleep: list[float]) -> None:
    client = FakeClient(
        [[cm("a", "5")]],
        "10",
        [[("ADDED", cm("b", "11")), errors.expired("too old resource version: 11 (20)")]],
    )
    store = Recorder()
    r = Reflector(client, CONFIGMAPS, store)  # type: ignore[arg-type]
    await run_until_idle(r, client)
    assert store.ops == [("replace", (["a"], "10")), ("add", "b"), ("replace", (["a"], "10"))]
    assert r.lists == 2
    assert client.watch_calls[-1]["resource_version"] == "10"
    # the first list may come from the server's cache; the one after 410 must be consistent
    assert [c["resource_version"] for c in client.list_calls] == ["0", None]


async def test_errors_back_off_and_resume_without_relist(no_sleep: list[float]) -> None:
    client = FakeClient(
        [[]],
        "10",
        [
            ConnectionRefusedError("down"),
            errors.internal("boom"),
            [("ADDED", cm("x", "12")), ConnectionResetError("cut")],
            [],
        ],
    )
    store = Recorder()
    r = Reflector(client, CONFIGMAPS, store, backoff=Backoff(initial=1, cap=30, jitter=0))  # type: ignore[arg-type]
    await run_until_idle(r, client)
    assert r.lists == 1  # connection trouble never forces a relist
    assert [c["resource_version"] for c in client.watch_calls] == ["10", "10", "10", "12", "12"]
    # two failures back off 1 s, 2 s; the broken watch had delivered an event, yet it failed,
    # so it waits 4 s; the empty watch that ended at once waits again (8 s)
    assert no_sleep == [1, 2, 4, 8]


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(initial=0.8, cap=30, jitter=0.5, rand=lambda: 1.0)
    delays = [b.next() for _ in range(8)]
    assert delays[0] == pytest.approx(1.2) and delays[1] == pytest.approx(2.4)
    assert max(delays) == 30
    b.reset()
    assert b.next() == pytest.approx(1.2)
