"""The indexed informer cache."""

from __future__ import annotations

from typing import Any

import pytest

from kubeha.machinery.indexer import (
    NAMESPACE_INDEX,
    Indexer,
    meta_namespace_key,
    namespace_index,
    split_meta_namespace_key,
)


def pod(name: str, ns: str = "default", node: str = "", rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, "spec": {"nodeName": node}}


def by_node(obj: dict[str, Any]) -> list[str]:
    node = obj["spec"].get("nodeName")
    return [node] if node else []


def test_keys() -> None:
    assert meta_namespace_key(pod("a", "ns")) == "ns/a"
    assert meta_namespace_key({"metadata": {"name": "n1"}}) == "n1"
    assert split_meta_namespace_key("ns/a") == ("ns", "a")
    assert split_meta_namespace_key("n1") == ("", "n1")


def test_add_update_delete_keep_indices_current() -> None:
    idx = Indexer({NAMESPACE_INDEX: namespace_index, "node": by_node})
    idx.add(pod("a", node="n1"))
    idx.add(pod("b", node="n1"))
    idx.add(pod("c", "other", node="n2"))
    assert sorted(o["metadata"]["name"] for o in idx.by_index("node", "n1")) == ["a", "b"]
    assert [o["metadata"]["name"] for o in idx.by_index(NAMESPACE_INDEX, "other")] == ["c"]

    idx.update(pod("a", node="n2", rv="2"))
    assert idx.index_keys("node", "n1") == ["default/b"]
    assert idx.index_keys("node", "n2") == ["default/a", "other/c"]
    assert idx.get("default/a")["metadata"]["resourceVersion"] == "2"  # type: ignore[index]

    idx.delete(pod("b"))
    assert idx.by_index("node", "n1") == [] and "n1" not in idx.index_values("node")
    assert idx.get_by_key("default/b") is None
    assert sorted(idx.keys()) == ["default/a", "other/c"] and len(idx) == 2
    assert idx.get_obj("other", "c") is not None


def test_replace_rebuilds_everything() -> None:
    idx = Indexer({"node": by_node})
    idx.add(pod("old", node="n1"))
    idx.replace([pod("x", node="n3"), pod("y")], "42")
    assert idx.resource_version == "42"
    assert sorted(idx.keys()) == ["default/x", "default/y"]
    assert idx.index_keys("node", "n1") == [] and idx.index_keys("node", "n3") == ["default/x"]


def test_add_indexers_later_indexes_existing_objects() -> None:
    idx = Indexer()
    idx.add(pod("a", node="n1"))
    idx.add_indexers({"node": by_node})
    assert idx.index_keys("node", "n1") == ["default/a"]
    with pytest.raises(ValueError):
        idx.add_indexers({"node": lambda o: []})
    with pytest.raises(KeyError):
        idx.by_index("missing", "x")
