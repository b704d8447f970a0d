"""etcd's request messages written straight to protobuf wire bytes.

The hot requests (a create or an update is one Txn, a get is one Range) are a handful of
fields; building them as nested protobuf objects (Compare, RequestOp, PutRequest...) cost more
than the rest of the etcd call. The field numbers are etcd's ``rpc.proto`` (etcdserverpb); the
result is byte-for-byte what the protobuf library produces (tests/unit/test_etcdwire.py), and
responses are still parsed by the generated classes.
"""

from __future__ import annotations

from collections.abc import Iterable

# Compare.CompareResult / Compare.CompareTarget
EQUAL = 0
TARGET_CREATE = 1
TARGET_MOD = 2


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    if n < 0:
        n &= (1 << 64) - 1  # int64: two's complement in ten bytes, as protobuf does
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes_field(tag: int, value: bytes) -> bytes:
    # tag = (field number << 3) | 2 (length-delimited); every tag used here fits one byte
    return bytes((tag,)) + _varint(len(value)) + value


def _int_field(tag: int, value: int) -> bytes:
    return bytes((tag,)) + _varint(value) if value else b""


def range_request(
    key: bytes,
    range_end: bytes = b"",
    *,
    limit: int = 0,
    revision: int = 0,
    serializable: bool = False,
    count_only: bool = False,
) -> bytes:
    """RangeRequest: key=1, range_end=2, limit=3, revision=4, serializable=7, count_only=9."""
    out = _bytes_field(0x0A, key) if key else b""
    if range_end:
        out += _bytes_field(0x12, range_end)
    out += _int_field(0x18, limit) + _int_field(0x20, revision)
    if serializable:
        out += b"\x38\x01"
    if count_only:
        out += b"\x48\x01"
    return out


def compare(key: bytes, mod_revision: int) -> bytes:
    """Compare: result=1, target=2, key=3, create_revision=5, mod_revision=6. Revision 0 means
    "absent": CREATE == 0, etcd's documented idiom. The revisions are members of a oneof, so
    create_revision 0 is written out (etcd needs to know which member is set)."""
    if mod_revision == 0:
        return _int_field(0x10, TARGET_CREATE) + _bytes_field(0x1A, key) + b"\x28\x00"
    return _int_field(0x10, TARGET_MOD) + _bytes_field(0x1A, key) + _int_field(0x30, mod_revision)


def put_op(key: bytes, value: bytes) -> bytes:
    """RequestOp{request_put=2: PutRequest{key=1, value=2}}."""
    return _bytes_field(0x12, _bytes_field(0x0A, key) + (_bytes_field(0x12, value) if value else b""))


def delete_op(key: bytes) -> bytes:
    """RequestOp{request_delete_range=3: DeleteRangeRequest{key=1}}."""
    return _bytes_field(0x1A, _bytes_field(0x0A, key))


def range_op(key: bytes) -> bytes:
    """RequestOp{request_range=1: RangeRequest{key=1}}."""
    return _bytes_field(0x0A, _bytes_field(0x0A, key))


def txn_request(compares: Iterable[bytes], success: Iterable[bytes], failure: Iterable[bytes]) -> bytes:
    """TxnRequest: compare=1, success=2, failure=3 (each an encoded message from above)."""
    parts = [_bytes_field(0x0A, c) for c in compares]
    parts += [_bytes_field(0x12, op) for op in success]
    parts += [_bytes_field(0x1A, op) for op in failure]
    return b"".join(parts)
