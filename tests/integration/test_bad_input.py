"""Bad input through real HTTP (issue 2, item 7): upstream's Status errors, nothing half-written.

Every case goes over TLS to a real `kubeha apiserver` process; afterwards etcd holds exactly the
objects the good requests made, and both api-servers keep serving.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import uuid
from typing import Any

import pytest

from tests.support.apiserver import ApiServer

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def call(
    server: ApiServer, method: str, path: str, body: Any = None, ctype: str = JSON, raw: bytes | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.pki.ssl_context(), timeout=30)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Accept": JSON}
        if data is not None:
            headers["Content-Type"] = ctype
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail(f"{method} {path}: the server dropped the connection instead of answering")
        out = resp.read()
        return resp.status, json.loads(out) if out else None
    finally:
        conn.close()


def ok(server: ApiServer, method: str, path: str, body: Any = None, ctype: str = JSON) -> Any:
    code, out = call(server, method, path, body, ctype)
    assert 200 <= code < 300, (code, out)
    return out


def status(code: int, out: Any, want_code: int, reason: str) -> dict[str, Any]:
    assert code == want_code, (code, out)
    assert out["kind"] == "Status" and out["apiVersion"] == "v1" and out["status"] == "Failure", out
    assert out["reason"] == reason and out["code"] == want_code, out
    st: dict[str, Any] = out
    return st


def etcd_keys(server: ApiServer, endpoint: str, prefix: str) -> list[str]:
    out = subprocess.run(
        ["etcdctl", f"--endpoints={endpoint}", "get", prefix, "--prefix", "--keys-only"],
        capture_output=True,
        text=True,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        timeout=10,
        check=True,
    ).stdout
    return sorted(line for line in out.splitlines() if line)


@pytest.fixture(scope="module")
def ns(apiservers: list[ApiServer]) -> str:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    ok(apiservers[0], "POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


def test_malformed_bodies_are_400(apiservers: list[ApiServer], ns: str) -> None:
    a = apiservers[0]
    path = f"/api/v1/namespaces/{ns}/configmaps"
    st = status(*call(a, "POST", path, raw=b'{"metadata": {"name": "x"', ctype=JSON), 400, "BadRequest")
    assert st["message"]
    st = status(*call(a, "POST", path, raw=b"metadata: [unclosed\n  - x: {", ctype=YAML), 400, "BadRequest")
    assert "yaml" in st["message"].lower()
    # protobuf: a wrong magic, then the right magic with a truncated envelope
    status(*call(a, "POST", path, raw=b"nope\x00\x0a\x05", ctype=PROTOBUF), 400, "BadRequest")
    status(*call(a, "POST", path, raw=b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x09Conf", ctype=PROTOBUF), 400, "BadRequest")
    # a JSON array where an object belongs
    status(*call(a, "POST", path, raw=b"[1, 2]", ctype=JSON), 400, "BadRequest")
    # a malformed patch document
    ok(a, "POST", path, cm("patched", a="1"))
    code, out = call(a, "PATCH", f"{path}/patched", raw=b"{oops", ctype="application/merge-patch+json")
    status(code, out, 400, "BadRequest")
    code, out = call(a, "PATCH", f"{path}/patched", raw=b'{"op": "add"}', ctype="application/json-patch+json")
    status(code, out, 400, "BadRequest")


def test_strict_field_validation_is_400(apiservers: list[ApiServer], ns: str) -> None:
    a = apiservers[0]
    path = f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict"
    body = cm("strict", a="1")
    body["bogus"] = 1
    body["metadata"]["alsoBogus"] = "x"
    st = status(*call(a, "POST", path, body), 400, "BadRequest")
    assert st["message"].startswith(
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error:'
    )
    assert 'unknown field "bogus"' in st["message"] and 'unknown field "metadata.alsoBogus"' in st["message"]
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}'
    st = status(*call(a, "POST", path, raw=raw), 400, "BadRequest")
    assert 'duplicate field "data"' in st["message"]
    # a wrong type is a decode error whatever the validation level
    body = deployment("typed")
    body["spec"]["replicas"] = "three"
    st = status(*call(a, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body), 400, "BadRequest")
    assert st["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    # unknown fields in a strict patch too
    ok(a, "POST", f"/api/v1/namespaces/{ns}/configmaps", cm("strict-patch"))
    code, out = call(
        a,
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/strict-patch?fieldValidation=Strict",
        {"nope": 1},
        "application/merge-patch+json",
    )
    assert 'unknown field "nope"' in status(code, out, 400, "BadRequest")["message"]


def test_wrong_kind_or_api_version_is_400(apiservers: list[ApiServer], ns: str) -> None:
    a = apiservers[1]
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = cm("wrong")
    body["kind"] = "Secret"
    st = status(*call(a, "POST", path, body), 400, "BadRequest")
    assert st["message"] == "the kind in the data (Secret) does not match the expected kind (ConfigMap)"
    body = cm("wrong")
    body["apiVersion"] = "apps/v1"
    st = status(*call(a, "POST", path, body), 400, "BadRequest")
    assert st["message"] == "the API version in the data (apps/v1) does not match the expected API version (v1)"


def test_invalid_names_and_values_are_422_with_causes(apiservers: list[ApiServer], ns: str) -> None:
    a = apiservers[0]
    st = status(*call(a, "POST", f"/api/v1/namespaces/{ns}/configmaps", cm("Bad_Name")), 422, "Invalid")
    assert st["details"]["kind"] == "ConfigMap" and st["details"]["name"] == "Bad_Name"
    assert [c["field"] for c in st["details"]["causes"]] == ["metadata.name"]
    assert st["details"]["causes"][0]["reason"] == "FieldValueInvalid"
    assert st["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    st = status(
        *call(a, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("neg", replicas=-1)), 422, "Invalid"
    )
    assert st["details"]["group"] == "apps"
    assert {"reason": "FieldValueInvalid", "field": "spec.replicas"}.items() <= st["details"]["causes"][0].items()
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in st["message"]
    # generateName: the generated name is validated, the prefix error is reported
    body = cm("")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "Bad_"
    st = status(*call(a, "POST", f"/api/v1/namespaces/{ns}/configmaps", body), 422, "Invalid")
    assert any(c["field"] == "metadata.generateName" for c in st["details"]["causes"]), st


def test_odd_paths_get_a_status(apiservers: list[ApiServer], ns: str) -> None:
    """Control characters and stray encodings in a path are the handlers' to refuse, with a
    Status: never the HTTP framework's plain-text 404 (found by the OpenAPI fuzzer)."""
    s = apiservers[0]
    code, out = call(s, "POST", "/api/v1/namespaces/a%0Ab/configmaps", cm("x"))
    st = status(code, out, 422, "Invalid")
    assert [c["field"] for c in st["details"]["causes"]] == ["metadata.namespace"]
    code, out = call(s, "GET", "/api/v1/namespaces/a%0Ab/configmaps/x%0A")
    status(code, out, 404, "NotFound")
    code, out = call(s, "GET", "/no/such%0Apath")
    status(code, out, 404, "NotFound")
    code, out = call(s, "GET", f"/api/v1/namespaces/{ns}/configmaps/bad%0Aname")
    status(code, out, 404, "NotFound")


