"""Request limits: nesting depth, integer query parameters, deep patches and YAML (hostile input)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeha.api import decode, errors
from kubeha.apiserver import limits
from kubeha.apiserver import negotiation as neg


def nest_lists(depth: int) -> Any:
    v: Any = []
    for _ in range(depth - 1):
        v = [v]
    return v


def nest_dicts(depth: int) -> Any:
    v: Any = {"a": 1}
    for _ in range(depth - 1):
        v = {"a": v}
    return v


def test_depth_counts_dicts_and_lists_without_recursion() -> None:
    assert not limits.nesting_depth_exceeded("scalar", 0)
    assert not limits.nesting_depth_exceeded(nest_lists(5), 5)
    assert limits.nesting_depth_exceeded(nest_lists(6), 5)
    assert not limits.nesting_depth_exceeded(nest_dicts(5), 5)
    assert limits.nesting_depth_exceeded({"x": [{"y": [1]}]}, 3)
    # far deeper than Python's stack: still answered (iteratively)
    assert limits.nesting_depth_exceeded(nest_lists(50_000), limits.MAX_NESTING_DEPTH)


def test_check_nesting_is_a_400() -> None:
    with pytest.raises(errors.StatusError) as e:
        limits.check_nesting(nest_dicts(limits.MAX_NESTING_DEPTH + 1), "patch")
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert "patch exceeds the maximum nesting depth" in e.value.message
    limits.check_nesting(nest_dicts(limits.MAX_NESTING_DEPTH))


@pytest.mark.parametrize("raw", ["abc", "1.5", " 1", "1_000", "١٢", "9223372036854775808", "--1"])
def test_query_int_refuses_what_go_refuses(raw: str) -> None:
    with pytest.raises(errors.StatusError) as e:
        limits.query_int({"timeoutSeconds": raw}, "timeoutSeconds")
    assert e.value.code == 400 and e.value.message == f'timeoutSeconds: Invalid value: "{raw}"'


def test_query_int_accepts_integers_and_absence() -> None:
    assert limits.query_int({}, "limit") is None
    assert limits.query_int({"limit": ""}, "limit") is None
    assert limits.query_int({"limit": "-1"}, "limit") == -1
    assert limits.query_int({"limit": "+30"}, "limit") == 30


@pytest.mark.parametrize(
    "ctype",
    [neg.MERGE_PATCH, neg.STRATEGIC_PATCH, neg.JSON_PATCH],
)
def test_deep_patch_documents_are_400_not_recursion(ctype: str) -> None:
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    body = b'[{"op":"add","path":"/x","value":' + deep + b"}]" if ctype == neg.JSON_PATCH else deep
    with pytest.raises(errors.StatusError) as e:
        neg.decode_patch(ctype, body)
    assert e.value.code == 400


def test_moderately_deep_patch_hits_our_limit() -> None:
    depth = limits.MAX_NESTING_DEPTH + 5  # within orjson's own limit, past ours
    body = b'{"a":' * depth + b"1" + b"}" * depth
    with pytest.raises(errors.StatusError) as e:
        neg.decode_patch(neg.MERGE_PATCH, body)
    assert "maximum nesting depth" in e.value.message
    with pytest.raises(errors.StatusError) as e:
        neg.decode_object(neg.JSON, body)
    assert "maximum nesting depth" in e.value.message


def test_deep_block_yaml_is_400() -> None:
    depth = 990  # under libyaml's own 1,000-level limit, past Python's stack in the walk
    body = (
        b"metadata: {name: m}\nx:\n" + b"".join(b" " * (i + 1) + b"a:\n" for i in range(depth)) + b" " * depth + b" 1\n"
    )
    with pytest.raises(errors.StatusError) as e:
        decode.loads_yaml(body)
    assert e.value.code == 400 and "exceeded max depth" in e.value.message


def test_shallow_bodies_still_decode() -> None:
    obj = neg.decode_object(neg.JSON, b'{"metadata":{"name":"a"},"data":{"k":"v"}}')
    assert obj["data"] == {"k": "v"}
    assert neg.decode_patch(neg.JSON_PATCH, b'[{"op":"remove","path":"/data/k"}]')[1][0]["op"] == "remove"
