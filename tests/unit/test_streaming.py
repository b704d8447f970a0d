"""Channel framing, exec Status frames, the SPDY/3 codec and the exec session driver (fakes, no sockets)."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib

from kubeha.kubelet import streaming as s


def test_frames_and_resize() -> None:
    assert s.frame(s.STDOUT, b"hi") == b"\x01hi"
    assert s.parse_frame(b"\x00abc") == (0, b"abc")
    assert s.parse_frame(b"") is None
    assert s.parse_resize(b'{"Width":80,"Height":24}') == (80, 24)
    assert s.parse_resize(b"nope") is None
    assert s.port_frame(2, 8080) == b"\x02\x90\x1f"


def test_negotiation_prefers_v5() -> None:
    offered = s.offered_protocols("v4.channel.k8s.io, v5.channel.k8s.io")
    assert s.negotiate(offered, s.EXEC_PROTOCOLS) == s.V5
    assert s.negotiate(["v3.channel.k8s.io"], s.EXEC_PROTOCOLS) is None
    assert s.negotiate(["SPDY/3.1+portforward.k8s.io"], s.PORTFORWARD_PROTOCOLS) == s.SPDY_PORTFORWARD


def test_exit_status_frames() -> None:
    ok = s.status_frame(s.V5, s.exit_status(0))
    assert ok is not None and ok[0] == s.ERROR and json.loads(ok[1:])["status"] == "Success"
    bad = s.status_frame(s.V4, s.exit_status(3))
    assert bad is not None
    st = json.loads(bad[1:])
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode"
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    # the v1 protocol: nothing on success, a plain text otherwise
    assert s.status_frame(s.V1, s.exit_status(0)) is None
    v1 = s.status_frame(s.V1, s.exit_status(None, "boom"))
    assert v1 == b"\x03boom"


def test_spdy_dictionary_is_the_spdy3_one() -> None:
    d = s.SPDY_DICTIONARY
    assert len(d) == 1423
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06200 OK" in d and d.endswith(b"enq=0.")


def test_spdy_syn_stream_round_trip_across_split_messages() -> None:
    client, server = s.SpdyCodec(), s.SpdyCodec()
    wire = client.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"})
    wire += client.syn_stream(3, {"streamType": "data", "port": "80", "requestID": "0"})
    wire += s.data_frame(3, b"GET / HTTP/1.0\r\n\r\n", fin=True)
    frames = []
    for i in range(0, len(wire), 5):  # the tunnel may cut frames anywhere
        frames += server.feed(wire[i : i + 5])
    assert [f.type for f in frames[:2]] == [s.SYN_STREAM, s.SYN_STREAM]
    assert frames[0].headers == {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}
    assert frames[1].stream_id == 3
    assert not frames[2].control and frames[2].data.startswith(b"GET") and frames[2].flags & s.FLAG_FIN
    reply = server.syn_reply(3)
    back = client.feed(reply)
    assert back[0].type == s.SYN_REPLY and back[0].stream_id == 3 and back[0].headers == {}


def test_spdy_header_block_uses_the_dictionary() -> None:
    codec = s.SpdyCodec()
    block = codec.header_block({"port": "80"})
    # a plain inflater cannot read it without the dictionary: it asks for one
    try:
        zlib.decompressobj().decompress(block)
        raise AssertionError("expected a dictionary request")
    except zlib.error:
        pass
    raw = zlib.decompressobj(zdict=s.SPDY_DICTIONARY).decompress(block)
    assert raw == struct.pack(">I", 1) + struct.pack(">I", 4) + b"port" + struct.pack(">I", 2) + b"80"


class FakeSocket:
    def __init__(self, incoming: list[bytes]) -> None:
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        for m in incoming:
            self.incoming.put_nowait(m)
        self.sent: list[bytes] = []
        self.closed = False

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive_message(self) -> bytes | None:
        return await self.incoming.get()

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed = True


class FakeProc:
    """Echoes stdin to stdout; exits with the code it is told once stdin closes."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.out: asyncio.Queue[bytes] = asyncio.Queue()
        self.done = asyncio.Event()
        self.sizes: list[tuple[int, int]] = []

    async def write_stdin(self, data: bytes) -> None:
        await self.out.put(data.upper())

    async def close_stdin(self) -> None:
        if not self.done.is_set():
            await self.out.put(b"")
            self.done.set()

    async def read_stdout(self) -> bytes:
        return await self.out.get()

    async def read_stderr(self) -> bytes:
        return b""

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def wait(self) -> int:
        await self.done.wait()
        return self.code

    async def kill(self) -> None:
        await self.close_stdin()


async def test_serve_exec_v5_stdin_resize_close_and_status() -> None:
    ws = FakeSocket([b"\x04" + b'{"Width":100,"Height":40}', b"\x00abc", b"\xff\x00"])
    proc = FakeProc(7)
    code = await s.serve_exec(ws, s.V5, proc, s.ExecOptions(stdin=True, tty=True))
    assert code == 7 and ws.closed
    assert proc.sizes == [(100, 40)]
    assert ws.sent[0] == b"\x01ABC"
    st = json.loads(ws.sent[-1][1:])
    assert ws.sent[-1][0] == s.ERROR and st["details"]["causes"][0]["message"] == "7"


async def test_serve_exec_v4_ignores_close_frame_until_client_leaves() -> None:
    ws = FakeSocket([b"\x00x", b"\xff\x00"])
    proc = FakeProc(0)
    task = asyncio.create_task(s.serve_exec(ws, s.V4, proc, s.ExecOptions(stdin=True)))
    for _ in range(10):  # let the session consume both messages
        await asyncio.sleep(0)
    assert ws.sent == [b"\x01X"]
    assert not proc.done.is_set()  # v4 has no close-stdin message: FF 00 is ignored
    ws.incoming.put_nowait(None)  # the client disconnects: stdin ends
    assert await task == 0
    assert json.loads(ws.sent[-1][1:])["status"] == "Success"
