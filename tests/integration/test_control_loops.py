"""Issue 4 end to end: real etcd, two api-servers, two controller-managers, two schedulers and
fake nodes (``kubeha fake-nodes``), all separate processes.

The cluster (one per module): five fake nodes, each group its own fake-nodes process so groups
can carry different labels —

    cl-cp-0   zone a, pool general, tainted node-role.kubernetes.io/control-plane:NoSchedule
    cl-a-0/1  zone a, pool general
    cl-b-0    zone b, pool general
    cl-gpu-0  zone b, pool gpu

Workloads ask for ``pool=general`` (node affinity), so only cl-a-0, cl-a-1 and cl-b-0 may run
them: the taint keeps them off cl-cp-0, the affinity off cl-gpu-0, and preferred anti-affinity
across zones splits them evenly between zone a (two nodes) and zone b (one node).

Leader election runs with lease 4 s / renew 3 s / retry 500 ms; the failover tests SIGKILL the
active controller-manager and scheduler and print the gap until the standby acts (run with -s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.main import COMPONENTS
from kubeha.cli.procs import stop_process
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    SERVICES,
)
from tests.support import failover
from tests.support.apiserver import ApiServer
from tests.support.kubectl import Kubectl, kubectl_path

Obj = dict[str, Any]

LEADER_FLAGS = (
    "--leader-elect=true",
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
)
FAILOVER_GOAL = failover.FAILOVER_GOAL
GRACE = 4  # --node-monitor-grace-period for the node lifecycle test
TOLERATION = 3  # tolerationSeconds of the evicted pods
ZONE = "topology.kubernetes.io/zone"
POOL = "kubeha.test/pool"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
NODE_GROUPS: dict[str, tuple[int, str, str]] = {
    # prefix: (count, labels, taints)
    "cl-cp-": (
        1,
        f"{ZONE}=a,{POOL}=general,node-role.kubernetes.io/control-plane=",
        f"{CONTROL_PLANE_TAINT}:NoSchedule",
    ),
    "cl-a-": (2, f"{ZONE}=a,{POOL}=general", ""),
    "cl-b-": (1, f"{ZONE}=b,{POOL}=general", ""),
    "cl-gpu-": (1, f"{ZONE}=b,{POOL}=gpu", ""),
}
ELIGIBLE = {"cl-a-0", "cl-a-1", "cl-b-0"}
NODE_ZONE = {"cl-cp-0": "a", "cl-a-0": "a", "cl-a-1": "a", "cl-b-0": "b", "cl-gpu-0": "b"}


# -- processes ----------------------------------------------------------------------------------------------


@dataclass
class Component:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL by its own pid: a crash, no lease release."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int:
        return stop_process(self.proc, 10)

    def log(self, tail: int = 80) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])


def start_component(workdir: Path, name: str, argv: Sequence[str]) -> Component:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubeha", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Component(name, proc, log_path)


def fake_nodes(
    workdir: Path, server: ApiServer, prefix: str, count: int, labels: str, taints: str, *extra: str
) -> Component:
    argv = ["fake-nodes", f"--kubeconfig={server.kubeconfig}", f"--count={count}", f"--name-prefix={prefix}"]
    argv += ["--heartbeat=1s", "--lease-duration=40", "--pod-startup=100ms"]
    if labels:
        argv.append(f"--labels={labels}")
    if taints:
        argv.append(f"--taints={taints}")
    return start_component(workdir, f"fake-nodes-{prefix.rstrip('-')}", [*argv, *extra])


@dataclass
class Cluster:
    servers: list[ApiServer]
    workdir: Path
    controller_managers: list[Component] = field(default_factory=list)
    schedulers: list[Component] = field(default_factory=list)
    node_groups: list[Component] = field(default_factory=list)

    def components(self) -> list[Component]:
        return [*self.controller_managers, *self.schedulers, *self.node_groups]

    def logs(self) -> str:
        return "\n".join(f"--- {c.name} (alive={c.alive()}) ---\n{c.log()}" for c in self.components())


def _client(server: ApiServer, timeout: float = 10) -> ApiClient:
    return ApiClient(load_kubeconfig(str(server.kubeconfig)), user_agent="kubeha-control-loops-test", timeout=timeout)


async def _holder(client: ApiClient, name: str) -> str:
    try:
        lease = await client.get(LEASES, name, "kube-system")
    except StatusError:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def _wait_holder(client: ApiClient, name: str, timeout: float, not_: str = "") -> str:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = await _holder(client, name)
        if holder and holder != not_:
            return holder
        await asyncio.sleep(0.1)
    raise AssertionError(f"no leader for lease kube-system/{name} after {timeout}s")


def _leader_component(candidates: list[Component], holder: str) -> Component:
    """The process holding the lease: leader election logs the identity it acquires with."""
    for c in candidates:
        if c.alive() and holder in c.log(tail=100000):
            return c
    alive = [c for c in candidates if c.alive()]
    assert alive, "no candidate is alive"
    return alive[0]  # an implementation that does not log its identity: the first started led


@pytest.fixture(scope="module")
def cluster(apiservers: list[ApiServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = [name for name in ("controller-manager", "scheduler", "fake-nodes") if name not in COMPONENTS]
    if missing:
        pytest.skip(f"components not available yet: {', '.join(missing)}")
    workdir = tmp_path_factory.mktemp("control-loops")
    c = Cluster(apiservers, workdir)
    try:
        for i, (prefix, (count, labels, taints)) in enumerate(NODE_GROUPS.items()):
            c.node_groups.append(fake_nodes(workdir, apiservers[i % 2], prefix, count, labels, taints))
        cm_flags = [
            *LEADER_FLAGS,
            f"--node-monitor-grace-period={GRACE}s",
            "--node-monitor-period=1s",
            "--allocate-node-cidrs=true",
            "--cluster-cidr=10.244.0.0/16",
        ]

        async def start_leaders() -> None:
            async with _client(apiservers[0]) as client:
                # the first of each pair is started alone so it surely leads; then its standby
                for kind, lease, flags, group in (
                    ("controller-manager", "kube-controller-manager", cm_flags, c.controller_managers),
                    ("scheduler", "kube-scheduler", list(LEADER_FLAGS), c.schedulers),
                ):
                    for i, server in enumerate(apiservers[:2]):
                        argv = [kind, f"--kubeconfig={server.kubeconfig}", *flags]
                        group.append(start_component(workdir, f"{kind}-{'ab'[i]}", argv))
                        if i == 0:
                            await _wait_holder(client, lease, 60)

        asyncio.run(start_leaders())
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        for comp in reversed(c.components()):
            comp.stop()


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[ApiClient]:
    async with _client(cluster.servers[1]) as c:
        yield c


@pytest.fixture
async def namespace(client: ApiClient, cluster: Cluster) -> AsyncIterator[str]:
    name = f"cl-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(StatusError):
        await client.delete(NAMESPACES, name)


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    binary = kubectl_path("1.32")
    if binary is None:
        pytest.skip("kubectl 1.32 not found (run `make deps`)")
    return Kubectl(binary, cluster.servers[0].kubeconfig, tmp_path / "home", "1.32")


@pytest.fixture(autouse=True)
def _dump_logs_on_failure(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[None]:
    """Component logs beside a failing test's report (printed in teardown, shown only on failure)."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        print(cluster.logs())


