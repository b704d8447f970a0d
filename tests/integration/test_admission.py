"""Admission plugins against real etcd and real `kubeha apiserver` processes (upstream's default set)."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from typing import Any

import aiohttp

from tests.support.apiserver import ApiServer, ApiServerFactory


async def call(
    server: ApiServer, method: str, path: str, body: Any = None, ctx: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    conn = aiohttp.TCPConnector(ssl=ctx or server.pki.ssl_context())
    async with aiohttp.ClientSession(connector=conn) as s:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"}
        async with s.request(method, server.url + path, data=data, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


async def namespace(server: ApiServer, with_sa: bool = True) -> str:
    ns = f"adm-{uuid.uuid4().hex[:8]}"
    code, body = await call(server, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    assert code == 201, body
    if with_sa:  # what the service-account controller would do
        code, body = await call(
            server, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "default"}}
        )
        assert code == 201, body
    return ns


def test_quota_exact_across_apiservers(apiservers: list[ApiServer]) -> None:
    a, b = apiservers

    async def run() -> None:
        ns = await namespace(a)
        quota = {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "5"}}}
        code, body = await call(a, "POST", f"/api/v1/namespaces/{ns}/resourcequotas", quota)
        assert code == 201, body
        assert body["status"] == {"hard": {"pods": "5"}, "used": {"pods": "0"}}
        # both servers' caches must see the quota (and the service account) first
        for _ in range(50):
            codes = [
                (await call(s, "GET", f"/api/v1/namespaces/{ns}/resourcequotas?resourceVersion=0"))[1] for s in (a, b)
            ]
            if all(len(c["items"]) == 1 for c in codes):
                break
            await asyncio.sleep(0.1)
        results = await asyncio.gather(
            *(call(a if i % 2 else b, "POST", f"/api/v1/namespaces/{ns}/pods", pod(f"p{i}")) for i in range(20))
        )
        ok = [r for r in results if r[0] == 201]
        refused = [r for r in results if r[0] != 201]
        assert len(ok) == 5, [r[1].get("message") for r in refused][:3]
        assert all(r[0] == 403 for r in refused)
        msg = refused[0][1]["message"]
        assert "is forbidden: exceeded quota: q, requested: pods=1, used: pods=5, limited: pods=5" in msg
        code, q = await call(a, "GET", f"/api/v1/namespaces/{ns}/resourcequotas/q")
        assert q["status"]["used"] == {"pods": "5"}
        # a removed pod gives its unit back
        code, _ = await call(a, "DELETE", f"/api/v1/namespaces/{ns}/pods/{ok[0][1]['metadata']['name']}")
        assert code == 200
        code, q = await call(a, "GET", f"/api/v1/namespaces/{ns}/resourcequotas/q")
        assert q["status"]["used"] == {"pods": "4"}

    asyncio.run(run())


def test_namespace_lifecycle(apiservers: list[ApiServer]) -> None:
    a = apiservers[0]

    async def run() -> None:
        code, st = await call(a, "DELETE", "/api/v1/namespaces/kube-system")
        assert (
            code == 403 and st["message"] == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'
        )
        code, st = await call(a, "POST", "/api/v1/namespaces/nope-404/configmaps", {"metadata": {"name": "x"}})
        assert code == 404 and st["message"] == 'namespaces "nope-404" not found'

    asyncio.run(run())


def test_pod_defaults_from_admission(etcd_server: object, apiserver_factory: ApiServerFactory) -> None:
    a = apiserver_factory(etcd_server.endpoint, ["--enable-admission-plugins=ServiceAccount"])  # type: ignore[attr-defined]

    async def run() -> None:
        ns = await namespace(a)
        code, p = await call(a, "POST", f"/api/v1/namespaces/{ns}/pods", pod("web"))
        assert code == 201, p
        spec = p["spec"]
        assert spec["serviceAccountName"] == "default" and spec["priority"] == 0
        vol = next(v for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
        assert vol["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
        mount = spec["containers"][0]["volumeMounts"][0]
        assert mount == {
            "name": vol["name"],
            "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        }
        keys = {(t["key"], t["tolerationSeconds"]) for t in spec["tolerations"]}
        assert keys == {("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300)}
        # no token volume when automounting is off
        code, p = await call(
            a, "POST", f"/api/v1/namespaces/{ns}/pods", pod("quiet", automountServiceAccountToken=False)
        )
        assert code == 201 and not p["spec"].get("volumes")
        # unknown service account / priority class
        code, st = await call(a, "POST", f"/api/v1/namespaces/{ns}/pods", pod("x", serviceAccountName="ghost"))
        assert code == 403
        assert st["message"] == (
            f'pods "x" is forbidden: error looking up service account {ns}/ghost: serviceaccount "ghost" not found'
        )
        code, st = await call(a, "POST", f"/api/v1/namespaces/{ns}/pods", pod("y", priorityClassName="nope"))
        assert code == 403 and st["message"] == 'pods "y" is forbidden: no PriorityClass with name nope was found'
        code, p = await call(
            a, "POST", f"/api/v1/namespaces/{ns}/pods", pod("z", priorityClassName="system-node-critical")
        )
        assert code == 201 and p["spec"]["priority"] == 2000001000

    asyncio.run(run())


def test_single_global_default_priority_class(apiservers: list[ApiServer]) -> None:
    a = apiservers[0]
    base = "/apis/scheduling.k8s.io/v1/priorityclasses"

    async def run() -> None:
        first, second = f"d1-{uuid.uuid4().hex[:6]}", f"d2-{uuid.uuid4().hex[:6]}"
        code, body = await call(a, "POST", base, {"metadata": {"name": first}, "value": 10, "globalDefault": True})
        assert code == 201, body
        try:
            for _ in range(50):
                code, st = await call(
                    a, "POST", base, {"metadata": {"name": second}, "value": 5, "globalDefault": True}
                )
                if code != 201:
                    break
                await call(a, "DELETE", f"{base}/{second}")
                await asyncio.sleep(0.1)
            assert code == 403
            assert st["message"] == (
                f'priorityclasses.scheduling.k8s.io "{second}" is forbidden: PriorityClass {first} is already '
                "marked as default. Only one default can exist"
            )
        finally:
            await call(a, "DELETE", f"{base}/{first}")

    asyncio.run(run())
