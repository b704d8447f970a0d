"""HPACK decoding (RFC 7541) for the etcd client's HTTP/2 connection: the RFC's own examples."""

from __future__ import annotations

import pytest

from kubeha.storage import hpack


def test_huffman_string() -> None:
    # RFC 7541 C.4.1: "www.example.com"
    assert hpack.huffman_decode(bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")) == b"www.example.com"
    assert hpack.huffman_decode(bytes.fromhex("a8eb10649cbf")) == b"no-cache"


def test_huffman_rejects_bad_padding() -> None:
    # padding must be a prefix of EOS (all ones) and shorter than a byte
    assert hpack.huffman_decode(b"\x1f") == b"a"  # "a" is 00011, then 111 of padding
    with pytest.raises(hpack.HpackError):
        hpack.huffman_decode(b"\x18")  # "a" then 000
    with pytest.raises(hpack.HpackError):
        hpack.huffman_decode(b"\x1f\xff")  # a whole byte of padding
    with pytest.raises(hpack.HpackError):
        hpack.huffman_decode(b"\xff\xff\xff\xff")  # EOS itself


def test_request_sequence_with_huffman_and_dynamic_table() -> None:
    # RFC 7541 C.4.1 - C.4.3: one decoder across three requests
    d = hpack.Decoder()
    first = d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
    assert first == [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    assert d.size == 57
    second = d.decode(bytes.fromhex("828684be5886a8eb10649cbf"))
    assert second == [*first, ("cache-control", "no-cache")]
    assert d.size == 110
    third = d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    assert third == [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ]
    assert d.size == 164
    assert d.table[0] == ("custom-key", "custom-value")


def test_eviction_and_size_update() -> None:
    d = hpack.Decoder(max_table_size=100)
    d.decode(b"\x40" + b"\x01a" + b"\x01b")  # 34 bytes
    d.decode(b"\x40" + b"\x01c" + b"\x01d")  # 68
    d.decode(b"\x40" + b"\x01e" + b"\x01f")  # 102 > 100: the oldest goes
    assert list(d.table) == [("e", "f"), ("c", "d")]
    assert d.decode(bytes([0x80 | 62])) == [("e", "f")]
    d.decode(b"\x20")  # table size 0 empties the table
    assert not d.table
    with pytest.raises(hpack.HpackError):
        d.decode(bytes([0x80 | 62]))
    with pytest.raises(hpack.HpackError):
        d.decode(b"\x3f\xe1\x1f")  # a size above what we advertised


def test_remembered_blocks_follow_table_changes() -> None:
    # the same indexed block means something else once the table changed
    d = hpack.Decoder()
    d.decode(b"\x40\x01x\x011")
    block = bytes([0x80 | 62])
    assert d.decode(block) == [("x", "1")]
    assert d.decode(block) == [("x", "1")]
    d.decode(b"\x40\x01y\x012")
    assert d.decode(block) == [("y", "2")]


def test_literal_encoding_round_trips() -> None:
    block = hpack.literal(":path", "/etcdserverpb.KV/Range") + hpack.literal("te", "trailers")
    block += hpack.literal("x-long", "v" * 300)  # a length past the 7-bit prefix
    d = hpack.Decoder()
    assert d.decode(block) == [(":path", "/etcdserverpb.KV/Range"), ("te", "trailers"), ("x-long", "v" * 300)]
    assert not d.table  # literals without indexing leave the table alone


def test_truncated_blocks() -> None:
    d = hpack.Decoder()
    for bad in (b"\x04", b"\x04\x05ab", b"\xff", b"\x00\x81"):
        with pytest.raises(hpack.HpackError):
            d.decode(bad)