# -- helpers -----------------------------------------------------------------------------------------------


async def wait_for(what: str, check: Callable[[], Awaitable[Any]], timeout: float = 60, interval: float = 0.2) -> Any:  # noqa: ASYNC109
    """Poll ``check`` until it returns something truthy (the test's own polling, not a controller's)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except StatusError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


def _ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def deployment(
    name: str,
    replicas: int,
    image: str = "nginx:1.25",
    *,
    zone_anti_affinity: bool = True,
    host_anti_affinity: bool = False,
    node_selector: dict[str, str] | None = None,
    tolerations: list[Obj] | None = None,
    max_surge: str = "25%",
    max_unavailable: str = "25%",
) -> Obj:
    labels = {"app": name}
    affinity: Obj = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": POOL, "operator": "In", "values": ["general"]}]}]
            }
        }
    }
    if zone_anti_affinity:
        affinity["podAntiAffinity"] = {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": labels}, "topologyKey": ZONE}}
            ]
        }
    if host_anti_affinity:
        affinity["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    pod_spec: Obj = {
        "containers": [{"name": "c", "image": image, "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
        "affinity": affinity,
        "terminationGracePeriodSeconds": 30,
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
        del pod_spec["affinity"]["nodeAffinity"]
    if tolerations:
        pod_spec["tolerations"] = tolerations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
            },
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


async def pods_of(client: ApiClient, ns: str, app: str) -> list[Obj]:
    return list((await client.list(PODS, ns, label_selector=f"app={app}"))["items"])


async def wait_running(client: ApiClient, ns: str, app: str, count: int, timeout: float = 120) -> list[Obj]:  # noqa: ASYNC109
    """``count`` bound, Running and Ready pods of ``app`` (and no others left, terminating or not)."""

    async def check() -> list[Obj] | None:
        pods = await pods_of(client, ns, app)
        live = [p for p in pods if not _terminating(p)]
        ok = [p for p in live if p["spec"].get("nodeName") and p["status"].get("phase") == "Running" and _ready(p)]
        return ok if len(ok) == count and len(pods) == count else None

    result: list[Obj] = await wait_for(f"{count} running pods of {ns}/{app}", check, timeout)
    return result


@dataclass
class RolloutSample:
    """Counts over every pod/ReplicaSet event of one deployment's namespace, in etcd order."""

    max_pods: int = 0  # pods not terminating
    min_ready: int = 10**9  # ready pods not terminating
    max_rs_replicas: int = 0  # sum of the ReplicaSets' spec.replicas (what the controller decided)
    samples: int = 0


