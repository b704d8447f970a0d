"""Helpers for the auth integration tests: one HTTPS request as any identity, polling."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeha.cli.procs import client_ssl_context
from tests.support.apiserver import ApiServer

Identity = str | tuple[str, list[str]] | None  # "admin", (cn, orgs), or None (no certificate)


def call(
    server: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    who: Identity = "admin",
    token: str | None = None,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    pki = server.pki
    if who == "admin":
        ctx = pki.ssl_context()
    elif who is None:
        ctx = client_ssl_context(pki.ca_crt)
    else:
        assert isinstance(who, tuple)
        cert, key = pki.issue_client(who[0], who[1])
        ctx = client_ssl_context(pki.ca_crt, cert, key)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.putrequest(method, path)
        hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if token is not None:
            hdrs.append(("Authorization", f"Bearer {token}"))
        data = json.dumps(body).encode() if body is not None else b""
        if body is not None:
            hdrs.append(("Content-Type", "application/json"))
        hdrs.append(("Content-Length", str(len(data))))
        for k, v in hdrs:
            conn.putheader(k, v)
        conn.endheaders(data)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def eventually(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Retry ``fn`` until it returns a truthy value (authorizers follow the watch caches)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout}s: last={last!r}")


def whoami(server: ApiServer, **kw: Any) -> tuple[int, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return call(server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body, **kw)


def can(server: ApiServer, verb: str, resource: str, ns: str = "default", group: str = "", **kw: Any) -> bool:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns, "group": group}},
    }
    code, out = call(server, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body, **kw)
    assert code == 201, out
    return bool(out["status"]["allowed"])


def write_rsa_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def bind(server: ApiServer, ns: str, name: str, role_kind: str, role: str, subjects: list[dict[str, str]]) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    if ns:
        path, kind = f"{rbac}/namespaces/{ns}/rolebindings", "RoleBinding"
    else:
        path, kind = f"{rbac}/clusterrolebindings", "ClusterRoleBinding"
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", **s} if s["kind"] != "ServiceAccount" else s for s in subjects
        ],
    }
    code, out = call(server, "POST", path, body)
    assert code == 201, out


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name}
