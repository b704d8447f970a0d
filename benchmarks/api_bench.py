"""API benchmark: one api-server on one local etcd member, compared with raw etcd.

Measures raw etcd puts/gets through ``kubeha.storage.etcd.EtcdKV`` (the store's own client), then
the api-server's configmap create, get and list (1,000 objects) at 1, 10 and 50 concurrent HTTPS
clients (admin certificate), and a watch fan-out where 100 watchers must each receive every event.
Prints a table (medians over ``--repeats`` runs) and the goals. Not a test: run it with ``make bench``.

Fairness:

* etcd, the api-server (a real ``kubeha apiserver`` process) and this load generator are three
  processes; the table shows how many cores each used while an operation ran, so a starved server
  (client or etcd hogging the two cores) is visible.
* The raw put is the same etcd operation the api-server issues for a create: a transaction that
  puts iff the key is absent (and reads the key back on failure), with the exact bytes the
  api-server stored for a benchmark configmap.
* HTTP requests go through a minimal keep-alive HTTP/1.1 client on uvloop, one TLS connection per
  concurrent client, requests pre-encoded: a general-purpose client (aiohttp) costs the load
  generator about as much CPU per request as the server spends, and on two cores that CPU is taken
  from the server being measured. The watch fan-out still uses aiohttp (streaming responses).
* Every client's connection is open (TLS handshake done) before an HTTP measurement starts:
  otherwise the first requests at 50 clients carry 40 handshakes, and those alone make up the
  slowest 2 % that a p99 of 2,000 requests reads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support (etcd, PKI and api-server launchers)

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from tests.support.apiserver import start_apiserver  # noqa: E402
from tests.support.etcd import EtcdServer  # noqa: E402
from tests.support.pki import make_pki  # noqa: E402

from kubeha.storage.etcd import EtcdKV  # noqa: E402
from kubeha.storage.interface import Compare, Put  # noqa: E402

CONCURRENCY = (1, 10, 50)
LIST_SIZE = 1000
WATCHERS = 100
WATCH_EVENTS = 200
CLK_TCK = os.sysconf("SC_CLK_TCK")
USER_AGENT = "User-Agent: api-bench/v1.0 (linux/amd64)\r\n"


def ops_for(clients: int) -> int:
    return max(300, 40 * clients)


# -- CPU accounting ------------------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Procs:
    server: int
    etcd: int

    def snapshot(self) -> tuple[float, float, float]:
        return time.process_time(), proc_cpu(self.server), proc_cpu(self.etcd)


PROCS: Procs | None = None


def interpreter() -> str:
    """Which Python runs the servers (they start with this one): a build with a shared libpython
    and no profile-guided optimisation costs the api-server over a quarter more CPU per create."""
    with open("/proc/self/maps") as f:  # sysconfig's Py_ENABLE_SHARED says 1 for Debian's static build
        shared = "libpython" in f.read()
    how = "libpython as a shared library" if shared else "libpython linked in"
    return f"python {platform.python_version()} at {os.path.realpath(sys.executable)} ({how})"


# -- results -------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    op: str
    clients: int
    count: int
    seconds: float
    latencies: list[float]
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)  # cores used by client, server, etcd

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class Row:
    """One operation at one concurrency, over all repetitions (reported as medians)."""

    op: str
    clients: int
    runs: list[Stats] = field(default_factory=list)

    def _median(self, fn: Callable[[Stats], float]) -> float:
        return statistics.median(fn(s) for s in self.runs) if self.runs else 0.0

    @property
    def rate(self) -> float:
        return self._median(lambda s: s.rate)

    def pct(self, q: float) -> float:
        return self._median(lambda s: s.pct(q))

    def cpu(self, i: int) -> float:
        return self._median(lambda s: s.cpu[i])

    @property
    def count(self) -> int:
        return self.runs[0].count if self.runs else 0


class Results:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], Row] = {}

    def add(self, s: Stats) -> None:
        self.rows.setdefault((s.op, s.clients), Row(s.op, s.clients)).runs.append(s)

    def __getitem__(self, k: tuple[str, int]) -> Row:
        return self.rows[k]


async def measure(op: str, clients: int, n: int, call: Callable[[int, int], Awaitable[None]]) -> Stats:
    """Run ``call(worker, i)`` for i in range(n) with ``clients`` concurrent workers."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker(w: int) -> None:
        for i in counter:
            t0 = time.perf_counter()
            await call(w, i)
            latencies.append(time.perf_counter() - t0)

    cpu0 = PROCS.snapshot() if PROCS else (0.0, 0.0, 0.0)
    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    seconds = time.perf_counter() - start
    cpu1 = PROCS.snapshot() if PROCS else (0.0, 0.0, 0.0)
    cores = (
        (cpu1[0] - cpu0[0]) / seconds,
        (cpu1[1] - cpu0[1]) / seconds,
        (cpu1[2] - cpu0[2]) / seconds,
    )
    return Stats(op, clients, n, seconds, latencies, cores)


# -- a cheap HTTP/1.1 client ---------------------------------------------------------------------------------


