from __future__ import annotations

import copy
import importlib.util
import struct
from pathlib import Path
from typing import Any

import pytest

from kubeha.api import errors, protobuf, schema
from kubeha.api.protobuf import MAGIC, decode_body, encode_body
from tests.unit._codec_structs import GROUP, KUBECTL_EXPECTED, MIMIC_KINDS

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
BENCH = Path(__file__).parents[2] / "benchmarks" / "codec_bench.py"


def foo(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Foo",
        "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "1", "a": "2"}},
        "spec": spec,
        "status": {"phase": "Running", "observed": 3},
    }


def uv(v: int) -> bytes:
    return protobuf._uvarint(v)


def ld(n: int, data: bytes) -> bytes:
    return protobuf._ld(n, data)


def envelope(raw: bytes, api_version: str = f"{GROUP}/v1", kind: str = "Foo") -> bytes:
    return MAGIC + ld(1, ld(1, api_version.encode()) + ld(2, kind.encode())) + ld(2, raw)


FULL_SPEC: dict[str, Any] = {
    "replicas": 3,
    "paused": True,
    "items": [{"name": "one", "value": -7, "opts": {"o": {"on": True, "level": "high"}}}, {"name": "two"}],
    "ratio": 0.25,
    "data": {"k": "aGVsbG8="},
    "qty": "100m",
    "port": "http",
    "raw": {"kind": "X", "n": [1, 2]},
    "when": "2024-01-02T03:04:05.123456Z",
    "tags": ["a", "b"],
    "nums": [1, -1, 2**40],
    "free": {"f:metadata": {"f:labels": {}}},
    "mode": "Fast",
    "big": -(2**62),
    "strategy": "Recreate",
    "next": {"replicas": 0, "port": 8080},
    "groups": {"g": ["x", "y"], "h": []},
    "flags": [True, False],
    "weights": [1.5, -2.0],
    "limits": {"cpu": "2", "memory": "1Gi"},
    "zero": 0,
    "empty": "",
}


def test_round_trip_every_type() -> None:
    obj = foo(**FULL_SPEC)
    obj["metadata"]["creationTimestamp"] = "2024-01-02T03:04:05Z"
    obj["metadata"]["deletionGracePeriodSeconds"] = 0
    body = encode_body(obj)
    assert body.startswith(MAGIC)
    assert decode_body(body) == obj


def test_top_level_keys_come_first() -> None:
    assert list(decode_body(encode_body(foo(paused=True))))[:2] == ["apiVersion", "kind"]


def test_zero_values_dropped_unless_pointer() -> None:
    spec = {
        "paused": False,
        "ratio": 0.0,
        "mode": "",
        "big": 0,
        "port": 0,
        "qty": "1",
        "zero": 0,
        "empty": "",
        "replicas": 0,
    }
    out = decode_body(encode_body(foo(**spec)))
    assert out["spec"] == {"qty": "1", "zero": 0, "empty": "", "replicas": 0}
    # an empty nested struct is kept: Go never omits a non-pointer struct
    assert decode_body(encode_body(foo()))["spec"] == {}


def test_go_style_explicit_zero_scalars() -> None:
    # Go writes non-pointer scalars even when zero; the JSON form omits them.
    spec = ld(13, b"") + b"\x10\x00" + b"\x70\x00" + b"\x08\x00"
    out = decode_body(envelope(ld(2, spec)))
    assert out["spec"] == {"replicas": 0}


def test_negative_varints_twos_complement() -> None:
    neg = uv((1 << 64) - 5)  # -5 as Go writes it: 10-byte varint
    assert len(neg) == 10
    spec = b"\x08" + neg + b"\x70" + neg
    assert decode_body(envelope(ld(2, spec)))["spec"] == {"replicas": -5, "big": -5}


def test_packed_and_unpacked_repeated_numbers() -> None:
    packed = ld(11, uv(1) + uv(300) + uv((1 << 64) - 1)) + b"\x58" + uv(7)  # then one unpacked
    flags = ld(18, b"\x01\x00\x01")
    weights = ld(19, struct.pack("<2d", 1.0, 2.5)) + b"\x99\x01" + struct.pack("<d", 3.0)
    out = decode_body(envelope(ld(2, packed + flags + weights)))
    assert out["spec"] == {"nums": [1, 300, -1, 7], "flags": [True, False, True], "weights": [1.0, 2.5, 3.0]}


def test_special_types() -> None:
    time_msg = ld(8, b"\x08" + uv(1704164645))  # seconds only
    micro = ld(9, b"\x08" + uv(1704164645) + b"\x10" + uv(123456789))
    ios_int = ld(7, b"\x08\x00\x10" + uv(8080))
    qty = ld(6, ld(1, b"1Gi"))
    raw = ld(8, ld(1, b'{"a":1}'))
    out = decode_body(envelope(ld(1, ld(1, b"a") + time_msg) + ld(2, micro + ios_int + qty + raw)))
    assert out["metadata"] == {"name": "a", "creationTimestamp": "2024-01-02T03:04:05Z"}
    assert out["spec"] == {"when": "2024-01-02T03:04:05.123456Z", "port": 8080, "qty": "1Gi", "raw": {"a": 1}}


