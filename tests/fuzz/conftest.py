"""Fuzz fixtures: one real etcd and real `kubeha apiserver` processes, raw HTTPS helpers.

The suite is bounded by ``corpus/bounds.json``; every helper here records the status codes it saw
so each test can assert that no 5xx happened and the server is still up afterwards.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.etcd import etcd_server
from tests.support.pki import PKI

__all__ = ["etcd_server"]

CORPUS = Path(__file__).parent / "corpus"
NAMESPACE = "fuzz"
# a slow client is given up on after this long (the server's --request-timeout in this suite)
REQUEST_TIMEOUT = 2.0


def corpus(name: str) -> Any:
    path = CORPUS / name
    return json.loads(path.read_text()) if name.endswith(".json") else path.read_bytes()


def bounds() -> dict[str, Any]:
    b: dict[str, Any] = corpus("bounds.json")
    return b


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """Raw HTTPS requests as the admin; remembers every status code it got."""

    server: ApiServer
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    def ssl(self) -> ssl.SSLContext:
        return self.server.pki.ssl_context()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        ctype: str | None = "application/json",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ssl(), timeout=timeout)
        try:
            hdrs = {"Accept": "application/json", **(headers or {})}
            if body is not None and ctype is not None:
                hdrs["Content-Type"] = ctype
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            reply = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()
        self.seen.append((method, path[:120], reply.status))
        return reply

    def json(self, method: str, path: str, obj: Any = None) -> Any:
        reply = self.request(method, path, json.dumps(obj).encode() if obj is not None else None)
        assert 200 <= reply.status < 300, (method, path, reply.status, reply.body[:500])
        return reply.json()

    def no_5xx(self) -> None:
        """No 5xx since the last check (each group of tests answers for its own requests)."""
        bad = [s for s in self.seen if s[2] >= 500]
        self.seen.clear()
        assert not bad, f"5xx answers: {bad[:20]}"

    def healthy(self) -> None:
        """The server process lives, /readyz is 200 and a normal GET works."""
        assert self.server.alive(), "the api-server process died"
        assert self.request("GET", "/readyz").status == 200
        assert self.request("GET", f"/api/v1/namespaces/{NAMESPACE}").status == 200
        self.no_5xx()


def assert_status(reply: Reply, codes: tuple[int, ...] | list[int], what: str = "") -> dict[str, Any]:
    """The reply is a v1 Status whose code is one of ``codes`` (and matches the HTTP status)."""
    assert reply.status in codes, (what, reply.status, reply.body[:400])
    st: dict[str, Any] = json.loads(reply.body)
    assert st.get("kind") == "Status" and st.get("apiVersion") == "v1", (what, st)
    assert st.get("status") == "Failure" and st.get("code") == reply.status, (what, st)
    assert "Traceback" not in reply.body.decode(errors="replace"), what
    return st


def start(pki: PKI, etcd: Any, workdir: Path, name: str, extra: list[str]) -> Iterator[ApiServer]:
    factory = ApiServerFactory(pki, workdir)
    try:
        yield factory(etcd.endpoint, extra_args=extra, name=name)
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def fuzz_server(pki: PKI, etcd_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The api-server the suite attacks (AlwaysAllow is not used: the admin cert goes through RBAC)."""
    yield from start(
        pki, etcd_server, tmp_path_factory.mktemp("fuzz-apiserver"), "fuzz", [f"--request-timeout={REQUEST_TIMEOUT}s"]
    )


@pytest.fixture(scope="session")
def client(fuzz_server: ApiServer) -> Client:
    c = Client(fuzz_server)
    if c.request("GET", f"/api/v1/namespaces/{NAMESPACE}").status == 404:
        c.json("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    return c