def test_conflicts_and_missing_namespace(apiservers: list[ApiServer], ns: str) -> None:
    a, b = apiservers
    path = f"/api/v1/namespaces/{ns}/configmaps"
    first = ok(a, "POST", path, cm("conflict", v="1"))
    # existing name, through the other server
    st = status(*call(b, "POST", path, cm("conflict")), 409, "AlreadyExists")
    assert st["message"] == 'configmaps "conflict" already exists'
    assert st["details"] == {"name": "conflict", "kind": "configmaps"}
    # stale resourceVersion
    ok(b, "PUT", f"{path}/conflict", {**first, "data": {"v": "2"}})
    st = status(*call(a, "PUT", f"{path}/conflict", {**first, "data": {"v": "3"}}), 409, "Conflict")
    assert st["message"] == (
        'Operation cannot be fulfilled on configmaps "conflict": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert ok(a, "GET", f"{path}/conflict")["data"] == {"v": "2"}
    # missing namespace
    st = status(*call(a, "POST", "/api/v1/namespaces/no-such-ns-x/configmaps", cm("x")), 404, "NotFound")
    assert st["message"] == 'namespaces "no-such-ns-x" not found'
    assert st["details"] == {"name": "no-such-ns-x", "kind": "namespaces"}
    # a failed JSON patch test: 422 naming the path
    code, out = call(
        a,
        "PATCH",
        f"{path}/conflict",
        [{"op": "test", "path": "/data/v", "value": "9"}],
        "application/json-patch+json",
    )
    st = status(code, out, 422, "Invalid")
    assert st["details"]["causes"][0]["message"] == "testing value /data/v failed: test failed"


def test_too_large_is_413(apiservers: list[ApiServer], ns: str) -> None:
    a = apiservers[0]
    path = f"/api/v1/namespaces/{ns}/configmaps"
    # body over 3 MiB
    code, out = call(a, "POST", path, cm("huge", blob="x" * (3 * 1024 * 1024 + 100)))
    status(code, out, 413, "RequestEntityTooLarge")
    # body under 3 MiB but the object over etcd's 1.5 MiB value limit (env values have no size rule)
    dpath = f"/apis/apps/v1/namespaces/{ns}/deployments"
    big = deployment("big")
    big["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "BLOB", "value": "x" * (1600 * 1024)}]
    st = status(*call(a, "POST", dpath, big), 413, "RequestEntityTooLarge")
    assert st["message"] == "etcdserver: request is too large"
    # growing an existing object past the limit by an update is refused the same way
    small = ok(a, "POST", dpath, deployment("grows"))
    small["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "BLOB", "value": "y" * (1600 * 1024)}]
    code, out = call(a, "PUT", f"{dpath}/grows", small)
    status(code, out, 413, "RequestEntityTooLarge")
    assert "env" not in ok(a, "GET", f"{dpath}/grows")["spec"]["template"]["spec"]["containers"][0]
    # a ConfigMap has its own 1 MiB rule, checked first (422, as upstream)
    st = status(*call(a, "POST", path, cm("big", blob="x" * (2 * 1024 * 1024))), 422, "Invalid")
    assert st["details"]["causes"][0]["reason"] == "FieldValueTooLong"


def test_immutable_fields_are_422(apiservers: list[ApiServer], ns: str) -> None:
    a, b = apiservers
    base = f"/api/v1/namespaces/{ns}"
    secret = ok(
        a,
        "POST",
        f"{base}/secrets",
        {"metadata": {"name": "frozen"}, "immutable": True, "stringData": {"k": "v"}},
    )
    code, out = call(b, "PUT", f"{base}/secrets/frozen", {**secret, "data": {"k": "Y2hhbmdlZA=="}})
    st = status(code, out, 422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "data"
    assert "field is immutable when `immutable` is set" in st["message"]
    # a deployment's selector
    dep = ok(a, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("sel"))
    dep["spec"]["selector"] = {"matchLabels": {"app": "sel", "x": "y"}}
    dep["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    code, out = call(b, "PUT", f"/apis/apps/v1/namespaces/{ns}/deployments/sel", dep)
    st = status(code, out, 422, "Invalid")
    assert any(c["field"] == "spec.selector" for c in st["details"]["causes"]), st
    # metadata.uid may not change on update (upstream's BeforeUpdate + ValidateObjectMetaUpdate)
    cmap = ok(a, "POST", f"{base}/configmaps", cm("uid"))
    cmap["metadata"]["uid"] = str(uuid.uuid4())
    st = status(*call(a, "PUT", f"{base}/configmaps/uid", cmap), 422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "metadata.uid"
    # leaving uid and creationTimestamp out of an update keeps the stored ones
    cmap = ok(a, "GET", f"{base}/configmaps/uid")
    bare = {"metadata": {"name": "uid", "resourceVersion": cmap["metadata"]["resourceVersion"]}, "data": {"a": "b"}}
    updated = ok(b, "PUT", f"{base}/configmaps/uid", bare)
    assert updated["metadata"]["uid"] == cmap["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == cmap["metadata"]["creationTimestamp"]


def test_nothing_half_written_and_still_serving(apiservers: list[ApiServer], ns: str, etcd_server: Any) -> None:
    """Runs last in this module: etcd holds only what the accepted requests created."""
    for server in apiservers:
        assert server.alive()
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.pki.ssl_context(), timeout=10)
        conn.request("GET", "/readyz")
        assert conn.getresponse().read() == b"ok"
        conn.close()
    cms = etcd_keys(apiservers[0], etcd_server.endpoint, f"/registry/configmaps/{ns}/")
    assert cms == [f"/registry/configmaps/{ns}/{n}" for n in ("conflict", "patched", "strict-patch", "uid")]
    deps = etcd_keys(apiservers[0], etcd_server.endpoint, f"/registry/apps/deployments/{ns}/")
    assert deps == [f"/registry/apps/deployments/{ns}/{n}" for n in ("grows", "sel")]
    secrets = etcd_keys(apiservers[0], etcd_server.endpoint, f"/registry/secrets/{ns}/")
    assert secrets == [f"/registry/secrets/{ns}/frozen"]
    assert etcd_keys(apiservers[0], etcd_server.endpoint, "/registry/configmaps/no-such-ns-x/") == []
    assert etcd_keys(apiservers[0], etcd_server.endpoint, "/registry/namespaces/no-such-ns-x") == []
    # both servers answer lists that match etcd
    for server in apiservers:
        names = [i["metadata"]["name"] for i in ok(server, "GET", f"/api/v1/namespaces/{ns}/configmaps")["items"]]
        assert names == ["conflict", "patched", "strict-patch", "uid"]
