"""Streaming protocols of the kubelet's exec, attach and port-forward endpoints.

Three wire formats, all carried in WebSocket binary messages:

* **Channel protocols** (``v5.channel.k8s.io``, ``v4.channel.k8s.io``, ``channel.k8s.io``) for exec
  and attach: the first byte of every message names the channel (0 stdin, 1 stdout, 2 stderr,
  3 error/status, 4 resize), the rest is payload. v4+ report the end as a JSON ``Status`` on
  channel 3 (v1 sends only an error text); v5 adds the client's "close stdin" message ``FF 00``.
* **WebSocket port-forward** (``v4.channel.k8s.io`` / ``portforward.k8s.io`` with ``?ports=``): per
  requested port a data channel ``2i`` and an error channel ``2i+1``; the server's first message
  on each carries the port as two little-endian bytes.
* **SPDY/3.1 tunnelled over a WebSocket** (``SPDY/3.1+portforward.k8s.io``, kubectl 1.31+): the
  binary messages are a plain byte stream carrying SPDY frames. Each forwarded connection opens an
  ``error`` and a ``data`` stream (headers ``streamtype``, ``port``, ``requestid``); the server
  answers each with SYN_REPLY, pipes the data stream to the port, and half-closes both streams
  when the connection ends (kubectl waits for the error stream's end).

The pure parts (framing, Status, SPDY codec) are tested without sockets; the session drivers work
on a small message-socket interface that aiohttp's WebSocketResponse satisfies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubeha.kubelet.runtime import ExecProcess

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_STREAM = 255  # v5: the client closes one of its streams (payload: the channel)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V1 = "channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4, V1)  # in order of preference
PORTFORWARD_WS = "portforward.k8s.io"
PORTFORWARD_PROTOCOLS_WS = (V4, PORTFORWARD_WS)
SPDY_TUNNEL_PREFIX = "SPDY/3.1+"
SPDY_PORTFORWARD = SPDY_TUNNEL_PREFIX + PORTFORWARD_WS
PORTFORWARD_PROTOCOLS = (SPDY_PORTFORWARD, *PORTFORWARD_PROTOCOLS_WS)

Obj = dict[str, Any]


def negotiate(offered: list[str] | tuple[str, ...], supported: tuple[str, ...]) -> str | None:
    """The first of our ``supported`` protocols that the client offered (None: no match)."""
    wanted = {p.strip() for p in offered if p.strip()}
    return next((p for p in supported if p in wanted), None)


def offered_protocols(header: str) -> list[str]:
    return [p.strip() for p in header.split(",") if p.strip()]


# -- channel framing --------------------------------------------------------------------------------------


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def parse_frame(message: bytes) -> tuple[int, bytes] | None:
    """(channel, payload); None for an empty message (clients may send one as a keep-alive)."""
    if not message:
        return None
    return message[0], message[1:]


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """``{"Width": w, "Height": h}`` -> (w, h); None when malformed."""
    try:
        size = json.loads(payload)
        w, h = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    return (w, h) if w >= 0 and h >= 0 else None


def exit_status(exit_code: int | None, error: str = "") -> Obj:
    """The Status a finished exec reports on channel 3: Success, a NonZeroExitCode failure
    carrying the code as the ExitCode cause, or an internal error (the command could not run)."""
    base: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    if error:
        return {**base, "status": "Failure", "message": error, "reason": "InternalError", "code": 500}
    if not exit_code:
        return {**base, "status": "Success"}
    return {
        **base,
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command, exit status {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


def status_frame(protocol: str, status: Obj) -> bytes | None:
    """Channel 3's final message for ``protocol``; v1 carries only an error text (none on success)."""
    if protocol in (V4, V5):
        return frame(ERROR, json.dumps(status, separators=(",", ":")).encode())
    if status.get("status") == "Success":
        return None
    return frame(ERROR, str(status.get("message") or "error").encode())


def port_frame(channel: int, port: int) -> bytes:
    """The first message on a WebSocket port-forward channel: the port, little-endian."""
    return frame(channel, struct.pack("<H", port))


# -- the message socket the drivers use -------------------------------------------------------------------------


