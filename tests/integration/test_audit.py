"""The audit log of a real `kubeha apiserver` process: policy levels, event shape, Audit-ID header."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp

from tests.support.apiserver import ApiServerFactory

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  nonResourceURLs: ["/readyz*", "/healthz*", "/livez*"]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
- level: Metadata
"""


def test_audit_log(etcd_server: object, apiserver_factory: ApiServerFactory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    log = tmp_path / "audit" / "audit.log"
    server = apiserver_factory(
        etcd_server.endpoint,  # type: ignore[attr-defined]
        [f"--audit-log-path={log}", f"--audit-policy-file={policy}"],
    )
    name = f"cm-{uuid.uuid4().hex[:8]}"

    async def run() -> str:
        conn = aiohttp.TCPConnector(ssl=server.pki.ssl_context())
        async with aiohttp.ClientSession(connector=conn) as s:
            body = {"metadata": {"name": name}, "data": {"k": "v"}}
            async with s.post(server.url + "/api/v1/namespaces/default/configmaps", json=body) as r:
                assert r.status == 201
                audit_id = r.headers["Audit-ID"]
            async with s.get(server.url + "/api/v1/namespaces/default/secrets/nope") as r:
                assert r.status == 404 and r.headers.get("Audit-ID")
            # a streamed response: its headers go out before the handler returns
            params = {"watch": "true", "timeoutSeconds": "1"}
            async with s.get(server.url + "/api/v1/namespaces/default/configmaps", params=params) as r:
                assert r.status == 200
                watch_ids.append(r.headers["Audit-ID"])
                await r.read()
            return audit_id

    watch_ids: list[str] = []
    audit_id = asyncio.run(run())
    events: list[dict[str, object]] = []
    for _ in range(50):
        if log.exists():
            events = [json.loads(line) for line in log.read_text().splitlines() if line]
            if [e["stage"] for e in events if e["auditID"] == watch_ids[0]] == ["ResponseStarted", "ResponseComplete"]:
                break
        time.sleep(0.1)
    create = [e for e in events if e["auditID"] == audit_id]
    assert len(create) == 1  # RequestReceived is omitted by the policy
    ev = create[0]
    assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1"
    assert ev["stage"] == "ResponseComplete" and ev["level"] == "RequestResponse" and ev["verb"] == "create"
    assert ev["objectRef"] == {"resource": "configmaps", "namespace": "default", "apiVersion": "v1"}
    assert ev["responseStatus"]["code"] == 201  # type: ignore[index]
    assert ev["user"]["username"] == "kubernetes-admin"  # type: ignore[index]
    assert ev["requestObject"]["data"] == {"k": "v"}  # type: ignore[index]
    assert ev["responseObject"]["metadata"]["name"] == name  # type: ignore[index]
    assert ev["annotations"]["authorization.k8s.io/decision"] == "allow"  # type: ignore[index]
    assert "127.0.0.1" in ev["sourceIPs"]  # type: ignore[operator]
    secret = next(e for e in events if e.get("objectRef", {}).get("resource") == "secrets")  # type: ignore[union-attr]
    assert secret["level"] == "Metadata" and "responseObject" not in secret
    assert secret["responseStatus"]["code"] == 404 and secret["responseStatus"]["reason"] == "NotFound"  # type: ignore[index]
    assert not any(str(e["requestURI"]).startswith("/readyz") for e in events)
    watch = [e for e in events if e["auditID"] == watch_ids[0]]
    assert [e["stage"] for e in watch] == ["ResponseStarted", "ResponseComplete"]
    assert watch[0]["verb"] == "watch" and watch[0]["responseStatus"]["code"] == 200  # type: ignore[index]
