"""LimitRanger, NodeRestriction and PodSecurity admission against real etcd and real api-server
processes (a kubelet identity from the test PKI; the real kubectl 1.32 for PodSecurity)."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubeha.cli.procs import client_ssl_context
from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.kubectl import Kubectl, kubectl_path


async def call(
    server: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    ctx: ssl.SSLContext | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    conn = aiohttp.TCPConnector(ssl=ctx or server.pki.ssl_context())
    async with aiohttp.ClientSession(connector=conn) as s:
        data = json.dumps(body) if body is not None else None
        async with s.request(method, server.url + path, data=data, headers={"Content-Type": content_type}) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None


async def new_namespace(server: ApiServer, labels: dict[str, str] | None = None) -> str:
    ns = f"adm2-{uuid.uuid4().hex[:8]}"
    code, body = await call(server, "POST", "/api/v1/namespaces", {"metadata": {"name": ns, "labels": labels or {}}})
    assert code == 201, body
    return ns


def pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": list(containers) or [{"name": "c", "image": "busybox"}], **spec},
    }


async def wait_cached(server: ApiServer, path: str, count: int) -> None:
    """Until the server's watch cache (resourceVersion=0 lists) holds ``count`` items at ``path``."""
    for _ in range(100):
        code, body = await call(server, "GET", path + "?resourceVersion=0")
        if code == 200 and len(body["items"]) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never had {count} items in the cache")


# -- LimitRanger ---------------------------------------------------------------------------------------


