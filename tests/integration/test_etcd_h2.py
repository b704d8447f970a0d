"""The etcd client's own HTTP/2 transport for unary calls (kubeha.storage.grpc_h2) against a real
etcd, on both event loops the project runs (asyncio's and uvloop's)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator

import pytest
import uvloop

from kubeha.storage.etcd import EtcdKV
from kubeha.storage.grpc_h2 import Channel, GrpcError
from kubeha.storage.interface import Compare, KeyExists, Put, RevisionTooLarge, Unavailable
from kubeha.storage.store import Store
from tests.support.etcd import EtcdServer, etcd_server  # noqa: F401

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop: str, fn: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(asyncio.wait_for(fn(), 60))


@pytest.fixture(params=sorted(LOOPS))
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_concurrent_calls_share_one_connection(etcd_server: EtcdServer, loop_name: str) -> None:  # noqa: F811
    async def body() -> None:
        kv = EtcdKV([etcd_server.endpoint])
        await kv.connect()
        prefix = f"/h2/{loop_name}/concurrent/"
        try:

            async def one(i: int) -> None:
                key = f"{prefix}{i:04d}"
                res = await kv.txn([Compare(key, 0)], [Put(key, str(i).encode())])
                assert res.succeeded
                got = await kv.get(key)
                assert got is not None and got.value == str(i).encode() and got.mod_revision == res.revision

            await asyncio.gather(*(one(i) for i in range(300)))
            r = await kv.range(prefix)
            assert len(r.items) == 300 and [kv.key for kv in r.items] == sorted(kv.key for kv in r.items)
            # a lost create reads the current value back through the failure branch
            res = await kv.txn([Compare(f"{prefix}0007", 0)], [Put(f"{prefix}0007", b"again")])
            assert not res.succeeded
            cur = res.current[f"{prefix}0007"]
            assert cur is not None and cur.value == b"7"
            with pytest.raises(KeyExists):
                await Store(kv).create(f"{prefix}0007", {"metadata": {"name": "x"}})
            # every call went over one HTTP/2 connection
            ch = kv._channels[0]
            assert ch is not None and ch._conn is not None and ch._conn.next_id > 600
        finally:
            await kv.close()

    run(loop_name, body)


def test_large_values_need_flow_control(etcd_server: EtcdServer, loop_name: str) -> None:  # noqa: F811
    # 1 MiB is far past HTTP/2's initial 64 KiB windows and 16 KiB frames, both ways
    async def body() -> None:
        kv = EtcdKV([etcd_server.endpoint])
        await kv.connect()
        try:
            values = {f"/h2/{loop_name}/big/{i}": bytes([65 + i]) * (1 << 20) for i in range(3)}
            await asyncio.gather(*(kv.txn([], [Put(k, v)]) for k, v in values.items()))
            for k, v in values.items():
                got = await kv.get(k)
                assert got is not None and got.value == v
            r = await kv.range(f"/h2/{loop_name}/big/")
            assert [x.value for x in r.items] == list(values.values())
        finally:
            await kv.close()

    run(loop_name, body)


def test_errors_and_cancellation(etcd_server: EtcdServer, loop_name: str) -> None:  # noqa: F811
    async def body() -> None:
        kv = EtcdKV([etcd_server.endpoint])
        await kv.connect()
        try:
            rev = await kv.current_revision()
            # etcd's own error status comes through with its message
            with pytest.raises(RevisionTooLarge):
                await kv.range("/h2/", revision=rev + 1000)
            # a cancelled call resets its stream; the connection carries on
            task = asyncio.create_task(kv.get("/h2/cancelled"))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await kv.txn([], [Put("/h2/after-cancel", b"ok")])
            got = await kv.get("/h2/after-cancel")
            assert got is not None and got.value == b"ok"
        finally:
            await kv.close()

    run(loop_name, body)


@pytest.fixture
def silent_listener() -> Iterator[tuple[socket.socket, int]]:
    """A loopback TCP port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def test_deadline_and_a_peer_that_stopped_answering(silent_listener: tuple[socket.socket, int], loop_name: str) -> None:
    sock, port = silent_listener

    async def body() -> None:
        ch = Channel("127.0.0.1", port)
        try:
            with pytest.raises(GrpcError) as info:
                await ch.unary("/etcdserverpb.KV/Range", b"", 0.3)
            assert info.value.status == 4  # DEADLINE_EXCEEDED
            # nothing at all came back for the whole deadline: the connection is given up and
            # the next call dials again
            assert ch._conn is not None and not ch._conn.usable
            with pytest.raises(GrpcError):
                await ch.unary("/etcdserverpb.KV/Range", b"", 0.3)
        finally:
            await ch.close()

    run(loop_name, body)
    accepted = []
    sock.settimeout(1)
    for _ in range(2):
        conn, _ = sock.accept()
        accepted.append(conn)
        # the client spoke HTTP/2 first
        assert conn.recv(24) == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    for c in accepted:
        c.close()


def test_refused_connection_is_unavailable(loop_name: str) -> None:
    async def body() -> None:
        kv = EtcdKV(["http://127.0.0.1:1"], timeout=2.0)
        await kv.connect()
        try:
            with pytest.raises(Unavailable):
                await kv.get("/x")
            assert not await kv.healthy()
        finally:
            await kv.close()

    run(loop_name, body)


class _ScriptedServer:
    """A loopback HTTP/2 peer answering request streams by a script: the very first request is
    refused (REFUSED_STREAM), or its connection goes away (GOAWAY before any stream); every
    other request gets an empty gRPC message and status 0."""

    def __init__(self, first: str) -> None:
        self.first = first
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import struct

        from kubeha.storage import hpack

        self.connections += 1
        n = self.connections
        assert await reader.readexactly(24) == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

        def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
            return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

        writer.write(frame(4, 0, 0))  # our (empty) SETTINGS
        try:
            while True:
                head = await reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                ftype, flags, sid = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = await reader.readexactly(length)
                if ftype == 4 and not flags & 1:
                    writer.write(frame(4, 1, 0))  # SETTINGS ACK
                elif ftype == 0 and flags & 1:  # the request's last DATA frame
                    self.requests.append(payload[5:])
                    if len(self.requests) == 1 and self.first == "refuse":
                        writer.write(frame(3, 0, sid, struct.pack(">I", 7)))
                    elif n == 1 and self.first == "goaway":
                        writer.write(frame(7, 0, 0, struct.pack(">II", 0, 0)))
                    else:
                        headers = hpack.literal(":status", "200") + hpack.literal("content-type", "application/grpc")
                        trailers = hpack.literal("grpc-status", "0")
                        writer.write(
                            frame(1, 4, sid, headers) + frame(0, 0, sid, b"\0\0\0\0\0") + frame(1, 5, sid, trailers)
                        )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("first", ["refuse", "goaway"])
def test_a_call_the_server_never_saw_is_sent_again(first: str, loop_name: str) -> None:
    # as grpc's transparent retry: a refused stream, or one past a GOAWAY, never reached etcd
    async def body() -> None:
        peer = _ScriptedServer(first)
        server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ch = Channel("127.0.0.1", port)
        try:
            assert await ch.unary("/etcdserverpb.KV/Txn", b"\x0a\x01x", 2.0) == b""
            assert peer.requests == [b"\x0a\x01x", b"\x0a\x01x"]
            # a refused stream leaves the connection usable; a GOAWAY does not
            assert peer.connections == (1 if first == "refuse" else 2)
        finally:
            await ch.close()
            server.close()
            await server.wait_closed()

    run(loop_name, body)
