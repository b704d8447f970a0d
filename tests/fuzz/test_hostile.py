"""Hand-written hostile input against a real api-server (issue 3, item 7).

Seeds live in ``corpus/``. Every group ends by checking that the server process lives, answers
/readyz and a normal GET, and that no request of the group got a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fuzz.conftest import CORPUS, NAMESPACE, REQUEST_TIMEOUT, Client, Reply, assert_status, corpus, start
from tests.support.apiserver import ApiServer
from tests.support.pki import PKI

CM = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
MIB = 1024 * 1024
DEPTH = 10_000


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def post_cm(client: Client, body: bytes, ctype: str = "application/json", query: str = "") -> Reply:
    return client.request("POST", CM + (f"?{query}" if query else ""), body, ctype)


def check_answer(reply: Reply, ok: tuple[int, ...], what: str) -> None:
    """A success code from ``ok``, or else a 4xx Status."""
    if reply.status in ok:
        return
    assert_status(reply, tuple(range(400, 500)), what)


def cuts(data: bytes, step: int) -> list[bytes]:
    return [data[:i] for i in range(0, len(data), step)]


# -- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "ctype"),
    [
        ("configmap.json", "application/json"),
        ("configmap.yaml", "application/yaml"),
        ("configmap.pb", "application/vnd.kubernetes.protobuf"),
    ],
)
def test_truncated_bodies(client: Client, seed: str, ctype: str) -> None:
    name = unique("trunc")
    if ctype.endswith("protobuf"):
        # the seed decodes; the copy under a fresh name is re-encoded (length prefixes change)
        from kubeha.api import protobuf
        from kubeha.api.registry import load_all

        load_all()
        seed_obj = protobuf.decode_body((CORPUS / seed).read_bytes())
        seed_obj["metadata"]["name"] = name
        whole = protobuf.encode_body(seed_obj)
    else:
        whole = (CORPUS / seed).read_bytes().replace(b"seed", name.encode())
    for i, part in enumerate(cuts(whole, 5)):
        check_answer(post_cm(client, part, ctype), (201,), f"{seed} cut at {i * 5}")
    # the whole seed is accepted (once), so the cuts were cut from something valid
    assert post_cm(client, whole, ctype).status in (201, 409)
    client.healthy()


def test_huge_body_with_length_is_413(client: Client) -> None:
    blob = b'{"metadata":{"name":"huge"},"data":{"a":"' + b"x" * (3 * MIB) + b'"}}'
    st = assert_status(post_cm(client, blob), (413,), "huge body")
    assert st["reason"] == "RequestEntityTooLarge"
    client.healthy()


def _tls_socket(server: ApiServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    ctx = server.pki.ssl_context()
    # TLS 1.2: no session tickets arrive after the handshake, so "readable" means "answered"
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def _read_reply(sock: ssl.SSLSocket, timeout: float = 30.0) -> tuple[int, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, rest


def test_huge_chunked_body_is_refused_early(client: Client, fuzz_server: ApiServer) -> None:
    """No Content-Length: the server must stop reading at the limit and answer, not buffer 64 MiB."""
    sock = _tls_socket(fuzz_server)
    try:
        sock.sendall(
            f"POST {CM} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * (256 * 1024)
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        answered = False
        while sent < 64 * MIB:
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                answered = True
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
        assert answered, "the server read a 64 MiB body without answering"
        assert sent < 16 * MIB, f"the server accepted {sent} bytes before answering"
        status, body = _read_reply(sock)
        assert status == 413, (status, body[:300])
        assert json.loads(body)["reason"] == "RequestEntityTooLarge"
    finally:
        sock.close()
    client.healthy()


def _deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("shape", ["array", "object"])
def test_deep_nesting_is_400_or_422(client: Client, shape: str) -> None:
    deep = _deep_array(DEPTH) if shape == "array" else _deep_object(DEPTH)
    bodies = {
        "data value": b'{"metadata":{"name":"deep"},"data":{"a":' + deep + b"}}",
        "metadata labels": b'{"metadata":{"name":"deep","labels":' + deep + b"}}",
        "metadata unknown": b'{"metadata":{"name":"deep","x":' + deep + b"}}",
        "annotation": b'{"metadata":{"name":"deep","annotations":{"a":' + deep + b"}}}",
        "top unknown": b'{"metadata":{"name":"deep"},"x":' + deep + b"}",
    }
    for what, body in bodies.items():
        for query in ("", "fieldValidation=Strict", "fieldValidation=Ignore"):
            assert_status(post_cm(client, body, query=query), (400, 422), f"{what} {query}")
    # the same depth in YAML (flow and block style), in each patch type, and just past our own limit
    yaml_flow = b"metadata: {name: deep}\ndata: {a: " + b"[" * DEPTH + b"]" * DEPTH + b"}\n"
    assert_status(post_cm(client, yaml_flow, "application/yaml"), (400, 422), "yaml flow")
    block = (
        b"metadata: {name: deep}\nx:\n" + b"".join(b" " * (i + 1) + b"a:\n" for i in range(990)) + b" " * 992 + b"1\n"
    )
    assert_status(post_cm(client, block, "application/yaml"), (400, 422), "yaml block")
    target = unique("deep-target")
    client.json("POST", CM, {"metadata": {"name": target}})
    patches = {
        "application/merge-patch+json": b'{"data":' + deep + b"}",
        "application/strategic-merge-patch+json": b'{"metadata":{"labels":' + deep + b"}}",
        "application/json-patch+json": b'[{"op":"add","path":"/x","value":' + deep + b"}]",
        "application/apply-patch+yaml": b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"},"x":'
        + deep
        + b"}",
    }
    for ctype, body in patches.items():
        reply = client.request("PATCH", f"{CM}/{target}?fieldManager=fuzz", body, ctype)
        assert_status(reply, (400, 422), f"deep {ctype}")
    just_past = _deep_object(250)
    assert_status(post_cm(client, b'{"metadata":{"name":"d"},"x":' + just_past + b"}"), (400,), "250 deep")
    client.healthy()


def test_wrong_content_types_are_415(client: Client) -> None:
    for ctype in ("text/plain", "application/xml", "multipart/form-data; boundary=x", "image/png"):
        st = assert_status(post_cm(client, b'{"metadata":{"name":"x"}}', ctype), (415,), ctype)
        assert st["reason"] == "UnsupportedMediaType"
    target = unique("ctype")
    client.json("POST", CM, {"metadata": {"name": target}})
    for ctype in ("text/plain", "application/json", "application/yaml", "application/x-www-form-urlencoded"):
        reply = client.request("PATCH", f"{CM}/{target}", b'{"data":{"a":"b"}}', ctype)
        assert_status(reply, (415,), f"patch {ctype}")
    client.healthy()


# -- selectors, patches, query parameters, paths ----------------------------------------------------


def test_bad_selectors_are_400(client: Client) -> None:
    seeds = corpus("selectors.json")
    from urllib.parse import quote

    for sel in seeds["label"]:
        assert_status(client.request("GET", f"{CM}?labelSelector={quote(sel)}"), (400,), f"label {sel!r}")
    for sel in seeds["field"]:
        reply = client.request("GET", f"{CM}?fieldSelector={quote(sel)}")
        # upstream reads some odd field selectors (metadata.name=== is name "=") as valid
        check_answer(reply, (200,), f"field {sel!r}")
    huge_label = quote("a in (" + ",".join(f"v{i}" for i in range(20_000)))  # unbalanced and ~130 KB
    assert_status(client.request("GET", f"{CM}?labelSelector={huge_label}"), (400,), "huge label selector")
    huge_field = quote(",".join(f"spec.nope{i}=x" for i in range(10_000)))
    assert_status(client.request("GET", f"{CM}?fieldSelector={huge_field}"), (400,), "huge field selector")
    many_valid = quote(",".join(f"k{i}=v" for i in range(10_000)))
    t = time.monotonic()
    reply = client.request("GET", f"{CM}?labelSelector={many_valid}")
    assert reply.status == 200 and time.monotonic() - t < 10
    client.healthy()


def test_bad_patches_are_4xx(client: Client) -> None:
    target = unique("target")
    client.json("POST", CM, {"metadata": {"name": target}, "data": {"a": "1"}})
    for case in corpus("patches.json")["cases"]:
        query = case.get("query", "")
        reply = client.request(
            "PATCH", f"{CM}/{target}" + (f"?{query}" if query else ""), case["body"].encode(), case["type"]
        )
        check_answer(reply, (), f"{case['type']} {case['body'][:60]}")
    # patches on an object that does not exist, and on a collection
    reply = client.request("PATCH", f"{CM}/{unique('missing')}", b'{"data":{"a":"b"}}', "application/merge-patch+json")
    assert_status(reply, (404,), "missing object")
    reply = client.request("PATCH", CM, b'{"data":{"a":"b"}}', "application/merge-patch+json")
    assert_status(reply, (404, 405), "collection patch")
    # the target survived every one of them unchanged
    assert client.json("GET", f"{CM}/{target}")["data"] == {"a": "1"}
    client.healthy()


def test_bad_query_parameters(client: Client) -> None:
    target = unique("query")
    client.json("POST", CM, {"metadata": {"name": target}})
    for case in corpus("query.json")["cases"]:
        verb, query, codes = case["verb"], case["query"], tuple(case["codes"])
        if verb == "GET":
            reply = client.request("GET", f"{CM}?{query}", timeout=15)
        elif verb == "DELETE":
            reply = client.request("DELETE", f"{CM}/{target}?{query}")
        else:
            reply = client.request("POST", f"{CM}?{query}", json.dumps({"metadata": {"name": unique("q")}}).encode())
        assert reply.status in codes, (verb, query, reply.status, reply.body[:300])
        if reply.status >= 400:
            assert_status(reply, codes, query)
    client.healthy()


def test_bad_paths(client: Client) -> None:
    for path in corpus("paths.json")["paths"]:
        reply = client.request("GET", path)
        if path.startswith(("/readyz/", "/healthz/", "/livez/")):
            assert reply.status == 404, path  # plain "404 page not found", as upstream's health mux
            continue
        check_answer(reply, (200, 301, 308), path)
    for n in (254, 300, 10_000, 200_000):
        name = "a" * n
        check_answer(client.request("GET", f"{CM}/{name}"), (), f"GET name of {n}")
        body = json.dumps({"metadata": {"name": name}}).encode()
        assert_status(post_cm(client, body), (400, 422), f"POST name of {n}")
        check_answer(client.request("DELETE", f"{CM}/{name}"), (), f"DELETE name of {n}")
    # past the 1 MiB header limit the HTTP parser answers itself (a 4xx, as Go's 431)
    reply = client.request("GET", f"{CM}/" + "b" * (2 * MIB))
    assert 400 <= reply.status < 500, reply.status
    client.healthy()


# -- slow clients, watches, load shedding ------------------------------------------------------------


def _slow_post(server: ApiServer, path: str = CM) -> ssl.SSLSocket:
    """Headers sent, a promise of 1000 body bytes, then only a trickle."""
    sock = _tls_socket(server)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{".encode()
    )
    return sock


def test_slow_client_times_out_while_others_are_served(client: Client, fuzz_server: ApiServer) -> None:
    slow = [_slow_post(fuzz_server) for _ in range(5)]
    try:
        started = time.monotonic()
        # the others are served at once while the slow ones hang on
        while time.monotonic() - started < REQUEST_TIMEOUT / 2:
            t = time.monotonic()
            assert client.request("GET", f"{CM}?limit=1").status == 200
            assert time.monotonic() - t < 1.0
        for s in slow:
            s.sendall(b" ")  # dribble: a byte does not reset the deadline
        for s in slow:
            status, body = _read_reply(s, timeout=REQUEST_TIMEOUT + 10)
            assert status == 408, (status, body[:300])
            assert json.loads(body)["kind"] == "Status"
        assert time.monotonic() - started < REQUEST_TIMEOUT + 10
    finally:
        for s in slow:
            s.close()
    client.healthy()


async def test_many_open_watches(client: Client, fuzz_server: ApiServer) -> None:
    count = 500
    name = unique("watched")
    ctx = fuzz_server.pki.ssl_context()
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        url = f"{fuzz_server.url}{CM}?watch=1&timeoutSeconds=60&fieldSelector=metadata.name%3D{name}"

        async def open_watch() -> aiohttp.ClientResponse:
            resp = await session.get(url)
            assert resp.status == 200, resp.status
            return resp

        watches = await asyncio.gather(*(open_watch() for _ in range(count)))
        try:
            # the server still answers ordinary requests quickly
            for _ in range(5):
                t = time.monotonic()
                async with session.get(f"{fuzz_server.url}/api/v1/namespaces/{NAMESPACE}") as r:
                    assert r.status == 200
                assert time.monotonic() - t < 3.0
            async with session.post(f"{fuzz_server.url}{CM}", json={"metadata": {"name": name}}) as r:
                assert r.status == 201
            # and every watch sees the event
            lines = await asyncio.gather(*(asyncio.wait_for(w.content.readline(), 60) for w in watches))
            events = [json.loads(line) for line in lines]
            assert all(e["type"] == "ADDED" and e["object"]["metadata"]["name"] == name for e in events)
        finally:
            for w in watches:
                w.close()
    client.healthy()


@pytest.fixture(scope="module")
def limited_server(pki: PKI, etcd_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from start(
        pki,
        etcd_server,
        tmp_path_factory.mktemp("limited-apiserver"),
        "limited",
        ["--max-requests-inflight=2", f"--request-timeout={REQUEST_TIMEOUT}s"],
    )


def test_too_many_requests_in_flight_is_429(limited_server: ApiServer, tmp_path: Path) -> None:
    limited = Client(limited_server)
    # two slow bodies hold both in-flight slots
    slow = [_slow_post(limited_server, "/api/v1/namespaces/default/configmaps") for _ in range(2)]
    try:
        time.sleep(0.3)  # let the server accept both
        reply = limited.request("GET", "/api/v1/namespaces/default/configmaps")
        st = assert_status(reply, (429,), "past --max-requests-inflight")
        assert st["reason"] == "TooManyRequests"
        assert int(reply.headers["retry-after"]) >= 1
        # watches are not counted against the limit, as upstream
        watch = limited.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1")
        assert watch.status == 200
    finally:
        for s in slow:
            s.close()
    # the slots come back once the slow requests end
    deadline = time.monotonic() + REQUEST_TIMEOUT + 10
    while limited.request("GET", "/readyz").status != 200:
        assert time.monotonic() < deadline, "the in-flight slots never came back"
        time.sleep(0.2)
    assert limited.request("GET", "/api/v1/namespaces/default/configmaps").status == 200
    limited.seen = [s for s in limited.seen if s[2] != 429]
    limited.no_5xx()
