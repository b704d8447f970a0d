"""Audit policy matching and log rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeha.apiserver.audit import RequestAttrs, RotatingFile, parse_policy

POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["pods/log", "*/scale"]}]},
        {"level": "Request", "resources": [{"group": "", "resources": ["secrets"], "resourceNames": ["s1"]}]},
        {"level": "Metadata", "userGroups": ["devs"], "namespaces": ["team"], "omitStages": ["ResponseStarted"]},
        {"level": "Request", "resources": [{"group": "apps"}]},
    ],
}


def attrs(verb: str = "get", resource: str = "pods", **kw: object) -> RequestAttrs:
    base: dict[str, object] = {"user": "alice", "groups": ("devs",), "verb": verb, "is_resource": True}
    base.update(resource=resource, **kw)
    return RequestAttrs(**base)  # type: ignore[arg-type]


def test_first_matching_rule_wins() -> None:
    p = parse_policy(POLICY)
    assert p.level_for(attrs("watch", user="system:kube-proxy"))[0] == "None"
    assert p.level_for(attrs(subresource="log"))[0] == "RequestResponse"
    assert p.level_for(attrs(resource="deployments", group="apps", subresource="scale"))[0] == "Request"
    assert p.level_for(attrs(resource="replicasets", subresource="scale"))[0] == "RequestResponse"
    assert p.level_for(attrs(resource="secrets", name="s1"))[0] == "Request"
    assert p.level_for(attrs(resource="secrets", name="s2"))[0] == "None"
    level, omit = p.level_for(attrs(namespace="team"))
    assert level == "Metadata" and set(omit) == {"RequestReceived", "ResponseStarted"}
    assert p.level_for(attrs(namespace="other"))[0] == "None"


def test_non_resource_urls() -> None:
    p = parse_policy(POLICY)
    nr = RequestAttrs("bob", (), "get", False, "/healthz/etcd")
    assert p.level_for(nr)[0] == "None"
    # a resource rule never matches a non-resource request and vice versa
    assert p.level_for(RequestAttrs("bob", ("devs",), "get", False, "/metrics"))[0] == "None"
    assert p.level_for(RequestAttrs("bob", (), "get", False, "/version"))[0] == "None"


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="Policy"):
        parse_policy({"kind": "Nope"})
    with pytest.raises(ValueError, match="level"):
        parse_policy({**POLICY, "rules": [{"level": "Everything"}]})
    with pytest.raises(ValueError, match="both"):
        parse_policy({**POLICY, "rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]})


def test_rotation_keeps_max_backups(tmp_path: Path) -> None:
    f = RotatingFile(str(tmp_path / "audit.log"), max_size_mb=1, max_backups=2)
    line = "x" * 1023 + "\n"
    for _ in range(5):
        f.write_lines([line] * 700)  # ~0.7 MB per write: every second write rotates
    f.close()
    assert len(f.backups()) == 2
    assert (tmp_path / "audit.log").stat().st_size <= 1024 * 1024
