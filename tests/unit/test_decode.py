from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeha.api import decode, errors, schema
from tests.unit._codec_structs import FOO, GROUP


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Foo", "metadata": {"name": "a"}, "spec": spec}


# -- loads / yaml ----------------------------------------------------------------------------------


def test_loads_object() -> None:
    assert decode.loads(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"[1]", b'"x"', b"null", b"\xff"])
def test_loads_rejects(body: bytes) -> None:
    with pytest.raises(errors.StatusError) as e:
        decode.loads(body)
    assert e.value.code == 400
    assert e.value.message.startswith("couldn't get version/kind; json parse error")


def test_loads_yaml_keeps_strings() -> None:
    out = decode.loads_yaml(b"a: 2024-01-02T03:04:05Z\nb: 1\nc: [x, {d: true}]\n1: one\n")
    assert out == {"a": "2024-01-02T03:04:05Z", "b": 1, "c": ["x", {"d": True}], "1": "one"}


def test_loads_yaml_single_doc_marker_ok() -> None:
    assert decode.loads_yaml(b"---\na: b\n") == {"a": "b"}
    assert decode.loads_yaml(b"") == {}


@pytest.mark.parametrize("body", [b"a: 1\n---\nb: 2\n", b"- 1\n- 2\n", b"a: [1\n", b"x"])
def test_loads_yaml_rejects(body: bytes) -> None:
    with pytest.raises(errors.StatusError) as e:
        decode.loads_yaml(body)
    assert e.value.code == 400


# -- duplicates ------------------------------------------------------------------------------------


def test_duplicate_fields_paths() -> None:
    body = b"""{"metadata": {"name": "a", "name": "b"},
      "spec": {"items": [{"name": "x"}, {"name": "y", "value": 1, "value": 2}],
               "nested": [[{"k": 1, "k": 2}]]},
      "kind": "Foo", "kind": "Foo"}"""
    assert sorted(decode.find_duplicate_fields(body)) == sorted(
        ["metadata.name", "spec.items[1].value", "spec.nested[0][0].k", "kind"]
    )


def test_duplicate_fields_none() -> None:
    assert decode.find_duplicate_fields(b'{"a": {"b": [{"c": 1}]}, "d": 2}') == []
    assert decode.find_duplicate_fields(b"{broken") == []


# -- unknown fields --------------------------------------------------------------------------------


def test_unknown_fields_paths() -> None:
    o = obj(
        items=[{"name": "x"}, {"name": "y", "bogus": 1, "opts": {"k": {"on": True, "nope": 1}}}],
        raw={"anything": {"goes": 1}},
        free={"f:x": {}},
        extra=1,
        data={"k": "aGk="},
        next={"what": 2},
    )
    o["metadata"]["surprise"] = True
    o["top"] = 1
    o["spec"]["items"][0].update({"cmd": "run", "": 1})  # inlined fields are known; "" is not
    assert decode.find_unknown_fields(FOO, o) == [
        "metadata.surprise",
        "spec.items[0].",
        "spec.items[1].bogus",
        "spec.items[1].opts[k].nope",
        "spec.extra",
        "spec.next.what",
        "top",
    ]


def test_prune_unknown_reports_what_find_unknown_fields_finds() -> None:
    o = obj(items=[{"name": "y", "bogus": 1, "opts": {"k": {"nope": 1}}}], extra=1, next={"what": 2})
    o["metadata"]["surprise"] = True
    o["top"] = 1
    expected = decode.find_unknown_fields(FOO, copy.deepcopy(o))
    found: list[str] = []
    decode.prune_unknown(FOO, o, found)
    assert found == expected and len(found) == 6
    assert decode.find_unknown_fields(FOO, o) == []


def test_unknown_fields_tolerates_wrong_shapes() -> None:
    # type problems are check_types' job: the unknown-field walk just does not descend
    assert decode.find_unknown_fields(FOO, {"spec": "x", "metadata": None, "status": [1]}) == []
    assert decode.find_unknown_fields("no.such.Struct", {"a": 1}) == []


