"""events.k8s.io/v1 and core/v1 events share one store (core/v1 form), through real api-servers.

A write through either API is readable, listable and watchable through the other, on either
api-server; etcd holds the core/v1 shape only; `kubectl get events` shows both.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import uuid
from typing import Any

import pytest

from tests.support.apiserver import ApiServer
from tests.support.kubectl import Kubectl

CORE = "/api/v1"
NEW = "/apis/events.k8s.io/v1"


def call(server: ApiServer, method: str, path: str, body: Any = None, ctype: str = "application/json") -> Any:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.pki.ssl_context(), timeout=20)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": ctype, "Accept": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        out = json.loads(raw) if raw else None
        assert 200 <= resp.status < 300, f"{method} {path}: {resp.status} {raw[:500]!r}"
        return out
    finally:
        conn.close()


@pytest.fixture
def ns(apiservers: list[ApiServer]) -> str:
    name = f"ev-{uuid.uuid4().hex[:8]}"
    call(apiservers[0], "POST", f"{CORE}/namespaces", {"metadata": {"name": name}})
    return name


def new_event(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "eventTime": "2024-05-01T10:00:00.000000Z",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Scaled",
        "reason": "ScalingUp",
        "note": "scaled up to 3",
        "type": "Normal",
        "regarding": {"kind": "Deployment", "namespace": ns, "name": "web", "apiVersion": "apps/v1"},
    }


def core_event(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "web-0", "apiVersion": "v1"},
        "reason": "Pulled",
        "message": "image pulled",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-05-01T10:00:00Z",
        "lastTimestamp": "2024-05-01T10:00:05Z",
        "count": 2,
        "type": "Normal",
    }


def etcd_value(etcd_endpoint: str, key: str) -> dict[str, Any]:
    out = subprocess.run(
        ["etcdctl", f"--endpoints={etcd_endpoint}", "get", key, "--print-value-only"],
        capture_output=True,
        text=True,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        timeout=10,
        check=True,
    ).stdout
    value: dict[str, Any] = json.loads(out)
    return value


def test_write_new_api_read_core(apiservers: list[ApiServer], ns: str, etcd_server: Any) -> None:
    a, b = apiservers
    created = call(a, "POST", f"{NEW}/namespaces/{ns}/events", new_event(ns, "scaled"))
    assert created["apiVersion"] == "events.k8s.io/v1"
    assert created["note"] == "scaled up to 3" and created["regarding"]["name"] == "web"
    assert "message" not in created and "involvedObject" not in created
    # read back through the core API on the other server
    core = call(b, "GET", f"{CORE}/namespaces/{ns}/events/scaled")
    assert core["apiVersion"] == "v1"
    assert core["message"] == "scaled up to 3"
    assert core["involvedObject"]["name"] == "web"
    assert core["reportingComponent"] == "example.com/ctl"
    assert core["metadata"]["uid"] == created["metadata"]["uid"]
    assert core["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    # etcd holds the core/v1 form only
    stored = etcd_value(etcd_server.endpoint, f"/registry/events/{ns}/scaled")
    assert stored["apiVersion"] == "v1" and stored["message"] == "scaled up to 3"
    assert "note" not in stored and "regarding" not in stored
    # the new API's list and get convert every item
    lst = call(b, "GET", f"{NEW}/namespaces/{ns}/events")
    assert lst["kind"] == "EventList" and lst["apiVersion"] == "events.k8s.io/v1"
    assert [(i["apiVersion"], i["note"]) for i in lst["items"]] == [("events.k8s.io/v1", "scaled up to 3")]
    # paged (etcd) lists convert too
    paged = call(b, "GET", f"{NEW}/namespaces/{ns}/events?limit=1")
    assert paged["items"][0]["note"] == "scaled up to 3"


def test_write_core_read_new_api_and_update(apiservers: list[ApiServer], ns: str, etcd_server: Any) -> None:
    a, b = apiservers
    call(a, "POST", f"{CORE}/namespaces/{ns}/events", core_event(ns, "pulled"))
    ev = call(b, "GET", f"{NEW}/namespaces/{ns}/events/pulled")
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert ev["note"] == "image pulled"
    assert ev["regarding"]["name"] == "web-0"
    assert ev["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
    assert ev["deprecatedCount"] == 2
    assert ev["deprecatedFirstTimestamp"] == "2024-05-01T10:00:00Z"
    # a merge patch through the new API lands in core form
    patched = call(
        b,
        "PATCH",
        f"{NEW}/namespaces/{ns}/events/pulled",
        {"metadata": {"labels": {"seen": "yes"}}},
        "application/merge-patch+json",
    )
    assert patched["metadata"]["labels"] == {"seen": "yes"} and patched["note"] == "image pulled"
    stored = etcd_value(etcd_server.endpoint, f"/registry/events/{ns}/pulled")
    assert stored["apiVersion"] == "v1" and stored["metadata"]["labels"] == {"seen": "yes"}
    assert stored["count"] == 2 and "deprecatedCount" not in stored
    # field selectors of the core API still work on what the new API wrote
    call(a, "POST", f"{NEW}/namespaces/{ns}/events", new_event(ns, "other"))
    sel = call(a, "GET", f"{CORE}/namespaces/{ns}/events?fieldSelector=involvedObject.name%3Dweb")
    assert [i["metadata"]["name"] for i in sel["items"]] == ["other"]
    # delete through the new API
    st = call(a, "DELETE", f"{NEW}/namespaces/{ns}/events/pulled")
    assert st["status"] == "Success"
    names = [i["metadata"]["name"] for i in call(b, "GET", f"{CORE}/namespaces/{ns}/events")["items"]]
    assert names == ["other"]


def _watch(server: ApiServer, path: str) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.pki.ssl_context(), timeout=20)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200
    return conn, resp


def test_watch_on_one_api_sees_writes_on_the_other(apiservers: list[ApiServer], ns: str) -> None:
    a, b = apiservers
    rv = call(a, "GET", f"{CORE}/namespaces/{ns}/events")["metadata"]["resourceVersion"]
    conn_new, new_stream = _watch(b, f"{NEW}/namespaces/{ns}/events?watch=true&resourceVersion={rv}&timeoutSeconds=15")
    conn_core, core_stream = _watch(
        a, f"{CORE}/namespaces/{ns}/events?watch=true&resourceVersion={rv}&timeoutSeconds=15"
    )
    try:
        call(a, "POST", f"{CORE}/namespaces/{ns}/events", core_event(ns, "via-core"))
        call(b, "POST", f"{NEW}/namespaces/{ns}/events", new_event(ns, "via-new"))
        seen_new = [json.loads(new_stream.readline()) for _ in range(2)]
        seen_core = [json.loads(core_stream.readline()) for _ in range(2)]
    finally:
        conn_new.close()
        conn_core.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen_new] == [
        ("ADDED", "via-core"),
        ("ADDED", "via-new"),
    ]
    assert {e["object"]["apiVersion"] for e in seen_new} == {"events.k8s.io/v1"}
    assert seen_new[0]["object"]["note"] == "image pulled"
    assert {e["object"]["apiVersion"] for e in seen_core} == {"v1"}
    assert seen_core[1]["object"]["message"] == "scaled up to 3"
    assert seen_core[1]["object"]["involvedObject"]["kind"] == "Deployment"


@pytest.mark.parametrize("version", ["1.32", "1.27"])
def test_kubectl_get_events(apiservers: list[ApiServer], ns: str, version: str, tmp_path: Any) -> None:
    from tests.support.kubectl import kubectl_path

    binary = kubectl_path(version)
    if binary is None:
        pytest.skip(f"kubectl {version} not found")
    a, b = apiservers
    call(a, "POST", f"{NEW}/namespaces/{ns}/events", new_event(ns, "scaled"))
    call(a, "POST", f"{CORE}/namespaces/{ns}/events", core_event(ns, "pulled"))
    k = Kubectl(binary, b.kubeconfig, tmp_path / "home", version)
    out = k.ok("get", "events", "-n", ns)
    lines = out.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    body = "\n".join(lines[1:])
    assert "ScalingUp" in body and "deployment/web" in body and "scaled up to 3" in body
    assert "Pulled" in body and "pod/web-0" in body and "image pulled" in body
    out = k.ok("get", "events.events.k8s.io", "-n", ns, "-o", "json")
    items = json.loads(out)["items"]
    assert sorted((i["apiVersion"], i["metadata"]["name"]) for i in items) == [
        ("events.k8s.io/v1", "pulled"),
        ("events.k8s.io/v1", "scaled"),
    ]
    # kubectl create -f through the new API, then read with the old one
    manifest = json.dumps(new_event(ns, "from-kubectl"))
    k.ok("create", "-f", "-", input=manifest)
    assert k.json("get", "events", "from-kubectl", "-n", ns)["message"] == "scaled up to 3"