async def sample_rollout(client: ApiClient, ns: str, app: str, sample: RolloutSample, started: asyncio.Event) -> None:
    pods: dict[str, Obj] = {}
    rss: dict[str, Obj] = {}

    def record() -> None:
        live = [p for p in pods.values() if not _terminating(p)]
        sample.samples += 1
        sample.max_pods = max(sample.max_pods, len(live))
        sample.min_ready = min(sample.min_ready, sum(1 for p in live if _ready(p)))
        sample.max_rs_replicas = max(
            sample.max_rs_replicas, sum(int(r["spec"].get("replicas") or 0) for r in rss.values())
        )

    async def follow(res: Any, store: dict[str, Obj], selector: str | None) -> None:
        listed = await client.list(res, ns, label_selector=selector)
        for item in listed["items"]:
            store[item["metadata"]["name"]] = item
        rv = listed["metadata"]["resourceVersion"]
        if res is PODS:
            started.set()
        async with contextlib.aclosing(client.watch(res, ns, resource_version=rv, label_selector=selector)) as events:
            async for typ, obj in events:
                if typ == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                if typ == "DELETED":
                    store.pop(name, None)
                else:
                    store[name] = obj
                record()

    await asyncio.gather(follow(REPLICASETS, rss, f"app={app}"), follow(PODS, pods, f"app={app}"))


def _kubectl_ok(kubectl: Kubectl, *args: str, timeout: float = 180) -> str:
    res = kubectl.run(*args, timeout=timeout)
    assert res.rc == 0, f"kubectl {' '.join(args)} failed ({res.rc}):\n{res.stderr}\n{res.stdout}"
    return res.stdout


# -- the tests ---------------------------------------------------------------------------------------------


async def test_fake_nodes_register_ready_with_fresh_leases(client: ApiClient, cluster: Cluster) -> None:
    async def ready_nodes() -> dict[str, Obj] | None:
        nodes = {n["metadata"]["name"]: n for n in (await client.list(NODES))["items"]}
        ours = {k: v for k, v in nodes.items() if k in NODE_ZONE}
        ok = all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
            for n in ours.values()
        )
        return ours if len(ours) == len(NODE_ZONE) and ok else None

    nodes = await wait_for("five ready fake nodes", ready_nodes)
    cp = nodes["cl-cp-0"]
    assert {"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"} in cp["spec"]["taints"]
    for name, node in nodes.items():
        assert node["metadata"]["labels"][ZONE] == NODE_ZONE[name]
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert node["status"]["allocatable"]["pods"] == "110"
    before = await client.get(LEASES, "cl-a-0", "kube-node-lease")
    await asyncio.sleep(1.5)
    after = await client.get(LEASES, "cl-a-0", "kube-node-lease")
    assert after["spec"]["renewTime"] > before["spec"]["renewTime"], "the node lease is not renewed"
    assert after["spec"]["holderIdentity"] == "cl-a-0"