def test_prune_unknown() -> None:
    o = obj(items=[{"name": "y", "bogus": 1}], extra=1, raw={"keep": 1})
    o["top"] = 1
    decode.prune_unknown(FOO, o)
    assert o == obj(items=[{"name": "y"}], raw={"keep": 1})
    assert decode.find_unknown_fields(FOO, o) == []


# -- types -----------------------------------------------------------------------------------------


def test_check_types_messages() -> None:
    o = obj(
        replicas="3",
        paused="yes",
        items=[{"name": "x", "value": 1.5}, {"name": 7}],
        ratio="x",
        data={"k": "!!!"},
        qty=[1],
        port=True,
        tags="a",
        nums=[1, "2"],
        big=2**64,
        next={"replicas": 2**31},
    )
    causes = decode.check_types(FOO, o)
    got = {c.field: c.message for c in causes}
    assert all(c.reason == "FieldValueTypeInvalid" for c in causes)
    assert got["spec.replicas"] == "json: cannot unmarshal string into Go struct field Spec.spec.replicas of type int32"
    assert got["spec.paused"].startswith(
        "json: cannot unmarshal string into Go struct field Spec.spec.paused of type bool"
    )
    assert got["spec.items[0].value"] == (
        "json: cannot unmarshal number 1.5 into Go struct field Item.spec.items.value of type int32"
    )
    assert "spec.items[1].name" in got
    assert "of type float64" in got["spec.ratio"]
    assert "illegal base64" in got["spec.data[k]"]
    assert "array into Go struct field Spec.spec.qty of type resource.Quantity" in got["spec.qty"]
    assert "bool into" in got["spec.port"]
    assert "of type []string" in got["spec.tags"]
    assert "string into Go struct field Spec.spec.nums of type int64" in got["spec.nums[1]"]
    assert "number 18446744073709551616" in got["spec.big"]
    assert "spec.next.replicas" in got
    assert len(causes) == 12


def test_check_types_accepts_valid_and_null() -> None:
    o = obj(
        replicas=None,
        qty=1.5,
        port=80,
        ratio=1,
        raw=[1, "x"],
        free="anything",
        items=[None, {"name": "x", "opts": None}],
        when="2024-01-01T00:00:00.000000Z",
    )
    o["metadata"]["labels"] = {"a": "b"}
    assert decode.check_types(FOO, o) == []
    bad = obj()
    bad["spec"] = "x"
    assert [c.field for c in decode.check_types(FOO, bad)] == ["spec"]


# -- defaults --------------------------------------------------------------------------------------


def test_apply_defaults_recursive() -> None:
    o = obj(items=[{"name": "x"}, {"name": "y", "value": 2, "opts": {"a": {}, "b": {"level": "high"}}}], next={})
    decode.apply_defaults(FOO, o)
    assert o["spec"]["replicas"] == 1
    assert o["spec"]["strategy"] == "RollingUpdate"
    assert o["spec"]["items"] == [
        {"name": "x", "value": 5},
        {"name": "y", "value": 2, "opts": {"a": {"level": "low"}, "b": {"level": "high"}}},
    ]
    # recursion through the self-referencing Spec
    assert o["spec"]["next"] == {"replicas": 1, "strategy": "RollingUpdate"}
    assert "status" not in o  # absent sub-objects are not created


def test_apply_defaults_keeps_present_values_and_copies_mutables(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "test.codec.Mutable"
    s = schema.Struct(name=name, doc="", fields=[schema.f("l", 1, schema.list_of(schema.STRING), default=["a"])])
    monkeypatch.setitem(schema.STRUCTS, name, s)
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    decode.apply_defaults(name, a)
    decode.apply_defaults(name, b)
    a["l"].append("x")
    assert b == {"l": ["a"]}
    c = {"l": []}
    decode.apply_defaults(name, c)
    assert c == {"l": []}


def test_apply_defaults_zero_values_count_as_present() -> None:
    o = obj(replicas=0, strategy="")
    before = copy.deepcopy(o)
    decode.apply_defaults(FOO, o)
    assert o == before