class Conn:
    """One keep-alive HTTPS connection; requests are sent one at a time."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext) -> None:
        self.host, self.port, self.ctx = host, port, ctx
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=self.ctx)
        assert self.reader is not None
        # a User-Agent, as every real client sends: it names the field manager of each write
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n{USER_AGENT}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line, *header_lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            data = b"".join(chunks)
        else:
            data = await self.reader.read()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


class Client:
    """A pool of connections, one per concurrent worker."""

    def __init__(self, base: str, ctx: ssl.SSLContext) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.ctx = parts.hostname or "127.0.0.1", parts.port or 443, ctx
        self.conns: dict[int, Conn] = {}

    async def call(self, worker: int, method: str, path: str, body: bytes = b"", *codes: int) -> bytes:
        conn = self.conns.get(worker)
        if conn is None:
            conn = self.conns[worker] = Conn(self.host, self.port, self.ctx)
        status, data = await conn.request(method, path, body)
        if status not in (codes or (200,)):
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
        return data

    async def close(self) -> None:
        for c in self.conns.values():
            await c.close()


# -- the benchmarks ------------------------------------------------------------------------------------------


def configmap(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v" * 64}})


def namespace(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def stored_value(client: Client, kv: EtcdKV) -> bytes:
    """The bytes the api-server stores for one benchmark configmap (for a like-for-like raw put)."""
    ns = f"bench-sample-{uuid.uuid4().hex[:6]}"
    await client.call(0, "POST", "/api/v1/namespaces", namespace(ns), 201)
    await client.call(0, "POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("sample-object-0000"), 201)
    got = await kv.get(f"/registry/configmaps/{ns}/sample-object-0000")
    assert got is not None
    return got.value


async def bench_etcd(kv: EtcdKV, value: bytes, results: Results) -> None:
    for clients in CONCURRENCY:
        prefix = f"/bench/raw/{uuid.uuid4().hex[:8]}/"

        async def put(w: int, i: int, prefix: str = prefix) -> None:
            key = f"{prefix}{i:08d}"
            # the create transaction the store issues: put iff absent
            res = await kv.txn([Compare(key, 0)], [Put(key, value)])
            assert res.succeeded

        async def get(w: int, i: int, prefix: str = prefix) -> None:
            await kv.get(f"{prefix}{i:08d}")

        n = ops_for(clients)
        results.add(await measure("etcd put", clients, n, put))
        results.add(await measure("etcd get", clients, n, get))


async def connect_all(client: Client, clients: int) -> None:
    """Open (and use once) the connection of each of ``clients`` workers."""
    await asyncio.gather(*(client.call(w, "GET", "/version") for w in range(clients)))


async def bench_api(client: Client, results: Results) -> None:
    for clients in CONCURRENCY:
        ns = f"bench-{clients}-{uuid.uuid4().hex[:6]}"
        await client.call(0, "POST", "/api/v1/namespaces", namespace(ns), 201)
        await connect_all(client, clients)
        path = f"/api/v1/namespaces/{ns}/configmaps"
        n = ops_for(clients)
        bodies = [configmap(f"cm-{i:08d}") for i in range(n)]  # same name length as the sample object

        async def create(w: int, i: int, path: str = path, bodies: list[bytes] = bodies) -> None:
            await client.call(w, "POST", path, bodies[i], 201)

        async def get(w: int, i: int, path: str = path) -> None:
            await client.call(w, "GET", f"{path}/cm-{i:08d}")

        results.add(await measure("api create", clients, n, create))
        results.add(await measure("api get", clients, n, get))


async def fill_list(client: Client) -> str:
    """A namespace holding LIST_SIZE configmaps; returns its configmaps path."""
    ns = f"bench-list-{uuid.uuid4().hex[:6]}"
    await client.call(0, "POST", "/api/v1/namespaces", namespace(ns), 201)
    path = f"/api/v1/namespaces/{ns}/configmaps"

    async def fill(w: int, i: int) -> None:
        await client.call(w, "POST", path, configmap(f"cm-{i}"), 201)

    await measure("fill", 50, LIST_SIZE, fill)
    return path


async def bench_list(client: Client, path: str, results: Results) -> None:
    async def list_all(w: int, i: int) -> None:
        items = orjson.loads(await client.call(w, "GET", path))["items"]
        if len(items) != LIST_SIZE:
            raise RuntimeError(f"list returned {len(items)} items, expected {LIST_SIZE}")

    for clients in CONCURRENCY:
        await connect_all(client, clients)
        results.add(await measure(f"api list {LIST_SIZE}", clients, max(20, 2 * clients), list_all))


async def bench_watch(base: str, session: aiohttp.ClientSession) -> tuple[Stats, list[int]]:
    """WATCHERS watchers on one namespace; WATCH_EVENTS creates; how many events each one got."""
    headers = {"Content-Type": "application/json"}
    ns = f"bench-watch-{uuid.uuid4().hex[:6]}"
    async with session.post(f"{base}/api/v1/namespaces", data=namespace(ns), headers=headers) as r:
        assert r.status == 201, await r.text()
    url = f"{base}/api/v1/namespaces/{ns}/configmaps"
    async with session.get(url) as r:
        rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]

    counts = [0] * WATCHERS
    latencies: list[float] = []
    sent: dict[str, float] = {}
    done = asyncio.Event()

    async def watcher(idx: int) -> None:
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "60"}
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
            if r.status != 200:
                raise RuntimeError(f"watch -> {r.status}: {(await r.read())[:300]!r}")
            while counts[idx] < WATCH_EVENTS:
                line = await r.content.readline()
                if not line:
                    return
                event = orjson.loads(line)
                if event.get("type") == "ADDED":
                    counts[idx] += 1
                    name = event["object"]["metadata"]["name"]
                    latencies.append(time.perf_counter() - sent.get(name, time.perf_counter()))
        if all(c >= WATCH_EVENTS for c in counts):
            done.set()

    tasks = [asyncio.create_task(watcher(i)) for i in range(WATCHERS)]
    await asyncio.sleep(1.0)  # let every watch stream open before the first write

    async def create(w: int, i: int) -> None:
        name = f"w-{i}"
        sent[name] = time.perf_counter()
        async with session.post(url, data=configmap(name), headers=headers) as r:
            if r.status != 201:
                raise RuntimeError(f"create -> {r.status}")
            await r.read()

    start = time.perf_counter()
    await measure("watch writes", 10, WATCH_EVENTS, create)
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - start
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return Stats(f"watch fanout x{WATCHERS}", WATCHERS, sum(counts), elapsed, latencies), counts


# -- report --------------------------------------------------------------------------------------------------


def print_table(rows: list[Row], raw_put: dict[int, float], repeats: int) -> None:
    print(f"medians over {repeats} runs; cpu = cores used by the load generator / api-server / etcd")
    print(
        f"{'operation':<20}{'clients':>8}{'ops':>7}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs raw put':>11}"
        f"{'cpu cl/srv/etcd':>18}"
    )
    for s in rows:
        ratio = f"{s.rate / raw_put[s.clients]:.0%}" if s.op == "api create" and raw_put.get(s.clients) else ""
        cpu = f"{s.cpu(0):.2f}/{s.cpu(1):.2f}/{s.cpu(2):.2f}"
        print(
            f"{s.op:<20}{s.clients:>8}{s.count:>7}{s.rate:>9.0f}{s.pct(0.5):>9.1f}{s.pct(0.99):>9.1f}{ratio:>11}"
            f"{cpu:>18}"
        )


async def run(repeats: int) -> int:
    global PROCS
    results = Results()
    with tempfile.TemporaryDirectory(prefix="kubeha-bench-") as tmp, EtcdServer() as etcd:
        pki = make_pki(Path(tmp) / "pki")
        server = start_apiserver(pki, etcd.endpoint, Path(tmp) / "apiserver")
        assert etcd.proc is not None
        PROCS = Procs(server.proc.pid, etcd.proc.pid)
        kv = EtcdKV([etcd.endpoint])
        await kv.connect()
        client = Client(server.url, pki.ssl_context())
        try:
            value = await stored_value(client, kv)
            list_path = await fill_list(client)
            for _ in range(repeats):
                await bench_etcd(kv, value, results)
                await bench_api(client, results)
                await bench_list(client, list_path, results)
            await client.close()
            connector = aiohttp.TCPConnector(ssl=pki.ssl_context(), limit=200)
            async with aiohttp.ClientSession(connector=connector) as session:
                watch_stats, counts = await bench_watch(server.url, session)
        finally:
            await kv.close()
            server.stop()
    rows = sorted(results.rows.values(), key=lambda s: (s.op, s.clients))
    raw_put = {s.clients: s.rate for s in rows if s.op == "etcd put"}
    watch_row = Row(watch_stats.op, watch_stats.clients, [watch_stats])
    print(interpreter())
    print(f"raw put value: {len(value)} bytes (the api-server's stored configmap)")
    print_table([*rows, watch_row], raw_put, repeats)

    create_ratio = min(results["api create", c].rate / raw_put[c] for c in CONCURRENCY)
    get50, create50 = results["api get", 50].pct(0.99), results["api create", 50].pct(0.99)
    delivery = statistics.median(watch_stats.latencies) * 1000 if watch_stats.latencies else 0.0
    goals = [
        (f"create >= 30% of raw put rate (worst: {create_ratio:.0%})", create_ratio >= 0.30),
        (f"GET p99 < 50 ms at 50 clients ({get50:.1f} ms)", get50 < 50),
        (f"CREATE p99 < 50 ms at 50 clients ({create50:.1f} ms)", create50 < 50),
        (
            f"{WATCHERS} watchers receive every event ({min(counts)}..{max(counts)} of {WATCH_EVENTS};"
            f" delivery p50 {delivery:.1f} ms)",
            min(counts) == WATCH_EVENTS,
        ),
    ]
    print()
    for text, ok in goals:
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the table shows medians")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(run(args.repeats))


if __name__ == "__main__":
    raise SystemExit(main())