async def test_deployment_spreads_30_pods_respecting_taints_affinity_and_zones(
    client: ApiClient, namespace: str
) -> None:
    t0 = time.monotonic()
    await client.create(DEPLOYMENTS, deployment("web", 30), namespace)
    pods = await wait_running(client, namespace, "web", 30)
    elapsed = time.monotonic() - t0
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    per_zone = Counter(NODE_ZONE[n] for n in per_node.elements())
    print(f"\n30 replicas running after {elapsed:.1f}s; per node {dict(per_node)}; per zone {dict(per_zone)}")
    assert set(per_node) <= ELIGIBLE, f"pods on nodes that the taint or the node affinity exclude: {dict(per_node)}"
    # Zone a has two eligible nodes, zone b one: spreading by node alone would give 20/10.
    assert abs(per_zone["a"] - per_zone["b"]) <= 6, f"preferred zone anti-affinity not honoured: {dict(per_zone)}"
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 30, "pod IPs must be unique"
    dep = await wait_for(
        "deployment status",
        lambda: _dep_available(client, namespace, "web", 30),
    )
    assert dep["status"]["readyReplicas"] == 30 and dep["status"]["updatedReplicas"] == 30


async def _dep_available(client: ApiClient, ns: str, name: str, n: int) -> Obj | None:
    dep = await client.get(DEPLOYMENTS, name, ns)
    st = dep.get("status") or {}
    ok = st.get("availableReplicas") == n and st.get("observedGeneration") == dep["metadata"]["generation"]
    return dep if ok else None


async def test_required_anti_affinity_leaves_the_extra_replica_pending(client: ApiClient, namespace: str) -> None:
    await client.create(
        DEPLOYMENTS, deployment("solo", 4, zone_anti_affinity=False, host_anti_affinity=True), namespace
    )

    async def three_running_one_pending() -> tuple[list[Obj], Obj] | None:
        pods = await pods_of(client, namespace, "solo")
        running = [p for p in pods if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")]
        pending = [p for p in pods if not p["spec"].get("nodeName")]
        return (running, pending[0]) if len(running) == 3 and len(pending) == 1 else None

    running, pending = await wait_for("3 running + 1 pending", three_running_one_pending)
    assert {p["spec"]["nodeName"] for p in running} == ELIGIBLE  # one per eligible node
    name = pending["metadata"]["name"]

    async def failed_event() -> Obj | None:
        events = (await client.list(EVENTS, namespace, field_selector=f"involvedObject.name={name}"))["items"]
        return next((e for e in events if e.get("reason") == "FailedScheduling"), None)

    event = await wait_for("a FailedScheduling event", failed_event, 30)
    assert re.match(r"0/\d+ nodes are available: ", event["message"]), event["message"]
    cond = next(
        c for c in (await client.get(PODS, name, namespace))["status"]["conditions"] if c["type"] == "PodScheduled"
    )
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"


async def test_rolling_update_stays_within_surge_and_unavailable(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    await client.create(DEPLOYMENTS, deployment("roll", 30), namespace)
    await wait_running(client, namespace, "roll", 30)
    await wait_for("deployment available", lambda: _dep_available(client, namespace, "roll", 30))
    sample = RolloutSample()
    started = asyncio.Event()
    sampler = asyncio.create_task(sample_rollout(client, namespace, "roll", sample, started))
    try:
        await asyncio.wait_for(started.wait(), 10)
        t0 = time.monotonic()
        _kubectl_ok(kubectl, "-n", namespace, "set", "image", "deployment/roll", "c=nginx:1.26")
        out = _kubectl_ok(kubectl, "-n", namespace, "rollout", "status", "deployment/roll", "--timeout=180s")
        elapsed = time.monotonic() - t0
        assert 'deployment "roll" successfully rolled out' in out
        pods = await wait_running(client, namespace, "roll", 30)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    # maxSurge 25% of 30 rounds up to 8, maxUnavailable 25% rounds down to 7 (upstream rounding)
    print(
        f"\nrolling update of 30 pods: {elapsed:.1f}s; {sample.samples} samples: pods <= {sample.max_pods}, "
        f"ready >= {sample.min_ready}, ReplicaSet replicas <= {sample.max_rs_replicas} (bounds 38 / 23 / 38)"
    )
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in pods)
    assert sample.samples > 30
    assert sample.max_rs_replicas <= 38
    assert sample.min_ready >= 23
    # pods may briefly outnumber the ReplicaSets' replicas while an old pod's delete is in flight
    assert sample.max_pods <= 38 + 7
    rss = (await client.list(REPLICASETS, namespace, label_selector="app=roll"))["items"]
    assert sorted(int(r["spec"]["replicas"]) for r in rss) == [0, 30]
    history = _kubectl_ok(kubectl, "-n", namespace, "rollout", "history", "deployment/roll")
    assert re.search(r"^1\s", history, re.M) and re.search(r"^2\s", history, re.M), history


async def test_rollout_undo_and_restart(client: ApiClient, namespace: str, kubectl: Kubectl) -> None:
    await client.create(DEPLOYMENTS, deployment("undo", 6), namespace)
    await wait_running(client, namespace, "undo", 6)
    _kubectl_ok(kubectl, "-n", namespace, "set", "image", "deployment/undo", "c=nginx:1.26")
    _kubectl_ok(kubectl, "-n", namespace, "rollout", "status", "deployment/undo", "--timeout=120s")
    out = _kubectl_ok(kubectl, "-n", namespace, "rollout", "undo", "deployment/undo")
    assert "rolled back" in out
    _kubectl_ok(kubectl, "-n", namespace, "rollout", "status", "deployment/undo", "--timeout=120s")
    pods = await wait_running(client, namespace, "undo", 6)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.25"}
    dep = await client.get(DEPLOYMENTS, "undo", namespace)
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"

    before = {p["metadata"]["name"] for p in pods}
    out = _kubectl_ok(kubectl, "-n", namespace, "rollout", "restart", "deployment/undo")
    assert "restarted" in out
    _kubectl_ok(kubectl, "-n", namespace, "rollout", "status", "deployment/undo", "--timeout=120s")
    pods = await wait_running(client, namespace, "undo", 6)
    assert not before & {p["metadata"]["name"] for p in pods}, "restart must replace every pod"
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {}) for p in pods)


