"""HTTP serving ceiling: what the HTTP layer alone costs per create, next to the api-server's.

Four servers do the same minimal create, one at a time, against one local etcd member:

* ``raw``: an ``asyncio.Protocol`` on uvloop parsing with ``httptools`` (llhttp), writing the
  response itself: the floor for Python serving HTTPS on this machine;
* ``aiohttp``: an ``aiohttp.web.Application`` with one route and no middleware (how the
  api-server served until session 4);
* ``httpserver``: ``kubeha.apiserver.httpserver`` (how the api-server serves now) with the same
  single handler;
* ``apiserver``: the real ``kubeha apiserver`` creating a ConfigMap (authentication, RBAC,
  admission, validation, defaulting, the watch cache, everything).

The minimal create is JSON decode, a uid and a timestamp, JSON encode, the etcd put-if-absent
transaction the store issues (our own HTTP/2 client) and a JSON 201 answer. 50 keep-alive HTTPS
clients (the load generator of ``api_bench``), server CPU seconds per request from /proc, median
of ``--rounds`` alternating rounds. The ``raw`` server is the baseline of the ratios.

    .venv/bin/python benchmarks/http_bench.py [--rounds 3] [--n 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))  # api_bench's load generator
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from api_bench import Client, configmap, interpreter, measure, namespace, proc_cpu
from tests.support.apiserver import start_apiserver
from tests.support.etcd import EtcdServer
from tests.support.pki import make_pki

from kubeha.cli.procs import free_port
from kubeha.storage.etcd import EtcdKV
from kubeha.storage.interface import Compare, Put

CLIENTS = 50


# -- the minimal servers (run in their own process: ``--serve KIND``) -------------------------------------------


async def serve(kind: str, port: int, etcd: str, cert: str, key: str) -> None:
    kv = EtcdKV([etcd])
    await kv.connect()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def create(path: str, body: bytes) -> bytes:
        obj = orjson.loads(body)
        md = obj.setdefault("metadata", {})
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        k = f"/registry/http-bench{path}/{md['name']}"
        res = await kv.txn([Compare(k, 0)], [Put(k, orjson.dumps(obj))])
        md["resourceVersion"] = str(res.revision)
        return orjson.dumps(obj)

    loop = asyncio.get_running_loop()
    if kind == "aiohttp":
        from aiohttp import web

        async def handler(request: web.Request) -> web.Response:
            out = await create(request.path, await request.read())
            return web.Response(body=out, status=201, content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
    elif kind == "httpserver":
        from kubeha.apiserver import httpserver

        async def handle(request: httpserver.Request) -> httpserver.StreamResponse:
            out = await create(request.path, await request.read())
            return httpserver.Response(body=out, status=201, content_type="application/json")

        await httpserver.Server(httpserver.App(handle)).listen("127.0.0.1", port, ssl=ctx)
    else:
        import httptools

        pending: set[asyncio.Task[None]] = set()

        class Protocol(asyncio.Protocol):
            """Keep-alive HTTP/1.1, Content-Length bodies, one response per request in order."""

            def connection_made(self, transport: Any) -> None:
                self.transport = transport
                self.parser = httptools.HttpRequestParser(self)
                self.url = b""
                self.body: list[bytes] = []

            def data_received(self, data: bytes) -> None:
                self.parser.feed_data(data)

            def on_url(self, url: bytes) -> None:
                self.url += url

            def on_body(self, body: bytes) -> None:
                self.body.append(body)

            def on_message_complete(self) -> None:
                path, body = self.url.decode(), b"".join(self.body)
                self.url, self.body = b"", []
                task = loop.create_task(self.respond(path, body))
                pending.add(task)
                task.add_done_callback(pending.discard)

            async def respond(self, path: str, body: bytes) -> None:
                out = await create(path, body)
                head = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                self.transport.write(head % len(out) + out)

        await loop.create_server(Protocol, "127.0.0.1", port, ssl=ctx)
    print("ready", flush=True)
    await asyncio.Event().wait()


# -- the benchmark --------------------------------------------------------------------------------------------


def start_minimal(kind: str, etcd: str, pki: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", kind, str(port), etcd, str(pki.server_crt), str(pki.server_key)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert p.stdout is not None
    if p.stdout.readline().strip() != b"ready":
        p.kill()
        raise RuntimeError(f"the {kind} server did not start")
    return p, f"https://127.0.0.1:{port}"


async def bench(
    servers: dict[str, tuple[int, str]], ctx: ssl.SSLContext, rounds: int, n: int
) -> dict[str, list[tuple[float, float, float]]]:
    """``servers``: kind -> (pid, url). Per kind and round: (creates/s, p99 ms, server µs/create)."""
    clients = {kind: Client(url, ctx) for kind, (_, url) in servers.items()}
    paths = {kind: f"/bench-{kind}" for kind in servers}
    ns = f"http-bench-{uuid.uuid4().hex[:6]}"
    await clients["apiserver"].call(0, "POST", "/api/v1/namespaces", namespace(ns), 201)
    paths["apiserver"] = f"/api/v1/namespaces/{ns}/configmaps"
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in servers}
    serial = 0
    for _ in range(rounds):
        for kind, client in clients.items():
            # every connection open and used once before the clock starts
            await asyncio.gather(
                *(client.call(w, "POST", paths[kind], configmap(f"warm-{serial}-{w}"), 201) for w in range(CLIENTS))
            )
            base = serial

            async def create(
                w: int, i: int, client: Client = client, path: str = paths[kind], base: int = base
            ) -> None:
                await client.call(w, "POST", path, configmap(f"cm-{base + i:08d}"), 201)

            pid = servers[kind][0]
            cpu0 = proc_cpu(pid)
            s = await measure(kind, CLIENTS, n, create)
            cpu = proc_cpu(pid) - cpu0
            serial += n
            results[kind].append((s.rate, s.pct(0.99), cpu / n * 1e6))
    for c in clients.values():
        await c.close()
    return results


def run(rounds: int, n: int) -> int:
    import uvloop

    with tempfile.TemporaryDirectory(prefix="kubeha-http-bench-") as tmp, EtcdServer() as etcd:
        pki = make_pki(Path(tmp) / "pki")
        minimal: list[subprocess.Popen[bytes]] = []
        api = start_apiserver(pki, etcd.endpoint, Path(tmp) / "apiserver")
        try:
            servers: dict[str, tuple[int, str]] = {}
            for kind in ("raw", "aiohttp", "httpserver"):
                p, url = start_minimal(kind, etcd.endpoint, pki)
                minimal.append(p)
                servers[kind] = (p.pid, url)
            servers["apiserver"] = (api.proc.pid, api.url)
            results = uvloop.run(bench(servers, pki.ssl_context(), rounds, n))
        finally:
            for p in minimal:
                p.terminate()
                p.wait(10)
            api.stop()

    print(interpreter())
    print(f"medians over {rounds} rounds, {CLIENTS} clients, {n} creates each; baseline: raw")
    print(f"{'server':<12}{'creates/s':>11}{'p99 ms':>9}{'server µs/create':>18}{'CPU vs raw':>12}")
    base_cpu = statistics.median(r[2] for r in results["raw"])
    for kind, rs in results.items():
        rate = statistics.median(r[0] for r in rs)
        p99 = statistics.median(r[1] for r in rs)
        cpu = statistics.median(r[2] for r in rs)
        print(f"{kind:<12}{rate:>11.0f}{p99:>9.1f}{cpu:>18.0f}{cpu / base_cpu:>11.2f}x")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        kind, port, etcd, cert, key = sys.argv[2:7]
        import uvloop

        uvloop.run(serve(kind, int(port), etcd, cert, key))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n", type=int, default=3000, help="creates per round and server")
    args = p.parse_args()
    return run(args.rounds, args.n)


if __name__ == "__main__":
    sys.exit(main())