def test_zero_time_is_omitted() -> None:
    # Go's zero metav1.Time is an empty message (kubectl sends creationTimestamp like this)
    out = decode_body(envelope(ld(1, ld(1, b"a") + ld(8, b""))))
    assert out["metadata"] == {"name": "a"}


def test_unknown_field_numbers_skipped() -> None:
    junk = b"\xf8\x07" + uv(5) + ld(99, b"whatever") + b"\xfd\x07" + b"\x00" * 4 + b"\xf9\x07" + b"\x00" * 8
    out = decode_body(envelope(ld(2, junk + b"\x10\x01")))
    assert out["spec"] == {"paused": True}


def test_map_entry_without_value_holds_zero() -> None:
    out = decode_body(envelope(ld(1, ld(11, ld(1, b"k")))))
    assert out["metadata"] == {"labels": {"k": ""}}


def test_embedded_protobuf_raw_extension() -> None:
    inner = encode_body(foo(paused=True))
    out = decode_body(envelope(ld(2, ld(8, ld(1, inner)))))
    assert out["spec"]["raw"]["spec"] == {"paused": True}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"k8s",
        b"{}",
        MAGIC + b"\x0a\x05\x0a",  # truncated typeMeta
        MAGIC + b"\x0a",
        envelope(b"\x12\x05ab"),  # truncated nested message
        envelope(b"\x12"),
        envelope(b"\x08\x80"),  # truncated varint (wrong type too)
        envelope(ld(2, b"\x08" + b"\xff" * 11)),  # overlong varint
        envelope(ld(2, b"\x0b")),  # group wire type
        envelope(ld(2, ld(1, b"x"))),  # wrong wire type for an int field
        envelope(ld(2, b"\x12\x01")),  # bool with length-delimited wire type
        envelope(ld(2, ld(3, ld(1, b"\xff\xfe")))),  # invalid UTF-8
        envelope(ld(2, ld(8, ld(1, b"{not json")))),
        envelope(ld(2, b"\x21\x00\x00")),  # truncated double
        envelope(b"", kind="Nope"),
        envelope(b"", api_version="", kind="Foo"),
        envelope(b"", kind=""),
        MAGIC + ld(1, ld(1, b"v1") + ld(2, b"Foo")) + ld(3, b"gzip"),
    ],
)
def test_malformed_is_bad_request(body: bytes) -> None:
    with pytest.raises(errors.StatusError) as e:
        decode_body(body)
    assert e.value.code == 400


def test_fuzz_truncations_never_crash() -> None:
    body = encode_body(foo(**FULL_SPEC))
    for cut in range(len(MAGIC), len(body)):
        try:
            decode_body(body[:cut])
        except errors.StatusError as e:
            assert e.code == 400
    flipped = bytearray(body)
    for i in range(len(MAGIC), len(body)):
        b = bytearray(flipped)
        b[i] ^= 0xFF
        try:
            decode_body(bytes(b))
        except errors.StatusError as e:
            assert e.code == 400


@pytest.fixture
def mimic_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    for gvk, s in MIMIC_KINDS.items():
        monkeypatch.setitem(schema.KINDS, gvk, s)


@pytest.mark.parametrize("name", sorted(KUBECTL_EXPECTED))
def test_kubectl_fixtures_with_mimic_schema(name: str, mimic_kinds: None) -> None:
    body = (FIXTURES / f"{name}.bin").read_bytes()
    assert decode_body(body) == KUBECTL_EXPECTED[name]


def _real_kinds() -> bool:
    try:
        from kubeha.api import registry

        registry.load_all()
    except ImportError:
        return False
    return all(gvk in schema.KINDS and not schema.KINDS[gvk].name.startswith("test.") for gvk in MIMIC_KINDS)


@pytest.mark.parametrize("name", sorted(KUBECTL_EXPECTED))
def test_kubectl_fixtures_with_real_schema(name: str) -> None:
    if not _real_kinds():
        pytest.skip("real kind declarations not available yet")
    body = (FIXTURES / f"{name}.bin").read_bytes()
    out = decode_body(body)
    assert out == KUBECTL_EXPECTED[name]
    assert decode_body(encode_body(out)) == out


def test_inline_embedded_struct() -> None:
    spec = {"items": [{"name": "x", "cmd": "run", "args": ["-v"]}, {"name": "y"}]}
    body = encode_body(foo(**spec))
    # in protobuf the embedded fields travel in their own message, field 4 of Item
    assert ld(4, ld(1, b"run") + ld(2, b"-v")) in body
    assert decode_body(body)["spec"] == spec


def _bench_objects() -> Any:
    spec = importlib.util.spec_from_file_location("kubeha_codec_bench", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["POD", "DEPLOYMENT"])
def test_real_objects_round_trip(name: str) -> None:
    if not _real_kinds() or ("", "v1", "Pod") not in schema.KINDS:
        pytest.skip("real kind declarations not available yet")
    obj = copy.deepcopy(getattr(_bench_objects(), name))
    assert decode_body(encode_body(obj)) == obj