class MessageSocket(Protocol):
    """What the session drivers need from a WebSocket (aiohttp's WebSocketResponse fits)."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def receive_message(self) -> bytes | None:
        """The next binary message; None once the peer closed."""
        ...

    async def close(self, code: int = 1000, message: bytes = b"") -> None: ...


@dataclass
class ExecOptions:
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False


async def serve_exec(ws: MessageSocket, protocol: str, proc: ExecProcess, opts: ExecOptions) -> int:
    """Relay one exec/attach session until the command ends; returns its exit code."""
    send_lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(data)

    async def pump(read: Callable[[], Awaitable[bytes]], channel: int, wanted: bool) -> None:
        while chunk := await read():
            if wanted:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await send(frame(channel, chunk))

    async def from_client() -> None:
        while (msg := await ws.receive_message()) is not None:
            parsed = parse_frame(msg)
            if parsed is None:
                continue
            channel, payload = parsed
            if channel == STDIN and opts.stdin:
                if payload:
                    await proc.write_stdin(payload)
            elif channel == RESIZE:
                size = parse_resize(payload)
                if size is not None and opts.tty:
                    proc.resize(*size)
            elif channel == CLOSE_STREAM and protocol == V5 and payload[:1] == bytes((STDIN,)):
                await proc.close_stdin()
        # the client went away: nothing more will come on stdin
        with contextlib.suppress(OSError):
            await proc.close_stdin()

    reader = asyncio.create_task(from_client())
    pumps = [asyncio.create_task(pump(proc.read_stdout, STDOUT, opts.stdout))]
    if not opts.tty:
        pumps.append(asyncio.create_task(pump(proc.read_stderr, STDERR, opts.stderr)))
    code = 0
    try:
        waiter = asyncio.create_task(proc.wait())
        done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            # the client left before the command ended: the command goes too (as upstream)
            await proc.kill()
        code = await waiter
        # drain what the command wrote before it ended (bounded: a background child may keep pipes open)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), 2.0)
        final = status_frame(protocol, exit_status(code))
        with contextlib.suppress(ConnectionError, RuntimeError):
            if final is not None:
                await send(final)
            await ws.close()
    finally:
        for t in (reader, *pumps):
            t.cancel()
        await asyncio.gather(reader, *pumps, return_exceptions=True)
    return code


async def serve_error(ws: MessageSocket, protocol: str, message: str) -> None:
    """End an upgraded exec session that could not start (the command is missing, ...)."""
    final = status_frame(protocol, exit_status(None, message))
    with contextlib.suppress(ConnectionError, RuntimeError):
        if final is not None:
            await ws.send_bytes(final)
        await ws.close()


# -- port-forward ----------------------------------------------------------------------------------------------

Dialer = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def serve_portforward_ws(ws: MessageSocket, ports: list[int], dial: Dialer) -> None:
    """The WebSocket port-forward protocol: one connection per requested port, for the session."""
    send_lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(data)

    writers: dict[int, asyncio.StreamWriter] = {}
    tasks: list[asyncio.Task[None]] = []

    async def pump(i: int, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError, ConnectionError, RuntimeError):
            while chunk := await reader.read(65536):
                await send(frame(2 * i, chunk))

    for i, port in enumerate(ports):
        await send(port_frame(2 * i, port))
        await send(port_frame(2 * i + 1, port))
        try:
            reader, writer = await dial(port)
        except OSError as e:
            await send(frame(2 * i + 1, f"error forwarding port {port}: {e}".encode()))
            continue
        writers[2 * i] = writer
        tasks.append(asyncio.create_task(pump(i, reader)))
    try:
        while (msg := await ws.receive_message()) is not None:
            parsed = parse_frame(msg)
            if parsed is None:
                continue
            channel, payload = parsed
            w = writers.get(channel)
            if w is not None and payload:
                w.write(payload)
                await w.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        for w in writers.values():
            w.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()


# -- SPDY/3.1 ----------------------------------------------------------------------------------------------------

SPDY_VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5
RST_REFUSED = 3

# The zlib dictionary of SPDY/3 header blocks (spec section 2.6.10.1): common header names, each
# preceded by its 32-bit length, then a run of common values.
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200\x01OK version HTTP/1.1 url public "
    "set-cookie keep-alive origin"
)
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _spdy_dictionary() -> bytes:
    out = bytearray()
    for word in _DICT_WORDS.split(" "):
        w = word.replace("\x01", " ").encode()
        out += struct.pack(">I", len(w)) + w
    return bytes(out) + _DICT_TAIL.encode()


SPDY_DICTIONARY = _spdy_dictionary()


@dataclass
class SpdyFrame:
    control: bool
    type: int = 0  # control frames
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""  # data frames: payload; control frames: the raw body
    headers: dict[str, list[str]] = field(default_factory=dict)


class SpdyCodec:
    """Frames in and out of one SPDY/3 byte stream (header blocks share one zlib context per
    direction for the whole connection, as the protocol requires)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=SPDY_DICTIONARY)

    # - reading
    def feed(self, data: bytes) -> list[SpdyFrame]:
        self._buf += data
        frames: list[SpdyFrame] = []
        while len(self._buf) >= 8:
            first, second = struct.unpack(">II", self._buf[:8])
            length = second & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            body = bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            flags = second >> 24
            if first & 0x80000000:
                frames.append(self._control(first & 0xFFFF, flags, body))
            else:
                frames.append(SpdyFrame(False, flags=flags, stream_id=first & 0x7FFFFFFF, data=body))
        return frames

    def _control(self, ftype: int, flags: int, body: bytes) -> SpdyFrame:
        f = SpdyFrame(True, type=ftype, flags=flags, data=body)
        if ftype in (SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM, WINDOW_UPDATE) and len(body) >= 4:
            f.stream_id = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
        block = body[10:] if ftype == SYN_STREAM else body[4:] if ftype in (SYN_REPLY, HEADERS) else None
        if block is not None:
            f.headers = parse_header_block(self._inflate.decompress(block))
        return f

    # - writing
    def header_block(self, headers: dict[str, str]) -> bytes:
        raw = bytearray(struct.pack(">I", len(headers)))
        for k, v in headers.items():
            kb, vb = k.lower().encode(), v.encode()
            raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self._deflate.compress(bytes(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id) + self.header_block(headers or {})
        return control_frame(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        """(client side: for tests) open a stream."""
        body = struct.pack(">IIBB", stream_id, 0, 0, 0) + self.header_block(headers)
        return control_frame(SYN_STREAM, FLAG_FIN if fin else 0, body)


def parse_header_block(raw: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    (count,) = struct.unpack(">I", raw[:4])
    pos = 4
    for _ in range(count):
        (n,) = struct.unpack(">I", raw[pos : pos + 4])
        name = raw[pos + 4 : pos + 4 + n].decode().lower()
        pos += 4 + n
        (n,) = struct.unpack(">I", raw[pos : pos + 4])
        value = raw[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        out.setdefault(name, []).extend(value.split("\x00"))
    return out


def control_frame(ftype: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | SPDY_VERSION, ftype, (flags << 24) | len(body)) + body


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def rst_stream(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def goaway(last_stream: int) -> bytes:
    return control_frame(GOAWAY, 0, struct.pack(">II", last_stream, 0))


class SpdyPortForward:
    """The server side of kubectl's SPDY port-forward over one tunnelled byte stream."""

    MAX_DATA = 32 * 1024

    def __init__(self, ws: MessageSocket, dial: Dialer) -> None:
        self.ws = ws
        self.dial = dial
        self.codec = SpdyCodec()
        self._lock = asyncio.Lock()
        self._errors: dict[str, int] = {}  # requestid -> error stream id
        self._data: dict[int, asyncio.StreamWriter | None] = {}  # data stream id -> connection
        self._pending: dict[int, list[bytes]] = {}  # data that came before the connection was up
        self._client_done: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last = 0

    async def _send(self, data: bytes) -> None:
        async with self._lock:
            await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            while (msg := await self.ws.receive_message()) is not None:
                for f in self.codec.feed(msg):
                    await self._handle(f)
        except (ConnectionError, OSError, zlib.error, struct.error, UnicodeDecodeError) as e:
            log.info("port-forward session ended: %s", e)
        finally:
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for w in self._data.values():
                if w is not None:
                    w.close()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send(goaway(self._last))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close()

    async def _handle(self, f: SpdyFrame) -> None:
        if not f.control:
            await self._on_data(f)
        elif f.type == SYN_STREAM:
            await self._on_syn(f)
        elif f.type == PING:
            await self._send(control_frame(PING, 0, f.data[:4]))
        elif f.type == RST_STREAM:
            w = self._data.pop(f.stream_id, None)
            if w is not None:
                w.close()
        elif f.type == GOAWAY:
            raise ConnectionError("client sent GOAWAY")
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (no flow control on this side)

    async def _on_syn(self, f: SpdyFrame) -> None:
        sid = f.stream_id
        self._last = max(self._last, sid)
        kind = (f.headers.get("streamtype") or [""])[0]
        port_s = (f.headers.get("port") or [""])[0]
        req = (f.headers.get("requestid") or [""])[0]
        if kind not in ("error", "data") or not port_s.isdigit():
            await self._send(rst_stream(sid, RST_REFUSED))
            return
        await self._send(self.codec.syn_reply(sid))
        if kind == "error":
            self._errors[req] = sid
            return
        self._data[sid] = None
        self._pending[sid] = []
        if f.flags & FLAG_FIN:
            self._client_done.add(sid)
        t = asyncio.create_task(self._connect(sid, int(port_s), req))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _on_data(self, f: SpdyFrame) -> None:
        sid = f.stream_id
        if sid not in self._data:
            return  # the error stream's (empty) close, or a stream we reset
        w = self._data[sid]
        if w is None:
            self._pending[sid].append(f.data)
            if f.flags & FLAG_FIN:
                self._client_done.add(sid)
            return
        if f.data:
            w.write(f.data)
            with contextlib.suppress(OSError, ConnectionError):
                await w.drain()
        if f.flags & FLAG_FIN and w.can_write_eof():
            with contextlib.suppress(OSError):
                w.write_eof()

    async def _connect(self, sid: int, port: int, req: str) -> None:
        err_sid = self._errors.get(req)
        try:
            reader, writer = await self.dial(port)
        except OSError as e:
            if err_sid is not None:
                msg = f"error forwarding port {port} to pod: {e}"
                await self._send(data_frame(err_sid, msg.encode(), fin=True))
            await self._send(data_frame(sid, b"", fin=True))
            self._data.pop(sid, None)
            return
        self._data[sid] = writer
        for chunk in self._pending.pop(sid, []):
            writer.write(chunk)
        if sid in self._client_done and writer.can_write_eof():
            writer.write_eof()
        try:
            while chunk := await reader.read(self.MAX_DATA):
                await self._send(data_frame(sid, chunk))
        except (OSError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send(data_frame(sid, b"", fin=True))
                if err_sid is not None:
                    await self._send(data_frame(err_sid, b"", fin=True))
            self._data.pop(sid, None)
