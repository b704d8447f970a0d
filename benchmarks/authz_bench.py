"""Authentication + authorization overhead per request: RBAC (with 1,000 bindings) vs AlwaysAllow.

One etcd, two real ``kubeha apiserver`` processes on it: one with ``--authorization-mode=Node,RBAC``,
one with ``--authorization-mode=AlwaysAllow``. The store holds 1,000 RoleBindings and
ClusterRoleBindings for other users, and one RoleBinding of ``view`` for the benchmark user
``bench-user`` (a client certificate outside ``system:masters``, so RBAC really evaluates its
bindings and rules). Both servers answer the same ``GET`` of one configmap from that user; runs
alternate between the servers so drift affects both. Prints median latency and throughput per
server and concurrency, and the ratio RBAC / AlwaysAllow (goal: <= 1.2x). Not a test: ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import orjson  # noqa: E402
from api_bench import Client  # noqa: E402
from tests.support.apiserver import ApiServer, start_apiserver  # noqa: E402
from tests.support.etcd import EtcdServer  # noqa: E402
from tests.support.pki import make_pki  # noqa: E402

from kubeha.cli.procs import client_ssl_context  # noqa: E402

NS = "bench"
BINDINGS = 1000
USER = "bench-user"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
CONCURRENCY = (1, 10)
REQUESTS = {1: 1500, 10: 4000}


async def setup(admin: Client) -> str:
    await admin.call(0, "POST", "/api/v1/namespaces", orjson.dumps({"metadata": {"name": NS}}), 201, 409)
    await admin.call(
        0, "POST", f"/api/v1/namespaces/{NS}/serviceaccounts", orjson.dumps({"metadata": {"name": "default"}}), 201, 409
    )
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v" * 64}}
    await admin.call(0, "POST", f"/api/v1/namespaces/{NS}/configmaps", orjson.dumps(cm), 201, 409)

    def binding(kind: str, name: str, role_kind: str, role: str, subject: str) -> bytes:
        return orjson.dumps(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": subject}],
            }
        )

    async def create(w: int) -> None:
        # worker w owns connection w and creates every 20th binding
        for i in range(w, BINDINGS, 20):
            if i % 2:
                body = binding("RoleBinding", f"other-{i}", "ClusterRole", "edit", f"user-{i}")
                await admin.call(w, "POST", f"{RBAC}/namespaces/{NS}/rolebindings", body, 201, 409)
            else:
                body = binding("ClusterRoleBinding", f"other-{i}", "ClusterRole", "view", f"user-{i}")
                await admin.call(w, "POST", f"{RBAC}/clusterrolebindings", body, 201, 409)

    await asyncio.gather(*(create(w) for w in range(20)))
    await admin.call(
        0,
        "POST",
        f"{RBAC}/namespaces/{NS}/rolebindings",
        binding("RoleBinding", "bench", "ClusterRole", "view", USER),
        201,
        409,
    )
    return f"/api/v1/namespaces/{NS}/configmaps/cm"


async def measure(client: Client, path: str, clients: int, n: int) -> tuple[float, float]:
    """(requests per second, median latency in ms) for n GETs over ``clients`` connections."""
    latencies: list[float] = []
    per = n // clients

    async def worker(w: int) -> None:
        for _ in range(per):
            t = time.perf_counter()
            await client.call(w, "GET", path)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


async def wait_allowed(client: Client, path: str) -> None:
    deadline = time.monotonic() + 30.0
    while True:
        try:
            await client.call(0, "GET", path)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def run(repeats: int) -> int:
    with tempfile.TemporaryDirectory(prefix="kubeha-authz-bench-") as tmp, EtcdServer() as etcd:
        pki = make_pki(Path(tmp) / "pki")
        servers: dict[str, ApiServer] = {}
        try:
            for mode in ("Node,RBAC", "AlwaysAllow"):
                servers[mode] = start_apiserver(
                    pki,
                    etcd.endpoint,
                    Path(tmp) / mode.replace(",", "-"),
                    name=mode.replace(",", "-"),
                    extra_args=[f"--authorization-mode={mode}"],
                )
            admin = Client(servers["Node,RBAC"].url, pki.ssl_context())
            path = await setup(admin)
            await admin.close()
            cert, key = pki.issue_client(USER, ["bench-group"])
            ctx = client_ssl_context(pki.ca_crt, cert, key)
            clients = {mode: Client(s.url, ctx) for mode, s in servers.items()}
            for c in clients.values():
                await wait_allowed(c, path)
                await measure(c, path, 10, 500)  # warm up connections and caches
            results: dict[tuple[str, int], list[tuple[float, float]]] = {}
            for _ in range(repeats):
                for conc in CONCURRENCY:
                    for mode, c in clients.items():
                        results.setdefault((mode, conc), []).append(await measure(c, path, conc, REQUESTS[conc]))
            for c in clients.values():
                await c.close()
        finally:
            for s in servers.values():
                s.stop()
    print(f"GET one configmap as {USER!r} (view via RoleBinding), {BINDINGS} other bindings, {repeats} runs (medians)")
    print(f"{'mode':<14}{'clients':>8}{'req/s':>10}{'p50 ms':>9}")
    worst = 0.0
    for conc in CONCURRENCY:
        row = {}
        for mode in ("Node,RBAC", "AlwaysAllow"):
            runs = results[(mode, conc)]
            rate = statistics.median(r[0] for r in runs)
            p50 = statistics.median(r[1] for r in runs)
            row[mode] = (rate, p50)
            print(f"{mode:<14}{conc:>8}{rate:>10.0f}{p50:>9.2f}")
        ratio = row["Node,RBAC"][1] / row["AlwaysAllow"][1]
        tput = row["AlwaysAllow"][0] / row["Node,RBAC"][0]
        worst = max(worst, ratio, tput)
        print(f"{'ratio':<14}{conc:>8}{tput:>9.2f}x{ratio:>8.2f}x")
    ok = worst <= 1.2
    print(f"\n[{'PASS' if ok else 'FAIL'}] RBAC / AlwaysAllow per-request cost <= 1.2x (worst {worst:.2f}x)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(run(args.repeats))


if __name__ == "__main__":
    raise SystemExit(main())
