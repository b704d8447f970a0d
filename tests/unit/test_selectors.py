"""Label and field selector parsing and matching."""

from __future__ import annotations

import pytest

from kubeha.api.errors import StatusError
from kubeha.api.selectors import (
    field_getters,
    parse_field_selector,
    parse_label_selector,
    selector_from_match,
)


@pytest.mark.parametrize(
    ("selector", "labels", "want"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x, y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a notin (x,y)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": "1"}, False),
        ("!a", {}, True),
        ("a=b,c!=d,e in (x,y),!f,g", {"a": "b", "e": "x", "g": "1"}, True),
        ("a=b,c!=d,e in (x,y),!f,g", {"a": "b", "e": "x", "g": "1", "f": "1"}, False),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("example.com/tier=web", {"example.com/tier": "web"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], want: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is want


@pytest.mark.parametrize("bad", ["a=b,", "a in (x", "=b", "a=b c", "a in ()", "n>x", "-a=b"])
def test_label_selector_syntax_errors(bad: str) -> None:
    with pytest.raises(StatusError) as e:
        parse_label_selector(bad)
    assert e.value.code == 400


def test_selector_from_label_selector_object() -> None:
    sel = selector_from_match(
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}
    )
    assert sel.matches({"app": "web", "tier": "b"})
    assert not sel.matches({"app": "web", "tier": "c"})
    assert selector_from_match(None).matches({})


def test_field_selector() -> None:
    getters = field_getters({"spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName") or ""})
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": ""}}
    sel = parse_field_selector("metadata.name=p,spec.nodeName!=", getters)
    assert not sel.matches(pod, getters)
    pod["spec"]["nodeName"] = "n1"
    assert sel.matches(pod, getters)
    assert sel.exact("metadata.name") == "p"
    assert parse_field_selector("metadata.namespace==ns", getters).matches(pod, getters)
    assert parse_field_selector("metadata.name=a\\,b").requirements[0].value == "a,b"


def test_unknown_field_selector_message() -> None:
    with pytest.raises(StatusError) as e:
        parse_field_selector("foo=bar")
    assert e.value.code == 400
    assert e.value.message == '"foo" is not a known field selector: only "metadata.name", "metadata.namespace"'
    with pytest.raises(StatusError):
        parse_field_selector("justtext")
