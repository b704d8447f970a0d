"""Reflector and shared informers against real api-servers, including failover and 410 relists.

A small TCP proxy stands in for the HA load balancer: it sends each new connection to the first
backend that accepts it, so killing a server moves clients to the next one, as HAProxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.procs import free_port
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import CONFIGMAPS, NAMESPACES
from kubeha.machinery.informer import SharedInformer, SharedInformerFactory
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.etcd import EtcdServer

Obj = dict[str, Any]


class TcpProxy:
    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            for port in list(self.backends):
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
                return
        finally:
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            dst.close()


def client_for(server: ApiServer, port: int | None = None) -> ApiClient:
    config = load_kubeconfig(str(server.kubeconfig))
    if port is not None:
        config.server = f"https://127.0.0.1:{port}"
    return ApiClient(config, user_agent="kubeha-informer-test", timeout=10)


class Seen:
    """Handler calls, with a way to wait for a condition on them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (kind, name, resourceVersion)
        self._changed = asyncio.Event()

    def _record(self, kind: str, obj: Obj) -> None:
        self.calls.append((kind, obj["metadata"]["name"], obj["metadata"].get("resourceVersion", "")))
        self._changed.set()

    def handlers(self) -> dict[str, Callable[..., None]]:
        return {
            "on_add": lambda o: self._record("add", o),
            "on_update": lambda old, new: self._record("update", new),
            "on_delete": lambda o: self._record("delete", o),
        }

    def names(self, kind: str) -> list[str]:
        return [n for k, n, _ in self.calls if k == kind]

    async def wait(self, cond: Callable[[], bool], within: float = 20) -> None:
        async with asyncio.timeout(within):
            while not cond():
                self._changed.clear()
                await self._changed.wait()


def cm(name: str, **data: str) -> Obj:
    return {"metadata": {"name": name}, "data": data}


@pytest.fixture
async def ns(apiservers: list[ApiServer]) -> AsyncIterator[str]:
    name = f"inf-{uuid.uuid4().hex[:10]}"
    async with client_for(apiservers[1]) as c:
        await c.create(NAMESPACES, {"metadata": {"name": name}})
        yield name
        with contextlib.suppress(StatusError):
            await c.delete(NAMESPACES, name)


async def test_informer_on_a_sees_writes_through_b(apiservers: list[ApiServer], ns: str) -> None:
    async with client_for(apiservers[0]) as ca, client_for(apiservers[1]) as cb:
        await cb.create(CONFIGMAPS, cm("pre", a="1"), ns)
        # Server A starts its configmaps watch cache on first use, at the then-current revision;
        # a watch from an older list would be 410 (a relist that folds the changes below into one
        # update). Start it first so this test sees every event.
        await ca.list(CONFIGMAPS, ns, resource_version="0")
        factory = SharedInformerFactory(ca, namespace=ns)
        inf = factory.informer_for(CONFIGMAPS)
        assert factory.informer_for(CONFIGMAPS) is inf  # one per resource and selectors
        assert factory.informer_for(CONFIGMAPS, label_selector="x=y") is not inf
        seen = Seen()
        inf.add_event_handler(**seen.handlers())
        await factory.start()
        try:
            assert await factory.wait_for_cache_sync(timeout=20)
            assert seen.names("add") == ["pre"]  # initial adds are delivered before sync returns
            assert inf.indexer.keys() == [f"{ns}/pre"]

            await cb.create(CONFIGMAPS, cm("new", b="2"), ns)
            await cb.patch(CONFIGMAPS, "pre", {"data": {"a": "changed"}}, ns)
            await cb.delete(CONFIGMAPS, "new", ns)
            await seen.wait(lambda: "new" in seen.names("delete"))
            assert seen.names("add") == ["pre", "new"] and seen.names("update") == ["pre"]
            assert inf.indexer.get(f"{ns}/pre")["data"] == {"a": "changed"}  # type: ignore[index]
            assert inf.indexer.get(f"{ns}/new") is None
            assert [o["metadata"]["name"] for o in inf.indexer.by_index("namespace", ns)] == ["pre"]

            # a handler added late gets the cached objects as adds, then only new changes
            late = Seen()
            inf.add_event_handler(**late.handlers())
            await late.wait(lambda: late.names("add") == ["pre"])
            await cb.create(CONFIGMAPS, cm("after"), ns)
            await late.wait(lambda: "after" in late.names("add"))
            assert late.names("add") == ["pre", "after"] and late.names("update") == []
        finally:
            await factory.stop()
        assert inf.reflector.lists == 1  # no relist was needed


