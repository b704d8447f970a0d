"""The duplicate-field check's fast path agrees with the full parse."""

from __future__ import annotations

import pytest

from kubeha.api import decode


@pytest.mark.parametrize(
    ("body", "dups"),
    [
        (b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}', []),
        # the same key in two different objects is not a duplicate (slow path decides)
        (b'{"metadata":{"name":"a"},"spec":{"name":"b"}}', []),
        (b'{"metadata":{"name":"a","name":"b"}}', ["metadata.name"]),
        # an escaped spelling of the same key is still the same key
        (b'{"metadata":{"name":"a","n\\u0061me":"b"}}', ["metadata.name"]),
        # a value equal to a key does not hide a real duplicate
        (b'{"a":"b","b":1,"b":2}', ["b"]),
    ],
)
def test_duplicates_found_with_and_without_fast_path(body: bytes, dups: list[str]) -> None:
    assert decode.find_duplicate_fields(body) == dups


def test_fast_path_only_for_bodies_without_repeated_strings() -> None:
    assert decode._all_strings_distinct(b'{"a":"x","b":"y"}')
    assert not decode._all_strings_distinct(b'{"a":"x","b":"x"}')
    assert not decode._all_strings_distinct(b'{"a":"\\"x"}')
