"""The api-server's HTTP/1.1 server (``kubeha.apiserver.httpserver``) over loopback sockets, with
raw byte streams as clients, so every framing detail is visible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from kubeha.apiserver import httpserver
from kubeha.apiserver.httpserver import App, Request, Response, Server, StreamResponse

Handler = Callable[[Request], Awaitable[StreamResponse]]


async def echo(req: Request) -> StreamResponse:
    body = await req.read()
    doc = {
        "method": req.method,
        "path": req.path,
        "path_qs": req.path_qs,
        "query": list(req.query.items()),
        "body": body.decode(),
        "x": req.headers.getall("X-Multi", []),
    }
    return Response(body=orjson.dumps(doc), content_type="application/json")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler = echo, *, max_body: int = 1000, body_timeout: float = 5.0) -> Server:
        app = App(handler, client_max_size=max_body)
        app.body_read_timeout = body_timeout
        s = Server(app)
        await s.listen("127.0.0.1", 0)
        servers.append(s)
        return s

    yield start
    for s in servers:
        await s.shutdown(1.0)


async def connect(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def read_response(r: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-cased names), body (Content-Length or chunked)."""
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        body = await asyncio.wait_for(r.readexactly(int(headers["content-length"])), 5)
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await asyncio.wait_for(r.readline(), 5)).strip(), 16)
            chunk = await asyncio.wait_for(r.readexactly(size + 2), 5)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = b""
    return status, headers, body