async def _gone(client: ApiClient, res: Any, name: str, ns: str) -> bool:
    try:
        await client.get(res, name, ns)
    except StatusError as e:
        if e.code == 404:
            return True
        raise
    return False


async def test_cascading_deletes(client: ApiClient, namespace: str, kubectl: Kubectl) -> None:
    for name in ("bg", "fg", "orphan"):
        await client.create(DEPLOYMENTS, deployment(name, 3), namespace)
    for name in ("bg", "fg", "orphan"):
        await wait_running(client, namespace, name, 3)

    # background: the deployment goes at once, the garbage collector removes ReplicaSet and pods
    _kubectl_ok(kubectl, "-n", namespace, "delete", "deployment", "bg", "--cascade=background")
    assert await _gone(client, DEPLOYMENTS, "bg", namespace)
    await wait_for(
        "background: ReplicaSets and pods collected",
        lambda: _none_left(client, namespace, "bg"),
    )

    # foreground: the deployment stays (foregroundDeletion finalizer) until its dependents are gone
    order: list[tuple[int, str]] = []  # (revision of the delete, kind): two streams, one etcd clock
    started = asyncio.Event()

    async def watch_deletes() -> None:
        listed = await client.list(PODS, namespace, label_selector="app=fg")
        dlisted = await client.list(DEPLOYMENTS, namespace)
        started.set()

        async def follow(res: Any, rv: str, sel: str | None) -> None:
            async with contextlib.aclosing(client.watch(res, namespace, resource_version=rv, label_selector=sel)) as ev:
                async for typ, obj in ev:
                    if typ == "DELETED":
                        order.append((int(obj["metadata"]["resourceVersion"]), res.kind))

        await asyncio.gather(
            follow(PODS, listed["metadata"]["resourceVersion"], "app=fg"),
            follow(DEPLOYMENTS, dlisted["metadata"]["resourceVersion"], None),
        )

    watcher = asyncio.create_task(watch_deletes())
    try:
        await asyncio.wait_for(started.wait(), 10)
        await client.delete(DEPLOYMENTS, "fg", namespace, propagation_policy="Foreground")
        with contextlib.suppress(StatusError):
            dep = await client.get(DEPLOYMENTS, "fg", namespace)
            assert "foregroundDeletion" in dep["metadata"].get("finalizers", [])
            assert dep["metadata"].get("deletionTimestamp")
        await wait_for("foreground: deployment gone", lambda: _gone(client, DEPLOYMENTS, "fg", namespace))
        await wait_for("foreground: nothing left", lambda: _none_left(client, namespace, "fg"))
        await asyncio.sleep(0.3)  # let the watch deliver the last events
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    kinds = [k for _, k in sorted(order)]
    assert kinds.count("Pod") == 3 and "Deployment" in kinds, order
    assert kinds.index("Deployment") > max(i for i, k in enumerate(kinds) if k == "Pod"), f"owner went first: {order}"

    # orphan: the ReplicaSet and its pods stay, without an owner
    _kubectl_ok(kubectl, "-n", namespace, "delete", "deployment", "orphan", "--cascade=orphan")
    await wait_for("orphan: deployment gone", lambda: _gone(client, DEPLOYMENTS, "orphan", namespace))

    async def orphaned() -> bool:
        rss = (await client.list(REPLICASETS, namespace, label_selector="app=orphan"))["items"]
        return len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")

    await wait_for("orphan: ReplicaSet without owner", orphaned)
    await asyncio.sleep(1)
    assert len(await wait_running(client, namespace, "orphan", 3, timeout=10)) == 3


