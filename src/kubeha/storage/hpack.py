"""HPACK (RFC 7541) for the etcd client's HTTP/2 connection: a full decoder and the one encoding
we send (literal header fields without indexing, no Huffman).

Only what a gRPC client needs: requests never touch the server's dynamic table, responses are
decoded with the static table, the dynamic table and Huffman strings. Decoded header blocks that
leave the dynamic table alone (gRPC servers answer every call with the same few indexed fields)
are remembered, so the steady state decodes nothing.
"""

from __future__ import annotations

from collections import deque


class HpackError(Exception):
    """A malformed header block (a connection error: the HPACK state is lost)."""


STATIC_TABLE: tuple[tuple[str, str], ...] = (
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
)
STATIC_INDEX = {name: i + 1 for i, (name, _) in reversed(list(enumerate(STATIC_TABLE)))}

# Appendix B's Huffman code is canonical: the code length of each symbol (0..255, then EOS as
# 256) determines every code. Lengths are stored as letters, "A" meaning 5 bits.
_HUFFMAN_LENGTHS = (
    "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBB"
    "ABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXW"
    "WWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ"
)
EOS = 256


def _huffman_codes() -> dict[tuple[int, int], int]:
    lengths = [ord(c) - ord("A") + 5 for c in _HUFFMAN_LENGTHS]
    assert len(lengths) == 257
    order = sorted(range(257), key=lambda s: (lengths[s], s))
    codes: dict[tuple[int, int], int] = {}
    code, prev = 0, lengths[order[0]]
    for i, sym in enumerate(order):
        if i:
            code = (code + 1) << (lengths[sym] - prev)
        prev = lengths[sym]
        codes[(prev, code)] = sym
    return codes


_HUFFMAN = _huffman_codes()


def huffman_decode(data: bytes) -> bytes:
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            if length >= 5:
                sym = _HUFFMAN.get((length, code))
                if sym is not None:
                    if sym == EOS:
                        raise HpackError("EOS symbol in a Huffman string")
                    out.append(sym)
                    code = length = 0
                elif length > 30:
                    raise HpackError("invalid Huffman code")
    # padding: fewer than 8 bits, all ones (a prefix of EOS)
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("invalid Huffman padding")
    return bytes(out)


def encode_int(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer with ``first``'s high bits set in the first octet."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return encode_int(len(raw), 7, 0) + raw


def literal(name: str, value: str) -> bytes:
    """A literal header field without indexing (the static table names it when it can)."""
    index = STATIC_INDEX.get(name)
    if index is not None:
        return encode_int(index, 4, 0) + _string(value)
    return b"\x00" + _string(name) + _string(value)


Headers = list[tuple[str, str]]


class Decoder:
    """One connection's HPACK decoding state."""

    def __init__(self, max_table_size: int = 4096) -> None:
        self.max_allowed = max_table_size  # what we advertised (SETTINGS_HEADER_TABLE_SIZE)
        self.max_size = max_table_size
        self.size = 0
        self.table: deque[tuple[str, str]] = deque()
        self.generation = 0  # bumped on every table change: remembered blocks are per generation
        self._remembered: dict[tuple[int, bytes], Headers] = {}

    def decode(self, block: bytes) -> Headers:
        key = (self.generation, block)
        hit = self._remembered.get(key)
        if hit is not None:
            return hit
        start = self.generation
        headers = self._decode(block)
        if self.generation == start:
            if len(self._remembered) >= 64:
                self._remembered.clear()
            self._remembered[key] = headers
        return headers

    def _entry(self, index: int) -> tuple[str, str]:
        if 0 < index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        d = index - len(STATIC_TABLE) - 1
        if 0 <= d < len(self.table):
            return self.table[d]
        raise HpackError(f"header index {index} out of range")

    def _add(self, name: str, value: str) -> None:
        self.generation += 1
        size = 32 + len(name.encode()) + len(value.encode())
        self.table.appendleft((name, value))
        self.size += size
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            n, v = self.table.pop()
            self.size -= 32 + len(n.encode()) + len(v.encode())

    def _decode(self, data: bytes) -> Headers:
        headers: Headers = []
        pos, end = 0, len(data)
        while pos < end:
            b = data[pos]
            if b & 0x80:  # indexed field
                index, pos = _int(data, pos, 7)
                headers.append(self._entry(index))
            elif b & 0x40:  # literal with incremental indexing
                index, pos = _int(data, pos, 6)
                name, pos = (self._entry(index)[0], pos) if index else _str(data, pos)
                value, pos = _str(data, pos)
                self._add(name, value)
                headers.append((name, value))
            elif b & 0x20:  # dynamic table size update
                size, pos = _int(data, pos, 5)
                if size > self.max_allowed:
                    raise HpackError(f"table size {size} above the advertised {self.max_allowed}")
                self.max_size = size
                self.generation += 1
                self._evict()
            else:  # literal without indexing (0000) or never indexed (0001)
                index, pos = _int(data, pos, 4)
                name, pos = (self._entry(index)[0], pos) if index else _str(data, pos)
                value, pos = _str(data, pos)
                headers.append((name, value))
        return headers


def _int(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HpackError("truncated integer")
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > 28:
            raise HpackError("integer too large")


def _str(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data):
        raise HpackError("truncated string")
    huffman = data[pos] & 0x80
    length, pos = _int(data, pos, 7)
    if pos + length > len(data):
        raise HpackError("truncated string")
    raw = data[pos : pos + length]
    if huffman:
        raw = huffman_decode(raw)
    return raw.decode("utf-8", "replace"), pos + length