async def test_relist_after_expired(
    apiservers: list[ApiServer], apiserver_factory: ApiServerFactory, etcd_server: EtcdServer, ns: str
) -> None:
    """The informer's server goes away; by the time a fresh server answers, the informer's
    resourceVersion is older than that server's watch cache: 410 Expired, so it re-lists, and the
    diff against its cache turns into adds, updates and deletes."""
    first = apiserver_factory(etcd_server.endpoint, name="first")
    async with TcpProxy([first.port]) as proxy, client_for(first, proxy.port) as c, client_for(apiservers[1]) as cb:
        await cb.create(CONFIGMAPS, cm("keep", v="1"), ns)
        await cb.create(CONFIGMAPS, cm("gone"), ns)
        inf = SharedInformer(c, CONFIGMAPS, namespace=ns)
        seen = Seen()
        inf.add_event_handler(**seen.handlers())
        await inf.start()
        try:
            assert await inf.wait_for_sync(20)
            assert sorted(seen.names("add")) == ["gone", "keep"]
            first.stop()
            # changes the informer cannot see while no server answers it
            await cb.patch(CONFIGMAPS, "keep", {"data": {"v": "2"}}, ns)
            await cb.delete(CONFIGMAPS, "gone", ns)
            await cb.create(CONFIGMAPS, cm("born"), ns)
            second = apiserver_factory(etcd_server.endpoint, name="second")
            proxy.backends = [second.port]
            await seen.wait(lambda: "born" in seen.names("add") and "gone" in seen.names("delete"), 60)
            await seen.wait(lambda: "keep" in seen.names("update"))
            assert inf.reflector.lists >= 2
            assert inf.indexer.get(f"{ns}/keep")["data"] == {"v": "2"}  # type: ignore[index]
            assert sorted(inf.indexer.keys()) == [f"{ns}/born", f"{ns}/keep"]
            # the delete found by the relist carries the last state the informer knew
            added = next(call for call in seen.calls if call[:2] == ("add", "gone"))
            deleted = next(call for call in seen.calls if call[0] == "delete")
            assert deleted == ("delete", "gone", added[2])
        finally:
            await inf.stop()


async def test_apiserver_killed_mid_watch(
    apiserver_factory: ApiServerFactory, etcd_server: EtcdServer, apiservers: list[ApiServer], ns: str
) -> None:
    a = apiserver_factory(etcd_server.endpoint, name="lb-a")
    b = apiserver_factory(etcd_server.endpoint, name="lb-b")
    async with TcpProxy([a.port, b.port]) as proxy, client_for(a, proxy.port) as c, client_for(b) as cb:
        inf = SharedInformer(c, CONFIGMAPS, namespace=ns)
        seen = Seen()
        inf.add_event_handler(**seen.handlers())
        await inf.start()
        try:
            assert await inf.wait_for_sync(20)
            await cb.create(CONFIGMAPS, cm("before"), ns)
            await seen.wait(lambda: "before" in seen.names("add"))
            a.kill()  # SIGKILL: the watch connection breaks mid-stream
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await cb.create(CONFIGMAPS, cm("after"), ns)
            await seen.wait(lambda: "after" in seen.names("add"), 30)
            gap = loop.time() - t0
            assert gap < 10, gap
            # reads through the same client also moved to the surviving server
            assert (await c.get(CONFIGMAPS, "after", ns))["metadata"]["name"] == "after"
            assert seen.names("delete") == []
        finally:
            await inf.stop()
