from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from kubeha.api import openapi, registry, schema
from kubeha.api.registry import ResourceInfo, SubresourceInfo
from tests.unit._codec_structs import FOO, GROUP

PATH = f"apis/{GROUP}/v1"
P = "test.codec."


@pytest.fixture
def foo_resource(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResourceInfo]:
    info = ResourceInfo(
        GROUP,
        "v1",
        "foos",
        "Foo",
        True,
        FOO,
        subresources=(SubresourceInfo("status", "Foo"),),
    )
    monkeypatch.setitem(registry.RESOURCES, (GROUP, "v1", "foos"), info)
    openapi.reset_cache()
    yield info
    openapi.reset_cache()


def document(path: str = PATH) -> dict[str, Any]:
    got = openapi.v3_document(path)
    assert got is not None
    data, digest = got
    assert digest == hashlib.sha512(data).hexdigest().upper()
    return json.loads(data)  # type: ignore[no-any-return]


def test_index_lists_group_version_with_hash(foo_resource: ResourceInfo) -> None:
    idx = openapi.v3_index()
    entry = idx["paths"][PATH]
    _, digest = openapi.v3_document(PATH)  # type: ignore[misc]
    assert entry == {"serverRelativeURL": f"/openapi/v3/{PATH}?hash={digest}"}
    assert openapi.v3_document("apis/nope/v9") is None


