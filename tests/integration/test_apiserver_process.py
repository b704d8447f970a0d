"""The real `kubeha apiserver` process: TLS, client-cert authentication, authorization modes,
graceful shutdown, and kubectl flows that need a whole server (watch, delete waits)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from kubeha.cli.procs import client_ssl_context, http_get
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.kubectl import Kubectl, kubectl_path


def _get(server: ApiServer, path: str, cn: str | None = "admin", orgs: list[str] | None = None) -> tuple[int, bytes]:
    pki = server.pki
    if cn == "admin":
        ctx = pki.ssl_context()
    elif cn is None:
        ctx = client_ssl_context(pki.ca_crt)
    else:
        cert, key = pki.issue_client(cn, orgs)
        ctx = client_ssl_context(pki.ca_crt, cert, key)
    return http_get(server.url + path, ctx, timeout=5)


def test_authn_and_default_authorization(etcd_server: object, apiserver_factory: ApiServerFactory) -> None:
    server = apiserver_factory(etcd_server.endpoint, ["--authorization-mode=Node,RBAC"])  # type: ignore[attr-defined]
    # system:masters (the admin certificate) may do anything
    code, body = _get(server, "/api/v1/namespaces/default/configmaps")
    assert code == 200, body
    # anonymous: health and version yes, discovery and resources no
    assert _get(server, "/healthz", cn=None)[0] == 200
    assert _get(server, "/version", cn=None)[0] == 200
    code, body = _get(server, "/api/v1/namespaces/default/configmaps", cn=None)
    assert code == 403
    st = json.loads(body)
    assert st["reason"] == "Forbidden" and 'User "system:anonymous" cannot list resource "configmaps"' in st["message"]
    # an authenticated user outside system:masters: discovery yes, resources no
    assert _get(server, "/api", cn="alice", orgs=["devs"])[0] == 200
    code, body = _get(server, "/api/v1/namespaces/default/pods/x", cn="alice", orgs=["devs"])
    assert code == 403 and 'User "alice" cannot get resource "pods"' in json.loads(body)["message"]


def test_anonymous_disabled(etcd_server: object, apiserver_factory: ApiServerFactory) -> None:
    server = apiserver_factory(etcd_server.endpoint, ["--anonymous-auth=false"])  # type: ignore[attr-defined]
    code, body = _get(server, "/api/v1/namespaces", cn=None)
    assert code == 401 and json.loads(body)["reason"] == "Unauthorized"
    assert _get(server, "/api/v1/namespaces")[0] == 200


def test_system_objects_and_metrics(etcd_server: object, apiserver_factory: ApiServerFactory) -> None:
    server = apiserver_factory(etcd_server.endpoint)  # type: ignore[attr-defined]
    code, body = _get(server, "/api/v1/namespaces/default/services/kubernetes")
    assert code == 200
    svc = json.loads(body)
    assert svc["spec"]["clusterIP"] == "10.96.0.1" and svc["spec"]["ports"][0]["port"] == 443
    code, body = _get(server, "/api/v1/namespaces/default/endpoints/kubernetes")
    assert code == 200 and {"ip": "127.0.0.1"} in json.loads(body)["subsets"][0]["addresses"]
    code, body = _get(server, "/readyz?verbose")
    assert code == 200 and b"[+]etcd ok" in body
    code, body = _get(server, "/metrics")
    assert code == 200 and b'apiserver_request_total{code="200"' in body


def test_graceful_shutdown_ends_watches(etcd_server: object, apiserver_factory: ApiServerFactory) -> None:
    server = apiserver_factory(etcd_server.endpoint, ["--shutdown-delay-duration=1s"])  # type: ignore[attr-defined]
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.pki.ssl_context(), timeout=20)
    conn.request("GET", "/api/v1/namespaces?watch=true&timeoutSeconds=60")
    resp = conn.getresponse()
    assert resp.status == 200
    first = json.loads(resp.readline())
    assert first["type"] == "ADDED"
    readyz: list[int] = []

    def probe() -> None:
        time.sleep(0.3)
        readyz.append(_get(server, "/readyz")[0])

    t = threading.Thread(target=probe)
    t.start()
    server.proc.send_signal(signal.SIGTERM)
    t.join()
    assert readyz == [503]
    # the stream ends cleanly (chunked terminator), not with a reset
    rest = resp.read()
    assert all(json.loads(line)["type"] in ("ADDED", "BOOKMARK") for line in rest.splitlines() if line)
    assert server.proc.wait(timeout=30) == 0


@pytest.fixture
def k32(apiservers: list[ApiServer], tmp_path: Path) -> Kubectl:
    binary = kubectl_path("1.32")
    if binary is None:
        pytest.skip("kubectl 1.32 not found")
    return Kubectl(binary, apiservers[0].kubeconfig, tmp_path / "home")


def test_kubectl_watch_delete_and_graceful_pods(k32: Kubectl, apiservers: list[ApiServer]) -> None:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    k32.ok("create", "namespace", ns)
    k32.ok("create", "configmap", "w", "-n", ns, "--from-literal=a=1")
    # kubectl get -w sees a change made through the other api-server
    watcher = subprocess.Popen(
        k32.argv(("get", "configmap", "-n", ns, "-w", "-o", "name")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=k32.env(),
    )
    try:
        time.sleep(1.5)
        kb = Kubectl(k32.binary, apiservers[1].kubeconfig, k32.home.parent / "home-b")
        kb.ok("label", "configmap", "w", "-n", ns, "x=y")
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    assert out.splitlines() == ["configmap/w", "configmap/w"]  # the initial state, then the change

    # a pod bound to a node is deleted gracefully: it stays until the kubelet's grace-0 delete
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": ns},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
    }
    res = k32.run("create", "-f", "-", input=json.dumps(pod))
    assert res.rc == 0, res.stderr
    k32.ok("delete", "pod", "p", "-n", ns, "--wait=false")
    got = k32.json("get", "pod", "p", "-n", ns)
    assert got["metadata"]["deletionTimestamp"] and got["metadata"]["deletionGracePeriodSeconds"] == 30
    k32.ok("delete", "pod", "p", "-n", ns, "--grace-period=0", "--force")
    assert k32.run("get", "pod", "p", "-n", ns).rc != 0

    # deleting an emptied namespace completes (kubectl waits for it)
    k32.ok("delete", "configmap", "w", "-n", ns)
    out = k32.ok("delete", "namespace", ns, "--timeout=20s")
    assert f'namespace "{ns}" deleted' in out
