"""Scheduler benchmark: pods bound per second with 100, 500 and 1,000 fake nodes.

Each run gets a fresh etcd member, one ``kubeha apiserver``, fake nodes (``kubeha fake-nodes``,
one process per zone) and, once every pod exists, one ``kubeha scheduler`` (leader election off).
Throughput is counted from a watch on pods: from the first binding to the last, so the
scheduler's start-up (informer lists) is reported separately and not mixed into the rate.

Workloads (``--modes``):

* ``plain``: pods with cpu/memory requests only (scheduler_perf's SchedulingBasic).
* ``anti-host``: required pod anti-affinity on ``kubernetes.io/hostname`` within groups of
  ``nodes`` pods (every group needs every node once, so all pods fit), like PodAntiAffinity.
* ``anti-zone``: preferred pod anti-affinity across zones within groups of 100 pods.

Fairness on 2 cores: pods are created before the scheduler starts (creation rate reported on its
own), and the fake nodes neither renew leases (``--heartbeat 0``, as scheduler_perf has no
kubelets) nor run pods, so the api-server's CPU goes to the scheduler's watches and bindings.
The table shows the cores each process used while pods were being bound.

    python benchmarks/scheduler_bench.py [--nodes 100,500,1000] [--pods 3000] [--modes plain,anti-host,anti-zone]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support (etcd, PKI and api-server launchers)

from tests.support.apiserver import ApiServer, start_apiserver  # noqa: E402
from tests.support.etcd import EtcdServer  # noqa: E402
from tests.support.pki import make_pki  # noqa: E402

from kubeha.cli.procs import stop_process  # noqa: E402
from kubeha.client import ApiClient, load_kubeconfig  # noqa: E402
from kubeha.client.resources import NAMESPACES, PODS  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
NAMESPACE = "bench"
ZONE = "topology.kubernetes.io/zone"
CREATE_CONCURRENCY = 32
# upstream's published figures (../shared/reference/anchors.md)
FLOOR_CL2 = 100.0  # clusterloader2 scheduler-throughput floor, pods/s
UPSTREAM_PERF = {"plain": ("SchedulingBasic", 270.0), "anti-host": ("PodAntiAffinity", 60.0), "anti-zone": ("", 0.0)}
GOAL = ("plain", 1000, 100.0)  # >= 100 pods/s plain at 1,000 nodes


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Result:
    nodes: int
    mode: str
    pods: int
    bound: int = 0
    create_rate: float = 0.0
    startup: float = 0.0  # scheduler started -> first binding
    window: float = 0.0  # first binding -> last binding
    window95: float = 0.0  # first binding -> the binding of 95% of the pods (shows a slow tail)
    cpu_sched: float = 0.0  # cores during the window
    cpu_api: float = 0.0
    cpu_etcd: float = 0.0
    register: float = 0.0  # seconds to register the nodes

    @property
    def rate(self) -> float:
        return (self.bound - 1) / self.window if self.window > 0 and self.bound > 1 else 0.0

    @property
    def rate95(self) -> float:
        n = int(self.pods * 0.95)
        return (n - 1) / self.window95 if self.window95 > 0 and self.bound >= n > 1 else 0.0


# -- workload ------------------------------------------------------------------------------------------------


def pod(i: int, mode: str, nodes: int) -> dict[str, Any]:
    labels = {"app": "bench"}
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "c",
                "image": "registry.k8s.io/pause:3.9",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ],
        "terminationGracePeriodSeconds": 0,
    }
    if mode == "anti-host":
        group = f"g{i // nodes}"
        labels["group"] = group
        spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"group": group}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }
    elif mode == "anti-zone":
        group = f"g{i // 100}"
        labels["group"] = group
        spec["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": {"matchLabels": {"group": group}}, "topologyKey": ZONE},
                    }
                ]
            }
        }
    return {"metadata": {"name": f"p-{i:05d}", "labels": labels}, "spec": spec}


async def create_pods(client: ApiClient, n: int, mode: str, nodes: int) -> float:
    """Create ``n`` pods with bounded concurrency; returns pods/s."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await client.create(PODS, pod(i, mode, nodes), NAMESPACE)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
    return n / (time.monotonic() - t0)


