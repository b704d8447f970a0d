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
            ch = kv._unary_channels[0]
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
