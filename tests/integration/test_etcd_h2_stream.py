"""Streaming calls (etcd watches) on the etcd client's own HTTP/2 transport
(kubeha.storage.grpc_h2) against a real etcd, on both event loops the project runs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from kubeha.storage import grpc_h2
from kubeha.storage.etcd import WATCH, EtcdKV
from kubeha.storage.grpc_h2 import GrpcError
from kubeha.storage.interface import Event, Put, Unavailable
from tests.integration.test_etcd_h2 import loop_name, run  # noqa: F401
from tests.integration.test_storage import _make_pki
from tests.support.etcd import EtcdServer, etcd_server  # noqa: F401
from tests.support.waiting import eventually


async def _events(it: AsyncIterator[list[Event]], n: int, wait: float = 20.0) -> list[Event]:
    """The next ``n`` non-PROGRESS events of a watch."""
    out: list[Event] = []

    async def collect() -> None:
        async for batch in it:
            out.extend(ev for ev in batch if ev.type != "PROGRESS")
            if len(out) >= n:
                return

    await asyncio.wait_for(collect(), wait)
    return out


async def _started(kv: EtcdKV, it: AsyncIterator[list[Event]]) -> asyncio.Task[list[Event]]:
    """Read one event of ``it`` in a task, once etcd has created the watch (a progress request
    answered proves it)."""
    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def reader() -> list[Event]:
        out: list[Event] = []
        async for batch in it:
            for ev in batch:
                if ev.type == "PROGRESS":
                    if not first.done():
                        first.set_result(None)
                else:
                    out.append(ev)
                    return out
        return out

    task = asyncio.create_task(reader())
    for _ in range(100):
        await kv.request_progress()
        pending: list[asyncio.Future[object]] = [first, task]  # type: ignore[list-item]
        done, _ = await asyncio.wait(pending, timeout=0.1)
        if done:
            break
    assert first.done(), "the watch never started"
    return task


def test_watch_across_many_frames_and_window_refills(
    etcd_server: EtcdServer,  # noqa: F811
    loop_name: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a 256 KiB stream window refilled every 64 KiB: 4 MB of values only get through if the
    # window is topped up as the watch is read, and a catch-up response (one message of all the
    # events) is far larger than the window
    monkeypatch.setattr(grpc_h2, "INITIAL_WINDOW", 256 * 1024)
    monkeypatch.setattr(grpc_h2, "STREAM_REFILL", 64 * 1024)
    values = [bytes([65 + i % 26]) * (100 * 1024 + i) for i in range(40)]
    prefix = f"/h2s/{loop_name}/big/"

    async def body() -> None:
        async with EtcdKV([etcd_server.endpoint]) as kv:
            live = kv.watch(prefix, 0)
            task = await _started(kv, live)
            revs = [(await kv.txn([], [Put(f"{prefix}{i:02d}", v)])).revision for i, v in enumerate(values)]
            got = (await task) + await _events(live, len(values) - 1)
            assert [(e.key, e.value, e.mod_revision) for e in got] == [
                (f"{prefix}{i:02d}", v, r) for i, (v, r) in enumerate(zip(values, revs, strict=True))
            ]
            # from the first revision: etcd sends the backlog in one response of ~4 MB
            replay = kv.watch(prefix, revs[0])
            again = await _events(replay, len(values))
            assert [(e.key, e.value) for e in again] == [(e.key, e.value) for e in got]
            await replay.aclose()  # type: ignore[attr-defined]
            await live.aclose()  # type: ignore[attr-defined]

    run(loop_name, body)


def test_a_reader_that_stopped_holds_etcd_back(
    etcd_server: EtcdServer,  # noqa: F811
    loop_name: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # live events come one message each: with nobody reading, etcd may send no more than the
    # stream window (plus the rest of a message begun inside it), and all of it arrives later
    monkeypatch.setattr(grpc_h2, "INITIAL_WINDOW", 256 * 1024)
    monkeypatch.setattr(grpc_h2, "STREAM_REFILL", 64 * 1024)
    values = [bytes([97 + i % 26]) * (100 * 1024) for i in range(20)]
    prefix = f"/h2s/{loop_name}/stopped/"

    async def body() -> None:
        async with EtcdKV([etcd_server.endpoint]) as kv:
            it = kv.watch(prefix, 0)
            first = await _started(kv, it)
            for i, v in enumerate(values):
                await kv.txn([], [Put(f"{prefix}{i:02d}", v)])
            (call,) = kv._streams

            async def window_used() -> bool:
                return call._buffered >= 256 * 1024

            await eventually(window_used, within=10)  # etcd sends what it may...
            await asyncio.sleep(0.3)  # ...and no more
            assert call._buffered <= 256 * 1024 + 101 * 1024
            got = (await first) + await _events(it, len(values) - 1)
            assert [(e.key, e.value) for e in got] == [(f"{prefix}{i:02d}", v) for i, v in enumerate(values)]
            await it.aclose()  # type: ignore[attr-defined]

    run(loop_name, body)


def test_cancel(etcd_server: EtcdServer, loop_name: str) -> None:  # noqa: F811
    prefix = f"/h2s/{loop_name}/cancel/"

    async def body() -> None:
        async with EtcdKV([etcd_server.endpoint]) as kv:
            ch = kv._channel(0)
            call = await ch.stream(WATCH)
            conn = ch._conn
            assert conn is not None and conn.calls == {call.id: call} and conn._keepalive is not None
            call.cancel()
            call.cancel()  # idempotent
            with pytest.raises(GrpcError) as info:
                await call.recv()
            assert info.value.status == grpc_h2.CANCELLED
            with pytest.raises(GrpcError):
                await call.send(b"")
            # no streaming call left: no keepalive timer either
            assert conn.calls == {} and conn._keepalive is None

            # a reader blocked in recv() learns of the cancel at once
            call = await ch.stream(WATCH)
            reader = asyncio.create_task(call.recv())
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(GrpcError):
                await asyncio.wait_for(reader, 1)

            # closing a watch cancels its stream; the connection carries on
            it = kv.watch(prefix, 0)
            task = await _started(kv, it)
            task.cancel()  # the reader is cancelled inside the watch: its stream goes with it
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert kv._streams == {} and conn.calls == {}
            it = kv.watch(prefix, 0)
            progress = asyncio.create_task(anext(it))  # type: ignore[arg-type]
            await asyncio.sleep(0)  # its first step opens the stream (the connection is up)
            assert kv._streams
            await kv.request_progress(prefix)
            assert [e.type for e in await progress] == ["PROGRESS"]
            await it.aclose()  # type: ignore[attr-defined]
            assert kv._streams == {} and conn.calls == {} and conn._keepalive is None
            await kv.txn([], [Put(prefix + "a", b"1")])
            assert ch._conn is conn and conn.usable

    run(loop_name, body)


def test_a_watch_and_unary_calls_share_one_connection(etcd_server: EtcdServer, loop_name: str) -> None:  # noqa: F811
    prefix = f"/h2s/{loop_name}/shared/"

    async def body() -> None:
        async with EtcdKV([etcd_server.endpoint]) as kv:
            it = kv.watch(prefix, 0)
            first = await _started(kv, it)
            conn = kv._channel(0)._conn
            assert conn is not None

            async def one(i: int) -> int:
                key = f"{prefix}{i:03d}"
                await kv.txn([], [Put(key, str(i).encode())])
                got = await kv.get(key)
                assert got is not None
                return got.mod_revision

            revs = sorted(await asyncio.gather(*(one(i) for i in range(200))))
            got = (await first) + await _events(it, 199)
            assert [e.mod_revision for e in got] == revs
            assert {e.key for e in got} == {f"{prefix}{i:03d}" for i in range(200)}
            assert kv._channel(0)._conn is conn and conn.next_id > 400 and len(conn.calls) == 1
            # with only the watch left, the deadline sweeper stops (the watch has no deadline)
            await asyncio.sleep(2 * grpc_h2.SWEEP_INTERVAL)
            assert conn._sweeper is None and conn.streams == {}
            await it.aclose()  # type: ignore[attr-defined]

    run(loop_name, body)


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_etcd_restart_mid_watch(how: str, loop_name: str) -> None:  # noqa: F811
    # the watch ends with Unavailable when etcd goes (crashed, or stopped gracefully: GOAWAY
    # first); a new one resumes from the next revision
    with EtcdServer() as srv:

        async def body() -> None:
            async with EtcdKV([srv.endpoint]) as kv:
                it = kv.watch("/r/", 0)
                task = await _started(kv, it)
                rev = (await kv.txn([], [Put("/r/a", b"1")])).revision
                assert [e.key for e in await task] == ["/r/a"]
                rest = asyncio.create_task(_events(it, 1))
                await asyncio.sleep(0.1)
                srv.kill() if how == "kill" else srv.stop()
                with pytest.raises(Unavailable):
                    await asyncio.wait_for(rest, 5)
                srv.start()
                await kv.txn([], [Put("/r/b", b"2")])
                again = kv.watch("/r/", rev + 1)
                (ev,) = await _events(again, 1)
                assert ev.key == "/r/b" and ev.value == b"2" and ev.prev_value is None
                await kv.txn([], [Put("/r/b", b"3")])
                (ev,) = await _events(again, 1)
                assert ev.value == b"3" and ev.prev_value == b"2"
                await again.aclose()  # type: ignore[attr-defined]

        run(loop_name, body)


def test_watch_fails_over_to_the_next_endpoint(etcd_server: EtcdServer, loop_name: str) -> None:  # noqa: F811
    async def body() -> None:
        async with EtcdKV(["http://127.0.0.1:1", etcd_server.endpoint], timeout=2.0) as kv:
            with pytest.raises(Unavailable):
                await _events(kv.watch("/f/", 0), 1)
            assert kv._current == 1
            it = kv.watch(f"/h2s/{loop_name}/f/", 0)
            task = await _started(kv, it)
            await kv.txn([], [Put(f"/h2s/{loop_name}/f/a", b"1")])
            assert [e.key for e in await task] == [f"/h2s/{loop_name}/f/a"]
            await it.aclose()  # type: ignore[attr-defined]

    run(loop_name, body)


def test_watch_over_tls(tmp_path, loop_name: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    # etcd 3.4 serves gRPC over TLS through Go's own HTTP/2 server, not grpc-go's
    ca, cert, key = _make_pki(str(tmp_path))
    with EtcdServer(tls=(ca, cert, key)) as srv:

        async def body() -> None:
            async with EtcdKV([srv.endpoint], ca_file=ca, cert_file=cert, key_file=key) as kv:
                it = kv.watch("/t/", 0)
                task = await _started(kv, it)
                big = b"x" * (300 * 1024)
                await kv.txn([], [Put("/t/a", b"1")])
                await kv.txn([], [Put("/t/b", big)])
                got = (await task) + await _events(it, 1)
                assert [(e.key, e.value) for e in got] == [("/t/a", b"1"), ("/t/b", big)]
                await it.aclose()  # type: ignore[attr-defined]

        run(loop_name, body)


def test_keepalive_finds_a_dead_peer(loop_name: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # shortened: PING after 1 s of silence, 0.5 s for its ACK (etcd told to accept such pings)
    monkeypatch.setattr(grpc_h2, "KEEPALIVE_TIME", 1.0)
    monkeypatch.setattr(grpc_h2, "KEEPALIVE_TIMEOUT", 0.5)
    with EtcdServer(extra_args=["--grpc-keepalive-min-time", "500ms"]) as srv:
        assert srv.proc is not None
        pid = srv.proc.pid

        async def body() -> None:
            async with EtcdKV([srv.endpoint]) as kv:
                it = kv.watch("/k/", 0)
                task = await _started(kv, it)
                conn = kv._channel(0)._conn
                assert conn is not None
                # an idle watch on a live etcd: pings are answered, the connection stays
                await asyncio.sleep(3.5)
                assert not task.done() and conn.error is None and kv._channel(0)._conn is conn
                os.kill(pid, signal.SIGSTOP)  # our own etcd child, by PID
                try:
                    t0 = time.monotonic()
                    with pytest.raises(Unavailable, match="PING"):
                        await asyncio.wait_for(task, 10)
                    # silence for KEEPALIVE_TIME, then the ACK's KEEPALIVE_TIMEOUT (and slack
                    # for a loaded machine)
                    assert time.monotonic() - t0 < 1.0 + 0.5 + 2.0
                    assert not conn.usable
                finally:
                    os.kill(pid, signal.SIGCONT)
                it = kv.watch("/k/", 0)
                task = await _started(kv, it)
                await kv.txn([], [Put("/k/a", b"1")])
                assert [e.key for e in await task] == ["/k/a"]
                assert kv._channel(0)._conn is not conn
                await it.aclose()  # type: ignore[attr-defined]

        try:
            run(loop_name, body)
        finally:
            os.kill(pid, signal.SIGCONT)  # never leave it stopped (close() then stops it)


class _StreamingPeer:
    """A loopback HTTP/2 peer that answers each streaming call, once it has the call's first
    request message, with ``chunks`` as DATA frames (the second one padded) and then the
    trailers ``status``; a call whose path ends in ``/TrailersOnly`` gets only trailers."""

    def __init__(self, chunks: list[bytes], status: str, message: str = "") -> None:
        self.chunks, self.status, self.message = chunks, status, message
        self.requests: list[bytes] = []
        self.resets: list[tuple[int, int]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import struct

        from kubeha.storage import hpack

        def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
            return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

        trailers = hpack.literal("grpc-status", self.status)
        if self.message:
            trailers += hpack.literal("grpc-message", self.message)
        ok = hpack.literal(":status", "200") + hpack.literal("content-type", "application/grpc")
        assert await reader.readexactly(24) == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        writer.write(frame(4, 0, 0))
        paths: dict[int, str] = {}
        decoder = hpack.Decoder()
        try:
            while True:
                head = await reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                ftype, flags, sid = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = await reader.readexactly(length)
                if ftype == 4 and not flags & 1:
                    writer.write(frame(4, 1, 0))
                elif ftype == 1:
                    paths[sid] = dict(decoder.decode(payload))[":path"]
                    if paths[sid].endswith("/TrailersOnly"):
                        writer.write(frame(1, 5, sid, ok + trailers))
                elif ftype == 3:
                    self.resets.append((sid, int.from_bytes(payload, "big")))
                elif ftype == 0:
                    self.requests.append(payload)
                    writer.write(frame(1, 4, sid, ok))
                    for i, chunk in enumerate(self.chunks):
                        if i == 1:  # PADDED: pad length, data, padding
                            writer.write(frame(0, 0x8, sid, b"\x03" + chunk + b"\0\0\0"))
                        else:
                            writer.write(frame(0, 0, sid, chunk))
                    writer.write(frame(1, 5, sid, trailers))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("status", ["0", "5"])
def test_messages_framed_any_way_and_the_trailers(status: str, loop_name: str) -> None:  # noqa: F811
    import struct

    msgs = [b"a" * 10, b"", b"b" * 70_000, b"c" * 3]
    wire = b"".join(struct.pack(">BI", 0, len(m)) + m for m in msgs)
    # split inside a length prefix, several messages in one frame, one message over many frames
    cuts = [0, 3, 20, 40, *range(1000, len(wire), 16_000), len(wire)]
    chunks = [wire[a:b] for a, b in itertools.pairwise(cuts)]

    async def body() -> None:
        peer = _StreamingPeer(chunks, status, "not%20found" if status == "5" else "")
        server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
        ch = grpc_h2.Channel("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            call = await ch.stream("/test.S/Stream")
            await call.send(b"hello")
            got = [await call.recv() for _ in msgs]
            assert got == msgs
            if status == "0":
                assert await call.recv() is None
                assert await call.recv() is None
            else:
                with pytest.raises(GrpcError) as info:
                    await call.recv()
                assert info.value.status == 5 and info.value.message == "not found"
            with pytest.raises(GrpcError):
                await call.send(b"more")
            call.cancel()  # already ended: nothing more is sent

            only = await ch.stream("/test.S/TrailersOnly")
            with pytest.raises(GrpcError) if status != "0" else contextlib.nullcontext():
                assert await only.recv() is None
            await asyncio.sleep(0.1)
            assert peer.requests == [struct.pack(">BI", 0, 5) + b"hello"]
            # the server ended both calls: we closed our sides of them, with NO_ERROR
            assert peer.resets == [(call.id, 0), (only.id, 0)]
            conn = ch._conn
            assert conn is not None and conn.calls == {} and conn._keepalive is None
        finally:
            await ch.close()
            server.close()
            await server.wait_closed()

    run(loop_name, body)
