"""Discovery documents: legacy shapes, aggregated shapes, and Accept negotiation as kubectl expects."""

from __future__ import annotations

import pytest

from kubeha.api import registry
from kubeha.apiserver import discovery

registry.load_all()

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    discovery.invalidate()


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{V2},{V2BETA1},application/json", "v2"),  # kubectl 1.30+
        (f"{V2BETA1},application/json", "v2beta1"),  # kubectl 1.27-1.29: must never get v2
        ("application/json", None),
        ("", None),
        ("*/*", None),
        (f"application/json, {V2}", None),  # client prefers plain JSON
        (f"{V2};q=0.5,{V2BETA1};q=0.9", "v2beta1"),
        (
            f"application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,{V2BETA1}",
            "v2beta1",
        ),
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", None),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", None),
    ],
)
def test_negotiate_discovery(accept: str, expected: str | None) -> None:
    assert discovery.negotiate_discovery(accept) == expected


def test_content_type() -> None:
    assert discovery.aggregated_content_type("v2") == V2
    assert discovery.aggregated_content_type("v2beta1") == V2BETA1


def test_api_versions() -> None:
    doc = discovery.api_versions("10.0.0.1:6443")
    assert doc["kind"] == "APIVersions"
    assert doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"] == [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]


def test_api_group_list() -> None:
    doc = discovery.api_group_list()
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    names = [g["name"] for g in doc["groups"]]
    assert "" not in names
    for g in ("apps", "policy", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io"):
        assert g in names
    assert names.index("apps") < names.index("events.k8s.io") < names.index("coordination.k8s.io")
    apps = next(g for g in doc["groups"] if g["name"] == "apps")
    assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    group = discovery.api_group("apps")
    assert group is not None and group["kind"] == "APIGroup" and group["name"] == "apps"
    assert discovery.api_group("nope.example.com") is None


def test_api_resource_list_with_subresources() -> None:
    doc = discovery.api_resource_list("apps", "v1")
    assert doc is not None
    assert (doc["kind"], doc["groupVersion"]) == ("APIResourceList", "apps/v1")
    by_name = {r["name"]: r for r in doc["resources"]}
    deploy = by_name["deployments"]
    assert deploy["singularName"] == "deployment" and deploy["namespaced"] is True and deploy["kind"] == "Deployment"
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    assert set(deploy["verbs"]) >= {"create", "get", "list", "watch", "patch", "update", "delete"}
    assert by_name["deployments/status"] == {
        "name": "deployments/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": ["get", "patch", "update"],
    }
    scale = by_name["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert "daemonsets/scale" not in by_name
    assert discovery.api_resource_list("apps", "v9") is None


def test_core_resource_list_when_core_is_served() -> None:
    doc = discovery.api_resource_list("", "v1")
    if doc is None:
        pytest.skip("core/v1 not registered")
    assert doc["groupVersion"] == "v1"


def test_aggregated_apis() -> None:
    doc = discovery.aggregated_discovery(False, "v2beta1")
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2beta1")
    groups = {item["metadata"]["name"]: item for item in doc["items"]}
    assert "" not in groups
    (apps_v1,) = groups["apps"]["versions"]
    assert apps_v1["version"] == "v1" and apps_v1["freshness"] == "Current"
    deploy = next(r for r in apps_v1["resources"] if r["resource"] == "deployments")
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert deploy["scope"] == "Namespaced" and deploy["singularResource"] == "deployment"
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    subs = {s["subresource"]: s for s in deploy["subresources"]}
    assert subs["scale"]["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert subs["status"]["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert subs["status"]["verbs"] == ["get", "patch", "update"]
    assert discovery.aggregated_discovery(False, "v2")["apiVersion"] == "apidiscovery.k8s.io/v2"


def test_aggregated_legacy_holds_only_core() -> None:
    doc = discovery.aggregated_discovery(True, "v2")
    assert all("name" not in item["metadata"] for item in doc["items"])
    for item in doc["items"]:
        for v in item["versions"]:
            assert all(r["responseKind"]["group"] == "" for r in v["resources"])


def test_documents_are_cached() -> None:
    assert discovery.api_group_list() is discovery.api_group_list()
    assert discovery.aggregated_discovery(False, "v2") is discovery.aggregated_discovery(False, "v2")