async def _none_left(client: ApiClient, ns: str, app: str) -> bool:
    rss = (await client.list(REPLICASETS, ns, label_selector=f"app={app}"))["items"]
    pods = (await client.list(PODS, ns, label_selector=f"app={app}"))["items"]
    return not rss and not pods


async def test_deleting_a_namespace_removes_everything_in_it(client: ApiClient, kubectl: Kubectl) -> None:
    ns = f"cl-ns-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    await client.create(DEPLOYMENTS, deployment("app", 3), ns)
    await client.create(CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"k": "v"}}, ns)
    await client.create(
        SERVICES, {"metadata": {"name": "svc"}, "spec": {"selector": {"app": "app"}, "ports": [{"port": 80}]}}, ns
    )
    await wait_running(client, ns, "app", 3)
    t0 = time.monotonic()
    _kubectl_ok(kubectl, "delete", "namespace", ns, "--timeout=120s")
    print(f"\nnamespace with a deployment, 3 pods, a service and a configmap deleted in {time.monotonic() - t0:.1f}s")
    assert await _gone(client, NAMESPACES, ns, "")
    for res in (PODS, REPLICASETS, DEPLOYMENTS, CONFIGMAPS, SERVICES):
        items = (await client.list(res, field_selector=f"metadata.namespace={ns}"))["items"]
        assert not items, f"{res} left in the deleted namespace: {[i['metadata']['name'] for i in items]}"


async def test_lost_node_is_tainted_and_its_pods_evicted(client: ApiClient, namespace: str, cluster: Cluster) -> None:
    lost = fake_nodes(cluster.workdir, cluster.servers[0], "cl-lost-", 1, f"{POOL}=lost", "")
    try:
        node_name = "cl-lost-0"

        async def node_ready() -> bool:
            node = await client.get(NODES, node_name)
            return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])

        await wait_for("the lost node registered and ready", node_ready, 30)
        tolerations = [
            {
                "key": f"node.kubernetes.io/{t}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": TOLERATION,
            }
            for t in ("unreachable", "not-ready")
        ]
        dep = deployment("evict", 2, zone_anti_affinity=False, node_selector={POOL: "lost"}, tolerations=tolerations)
        await client.create(DEPLOYMENTS, dep, namespace)
        pods = await wait_running(client, namespace, "evict", 2)
        assert {p["spec"]["nodeName"] for p in pods} == {node_name}
        originals = {p["metadata"]["name"] for p in pods}

        lost.kill()  # its heartbeats stop
        t0 = time.monotonic()

        async def not_ready_and_tainted() -> Obj | None:
            node = await client.get(NODES, node_name)
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or ()}
            want = {("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")}
            return node if ready["status"] == "Unknown" and want <= taints else None

        node = await wait_for("NotReady (Unknown) and tainted", not_ready_and_tainted, GRACE + 30)
        detected = time.monotonic() - t0
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "NodeStatusUnknown"

        async def evicted() -> bool:
            current = {p["metadata"]["name"]: p for p in await pods_of(client, namespace, "evict")}
            return all(n not in current or _terminating(current[n]) for n in originals)

        await wait_for("pods evicted after their toleration", evicted, TOLERATION + 30)
        evicted_after = time.monotonic() - t0
        print(
            f"\nlost node: Unknown + tainted after {detected:.1f}s (grace {GRACE}s), pods evicted after "
            f"{evicted_after:.1f}s (toleration {TOLERATION}s)"
        )
        assert evicted_after >= TOLERATION

        # the ReplicaSet replaces them; they cannot be scheduled anywhere (only the lost node matches)
        async def replacements() -> bool:
            current = await pods_of(client, namespace, "evict")
            fresh = [p for p in current if p["metadata"]["name"] not in originals]
            return len(fresh) == 2 and all(not p["spec"].get("nodeName") for p in fresh)

        await wait_for("replacement pods (unschedulable)", replacements, 30)
    finally:
        lost.kill()
        with contextlib.suppress(StatusError):
            await client.delete(NODES, "cl-lost-0")