# -- processes -----------------------------------------------------------------------------------------------


def spawn(workdir: Path, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(workdir / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "kubeha", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def start_fake_nodes(
    workdir: Path, server: ApiServer, nodes: int, zones: int, heartbeat: str
) -> list[subprocess.Popen[bytes]]:
    procs = []
    per_zone = [nodes // zones + (1 if z < nodes % zones else 0) for z in range(zones)]
    start = 0
    for z, count in enumerate(per_zone):
        if not count:
            continue
        argv = [
            "fake-nodes",
            f"--kubeconfig={server.kubeconfig}",
            f"--count={count}",
            "--name-prefix=node-",
            f"--start-index={start}",
            f"--labels={ZONE}=zone-{z}",
            f"--heartbeat={heartbeat}",
            "--manage-pods=false",
            "--concurrency=8",
        ]
        procs.append(spawn(workdir, f"fake-nodes-{z}", argv))
        start += count
    return procs


def wait_registered(workdir: Path, procs: list[subprocess.Popen[bytes]], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for z, proc in enumerate(procs):
        log = workdir / f"fake-nodes-{z}.log"
        while "registered" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise RuntimeError(f"fake-nodes exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake nodes not registered after {timeout}s")
            time.sleep(0.1)


# -- one run -------------------------------------------------------------------------------------------------


async def watch_bindings(client: ApiClient, rv: str, n: int, times: list[float], done: asyncio.Event) -> None:
    bound: set[str] = set()
    while len(bound) < n:
        async with contextlib.aclosing(client.watch(PODS, NAMESPACE, resource_version=rv)) as events:
            async for typ, obj in events:
                meta = obj.get("metadata") or {}
                rv = meta.get("resourceVersion") or rv
                if typ in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                    name = meta.get("name")
                    if name not in bound:
                        bound.add(name)
                        times.append(time.monotonic())
                        if len(bound) >= n:
                            break
    done.set()


async def run_one(nodes: int, mode: str, n_pods: int, zones: int, heartbeat: str, limit: float) -> Result:
    res = Result(nodes, mode, n_pods)
    workdir = Path(tempfile.mkdtemp(prefix=f"kubeha-sched-bench-{nodes}-{mode}-"))
    procs: list[subprocess.Popen[bytes]] = []
    with EtcdServer() as etcd:
        pki = make_pki(workdir / "pki")
        server = start_apiserver(pki, etcd.endpoint, workdir)
        try:
            t0 = time.monotonic()
            procs += start_fake_nodes(workdir, server, nodes, zones, heartbeat)
            wait_registered(workdir, procs)
            res.register = time.monotonic() - t0
            async with ApiClient(load_kubeconfig(str(server.kubeconfig)), timeout=60) as client:
                await client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
                res.create_rate = await create_pods(client, n_pods, mode, nodes)
                listed = await client.list(PODS, NAMESPACE, limit=1)
                times: list[float] = []
                done = asyncio.Event()
                watcher = asyncio.create_task(
                    watch_bindings(client, listed["metadata"]["resourceVersion"], n_pods, times, done)
                )
                sched = spawn(
                    workdir, "scheduler", ["scheduler", f"--kubeconfig={server.kubeconfig}", "--leader-elect=false"]
                )
                procs.append(sched)
                started = time.monotonic()
                assert etcd.proc is not None
                pids = (sched.pid, server.proc.pid, etcd.proc.pid)
                cpu0 = [proc_cpu(p) for p in pids]
                cpu_first: list[float] | None = None
                deadline = started + limit
                while not done.is_set() and time.monotonic() < deadline:
                    if sched.poll() is not None:
                        log = (workdir / "scheduler.log").read_text(errors="replace")
                        raise RuntimeError(f"scheduler exited ({sched.returncode}):\n{log[-3000:]}")
                    if times and cpu_first is None:
                        cpu_first = [proc_cpu(p) for p in pids]
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), 0.05)
                cpu1 = [proc_cpu(p) for p in pids]
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                res.bound = len(times)
                if times:
                    res.startup = times[0] - started
                    res.window = times[-1] - times[0]
                    n95 = int(n_pods * 0.95)
                    if len(times) >= n95 > 1:
                        res.window95 = times[n95 - 1] - times[0]
                    base = cpu_first or cpu0
                    if res.window > 0:
                        res.cpu_sched, res.cpu_api, res.cpu_etcd = (
                            (b - a) / res.window for a, b in zip(base, cpu1, strict=True)
                        )
        finally:
            for p in reversed(procs):
                stop_process(p, 10)
            server.stop()
    return res


# -- report --------------------------------------------------------------------------------------------------


def report(results: list[Result]) -> None:
    print()
    print("Scheduler throughput (pods bound per second, first binding to last; p95: to the 95th percent of pods;")
    print("cores used by each process meanwhile)")
    header = (
        f"{'nodes':>6} {'workload':<10} {'pods':>5} {'bound':>5} {'pods/s':>8} {'p95 /s':>7} {'startup s':>9} "
        f"{'create/s':>8} {'sched':>5} {'api':>5} {'etcd':>5}  upstream"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        name, figure = UPSTREAM_PERF.get(r.mode, ("", 0.0))
        upstream = f"cl2 floor {FLOOR_CL2:g}" + (f"; scheduler_perf {name} {figure:g} (5k nodes)" if name else "")
        print(
            f"{r.nodes:>6} {r.mode:<10} {r.pods:>5} {r.bound:>5} {r.rate:>8.1f} {r.rate95:>7.1f} {r.startup:>9.2f} "
            f"{r.create_rate:>8.0f} {r.cpu_sched:>5.2f} {r.cpu_api:>5.2f} {r.cpu_etcd:>5.2f}  {upstream}"
        )
    print()
    mode, nodes, goal = GOAL
    hit = [r for r in results if r.mode == mode and r.nodes == nodes]
    if hit:
        verdict = "met" if hit[0].rate >= goal and hit[0].bound == hit[0].pods else "NOT met"
        print(f"goal: >= {goal:g} pods/s {mode} at {nodes} nodes: {hit[0].rate:.1f} pods/s -> {verdict}")
    print(
        "node registration: "
        + ", ".join(f"{r.nodes} nodes {r.register:.1f}s" for r in results if r.mode == results[0].mode)
    )


async def run(args: argparse.Namespace) -> int:
    results = []
    for nodes in args.nodes:
        for mode in args.modes:
            print(f"== {nodes} nodes, {mode}, {args.pods} pods", flush=True)
            r = await run_one(nodes, mode, args.pods, args.zones, args.heartbeat, args.timeout)
            print(
                f"   bound {r.bound}/{r.pods} at {r.rate:.1f} pods/s, first 95% at {r.rate95:.1f}/s (startup {r.startup:.2f}s, "
                f"create {r.create_rate:.0f}/s, nodes registered in {r.register:.1f}s)",
                flush=True,
            )
            results.append(r)
    report(results)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--nodes", default="100,500,1000", help="comma-separated node counts")
    p.add_argument("--pods", type=int, default=3000, help="pods per run")
    p.add_argument("--modes", default="plain,anti-host,anti-zone", help="workloads: plain, anti-host, anti-zone")
    p.add_argument("--zones", type=int, default=4, help="zones (one fake-nodes process each)")
    p.add_argument("--heartbeat", default="0", help="fake node lease renewal period (0: none, as scheduler_perf)")
    p.add_argument("--timeout", type=float, default=600, help="give up on a run after this many seconds")
    args = p.parse_args()
    args.nodes = [int(n) for n in args.nodes.split(",") if n]
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - set(UPSTREAM_PERF)
    if unknown:
        p.error(f"unknown modes: {sorted(unknown)}")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
