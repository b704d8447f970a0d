"""In-process api-server apps over a real etcd, served on loopback (plain HTTP, AlwaysAllow) and
driven with an aiohttp client: fast integration tests of the REST semantics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from kubeha.apiserver.app import CTX, REST, build_app
from kubeha.apiserver.config import ServerConfig
from kubeha.apiserver.httpserver import App, Server
from kubeha.storage.etcd import EtcdKV
from kubeha.storage.store import Store


class TestClient:
    """An aiohttp session bound to one in-process server: requests take paths."""

    __test__ = False

    def __init__(self, app: App) -> None:
        self.app = app
        self.server = Server(app)
        self.session: aiohttp.ClientSession | None = None
        self.base = ""

    async def start_server(self) -> None:
        await self.server.listen("127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{self.server.port}"
        self.session = aiohttp.ClientSession()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        assert self.session is not None
        return self.session.request(method, self.base + path, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.server.shutdown(5.0)


class Api:
    """A thin JSON helper around one test client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def app(self) -> Any:
        return self.client.app

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, Any]:
        data = raw if raw is not None else (None if body is None else orjson.dumps(body))
        hdrs = {"Content-Type": ctype, **(headers or {})}
        async with self.client.request(method, path, data=data, headers=hdrs) as r:
            text = await r.read()
            try:
                doc = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                doc = text.decode()
            return r.status, doc, r.headers

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        code, doc, _ = await self.call("GET", path, **kw)
        return code, doc

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        code, doc, _ = await self.call("POST", path, body, **kw)
        return code, doc

    async def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        code, doc, _ = await self.call("PUT", path, body, **kw)
        return code, doc

    async def patch(
        self, path: str, body: Any, ctype: str = "application/merge-patch+json", **kw: Any
    ) -> tuple[int, Any]:
        code, doc, _ = await self.call("PATCH", path, body, ctype=ctype, **kw)
        return code, doc

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        code, doc, _ = await self.call("DELETE", path, body, **kw)
        return code, doc

    async def namespace(self) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        code, doc = await self.post("/api/v1/namespaces", {"metadata": {"name": name}})
        assert code == 201, doc
        return name

    async def watch_lines(self, path: str, count: int, wait: float = 10.0) -> list[dict[str, Any]]:
        """The first ``count`` events of a watch (or fewer if the stream ends)."""
        import asyncio

        out: list[dict[str, Any]] = []
        async with self.client.get(path) as r:
            assert r.status == 200, await r.text()

            async def read() -> None:
                while len(out) < count:
                    line = await r.content.readline()
                    if not line:
                        return
                    out.append(orjson.loads(line))

            await asyncio.wait_for(read(), wait)
        return out


def make_config(**kw: Any) -> ServerConfig:
    return ServerConfig(**kw)


async def start_api(endpoint: str, config: ServerConfig | None = None) -> tuple[Api, EtcdKV]:
    kv = EtcdKV([endpoint])
    await kv.connect()
    app = build_app(config or ServerConfig(), Store(kv))
    client = TestClient(app)
    await client.start_server()
    return Api(client), kv


async def stop_api(api: Api, kv: EtcdKV) -> None:
    await api.client.close()
    await kv.close()


@pytest.fixture(scope="module")
async def api(etcd_server: Any) -> AsyncIterator[Api]:
    a, kv = await start_api(etcd_server.endpoint)
    try:
        yield a
    finally:
        await stop_api(a, kv)


__all__ = ["CTX", "REST", "Api", "api", "make_config", "start_api", "stop_api"]