async def test_controller_manager_failover(client: ApiClient, namespace: str, cluster: Cluster) -> None:
    await client.create(DEPLOYMENTS, deployment("fo-cm", 2), namespace)
    await wait_running(client, namespace, "fo-cm", 2)
    holder = await _wait_holder(client, "kube-controller-manager", 10)
    active = _leader_component(cluster.controller_managers, holder)
    listed = await client.list(PODS, namespace, label_selector="app=fo-cm")

    async def first_new_pod() -> float:
        rv = listed["metadata"]["resourceVersion"]
        async with contextlib.aclosing(
            client.watch(PODS, namespace, resource_version=rv, label_selector="app=fo-cm")
        ) as ev:
            async for typ, _obj in ev:
                if typ == "ADDED":
                    return time.monotonic()
        raise AssertionError("watch ended")

    watcher = asyncio.create_task(first_new_pod())
    active.kill()
    killed = time.monotonic()
    # the work for the standby: a scale-up (deployment controller → ReplicaSet → replicaset controller → pod)
    await client.patch(DEPLOYMENTS, "fo-cm", {"spec": {"replicas": 3}}, namespace)
    acted = await asyncio.wait_for(watcher, 30)
    new_holder = await _wait_holder(client, "kube-controller-manager", 10, not_=holder)
    gap = acted - killed
    print(f"\ncontroller-manager failover: standby created a pod {gap:.2f}s after SIGKILL of the leader")
    assert new_holder != holder
    assert gap <= failover.FAILOVER_LIMIT, f"failover took {gap:.2f}s (goal {FAILOVER_GOAL}s)"
    await wait_running(client, namespace, "fo-cm", 3)


async def test_scheduler_failover(client: ApiClient, namespace: str, cluster: Cluster) -> None:
    holder = await _wait_holder(client, "kube-scheduler", 10)
    active = _leader_component(cluster.schedulers, holder)
    pod: Obj = {
        "metadata": {"name": "fo-sched"},
        "spec": {
            "nodeSelector": {POOL: "general"},
            "containers": [{"name": "c", "image": "nginx"}],
        },
    }
    active.kill()
    killed = time.monotonic()
    created = await client.create(PODS, pod, namespace)
    rv = created["metadata"]["resourceVersion"]
    bound_at: float | None = None
    async with contextlib.aclosing(
        client.watch(PODS, namespace, resource_version=rv, field_selector="metadata.name=fo-sched")
    ) as events:

        async def until_bound() -> float:
            async for _typ, obj in events:
                if obj.get("spec", {}).get("nodeName"):
                    return time.monotonic()
            raise AssertionError("watch ended")

        bound_at = await asyncio.wait_for(until_bound(), 30)
    gap = bound_at - killed
    new_holder = await _wait_holder(client, "kube-scheduler", 10, not_=holder)
    print(f"\nscheduler failover: standby bound a pod {gap:.2f}s after SIGKILL of the leader")
    assert new_holder != holder
    assert gap <= failover.FAILOVER_LIMIT, f"failover took {gap:.2f}s (goal {FAILOVER_GOAL}s)"