async def closed(r: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(r.read(), 5) == b""


async def test_keep_alive_pipelining_and_request_parts(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve()
    r, w = await connect(s)
    w.write(
        b"POST /api/v1/namespaces/a%2Fb/pods?x=1+2&y&z=%2B HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
        b"X-Multi: 1\r\nX-Multi: 2\r\n\r\nhello"
        b"GET /second HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET http://h/absolute?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    first = orjson.loads((await read_response(r))[2])
    assert first == {
        "method": "POST",
        "path": "/api/v1/namespaces/a/b/pods",
        "path_qs": "/api/v1/namespaces/a%2Fb/pods?x=1+2&y&z=%2B",
        "query": [["x", "1 2"], ["y", ""], ["z", "+"]],
        "body": "hello",
        "x": ["1", "2"],
    }
    status, headers, body = await read_response(r)
    assert status == 200 and orjson.loads(body)["body"] == "abcde" and "connection" not in headers
    assert "date" in headers
    assert orjson.loads((await read_response(r))[2])["path_qs"] == "/absolute?q=1"
    w.close()


async def test_http10_closes_and_head_has_no_body(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve()
    r, w = await connect(s)
    w.write(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.0\r\n\r\n")
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    assert b" 200 " in head and b"Content-Length: " in head
    status, headers, body = await read_response(r)  # the HEAD sent no body: this is /y
    assert status == 200 and orjson.loads(body)["path"] == "/y" and headers["connection"] == "close"
    assert await closed(r)


async def test_body_over_the_limit_is_413_and_closes(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve(max_body=10)
    for request in (
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",  # refused from the length alone
        b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n",
    ):
        r, w = await connect(s)
        w.write(request)
        status, headers, body = await read_response(r)
        assert status == 413 and headers["connection"] == "close"
        assert orjson.loads(body)["reason"] == "RequestEntityTooLarge"
        assert await closed(r)


async def test_slow_body_is_408(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve(body_timeout=0.3)
    r, w = await connect(s)
    w.write(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
    status, _, body = await read_response(r)
    assert status == 408 and orjson.loads(body)["reason"] == "Timeout"
    assert await closed(r)


async def test_head_never_completed_is_closed(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve(body_timeout=0.3)
    r, w = await connect(s)
    w.write(b"GET /a HTTP/1.1\r\nHost: h\r\n")
    assert await closed(r)


async def test_malformed_and_oversized_heads(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve()
    r, w = await connect(s)
    w.write(b"NOT HTTP AT ALL\r\n\r\n")
    status, _, body = await read_response(r)
    assert status == 400 and orjson.loads(body)["kind"] == "Status"
    assert await closed(r)
    r, w = await connect(s)
    w.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n")
    status, _, body = await read_response(r)
    assert status == 431 and orjson.loads(body)["code"] == 431
    w.close()
    # under the limit is fine (long label selectors are legitimate)
    r, w = await connect(s)
    w.write(b"GET /?labelSelector=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await read_response(r))[0] == 200
    w.close()


async def test_expect_continue(serve: Callable[..., Awaitable[Server]]) -> None:
    s = await serve()
    r, w = await connect(s)
    w.write(b"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    w.write(b"ok")
    assert orjson.loads((await read_response(r))[2])["body"] == "ok"
    w.close()


async def test_header_values_cannot_inject_lines(serve: Callable[..., Awaitable[Server]]) -> None:
    async def handler(req: Request) -> StreamResponse:
        return Response(body=b"x", headers={"Warning": "299 - evil\r\nSet-Cookie: a=b"})

    s = await serve(handler)
    r, w = await connect(s)
    w.write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    _, headers, _ = await read_response(r)
    assert "set-cookie" not in headers and headers["warning"] == "299 - evil  Set-Cookie: a=b"
    w.close()


async def test_stream_ends_when_the_client_leaves(serve: Callable[..., Awaitable[Server]]) -> None:
    ended = asyncio.Event()

    async def handler(req: Request) -> StreamResponse:
        resp = StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(req)
        await resp.write(b'{"n":1}\n')
        try:
            await asyncio.sleep(60)  # a watch with nothing to send
        finally:
            ended.set()
        return resp

    s = await serve(handler)
    r, w = await connect(s)
    w.write(b"GET /watch HTTP/1.1\r\nHost: h\r\n\r\n")
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    assert b"Transfer-Encoding: chunked" in head
    assert await asyncio.wait_for(r.readexactly(13), 5) == b'8\r\n{"n":1}\n\r\n'
    w.close()
    await asyncio.wait_for(ended.wait(), 5)


async def test_a_reader_that_stops_holds_the_writer_back(serve: Callable[..., Awaitable[Server]]) -> None:
    written = 0

    async def handler(req: Request) -> StreamResponse:
        nonlocal written
        resp = StreamResponse()
        await resp.prepare(req)
        for _ in range(10_000):
            await resp.write(b"x" * 65536)
            written += 65536
        return resp

    s = await serve(handler)
    _r, w = await connect(s)
    w.write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    await asyncio.sleep(1.0)
    # socket buffers hold a few MiB at most; the handler waits instead of buffering 655 MiB
    assert 0 < written < 64 * 1024 * 1024
    w.close()


async def test_upgrade_hands_over_the_raw_stream(serve: Callable[..., Awaitable[Server]]) -> None:
    async def handler(req: Request) -> StreamResponse:
        if not req.upgrade:
            return Response(status=400, body=b"Upgrade request required")
        raw = req.hijack()
        raw.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
        while data := await raw.read():
            raw.write(data.upper())
        return Response(status=101)

    s = await serve(handler)
    r, w = await connect(s)
    # bytes right behind the head (in the same packet) belong to the new protocol
    w.write(b"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nfirst ")
    assert b" 101 " in await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
    w.write(b"second")
    got = b""
    while len(got) < len(b"FIRST SECOND"):
        got += await asyncio.wait_for(r.read(100), 5)
    assert got == b"FIRST SECOND"
    w.write_eof()
    assert await closed(r)
    r, w = await connect(s)
    w.write(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await read_response(r))[0] == 400
    w.close()


async def test_idle_connections_close(serve: Callable[..., Awaitable[Server]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpserver, "IDLE_TIMEOUT", 0.3)
    s = await serve()
    r, w = await connect(s)
    w.write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await read_response(r))[0] == 200
    assert await closed(r)


async def test_shutdown_drains_requests_in_flight(serve: Callable[..., Awaitable[Server]]) -> None:
    release = asyncio.Event()
    events: list[str] = []

    async def handler(req: Request) -> StreamResponse:
        if req.path == "/slow":
            await release.wait()
        return Response(body=req.path.encode())

    s = await serve(handler)

    async def on_shutdown(app: App) -> None:
        events.append("shutdown")

    async def on_cleanup(app: App) -> None:
        events.append("cleanup")

    s.app.on_shutdown.append(on_shutdown)
    s.app.on_cleanup.append(on_cleanup)
    busy_r, busy_w = await connect(s)
    busy_w.write(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
    idle_r, idle_w = await connect(s)
    idle_w.write(b"GET /quick HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (await read_response(idle_r))[2] == b"/quick"
    port = s.port
    await asyncio.sleep(0.1)
    stopping = asyncio.create_task(s.shutdown(5.0))
    assert await closed(idle_r)  # idle: closed at once
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
    assert not stopping.done() and events == ["shutdown"]
    release.set()
    status, headers, body = await read_response(busy_r)  # the request in flight completes...
    assert status == 200 and body == b"/slow" and headers["connection"] == "close"
    assert await closed(busy_r)  # ...and its connection closes
    await asyncio.wait_for(stopping, 5)
    assert events == ["shutdown", "cleanup"]


async def test_served_once_the_head_is_in(serve: Callable[..., Awaitable[Server]]) -> None:
    """Filters run while a body arrives (so a slow body holds an in-flight slot, as upstream);
    read() waits for the rest, and a client that leaves mid-body fails the read."""
    started = asyncio.Event()
    outcomes: list[str] = []

    async def handler(req: Request) -> StreamResponse:
        started.set()
        try:
            body = await req.read()
        except ConnectionResetError:
            outcomes.append("reset")
            raise
        outcomes.append(body.decode())
        return Response(body=body)

    s = await serve(handler)
    r, w = await connect(s)
    w.write(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello")
    await asyncio.wait_for(started.wait(), 5)
    assert outcomes == []
    w.write(b"world")
    assert (await read_response(r))[2] == b"helloworld"
    started.clear()
    w.write(b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf")
    await asyncio.wait_for(started.wait(), 5)
    w.close()
    for _ in range(50):
        if len(outcomes) == 2:
            break
        await asyncio.sleep(0.05)
    assert outcomes == ["helloworld", "reset"]
