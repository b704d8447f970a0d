"""Shared validators: upstream messages, ObjectMeta create and update rules."""

from __future__ import annotations

import pytest

from kubeha.api import validation as v

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def test_dns1123_subdomain() -> None:
    assert v.is_dns1123_subdomain("my.app-1") == []
    assert v.is_dns1123_subdomain("My.App") == [SUBDOMAIN_MSG]
    assert v.is_dns1123_subdomain("a" * 254)[0] == "must be no more than 253 characters"


def test_dns1123_label() -> None:
    assert v.is_dns1123_label("web-1") == []
    assert v.is_dns1123_label("a.b") == ["must not contain dots"]
    assert v.is_dns1123_label("-x")[0].startswith("a lowercase RFC 1123 label must consist of")
    assert "must be no more than 63 characters" in v.is_dns1123_label("a" * 64)


@pytest.mark.parametrize("good", ["app", "app.kubernetes.io/name", "example.com/My_Name.1", "A"])
def test_qualified_name_ok(good: str) -> None:
    assert v.is_qualified_name(good) == []


def test_qualified_name_errors() -> None:
    assert v.is_qualified_name("/x") == ["prefix part must be non-empty"]
    assert v.is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert v.is_qualified_name("x/")[0] == "name part must be non-empty"
    assert v.is_qualified_name("UPPER.COM/x")[0].startswith("prefix part a lowercase RFC 1123 subdomain")
    assert v.is_qualified_name("a" * 64) == ["name part must be no more than 63 characters"]


def test_label_value() -> None:
    assert v.is_valid_label_value("") == []
    assert v.is_valid_label_value("v1.2_x") == []
    assert v.is_valid_label_value("-bad")[0].startswith("a valid label must be an empty string or consist of")


def test_validate_labels_paths_and_messages() -> None:
    causes = v.validate_labels({"ok": "fine", "bad key": "v", "k": "bad value!"}, "metadata.labels")
    assert [(c.field, c.reason) for c in causes] == [
        ("metadata.labels", "FieldValueInvalid"),
        ("metadata.labels", "FieldValueInvalid"),
    ]
    assert causes[0].message.startswith('Invalid value: "bad key": name part must consist of')
    assert causes[1].message.startswith('Invalid value: "bad value!": a valid label')


def test_annotations_size_limit() -> None:
    assert v.validate_annotations({"a": "x" * 1000}, "metadata.annotations") == []
    causes = v.validate_annotations({"a": "x" * (256 * 1024)}, "metadata.annotations")
    assert [c.reason for c in causes] == ["FieldValueTooLong"]


def test_object_meta_create() -> None:
    ok = {"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}}
    assert v.validate_object_meta(ok, namespaced=True, name_kind="subdomain") == []
    causes = v.validate_object_meta({"metadata": {}}, namespaced=True, name_kind="subdomain")
    assert [(c.field, c.reason) for c in causes] == [
        ("metadata.name", "FieldValueRequired"),
        ("metadata.namespace", "FieldValueRequired"),
    ]
    assert causes[0].message == "Required value: name or generateName is required"
    causes = v.validate_object_meta({"metadata": {"name": "x", "namespace": "ns"}}, namespaced=False)
    assert [(c.field, c.reason) for c in causes] == [("metadata.namespace", "FieldValueForbidden")]


def test_object_meta_name_kinds() -> None:
    dotted = {"metadata": {"name": "a.b"}}
    assert v.validate_object_meta(dotted, False, "subdomain") == []
    assert [c.field for c in v.validate_object_meta(dotted, False, "label")] == ["metadata.name"]
    assert v.validate_object_meta({"metadata": {"name": "Any Thing:1"}}, False, "path") == []
    assert v.validate_object_meta({"metadata": {"name": "a/b"}}, False, "path")[0].message.endswith(
        "may not contain '/'"
    )


def test_generate_name_may_end_with_dash() -> None:
    obj = {"metadata": {"name": "web-abcde", "generateName": "web-"}}
    assert v.validate_object_meta(obj, False) == []
    obj = {"metadata": {"name": "web-abcde", "generateName": "Web-"}}
    assert [c.field for c in v.validate_object_meta(obj, False)] == ["metadata.generateName"]


def test_owner_references() -> None:
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": True}
    obj = {"metadata": {"name": "p", "ownerReferences": [ref, {**ref, "name": "rs2", "uid": "2"}, {}]}}
    causes = v.validate_object_meta(obj, False)
    fields = [c.field for c in causes]
    assert fields.count("metadata.ownerReferences") == 1
    assert "metadata.ownerReferences.uid" in fields and "metadata.ownerReferences.apiVersion" in fields
    assert "Only one reference can have Controller set to true" in next(
        c.message for c in causes if c.field == "metadata.ownerReferences"
    )


def test_finalizers() -> None:
    ok = {"metadata": {"name": "x", "finalizers": ["kubernetes", "example.com/cleanup"]}}
    assert v.validate_object_meta(ok, False) == []
    bad = {"metadata": {"name": "x", "finalizers": ["cleanup"]}}
    causes = v.validate_object_meta(bad, False)
    assert [c.field for c in causes] == ["metadata.finalizers"]
    assert causes[0].message.endswith("name is neither a standard finalizer name nor is it fully qualified")


def test_object_meta_update_immutable_fields() -> None:
    old = {"metadata": {"name": "a", "namespace": "n", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    same = {"metadata": {"name": "a", "namespace": "n"}}  # absent uid/creationTimestamp = unchanged
    assert v.validate_object_meta_update(same, old) == []
    new = {"metadata": {"name": "b", "namespace": "n", "uid": "u2", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    causes = v.validate_object_meta_update(new, old)
    assert [c.field for c in causes] == ["metadata.name", "metadata.uid", "metadata.creationTimestamp"]
    assert all(c.message.endswith("field is immutable") for c in causes)


def test_object_meta_update_deletion() -> None:
    old = {"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x.io/a"]}}
    new = {"metadata": {"name": "a", "finalizers": ["x.io/a", "x.io/b"]}}
    causes = v.validate_object_meta_update(new, old)
    assert [(c.field, c.reason) for c in causes] == [
        ("metadata.finalizers", "FieldValueForbidden"),
        ("metadata.deletionTimestamp", "FieldValueInvalid"),
    ]


def test_fill_update_meta() -> None:
    old = {"metadata": {"uid": "u", "creationTimestamp": "t", "generation": 3, "deletionTimestamp": "d"}}
    new: dict = {"metadata": {"generation": 1}}
    v.fill_update_meta(new, old)
    assert new["metadata"] == {"uid": "u", "creationTimestamp": "t", "generation": 3, "deletionTimestamp": "d"}
    assert v.validate_object_meta_update(new, old) == []


def test_small_validators() -> None:
    assert v.validate_immutable(1, 1, "spec.x") == []
    assert v.validate_immutable(2, 1, "spec.x")[0].message == "Invalid value: 2: field is immutable"
    assert v.validate_nonnegative(0, "f") == []
    assert v.validate_nonnegative(-1, "f")[0].message == "Invalid value: -1: must be greater than or equal to 0"
    assert v.validate_port_number(80, "p") == []
    assert v.validate_port_number(0, "p")[0].message == "Invalid value: 0: must be between 1 and 65535, inclusive"
    assert v.is_valid_port_name("http") == []
    assert "must contain at least one letter (a-z)" in v.is_valid_port_name("8080")
    assert v.is_config_map_key("..x") == ["must not start with '..'"]
