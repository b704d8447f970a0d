"""API benchmark: one api-server on one local etcd member, compared with raw etcd.

Measures, in one run: raw etcd put/get through ``kubeha.storage.etcd.EtcdKV`` (the store's own
client), then the api-server's configmap create, get, list (1,000 objects) at 1, 10 and 50
concurrent HTTPS clients (admin certificate), and a watch fan-out where 100 watchers must each
receive every event. Prints a table and the goals. Not a test: run it with ``make bench``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support (etcd, PKI and api-server launchers)

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from tests.support.apiserver import start_apiserver  # noqa: E402
from tests.support.etcd import EtcdServer  # noqa: E402
from tests.support.pki import make_pki  # noqa: E402

from kubeha.storage.etcd import EtcdKV  # noqa: E402
from kubeha.storage.interface import Put  # noqa: E402

CONCURRENCY = (1, 10, 50)
LIST_SIZE = 1000
WATCHERS = 100
WATCH_EVENTS = 200


@dataclass
class Stats:
    op: str
    clients: int
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def ops_for(clients: int) -> int:
    return max(300, 40 * clients)


async def measure(op: str, clients: int, n: int, call: Callable[[int], Awaitable[None]]) -> Stats:
    """Run ``call(i)`` for i in range(n) with ``clients`` concurrent workers."""
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return Stats(op, clients, n, time.perf_counter() - start, latencies)


async def bench_etcd(endpoint: str) -> list[Stats]:
    kv = EtcdKV([endpoint])
    await kv.connect()
    value = orjson.dumps({"kind": "ConfigMap", "data": {"k": "v" * 64}})
    out = []
    try:
        for clients in CONCURRENCY:
            prefix = f"/bench/raw/{uuid.uuid4().hex[:8]}/"

            async def put(i: int, prefix: str = prefix) -> None:
                await kv.txn([], [Put(f"{prefix}{i}", value)])

            async def get(i: int, prefix: str = prefix) -> None:
                await kv.get(f"{prefix}{i}")

            n = ops_for(clients)
            out.append(await measure("etcd put", clients, n, put))
            out.append(await measure("etcd get", clients, n, get))
    finally:
        await kv.close()
    return out


def configmap(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v" * 64}})


async def expect(resp: aiohttp.ClientResponse, *codes: int) -> bytes:
    body = await resp.read()
    if resp.status not in codes:
        raise RuntimeError(f"{resp.method} {resp.url} -> {resp.status}: {body[:300]!r}")
    return body


async def bench_api(base: str, session: aiohttp.ClientSession) -> list[Stats]:
    headers = {"Content-Type": "application/json"}
    out = []
    for clients in CONCURRENCY:
        ns = f"bench-{clients}-{uuid.uuid4().hex[:6]}"
        ns_body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        async with session.post(f"{base}/api/v1/namespaces", data=ns_body, headers=headers) as r:
            await expect(r, 201)
        url = f"{base}/api/v1/namespaces/{ns}/configmaps"

        async def create(i: int, url: str = url) -> None:
            async with session.post(url, data=configmap(f"cm-{i}"), headers=headers) as r:
                await expect(r, 201)

        async def get(i: int, url: str = url) -> None:
            async with session.get(f"{url}/cm-{i}") as r:
                await expect(r, 200)

        n = ops_for(clients)
        out.append(await measure("api create", clients, n, create))
        out.append(await measure("api get", clients, n, get))

    # LIST of 1,000 objects: fill one namespace, then time full lists.
    ns = f"bench-list-{uuid.uuid4().hex[:6]}"
    async with session.post(
        f"{base}/api/v1/namespaces",
        data=orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        headers=headers,
    ) as r:
        await expect(r, 201)
    url = f"{base}/api/v1/namespaces/{ns}/configmaps"

    async def fill(i: int) -> None:
        async with session.post(url, data=configmap(f"cm-{i}"), headers=headers) as r:
            await expect(r, 201)

    await measure("fill", 50, LIST_SIZE, fill)

    async def list_all(i: int) -> None:
        async with session.get(url) as r:
            items = orjson.loads(await expect(r, 200))["items"]
            if len(items) != LIST_SIZE:
                raise RuntimeError(f"list returned {len(items)} items, expected {LIST_SIZE}")

    for clients in CONCURRENCY:
        out.append(await measure(f"api list {LIST_SIZE}", clients, max(20, 2 * clients), list_all))
    return out


async def bench_watch(base: str, session: aiohttp.ClientSession) -> tuple[Stats, list[int]]:
    """WATCHERS watchers on one namespace; WATCH_EVENTS creates; how many events each one got."""
    headers = {"Content-Type": "application/json"}
    ns = f"bench-watch-{uuid.uuid4().hex[:6]}"
    async with session.post(
        f"{base}/api/v1/namespaces",
        data=orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        headers=headers,
    ) as r:
        await expect(r, 201)
    url = f"{base}/api/v1/namespaces/{ns}/configmaps"
    async with session.get(url) as r:
        rv = orjson.loads(await expect(r, 200))["metadata"]["resourceVersion"]

    counts = [0] * WATCHERS
    latencies: list[float] = []
    sent: dict[str, float] = {}
    done = asyncio.Event()

    async def watcher(idx: int) -> None:
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "60"}
        async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
            if r.status != 200:
                await expect(r, 200)
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

    async def create(i: int) -> None:
        name = f"w-{i}"
        sent[name] = time.perf_counter()
        async with session.post(url, data=configmap(name), headers=headers) as r:
            await expect(r, 201)

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


def print_table(rows: list[Stats], raw_put: dict[int, float]) -> None:
    print(f"{'operation':<22}{'clients':>8}{'ops':>8}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs raw put':>12}")
    for s in rows:
        ratio = f"{s.rate / raw_put[s.clients]:.0%}" if s.op == "api create" and raw_put.get(s.clients) else ""
        print(f"{s.op:<22}{s.clients:>8}{s.count:>8}{s.rate:>10.0f}{s.pct(0.5):>9.1f}{s.pct(0.99):>9.1f}{ratio:>12}")


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="kubeha-bench-") as tmp, EtcdServer() as etcd:
        pki = make_pki(Path(tmp) / "pki")
        server = start_apiserver(pki, etcd.endpoint, Path(tmp) / "apiserver")
        try:
            rows = await bench_etcd(etcd.endpoint)
            connector = aiohttp.TCPConnector(ssl=pki.ssl_context(), limit=200)
            async with aiohttp.ClientSession(connector=connector) as session:
                rows += await bench_api(server.url, session)
                watch_stats, counts = await bench_watch(server.url, session)
        finally:
            server.stop()
    rows.sort(key=lambda s: (s.op, s.clients))
    raw_put = {s.clients: s.rate for s in rows if s.op == "etcd put"}
    print_table([*rows, watch_stats], raw_put)

    by = {(s.op, s.clients): s for s in rows}
    create_ratio = min(by[("api create", c)].rate / raw_put[c] for c in CONCURRENCY)
    goals = [
        (f"create >= 30% of raw put rate (worst: {create_ratio:.0%})", create_ratio >= 0.30),
        (f"GET p99 < 50 ms at 50 clients ({by[('api get', 50)].pct(0.99):.1f} ms)", by[("api get", 50)].pct(0.99) < 50),
        (
            f"CREATE p99 < 50 ms at 50 clients ({by[('api create', 50)].pct(0.99):.1f} ms)",
            by[("api create", 50)].pct(0.99) < 50,
        ),
        (
            f"{WATCHERS} watchers receive every event ({min(counts)}..{max(counts)} of {WATCH_EVENTS};"
            f" delivery p50 {statistics.median(watch_stats.latencies) * 1000 if watch_stats.latencies else 0:.1f} ms)",
            min(counts) == WATCH_EVENTS,
        ),
    ]
    print()
    for text, ok in goals:
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
