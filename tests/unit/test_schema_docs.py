"""Every field a served kind can hold has a description, so `kubectl explain` never shows
``<no description>`` for our built-in types."""

from __future__ import annotations

from kubeha.api import registry, schema
from kubeha.api.schema import ListOf, MapOf, Ref, TypeSpec


def _struct_names(t: TypeSpec) -> list[str]:
    if isinstance(t, Ref):
        return [t.name]
    if isinstance(t, ListOf):
        return _struct_names(t.item)
    if isinstance(t, MapOf):
        return _struct_names(t.value)
    return []


def _reachable() -> set[str]:
    """Names of all structs reachable from the registered resources (and their subresources)."""
    registry.load_all()
    todo = [info.schema for info in registry.RESOURCES.values()]
    for info in registry.RESOURCES.values():
        for sub in info.subresources:
            s = schema.KINDS.get((sub.group or info.group, sub.version or info.version, sub.kind))
            if s is not None:
                todo.append(s.name)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for fl in schema.STRUCTS[name].fields:
            todo.extend(_struct_names(fl.type))
    return seen


def test_reachable_set_covers_the_pod_family() -> None:
    names = _reachable()
    # sanity: the walk really descends into nested types
    for short in ("Pod", "PodSpec", "Probe", "EnvVarSource", "SecretKeySelector", "VolumeSource", "Deployment"):
        assert any(n.endswith("." + short) for n in names), short
    assert len(names) > 150


def test_every_reachable_struct_has_a_description() -> None:
    missing = sorted(n for n in _reachable() if not schema.STRUCTS[n].doc.strip())
    assert missing == []


def test_every_field_of_a_served_kind_has_a_description() -> None:
    missing = [
        f"{name}.{fl.json}"
        for name in sorted(_reachable())
        for fl in schema.STRUCTS[name].fields
        if fl.json and not fl.doc.strip()  # JSON name "" marks an inline embedding (protobuf only)
    ]
    assert missing == []


def test_descriptions_are_sentences() -> None:
    # explain prints them verbatim: a capitalised sentence reads right after the field name
    bad = [
        f"{name}.{fl.json}: {fl.doc!r}"
        for name in sorted(_reachable())
        for fl in schema.STRUCTS[name].fields
        if fl.json and fl.doc.strip() and not fl.doc.rstrip().endswith((".", ")"))
    ]
    assert bad == []


def test_inline_copies_share_the_embedded_description() -> None:
    registry.load_all()
    probe = schema.STRUCTS[schema.CORE + "Probe"].by_json
    handler = schema.STRUCTS[schema.CORE + "ProbeHandler"].by_json
    assert probe["httpGet"].doc == handler["httpGet"].doc != ""
    key_sel = schema.STRUCTS[schema.CORE + "SecretKeySelector"].by_json
    assert key_sel["name"].doc == schema.STRUCTS[schema.CORE + "LocalObjectReference"].by_json["name"].doc != ""