def test_paths_and_operations(foo_resource: ResourceInfo) -> None:
    doc = document()
    assert doc["openapi"] == "3.0.0" and doc["info"]["title"] == "Kubernetes"
    base = f"/apis/{GROUP}/v1"
    paths = doc["paths"]
    coll = paths[f"{base}/namespaces/{{namespace}}/foos"]
    item = paths[f"{base}/namespaces/{{namespace}}/foos/{{name}}"]
    assert set(coll) == {"get", "post", "delete", "parameters"}
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    assert {p["name"] for p in item["parameters"]} == {"name", "namespace", "pretty"}
    assert paths[f"{base}/foos"]["get"]["x-kubernetes-action"] == "list"
    actions = {m: op["x-kubernetes-action"] for m, op in {**coll, **item}.items() if m != "parameters"}
    assert actions == {"get": "get", "post": "post", "delete": "delete", "put": "put", "patch": "patch"}
    assert coll["delete"]["x-kubernetes-action"] == "deletecollection"
    assert coll["get"]["x-kubernetes-action"] == "list"
    gvk = {"group": GROUP, "version": "v1", "kind": "Foo"}
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == gvk
    assert patch["operationId"] == "patchCodecTestKubehaIoV1NamespacedFoo"
    params = {p["name"]: p for p in patch["parameters"]}
    assert set(params) == {"dryRun", "fieldManager", "fieldValidation", "force"}
    assert all(p["in"] == "query" for p in params.values())
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    }
    ok = patch["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{FOO}"}
    assert coll["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(FOO + "List")
    status = paths[f"{base}/namespaces/{{namespace}}/foos/{{name}}/status"]
    assert set(status) == {"get", "put", "patch", "parameters"}
    assert status["patch"]["x-kubernetes-group-version-kind"] == gvk
    assert "fieldValidation" in {p["name"] for p in status["patch"]["parameters"]}


def test_cluster_scoped_paths(monkeypatch: pytest.MonkeyPatch, foo_resource: ResourceInfo) -> None:
    info = ResourceInfo(GROUP, "v1", "clusterfoos", "Foo", False, FOO, verbs=("get", "list"))
    monkeypatch.setitem(registry.RESOURCES, (GROUP, "v1", "clusterfoos"), info)
    openapi.reset_cache()
    paths = document()["paths"]
    assert set(paths[f"/apis/{GROUP}/v1/clusterfoos"]) == {"get", "parameters"}
    assert set(paths[f"/apis/{GROUP}/v1/clusterfoos/{{name}}"]) == {"get", "parameters"}


def test_component_schemas(foo_resource: ResourceInfo) -> None:
    schemas = document()["components"]["schemas"]
    foo = schemas[FOO]
    assert foo["type"] == "object" and foo["description"] == "A test kind."
    assert foo["x-kubernetes-group-version-kind"] == [{"group": GROUP, "kind": "Foo", "version": "v1"}]
    assert foo["properties"]["spec"] == {
        "allOf": [{"$ref": f"#/components/schemas/{P}Spec"}],
        "description": "Spec.",
    }
    spec = schemas[P + "Spec"]["properties"]
    assert spec["items"] == {
        "description": "Items.",
        "type": "array",
        "items": {"allOf": [{"$ref": f"#/components/schemas/{P}Item"}]},
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-patch-merge-key": "name",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    }
    assert spec["replicas"] == {"type": "integer", "format": "int32", "description": "Desired count.", "default": 1}
    assert spec["mode"]["enum"] == ["Fast", "Slow"]
    assert spec["data"] == {
        "type": "object",
        "additionalProperties": {"type": "string", "format": "byte"},
        "description": "Binary data.",
    }
    assert spec["qty"]["$ref"] == "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"
    assert spec["groups"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert schemas[P + "Item"]["required"] == ["name"]
    # the protobuf-only embedding is not a JSON property; its JSON fields are
    assert "" not in schemas[P + "Item"]["properties"] and "cmd" in schemas[P + "Item"]["properties"]
    assert P + "Handler" not in schemas
    assert schemas[P + "Opt"]["properties"]["level"]["default"] == "low"
    # special types
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [{"type": "string"}, {"type": "number"}]
    ios = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert ios["x-kubernetes-int-or-string"] is True
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == {
        "description": schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["description"],
        "type": "string",
        "format": "date-time",
    }
    assert schemas["io.k8s.apimachinery.pkg.runtime.RawExtension"]["type"] == "object"
    assert spec["free"]["type"] == "object"
    # synthesized list kind and the patch body schema
    lst = schemas[FOO + "List"]
    assert lst["x-kubernetes-group-version-kind"] == [{"group": GROUP, "kind": "FooList", "version": "v1"}]
    assert lst["properties"]["items"]["items"]["allOf"] == [{"$ref": f"#/components/schemas/{FOO}"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Patch"]["type"] == "object"


def test_every_ref_resolves_when_declared(foo_resource: ResourceInfo) -> None:
    doc = document()
    names = set(doc["components"]["schemas"])
    missing = {r["$ref"].rsplit("/", 1)[-1] for r in openapi._find_refs(doc)} - names
    # only meta types that this test run may not have declared can be missing
    assert all(m.startswith("io.k8s.apimachinery.pkg.apis.meta.v1.") and m not in schema.STRUCTS for m in missing)


def test_documents_cached_and_rebuilt_on_change(monkeypatch: pytest.MonkeyPatch, foo_resource: ResourceInfo) -> None:
    first = openapi.v3_document(PATH)
    assert openapi.v3_document(PATH) is first  # built once
    monkeypatch.setitem(registry.RESOURCES, (GROUP, "v1", "bars"), ResourceInfo(GROUP, "v1", "bars", "Foo", True, FOO))
    second = openapi.v3_document(PATH)
    assert second is not None and first is not None and second[1] != first[1]


def test_validates_as_openapi_3(foo_resource: ResourceInfo) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    pytest.importorskip("kubeha.api.meta.v1")  # ListMeta, Status, DeleteOptions must resolve
    openapi.reset_cache()
    validator.validate(document())


def _real() -> bool:
    try:
        registry.load_all()
    except Exception:
        return False
    return ("", "v1", "pods") in registry.RESOURCES and ("apps", "v1", "deployments") in registry.RESOURCES


def test_real_documents() -> None:
    if not _real():
        pytest.skip("real declarations not loadable yet")
    openapi.reset_cache()
    idx = openapi.v3_index()["paths"]
    assert "api/v1" in idx and "apis/apps/v1" in idx
    core = document("api/v1")
    pod = core["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    containers = core["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    patch = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    apps = document("apis/apps/v1")
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]
    for path in idx:
        doc = document(path)
        names = set(doc["components"]["schemas"])
        assert {r["$ref"].rsplit("/", 1)[-1] for r in openapi._find_refs(doc)} <= names, path
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(core)