def test_limit_range_defaults_and_rejects(apiservers: list[ApiServer]) -> None:
    a = apiservers[0]

    async def run() -> None:
        ns = await new_namespace(a)
        lr = {
            "metadata": {"name": "limits"},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "128Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
                        "max": {"cpu": "1"},
                    }
                ]
            },
        }
        code, body = await call(a, "POST", f"/api/v1/namespaces/{ns}/limitranges", lr)
        assert code == 201, body
        await wait_cached(a, f"/api/v1/namespaces/{ns}/limitranges", 1)
        code, p = await call(a, "POST", f"/api/v1/namespaces/{ns}/pods", pod("web"))
        assert code == 201, p
        assert p["spec"]["containers"][0]["resources"] == {
            "limits": {"cpu": "500m", "memory": "128Mi"},
            "requests": {"cpu": "100m", "memory": "64Mi"},
        }
        assert p["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
            "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
        )
        big = pod("big", {"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "2"}}})
        code, st = await call(a, "POST", f"/api/v1/namespaces/{ns}/pods", big)
        assert code == 403, st
        assert st["reason"] == "Forbidden"
        assert st["message"] == 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'

    asyncio.run(run())


# -- NodeRestriction -----------------------------------------------------------------------------------


def test_kubelet_identity_is_restricted(etcd_server: Any, apiserver_factory: ApiServerFactory) -> None:
    server = apiserver_factory(etcd_server.endpoint, ["--enable-admission-plugins=NodeRestriction"])
    cert, key = server.pki.issue_client("system:node:n1", ["system:nodes"])
    kubelet = client_ssl_context(server.pki.ca_crt, cert, key)

    def node(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}}

    async def run() -> None:
        # clean slate for the fixed node names of this identity (the etcd is shared by the session)
        for n in ("n1", "n2"):
            await call(server, "DELETE", f"/api/v1/nodes/{n}")
        code, body = await call(server, "POST", "/api/v1/nodes", node("n2"))  # the admin registers n2
        assert code == 201, body
        # the kubelet registers itself, but cannot register (or modify) another node
        code, body = await call(server, "POST", "/api/v1/nodes", node("n1", {"kubernetes.io/hostname": "n1"}), kubelet)
        assert code == 201, body
        code, st = await call(server, "POST", "/api/v1/nodes", node("n3"), kubelet)
        assert code == 403 and st["message"] == 'nodes "n3" is forbidden: node "n1" is not allowed to modify node "n3"'
        patch = {"metadata": {"labels": {"x": "y"}}}
        code, st = await call(
            server, "PATCH", "/api/v1/nodes/n2", patch, kubelet, content_type="application/merge-patch+json"
        )
        assert code == 403, st
        # its own node: not the node-restriction labels
        patch = {"metadata": {"labels": {"node-restriction.kubernetes.io/pool": "gold"}}}
        code, st = await call(
            server, "PATCH", "/api/v1/nodes/n1", patch, kubelet, content_type="application/merge-patch+json"
        )
        assert code == 403 and st["message"] == (
            'nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool'
        ), st
        # leases: only its own
        lease = {"metadata": {"name": "n2"}, "spec": {"holderIdentity": "n2"}}
        code, st = await call(
            server, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease, kubelet
        )
        assert code == 403 and st["message"].endswith(
            "can only access node lease with the same name as the requesting node"
        ), st
        # pods: only mirror pods; status only of pods bound to itself
        ns = await new_namespace(server)
        code, st = await call(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod("plain", nodeName="n1"), kubelet)
        assert code == 403 and st["message"] == (
            'pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can '
            "only create mirror pods"
        ), st
        for name, where in (("mine", "n1"), ("theirs", "n2")):
            code, body = await call(server, "POST", f"/api/v1/namespaces/{ns}/pods", pod(name, nodeName=where))
            assert code == 201, body
        status = {"status": {"phase": "Running"}}
        code, st = await call(
            server,
            "PATCH",
            f"/api/v1/namespaces/{ns}/pods/theirs/status",
            status,
            kubelet,
            content_type="application/merge-patch+json",
        )
        assert code == 403, st
        # its own pod's status: allowed once the node authorizer's graph has seen the pod
        for _ in range(100):
            code, body = await call(
                server,
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/mine/status",
                status,
                kubelet,
                content_type="application/merge-patch+json",
            )
            if code == 200:
                break
            await asyncio.sleep(0.05)
        assert code == 200 and body["status"]["phase"] == "Running", body

    asyncio.run(run())


# -- PodSecurity ---------------------------------------------------------------------------------------


@pytest.fixture
def kubectl132(apiservers: list[ApiServer], tmp_path: Path) -> Kubectl:
    binary = kubectl_path("1.32")
    if binary is None:
        pytest.skip("kubectl 1.32 not found")
    return Kubectl(binary, apiservers[0].kubeconfig, tmp_path / "home", "1.32")


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
"""

PRIVILEGED_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: root
spec:
  containers:
  - name: c
    image: busybox
    securityContext:
      privileged: true
"""


def test_pod_security_warn_with_kubectl(kubectl132: Kubectl) -> None:
    ns = f"psw-{uuid.uuid4().hex[:8]}"
    kubectl132.ok("create", "namespace", ns)
    kubectl132.ok("label", "namespace", ns, "pod-security.kubernetes.io/warn=restricted")
    res = kubectl132.create(DEPLOYMENT, "-n", ns)
    assert res.rc == 0, res.stderr
    assert "deployment.apps/web created" in res.stdout
    assert res.stderr.strip() == (
        'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "web" '
        'must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "web" must '
        'set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "web" must set '
        'securityContext.runAsNonRoot=true), seccompProfile (pod or container "web" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )


def test_pod_security_enforce_with_kubectl(kubectl132: Kubectl) -> None:
    ns = f"pse-{uuid.uuid4().hex[:8]}"
    kubectl132.ok("create", "namespace", ns)
    kubectl132.ok("create", "-n", ns, "-f", "-", input=PRIVILEGED_POD)  # not enforced yet
    res = kubectl132.run("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline")
    assert res.rc == 0, res.stderr
    # the existing pod violates the new level: warned about, not removed
    assert 'Warning: existing pods in namespace "' + ns + '" violate the new PodSecurity enforce level' in res.stderr
    assert "Warning: root: privileged" in res.stderr
    kubectl132.ok("delete", "pod", "root", "-n", ns, "--wait=false")
    res = kubectl132.create(PRIVILEGED_POD.replace("name: root", "name: root2"), "-n", ns)
    assert res.rc != 0
    assert res.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "root2" is forbidden: violates PodSecurity '
        '"baseline:latest": privileged (container "c" must not set securityContext.privileged=true)'
    )
    # an invalid level is refused on the namespace itself
    err = kubectl132.fail("label", "namespace", ns, "--overwrite", "pod-security.kubernetes.io/enforce=strict")
    assert 'Invalid value: "strict": must be one of privileged, baseline, restricted' in err
