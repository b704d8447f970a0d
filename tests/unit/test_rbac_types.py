"""rbac.authorization.k8s.io/v1 declarations and strategies."""

from __future__ import annotations

from typing import Any

from kubeha.api import registry, schema
from kubeha.api.errors import Cause
from kubeha.api.rbac import v1

P = v1.P


def fields(causes: list[Cause]) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


def info(resource: str) -> registry.ResourceInfo:
    found = registry.lookup(v1.GROUP, "v1", resource)
    assert found is not None
    return found


def test_registrations_and_protobuf_numbers() -> None:
    assert info("roles").namespaced and info("rolebindings").namespaced
    assert not info("clusterroles").namespaced and not info("clusterrolebindings").namespaced
    assert info("clusterroles").short_names == ()
    assert schema.STRUCTS[P + "ClusterRole"].by_json["aggregationRule"].number == 3
    assert schema.STRUCTS[P + "PolicyRule"].by_json["nonResourceURLs"].number == 5
    assert schema.STRUCTS[P + "Subject"].by_json["namespace"].number == 4
    assert schema.STRUCTS[P + "RoleBinding"].by_json["roleRef"].number == 3
    assert schema.KINDS[(v1.GROUP, "v1", "ClusterRoleBindingList")].name == P + "ClusterRoleBindingList"
    # RBAC names are path segments: "system:node" is fine
    assert info("clusterroles").strategy.name_kind == "path"


def test_role_rules_validation() -> None:
    s = info("roles").strategy
    ok = {"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}
    assert s.validate(ok) == []
    bad: dict[str, Any] = {
        "rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ]
    }
    assert fields(s.validate(bad)) == [
        ("rules[0].verbs", "FieldValueRequired"),
        ("rules[1].apiGroups", "FieldValueRequired"),
        ("rules[1].resources", "FieldValueRequired"),
        ("rules[2].nonResourceURLs", "FieldValueInvalid"),
    ]
    cs = info("clusterroles").strategy
    assert cs.validate({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}) == []
    mixed = {"rules": [{"verbs": ["get"], "resources": ["pods"], "nonResourceURLs": ["/x"]}]}
    assert "both regular resources and non-resource URLs" in cs.validate(mixed)[0].message
    assert fields(cs.validate({"aggregationRule": {}})) == [
        ("aggregationRule.clusterRoleSelectors", "FieldValueRequired")
    ]


def test_binding_defaults_and_validation() -> None:
    s = info("rolebindings").strategy
    b: dict[str, Any] = {
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"}],
    }
    s.default(b)
    assert b["roleRef"]["apiGroup"] == v1.GROUP
    assert b["subjects"][0]["apiGroup"] == v1.GROUP
    assert "apiGroup" not in b["subjects"][1]
    assert s.validate(b) == []
    bad = {
        "roleRef": {"apiGroup": "x", "kind": "Secret", "name": ""},
        "subjects": [{"kind": "Robot", "name": "r"}, {"kind": "ServiceAccount", "apiGroup": "v1", "name": "Bad_Name"}],
    }
    assert fields(s.validate(bad)) == [
        ("roleRef.apiGroup", "FieldValueNotSupported"),
        ("roleRef.kind", "FieldValueNotSupported"),
        ("roleRef.name", "FieldValueRequired"),
        ("subjects[0].kind", "FieldValueNotSupported"),
        ("subjects[1].name", "FieldValueInvalid"),
        ("subjects[1].apiGroup", "FieldValueNotSupported"),
    ]
    cs = info("clusterrolebindings").strategy
    crb = {
        "roleRef": {"apiGroup": v1.GROUP, "kind": "Role", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "a"}],
    }
    assert fields(cs.validate(crb)) == [
        ("roleRef.kind", "FieldValueNotSupported"),
        ("subjects[0].namespace", "FieldValueRequired"),
    ]


def test_role_ref_is_immutable() -> None:
    s = info("clusterrolebindings").strategy
    old = {"roleRef": {"apiGroup": v1.GROUP, "kind": "ClusterRole", "name": "view"}}
    new = {"roleRef": {"apiGroup": v1.GROUP, "kind": "ClusterRole", "name": "edit"}}
    causes = s.validate_update(new, old)
    assert fields(causes) == [("roleRef", "FieldValueInvalid")]
    assert causes[0].message.endswith("cannot change roleRef")
    assert s.validate_update(old, old) == []
