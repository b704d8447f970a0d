"""HTTP/1.1 serving for the api-server: one asyncio protocol per connection on ``httptools``
(llhttp, the parser aiohttp and uvicorn use), and the small request and response types the
handlers see.

Why not aiohttp's server: its per-request machinery (request and response objects, router, signals,
writer) cost about 180 µs of CPU per request here, a quarter of a create (benchmarks/http_bench.py);
the api-server needs none of its generality. What it needs is kept:

* a request is served once its head is in (as Go's server does: the in-flight limit and
  authentication apply while a body arrives); ``read()`` waits for the whole body, and raises
  413 past ``App.client_max_size`` or 408 when the body is not in within ``App.body_read_timeout``
  (the handler chain answers both, so metrics and audit see them; the connection closes after);
* a request line plus headers larger than ``limits.MAX_HEADER_BYTES`` gets 431, malformed HTTP 400;
* keep-alive (90 s idle, as upstream's IdleTimeout), pipelined requests in order, HEAD,
  ``Expect: 100-continue``;
* streamed (chunked) responses for watches and logs, with write back-pressure;
* connection upgrades (exec, attach, port-forward): the handler takes the raw byte stream over;
* graceful shutdown: stop accepting, close idle connections, let requests in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, unquote

import httptools
import orjson
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from kubeha.api import errors
from kubeha.api.errors import StatusError
from kubeha.apiserver import limits

log = logging.getLogger(__name__)

T = TypeVar("T")

IDLE_TIMEOUT = 90.0  # kube-apiserver's IdleTimeout for kept-alive connections
MAX_PIPELINED = 16  # requests parsed ahead of the one being served before reading pauses
RAW_HIGH_WATER = 1 << 20  # bytes an upgraded stream buffers before reading pauses

_REASONS = {s.value: s.phrase for s in http.HTTPStatus}
_NO_BODY_STATUS = frozenset({204, 304})
_NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


class Key(Generic[T]):
    """A typed key into an ``App`` or a ``Request`` (``app[CTX]`` has CTX's type)."""

    __slots__ = ("name",)

    def __init__(self, name: str, _type: type[T] | None = None) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<Key {self.name}>"


AppKey = RequestKey = Key

Handler = Callable[["Request"], Awaitable["StreamResponse"]]
Hook = Callable[["App"], Awaitable[None]]
# called, in order, just before a response's head is written (may add headers); a hook with
# nothing to wait for returns None instead of a coroutine (most responses need none)
PrepareHook = Callable[["Request", "StreamResponse"], Awaitable[None] | None]


class App:
    """What every request shares: the handler, typed state and the lifecycle hooks."""

    def __init__(self, handler: Handler | None = None, *, client_max_size: int = 3 << 20) -> None:
        self.handler = handler
        self.client_max_size = client_max_size
        self.body_read_timeout = limits.BODY_READ_TIMEOUT
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        self.on_cleanup: list[Hook] = []
        self.on_response_prepare: list[PrepareHook] = []
        self._state: dict[Key[Any], Any] = {}

    def __getitem__(self, key: Key[T]) -> T:
        return self._state[key]  # type: ignore[no-any-return]

    def __setitem__(self, key: Key[T], value: T) -> None:
        self._state[key] = value

    def __contains__(self, key: Key[Any]) -> bool:
        return key in self._state

    def get(self, key: Key[T], default: T | None = None) -> T | None:
        return self._state.get(key, default)  # type: ignore[no-any-return]

    async def _run(self, hooks: list[Hook]) -> None:
        for hook in hooks:
            await hook(self)


class Request:
    """One request; ``read()`` gives its body once the whole of it has arrived."""

    __slots__ = (
        "_body_done",
        "_body_waiter",
        "_conn",
        "_query",
        "_state",
        "app",
        "body",
        "body_error",
        "headers",
        "keep_alive",
        "method",
        "path",
        "path_qs",
        "query_string",
        "transport",
        "upgrade",
    )

    def __init__(
        self,
        conn: Connection | None,
        app: App,
        method: str,
        target: str,
        headers: CIMultiDictProxy[str],
        *,
        body: bytes = b"",
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self._conn = conn
        self.app = app
        self.method = method
        self.path_qs = target
        raw, _, qs = target.partition("?")
        self.path = unquote(raw) if "%" in raw else raw
        self.query_string = qs
        self._query: MultiDictProxy[str] | None = None
        self.headers = headers
        self.body = body
        self.body_error: Exception | None = None  # raised by read(): 413 or 408
        self._body_done = True
        self._body_waiter: asyncio.Future[None] | None = None
        self.keep_alive = True
        self.upgrade = False
        self.transport = transport
        self._state: dict[Key[Any], Any] = {}

    @property
    def query(self) -> MultiDictProxy[str]:
        q = self._query
        if q is None:
            qs = self.query_string
            q = self._query = MultiDictProxy(MultiDict(parse_qsl(qs, keep_blank_values=True))) if qs else _NO_QUERY
        return q

    @property
    def remote(self) -> str | None:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        if isinstance(peer, (tuple, list)) and peer:
            return str(peer[0])
        return None

    @property
    def content_length(self) -> int | None:
        v = self.headers.get("Content-Length")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def body_exists(self) -> bool:
        return bool(self.body) or self.body_error is not None

    async def read(self) -> bytes:
        """The whole body, once it has arrived; 413 past the size limit, 408 when it did not
        arrive in time."""
        if not self._body_done:
            if self._body_waiter is None:
                self._body_waiter = asyncio.get_running_loop().create_future()
            await self._body_waiter
        if self.body_error is not None:
            raise self.body_error
        return self.body

    def _end_body(self, body: bytes, error: Exception | None = None) -> None:
        self.body, self.body_error, self._body_done = body, error, True
        w = self._body_waiter
        if w is not None and not w.done():
            w.set_result(None)

    @property
    def connection_state(self) -> dict[Key[Any], Any]:
        """State kept with the connection, for every request on it (a TLS peer's identity)."""
        conn = self._conn
        return conn.state if conn is not None else {}

    def hijack(self) -> RawStream:
        """The connection's raw byte stream, after an upgrade; the handler owns it from now on
        (write the 101 response head yourself). Only for requests with ``upgrade`` set."""
        if not self.upgrade or self._conn is None:
            raise RuntimeError("only an upgrade request can take its connection over")
        return self._conn.hijack()

    def __getitem__(self, key: Key[T]) -> T:
        return self._state[key]  # type: ignore[no-any-return]

    def __setitem__(self, key: Key[T], value: T) -> None:
        self._state[key] = value

    def get(self, key: Key[T], default: T | None = None) -> T | None:
        return self._state.get(key, default)  # type: ignore[no-any-return]


class StreamResponse:
    """A response whose body is written piece by piece (chunked) after ``prepare``."""

    __slots__ = ("_conn", "_eof", "_head_only", "headers", "prepared", "reason", "status")

    def __init__(
        self, *, status: int = 200, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers: CIMultiDict[str] = CIMultiDict(headers or ())
        self.prepared = False
        self._eof = False
        self._head_only = False
        self._conn: Connection | None = None

    async def _start(self, request: Request) -> tuple[Connection, bool]:
        """Run the prepare hooks; the connection to write the response to, and whether it stays
        open after this response."""
        for hook in request.app.on_response_prepare:
            pending = hook(request, self)
            if pending is not None:
                await pending
        self.prepared = True
        conn = request._conn
        if conn is None:
            raise ConnectionResetError("no connection")
        self._conn = conn
        self._head_only = request.method == "HEAD"
        return conn, request.keep_alive and not conn.closing

    async def prepare(self, request: Request) -> None:
        if self.prepared:
            return
        conn, keep_alive = await self._start(request)
        conn.stream_task = True
        conn.write(_head(self.status, self.reason, self.headers, None, keep_alive))

    async def write(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or self._eof:
            raise RuntimeError("write before prepare or after write_eof")
        if conn.closed:
            raise ConnectionResetError("the client went away")
        if data and not self._head_only:
            conn.write(b"%x\r\n%b\r\n" % (len(data), data))
            await conn.drain()

    async def write_eof(self) -> None:
        conn = self._conn
        if self._eof or conn is None:
            return
        self._eof = True
        if conn.closed:
            raise ConnectionResetError("the client went away")
        if not self._head_only:
            conn.write(b"0\r\n\r\n")
            await conn.drain()


class Response(StreamResponse):
    """A response whose body is known in full."""

    __slots__ = ("body",)

    def __init__(
        self,
        *,
        body: bytes = b"",
        status: int = 200,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        if text is not None:
            body = text.encode()
            content_type = content_type or "text/plain; charset=utf-8"
        self.body = body
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        elif body and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "application/octet-stream"

    async def prepare(self, request: Request) -> None:
        if self.prepared:
            return
        conn, keep_alive = await self._start(request)
        self._eof = True
        body = self.body
        head = _head(self.status, self.reason, self.headers, len(body), keep_alive)
        if self._head_only or not body:
            conn.write(head)
        else:
            conn.write(head + body)  # one write: one TLS record for a small response

    async def write(self, data: bytes) -> None:
        raise RuntimeError("a Response is written whole")


_date_cache: tuple[int, bytes] = (0, b"")


def _date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, b"Date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n")
    return _date_cache[1]


def _clean(value: str) -> str:
    # a header value must not end the line early: CR and LF would let a value inject headers
    return value.replace("\r", " ").replace("\n", " ") if ("\n" in value or "\r" in value) else value


def _head(status: int, reason: str | None, headers: CIMultiDict[str], length: int | None, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Unknown')}\r\n"]
    for name, value in headers.items():
        if name in ("Content-Length", "Transfer-Encoding", "Connection", "Date"):
            continue  # ours to set (CIMultiDict keys keep their case: these are what handlers write)
        lines.append(f"{name}: {_clean(value)}\r\n")
    if status in _NO_BODY_STATUS or status < 200:
        pass
    elif length is None:
        lines.append("Transfer-Encoding: chunked\r\n")
    else:
        lines.append(f"Content-Length: {length}\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    return "".join(lines).encode("latin-1", "replace") + _date() + b"\r\n"


def plain_response(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    """A whole response that closes the connection (for errors found before any handler runs)."""
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": content_type})
    return _head(status, None, headers, len(body), False) + body


def _status_body(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps(errors.StatusError(code, reason, message, {}).to_status())


class RawStream:
    """An upgraded connection's bytes, both ways."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._buf = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    def _feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > RAW_HIGH_WATER and self._conn.transport is not None:
            self._conn.transport.pause_reading()
        self._wake()

    def _feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def read(self) -> bytes:
        """Whatever has arrived (at least one byte), or b"" once the client has closed."""
        while not self._buf:
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buf)
        self._buf.clear()
        t = self._conn.transport
        if t is not None and not self._eof:
            with contextlib.suppress(Exception):
                t.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        if self._conn.closed:
            raise ConnectionResetError("the client went away")
        self._conn.write(data)

    async def drain(self) -> None:
        await self._conn.drain()

    def close(self) -> None:
        self._conn.close()


class Connection(asyncio.Protocol):
    """One client connection: parse, queue, serve in order, write."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.app = server.app
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpRequestParser(self)
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._head_bytes = 0
        self._chunks: list[bytes] = []
        self._body_size = 0
        self._current: Request | None = None  # its head is parsed, its body is arriving
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        # one timer for the idle and the body deadlines; moving the deadline does not touch the
        # timer (a cancel and a new timer per request cost ~2 % of a create): it fires at the old
        # time and, finding the deadline later, re-arms itself once
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = math.inf
        self._discard = False  # the stream cannot be parsed on: drop what comes, close when done
        self._raw: RawStream | None = None
        self._in_message = False  # a request has begun and is not complete
        self._upgraded = False
        self._upgrade_data = b""
        self._paused_writing = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._reading_paused = False
        self.closing = False  # close once the current response is out (shutdown)
        self.state: dict[Key[Any], Any] = {}
        self.stream_task = False  # the handler streams (watch, logs): cancel it when the client leaves

    # -- asyncio.Protocol --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self._arm(IDLE_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._stop_timer()
        for w in self._drain_waiters:
            if not w.done():
                w.set_exception(ConnectionResetError("the client went away"))
        self._drain_waiters.clear()
        if self._current is not None:
            self._current._end_body(b"", ConnectionResetError("the client went away"))
            self._current = None
        if self._raw is not None:
            self._raw._feed_eof()
        elif self._task is not None and self.stream_task:
            self._task.cancel()  # a watch waiting for events ends now, as a Go request context would

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    def data_received(self, data: bytes) -> None:
        if self._raw is not None:
            self._raw._feed(data)
            return
        if self._upgraded:
            self._upgrade_data += data  # the handler has not taken the stream over yet
            return
        if self._discard:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            offset = e.args[0] if e.args and isinstance(e.args[0], int) else len(data)
            self._upgrade_data = data[offset:]
            self._upgraded = True
        except httptools.HttpParserCallbackError:
            if self._head_bytes > limits.MAX_HEADER_BYTES:
                self._refuse(431, "RequestHeaderFieldsTooLarge", "request header fields too large")
            else:
                log.exception("serving a request failed")
                self._refuse(500, "InternalError", "internal error parsing the request")
            return
        except httptools.HttpParserError as e:
            self._refuse(400, "BadRequest", f"malformed HTTP request: {e}")
            return
        if self._in_message and self._deadline == math.inf:
            self._arm(self.app.body_read_timeout)  # a request is still arriving

    # -- httptools callbacks ---------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._disarm()
        self._in_message = True
        self._url = []
        self._headers = []
        self._head_bytes = 0
        self._chunks = []
        self._body_size = 0
        self._current = None

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._head_bytes += len(url)
        if self._head_bytes > limits.MAX_HEADER_BYTES:
            raise ValueError("request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > limits.MAX_HEADER_BYTES:
            raise ValueError("request head too large")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        p = self._parser
        target = b"".join(self._url).decode("latin-1")
        if not target.startswith("/"):
            target = _origin_form(target)
        headers = CIMultiDictProxy(CIMultiDict(self._headers))
        req = Request(
            self,
            self.app,
            p.get_method().decode("ascii", "replace"),
            target,
            headers,
            transport=self.transport,
        )
        req.keep_alive = p.should_keep_alive() and not self.closing
        req.upgrade = p.should_upgrade()
        # served from now on, as Go serves a request once its head is in: the filters (in-flight
        # limit, authentication) run while the body arrives, and read() waits for it
        req._body_done = False
        self._current = req
        self._enqueue(req)
        length = req.content_length
        if length is not None and length > self.app.client_max_size:
            self._fail_body(req, _too_large(self.app.client_max_size))
        elif headers.get("Expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self._current
        if req is None:
            return
        self._body_size += len(body)
        if self._body_size > self.app.client_max_size:
            self._fail_body(req, _too_large(self.app.client_max_size))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        req = self._current
        self._current = None
        self._in_message = False
        self._disarm()
        if req is None:
            return
        chunks = self._chunks
        self._chunks = []
        req._end_body(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    # -- serving ------------------------------------------------------------------------------------------------

    def _fail_body(self, req: Request, err: Exception) -> None:
        """End ``req``'s body with ``err``; nothing after it on this connection is read."""
        req.keep_alive = False
        self._current = None
        self._chunks = []
        self._discard = True
        self._disarm()
        req._end_body(b"", err)

    def _enqueue(self, req: Request) -> None:
        self._pending.append(req)
        if len(self._pending) > MAX_PIPELINED and self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        try:
            while self._pending and not self.closed:
                req = self._pending.popleft()
                if self._reading_paused and len(self._pending) <= MAX_PIPELINED // 2 and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                self.server.inflight += 1
                try:
                    keep = await self._serve_one(req)
                finally:
                    self.server.inflight -= 1
                    self.stream_task = False
                if not keep:
                    self.close()
                    return
        finally:
            self._task = None
            self.server._wake()
        if not self.closed:
            if self.closing:
                self.close()
            elif not self._in_message and self._deadline == math.inf:
                self._arm(IDLE_TIMEOUT)

    async def _serve_one(self, req: Request) -> bool:
        handler = self.app.handler
        assert handler is not None
        try:
            resp = await handler(req)
            if self._raw is not None:
                return False  # the handler took the connection over and is done with it
            if not resp.prepared:
                await resp.prepare(req)
            elif not resp._eof:
                await resp.write_eof()
        except asyncio.CancelledError:
            if self.closed:
                return False  # the client left during a stream
            raise
        except StatusError as e:
            # a filter-less app (tests, benchmarks): the body errors still get their Status
            if not self.closed:
                self.write(plain_response(e.code, orjson.dumps(e.to_status())))
            return False
        except (ConnectionError, RuntimeError) as e:
            if not self.closed:
                log.debug("response to %s %s failed: %s", req.method, req.path, e)
            return False
        except Exception:
            log.exception("unexpected error serving %s %s", req.method, req.path)
            if self.closed:
                return False
            self.write(plain_response(500, _status_body(500, "InternalError", "an error on the server")))
            return False
        return req.keep_alive and not req.upgrade and not self.closing and not self._discard

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("the client went away")
        if not self._paused_writing:
            return
        w = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(w)
        await w

    def hijack(self) -> RawStream:
        raw = RawStream(self)
        self._raw = raw
        self._disarm()
        if self._upgrade_data:
            raw._feed(self._upgrade_data)
            self._upgrade_data = b""
        if self.closed:
            raw._feed_eof()
        return raw

    def close(self) -> None:
        self._stop_timer()
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _refuse(self, code: int, reason: str, message: str) -> None:
        """Answer a request no handler can see (it could not be parsed) and close."""
        self._discard = True
        if self._task is None:
            self.write(plain_response(code, _status_body(code, reason, message)))
            self.close()
        # else: the request in progress is answered first; _discard ends the connection after it

    # -- timers --------------------------------------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + delay
        t = self._timer
        if t is None or t.when() > deadline:
            if t is not None:
                t.cancel()
            self._timer = loop.call_at(deadline, self._fire)

    def _disarm(self) -> None:
        self._deadline = math.inf

    def _stop_timer(self) -> None:
        self._deadline = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if self._deadline == math.inf or self.closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._fire)
            return
        self._deadline = math.inf
        self._timeout()

    def _timeout(self) -> None:
        req = self._current
        if req is not None:
            # the head arrived, the body did not in time: the handler chain answers 408
            self._fail_body(req, limits.body_timeout(self.app.body_read_timeout))
            return
        if self._task is None:
            self.close()  # idle past IDLE_TIMEOUT, or a head that never completed
        else:
            self._discard = True  # a pipelined head that never completed: close after the response


def _origin_form(target: str) -> str:
    """``http://host/path?q`` (absolute form, allowed to servers) -> ``/path?q``."""
    try:
        u = httptools.parse_url(target.encode("latin-1"))
    except httptools.HttpParserInvalidURLError:
        return target
    path = (u.path or b"/").decode("latin-1")
    return path + ("?" + u.query.decode("latin-1") if u.query else "")


def _too_large(limit: int) -> Exception:
    return errors.too_large(f"Request entity too large: limit is {limit}")


class Server:
    """Serves ``app`` on listening sockets until ``shutdown``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.connections: set[Connection] = set()
        self.inflight = 0
        self._servers: list[asyncio.Server] = []
        self._idle: asyncio.Event | None = None
        self._started = False

    async def start(self) -> None:
        if not self._started:
            self._started = True
            await self.app._run(self.app.on_startup)

    async def listen(
        self, host: str | Sequence[str] | None, port: int, *, ssl: Any = None, backlog: int = 1024
    ) -> asyncio.Server:
        await self.start()
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(
            lambda: Connection(self), host, port, ssl=ssl, backlog=backlog, reuse_address=True
        )
        self._servers.append(srv)
        return srv

    @property
    def port(self) -> int:
        return int(self._servers[0].sockets[0].getsockname()[1])

    def _wake(self) -> None:
        if self._idle is not None and self.inflight == 0 and not any(c._task for c in self.connections):
            self._idle.set()

    async def shutdown(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 (a drain bound, not a call's)
        """Stop accepting; run on_shutdown (watches end); close idle connections; wait up to
        ``timeout`` for requests in flight; close the rest; run on_cleanup."""
        for srv in self._servers:
            srv.close()
        await self.app._run(self.app.on_shutdown)
        for c in list(self.connections):
            c.closing = True
            if c._task is None and c._raw is None:
                c.close()
        busy = [c for c in self.connections if c._task is not None]
        if busy:
            self._idle = asyncio.Event()
            self._wake()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.abort() if c._task is not None else c.close()
        for srv in self._servers:
            with contextlib.suppress(Exception):
                await srv.wait_closed()
        self._servers.clear()
        if self._started:
            self._started = False
            await self.app._run(self.app.on_cleanup)
