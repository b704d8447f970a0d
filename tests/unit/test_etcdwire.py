"""Hand-written etcd request bytes equal what etcd's generated protobuf classes produce."""

from __future__ import annotations

import pytest
from aetcd import rpc

from kubeha.storage import etcdwire as wire

KEYS = [b"/registry/configmaps/default/a", b"\0", b"k" * 200, "/registry/ü/ß".encode()]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("range_end", [b"", b"/registry/configmaps0"])
@pytest.mark.parametrize("limit", [0, 1, 500, 2**40])
@pytest.mark.parametrize("revision", [0, 7, 2**31 + 5])
def test_range_request(key: bytes, range_end: bytes, limit: int, revision: int) -> None:
    want = rpc.RangeRequest(key=key, range_end=range_end, limit=limit, revision=revision).SerializeToString()
    assert wire.range_request(key, range_end, limit=limit, revision=revision) == want


def test_range_request_flags() -> None:
    want = rpc.RangeRequest(key=b"health", count_only=True).SerializeToString()
    assert wire.range_request(b"health", count_only=True) == want
    want = rpc.RangeRequest(key=b"x", serializable=True, count_only=True).SerializeToString()
    assert wire.range_request(b"x", serializable=True, count_only=True) == want


@pytest.mark.parametrize("value", [b"", b"{}", b"v" * 70_000])
@pytest.mark.parametrize("mod_revision", [0, 1, 123456789])
def test_txn_request(value: bytes, mod_revision: int) -> None:
    key, other = b"/registry/configmaps/ns/cm", b"/registry/namespaces/ns"
    if mod_revision == 0:
        cmp = rpc.Compare(key=key, result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, create_revision=0)
    else:
        cmp = rpc.Compare(key=key, result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, mod_revision=mod_revision)
    guard = rpc.Compare(key=other, result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, mod_revision=42)
    want = rpc.TxnRequest(
        compare=[cmp, guard],
        success=[
            rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value)),
            rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=other)),
        ],
        failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k)) for k in (key, other)],
    ).SerializeToString()
    got = wire.txn_request(
        [wire.compare(key, mod_revision), wire.compare(other, 42)],
        [wire.put_op(key, value), wire.delete_op(other)],
        [wire.range_op(key), wire.range_op(other)],
    )
    assert got == want
    # and it reads back as the same message
    assert rpc.TxnRequest.FromString(got) == rpc.TxnRequest.FromString(want)
