"""authentication, authorization, certificates, scheduling, node groups and core quota types."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeha.api import registry, schema
from kubeha.api.authentication import v1 as authn
from kubeha.api.authorization import v1 as authz
from kubeha.api.certificates import v1 as certs
from kubeha.api.core import quota
from kubeha.api.errors import Cause
from kubeha.api.node import v1 as node
from kubeha.api.scheduling import v1 as sched


def fields(causes: list[Cause]) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


def info(group: str, resource: str) -> registry.ResourceInfo:
    found = registry.lookup(group, "v1", resource)
    assert found is not None, resource
    return found


def test_registrations() -> None:
    for group, resource, namespaced in (
        ("authentication.k8s.io", "tokenreviews", False),
        ("authentication.k8s.io", "selfsubjectreviews", False),
        ("authorization.k8s.io", "subjectaccessreviews", False),
        ("authorization.k8s.io", "selfsubjectaccessreviews", False),
        ("authorization.k8s.io", "localsubjectaccessreviews", True),
        ("authorization.k8s.io", "selfsubjectrulesreviews", False),
    ):
        i = info(group, resource)
        assert i.verbs == ("create",)
        assert i.namespaced is namespaced
    csr = info("certificates.k8s.io", "certificatesigningrequests")
    assert csr.short_names == ("csr",)
    assert {s.name for s in csr.subresources} == {"status", "approval"}
    assert info("scheduling.k8s.io", "priorityclasses").short_names == ("pc",)
    assert info("", "limitranges").short_names == ("limits",)
    rq = info("", "resourcequotas")
    assert rq.short_names == ("quota",) and rq.subresource("status") is not None
    assert ("authentication.k8s.io", "v1", "TokenRequest") in schema.KINDS
    # protobuf numbers that clients put on the wire
    assert schema.STRUCTS[authn.P + "TokenRequestSpec"].by_json["expirationSeconds"].number == 4
    assert schema.STRUCTS[authz.P + "SubjectAccessReviewStatus"].by_json["denied"].number == 4
    assert schema.STRUCTS[authz.P + "ResourceAttributes"].by_json["labelSelector"].number == 9
    assert schema.STRUCTS[certs.P + "CertificateSigningRequestSpec"].by_json["signerName"].number == 7
    assert schema.STRUCTS[schema.CORE + "LimitRangeItem"].by_json["maxLimitRequestRatio"].number == 6


def test_token_request_bounds() -> None:
    obj: dict[str, Any] = {"spec": {"audiences": ["api"]}}
    authn.TOKEN_REQUEST_STRATEGY.default(obj)
    assert obj["spec"]["expirationSeconds"] == 3600
    assert authn.validate_token_request(obj) == []
    assert fields(authn.validate_token_request({"spec": {"expirationSeconds": 60}})) == [
        ("spec.expirationSeconds", "FieldValueInvalid")
    ]


def test_access_review_validation() -> None:
    sar = info("authorization.k8s.io", "subjectaccessreviews").strategy
    ok = {"metadata": {"creationTimestamp": None}, "spec": {"user": "u", "resourceAttributes": {"verb": "get"}}}
    assert sar.validate(ok) == []
    both = {"spec": {"user": "u", "resourceAttributes": {}, "nonResourceAttributes": {}}}
    assert fields(sar.validate(both)) == [("spec.nonResourceAttributes", "FieldValueInvalid")]
    neither: dict[str, Any] = {"spec": {}}
    assert fields(sar.validate(neither)) == [
        ("spec.resourceAttributes", "FieldValueInvalid"),
        ("spec.user", "FieldValueInvalid"),
    ]
    ssar = info("authorization.k8s.io", "selfsubjectaccessreviews").strategy
    assert ssar.validate({"spec": {"nonResourceAttributes": {"path": "/x", "verb": "get"}}}) == []
    assert fields(ssar.validate({"metadata": {"name": "x"}, "spec": {"resourceAttributes": {}}})) == [
        ("metadata", "FieldValueInvalid")
    ]
    lsar = {"metadata": {"namespace": "dev"}, "spec": {"user": "u", "resourceAttributes": {"namespace": "prod"}}}
    assert authz.validate_local_subject_access_review(lsar) == []
    assert authz.local_namespace_mismatch(lsar) == "spec.resourceAttributes.namespace must match namespace: dev"
    ssrr = info("authorization.k8s.io", "selfsubjectrulesreviews").strategy
    assert fields(ssrr.validate({"spec": {}})) == [("spec.namespace", "FieldValueRequired")]


def _csr_pem(cn: str = "alice") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    req = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return req.public_bytes(serialization.Encoding.PEM)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_csr_spec_validation() -> None:
    s = info("certificates.k8s.io", "certificatesigningrequests").strategy
    good = {
        "spec": {
            "request": _b64(_csr_pem()),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth", "digital signature"],
            "expirationSeconds": 3600,
            "username": "mallory",
        }
    }
    s.prepare_for_create(good)
    assert "username" not in good["spec"]  # the server, not the client, says who asked
    assert s.validate(good) == []
    certs.set_requester(good, "alice", "", ["system:authenticated"], {})
    assert good["spec"]["username"] == "alice" and good["spec"]["groups"] == ["system:authenticated"]
    bad = {
        "spec": {
            "request": _b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "signerName": "nodomain",
            "usages": ["client auth", "client auth", "flying"],
            "expirationSeconds": 10,
        }
    }
    causes = s.validate(bad)
    assert fields(causes) == [
        ("spec.request", "FieldValueInvalid"),
        ("spec.usages[1]", "FieldValueDuplicate"),
        ("spec.usages[2]", "FieldValueNotSupported"),
        ("spec.signerName", "FieldValueInvalid"),
        ("spec.expirationSeconds", "FieldValueInvalid"),
    ]
    assert "PEM block type must be CERTIFICATE REQUEST" in causes[0].message
    assert fields(s.validate({"spec": {}})) == [
        ("spec.request", "FieldValueRequired"),
        ("spec.usages", "FieldValueRequired"),
        ("spec.signerName", "FieldValueRequired"),
    ]
    assert certs.validate_signer_name("example.com/my-signer") == []
    assert certs.validate_signer_name("example.com/") != []


def _cond(kind: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": "r"}


def test_csr_conditions_and_subresources() -> None:
    s = info("certificates.k8s.io", "certificatesigningrequests").strategy
    both = {"status": {"conditions": [_cond("Approved"), _cond("Denied")]}}
    assert "mutually exclusive" in certs.validate_status(both["status"])[0].message
    assert fields(certs.validate_status({"conditions": [_cond("Approved", "False")]})) == [
        ("status.conditions[0].status", "FieldValueNotSupported")
    ]
    old = {"metadata": {"name": "c"}, "spec": {"signerName": "a.b/c"}, "status": {}}
    # approval: only conditions change
    new: dict[str, Any] = {
        "metadata": {"name": "c"},
        "spec": {"signerName": "x.y/z"},
        "status": {"conditions": [_cond("Approved")], "certificate": "Zm9v"},
    }
    certs.prepare_for_approval_update(new, old)
    assert new["spec"] == old["spec"] and "certificate" not in new["status"]
    assert certs.validate_approval_update(new, old) == []
    approved = new
    # removing Approved is forbidden
    assert fields(certs.validate_approval_update({"status": {"conditions": []}}, approved)) == [
        ("status.conditions", "FieldValueForbidden")
    ]
    # the status subresource may not approve
    assert fields(s.validate_status_update({"status": {"conditions": [_cond("Approved")]}}, old)) == [
        ("status.conditions", "FieldValueForbidden")
    ]
    # a certificate needs approval and real CERTIFICATE blocks
    pem_cert = _b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    causes = s.validate_status_update(
        {"status": {"conditions": [_cond("Approved")], "certificate": pem_cert}}, approved
    )
    assert fields(causes) == [("status.certificate", "FieldValueInvalid")]
    causes = s.validate_status_update({"status": {"certificate": pem_cert}}, old)
    assert ("status.certificate", "FieldValueForbidden") in fields(causes)
    # the main endpoint cannot change spec
    upd: dict[str, Any] = {"metadata": {"name": "c", "labels": {"a": "b"}}, "spec": {"signerName": "evil.io/x"}}
    s.prepare_for_update(upd, old)
    assert upd["spec"] == old["spec"]


def test_priority_class() -> None:
    s = info("scheduling.k8s.io", "priorityclasses").strategy
    pc: dict[str, Any] = {"metadata": {"name": "high"}, "value": 1000}
    s.default(pc)
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    assert s.validate(pc) == []
    assert fields(s.validate({"metadata": {"name": "huge"}, "value": 2_000_000_000})) == [
        ("value", "FieldValueForbidden")
    ]
    assert fields(s.validate({"metadata": {"name": "system-mine"}, "value": 1})) == [
        ("metadata.name", "FieldValueForbidden")
    ]
    for builtin in sched.system_priority_classes():
        assert s.validate(builtin) == []
    assert fields(s.validate({"metadata": {"name": "x"}, "value": 1, "preemptionPolicy": "Sometimes"})) == [
        ("preemptionPolicy", "FieldValueNotSupported")
    ]
    changed = {**pc, "value": 5, "preemptionPolicy": "Never"}
    assert fields(s.validate_update(changed, pc)) == [
        ("value", "FieldValueForbidden"),
        ("preemptionPolicy", "FieldValueInvalid"),
    ]


def test_runtime_class() -> None:
    s = info("node.k8s.io", "runtimeclasses").strategy
    rc = {"metadata": {"name": "host"}, "handler": "host", "overhead": {"podFixed": {"cpu": "100m"}}}
    assert s.validate(rc) == []
    assert fields(s.validate({"handler": ""})) == [("handler", "FieldValueRequired")]
    assert fields(s.validate({"handler": "Not_A_Label", "overhead": {"podFixed": {"cpu": "lots"}}})) == [
        ("handler", "FieldValueInvalid"),
        ("overhead.podFixed[cpu]", "FieldValueInvalid"),
    ]
    assert fields(s.validate_update({**rc, "handler": "docker"}, rc)) == [("handler", "FieldValueInvalid")]
    assert node.RUNTIMECLASSES.namespaced is False


def test_limit_range_and_quota() -> None:
    lr = {
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "min": {"cpu": "1"},
                    "max": {"cpu": "500m"},
                    "default": {"memory": "1Gi"},
                    "defaultRequest": {"memory": "2Gi"},
                },
                {"type": "Pod", "default": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "0.5"}},
            ]
        }
    }
    assert fields(quota.validate_limit_range(lr)) == [
        ("spec.limits[0].min[cpu]", "FieldValueInvalid"),
        ("spec.limits[0].defaultRequest[memory]", "FieldValueInvalid"),
        ("spec.limits[1].default", "FieldValueForbidden"),
        ("spec.limits[1].maxLimitRequestRatio[cpu]", "FieldValueInvalid"),
    ]
    good = {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]}}
    assert quota.validate_limit_range(good) == []
    s = info("", "resourcequotas").strategy
    assert s.validate({"spec": {"hard": {"pods": "10", "requests.cpu": "4"}, "scopes": ["BestEffort"]}}) == []
    bad = {
        "spec": {
            "hard": {"pods": "-1"},
            "scopes": ["Sometimes"],
            "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In"}]},
        }
    }
    assert fields(s.validate(bad)) == [
        ("spec.hard[pods]", "FieldValueInvalid"),
        ("spec.scopes[0]", "FieldValueNotSupported"),
        ("spec.scopeSelector.matchExpressions[0].values", "FieldValueRequired"),
    ]
    old = {"spec": {"hard": {"pods": "1"}}, "status": {"used": {"pods": "1"}}}
    new = {"spec": {"hard": {"pods": "5"}}}
    s.prepare_for_update(new, old)
    assert new["status"] == old["status"]
    assert fields(s.validate_status_update({"status": {"used": {"pods": "x"}}}, old)) == [
        ("status.used[pods]", "FieldValueInvalid")
    ]
