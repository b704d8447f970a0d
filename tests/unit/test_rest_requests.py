"""Request parsing for the REST layer: paths, Accept shapes, continue tokens, durations."""

from __future__ import annotations

import pytest

from kubeha.api.errors import StatusError
from kubeha.apiserver.negotiation import parse_accept
from kubeha.apiserver.requestinfo import parse
from kubeha.apiserver.rest import decode_continue, encode_continue
from kubeha.machinery.process import parse_duration


@pytest.mark.parametrize(
    ("method", "path", "query", "want"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "v1", "ns", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "", "v1", "ns", "pods", "p", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "", "v1", "ns", "pods", "", "")),
        ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "", "v1", "ns", "pods", "", "")),
        ("POST", "/api/v1/namespaces/ns/pods/p/binding", {}, ("create", "", "v1", "ns", "pods", "p", "binding")),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/ns/deployments/d/scale",
            {},
            ("patch", "apps", "v1", "ns", "deployments", "d", "scale"),
        ),
        ("DELETE", "/api/v1/namespaces/ns/configmaps", {}, ("deletecollection", "", "v1", "ns", "configmaps", "", "")),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "v1", "", "namespaces", "", "")),
        ("DELETE", "/api/v1/namespaces/x", {}, ("delete", "", "v1", "x", "namespaces", "x", "")),
        ("PUT", "/api/v1/namespaces/x/finalize", {}, ("update", "", "v1", "x", "namespaces", "x", "finalize")),
        ("PUT", "/api/v1/namespaces/x/status", {}, ("update", "", "v1", "x", "namespaces", "x", "status")),
        ("GET", "/apis/apps/v1/deployments", {}, ("list", "apps", "v1", "", "deployments", "", "")),
        ("GET", "/api/v1/nodes/n1", {}, ("get", "", "v1", "", "nodes", "n1", "")),
    ],
)
def test_request_info(method: str, path: str, query: dict[str, str], want: tuple[str, ...]) -> None:
    ri = parse(method, path, query)
    assert ri.is_resource
    assert (ri.verb, ri.group, ri.version, ri.namespace, ri.resource, ri.name, ri.subresource) == want


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1", "/healthz", "/version"])
def test_non_resource_paths(path: str) -> None:
    assert not parse("GET", path).is_resource


def test_accept_shapes() -> None:
    kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert parse_accept(kubectl).table
    assert parse_accept("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").metadata_only
    plain = parse_accept("application/vnd.kubernetes.protobuf, */*")
    assert not plain.table and not plain.metadata_only
    # an unknown shape falls through to the next entry, never 406
    assert not parse_accept("application/json;as=Foo;g=example.com,application/json").table
    assert parse_accept(None).kind == "Object"


def test_continue_token_round_trip() -> None:
    prefix = "/registry/configmaps/ns/"
    token = encode_continue(prefix + "c", 42, prefix)
    start, rev = decode_continue(token, prefix)
    assert (start, rev) == (prefix + "c\x00", 42)
    for bad in ("!!!", "bm90LWEtdG9rZW4", encode_continue(prefix + "c", 42, prefix)[:-3]):
        with pytest.raises(StatusError) as e:
            decode_continue(bad, prefix)
        assert e.value.code == 400


def test_durations() -> None:
    assert parse_duration("70s") == 70
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    assert parse_duration("3") == 3
