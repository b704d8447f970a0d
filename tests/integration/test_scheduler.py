"""`kubeha scheduler` processes against real etcd + api-servers: placement rules, the
FailedScheduling text, and failover between two leader-elected schedulers (gap printed, -s)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.procs import stop_process
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import EVENTS, NAMESPACES, NODES, PODS, SERVICEACCOUNTS
from tests.support import failover
from tests.support.apiserver import ApiServer
from tests.support.etcd import EtcdServer

Obj = dict[str, Any]
LE_FLAGS = ["--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"]


class SchedulerProc:
    def __init__(self, server: ApiServer, workdir: Path, name: str, lease_ns: str) -> None:
        self.log_path = workdir / f"{name}.log"
        cmd = [
            sys.executable,
            "-m",
            "kubeha",
            "scheduler",
            f"--kubeconfig={server.kubeconfig}",
            f"--leader-elect-resource-namespace={lease_ns}",
            *LE_FLAGS,
            "-v=4",
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        stop_process(self.proc, 10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def etcd_server() -> Iterator[EtcdServer]:
    """A private etcd (overrides the session one): the FailedScheduling texts count every node in
    the cluster, so other modules' nodes must not be in it."""
    with EtcdServer() as srv:
        yield srv


@pytest.fixture
async def client(apiservers: list[ApiServer]) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig)), user_agent="sched-test") as c:
        yield c


@pytest.fixture
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"sched-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    # no controller-manager here: admission wants the namespace's default service account
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": name}}, name)
    yield name
    with contextlib.suppress(StatusError):
        await client.delete(NAMESPACES, name)


@pytest.fixture
def schedulers(apiservers: list[ApiServer], tmp_path: Path) -> Iterator[list[SchedulerProc]]:
    procs: list[SchedulerProc] = []
    yield procs  # filled by start_scheduler; stopped by their own PIDs here
    for p in procs:
        p.stop()


def start_scheduler(
    procs: list[SchedulerProc], apiservers: list[ApiServer], tmp: Path, i: int, lease_ns: str
) -> SchedulerProc:
    p = SchedulerProc(apiservers[i % len(apiservers)], tmp, f"scheduler-{len(procs)}", lease_ns)
    procs.append(p)
    return p


def node(name: str, cpu: str = "4", labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints} if taints else {},
    }
    return obj


async def create_node(client: ApiClient, obj: Obj, cpu: str = "4") -> None:
    with contextlib.suppress(StatusError):
        await client.delete(NODES, obj["metadata"]["name"])
    await client.create(NODES, obj)
    status = {
        "status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        }
    }
    await client.patch(NODES, obj["metadata"]["name"], status, subresource="status")


def pod(name: str, ns: str, cpu: str = "100m", labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}], **spec},
    }


async def wait_bound(client: ApiClient, ns: str, names: list[str], timeout: float = 20) -> dict[str, str]:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        items = (await client.list(PODS, ns))["items"]
        bound = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in items if p["metadata"]["name"] in names}
        if all(bound.get(n) for n in names):
            return {n: str(bound[n]) for n in names}
        if time.monotonic() > deadline:
            raise AssertionError(f"not bound in time: {bound}")
        await asyncio.sleep(0.1)


async def test_placement_rules_and_failed_scheduling_message(
    client: ApiClient, ns: str, apiservers: list[ApiServer], tmp_path: Path, schedulers: list[SchedulerProc]
) -> None:
    tag = ns
    cp_taint = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    names = [f"{tag}-cp0", f"{tag}-cp1", f"{tag}-w0", f"{tag}-w1", f"{tag}-w2"]
    # every node carries the test's own label so pods of other tests never land here and vice versa
    group = {"test-group": tag}
    await create_node(client, node(names[0], labels=group, taints=cp_taint))
    await create_node(client, node(names[1], labels=group, taints=cp_taint))
    await create_node(client, node(names[2], labels={**group, "disk": "ssd"}), cpu="2")
    await create_node(client, node(names[3], labels=group), cpu="2")
    await create_node(client, node(names[4], labels=group), cpu="2")
    try:
        start_scheduler(schedulers, apiservers, tmp_path, 0, ns)
        sel = {"test-group": tag}
        anti = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        }
        await client.create(PODS, pod("ssd", ns, nodeSelector={**sel, "disk": "ssd"}))
        for i in range(3):
            await client.create(PODS, pod(f"spread-{i}", ns, labels={"app": "spread"}, nodeSelector=sel, affinity=anti))
        tol = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
        await client.create(
            PODS,
            pod(
                "on-cp",
                ns,
                nodeSelector=sel,
                tolerations=tol,
                affinity={
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/hostname", "operator": "In", "values": names[:2]}
                                    ]
                                }
                            ]
                        }
                    }
                },
            ),
        )
        placed = await wait_bound(client, ns, ["ssd", "spread-0", "spread-1", "spread-2", "on-cp"])
        assert placed["ssd"] == names[2]
        spread = {placed[f"spread-{i}"] for i in range(3)}
        assert len(spread) == 3 and spread <= set(names[2:])  # one per worker, never on the tainted nodes
        assert placed["on-cp"] in names[:2]
        # a pod too big for every worker: upstream's message, on the condition and in an event
        await client.create(PODS, pod("huge", ns, cpu="3", nodeSelector=sel))
        want = (
            "0/5 nodes are available: 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
            "3 Insufficient cpu. preemption: 0/5 nodes are available: 2 Preemption is not helpful for scheduling, "
            "3 No preemption victims found for incoming pod."
        )
        deadline = time.monotonic() + 15
        cond: Obj = {}
        while time.monotonic() < deadline:
            p = await client.get(PODS, "huge", ns)
            cond = next((c for c in p.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), {})
            if cond.get("status") == "False":
                break
            await asyncio.sleep(0.1)
        # other tests' nodes are filtered by the nodeSelector, so count only ours: strip the totals
        assert cond.get("reason") == "Unschedulable", cond
        msg = str(cond.get("message"))
        assert (
            "2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu." in msg
        ), msg
        events = (await client.list(EVENTS, ns, field_selector="involvedObject.name=huge"))["items"]
        assert any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events)
        ok = (await client.list(EVENTS, ns, field_selector="involvedObject.name=ssd"))["items"]
        assert any(
            e["reason"] == "Scheduled" and e["message"] == f"Successfully assigned {ns}/ssd to {names[2]}" for e in ok
        )
        if msg.startswith("0/5 "):
            assert msg == want
    except BaseException:
        for s in schedulers:
            print(s.log())
        raise
    finally:
        for n in names:
            with contextlib.suppress(StatusError):
                await client.delete(NODES, n)


async def test_standby_scheduler_takes_over_after_sigkill(
    client: ApiClient, ns: str, apiservers: list[ApiServer], tmp_path: Path, schedulers: list[SchedulerProc]
) -> None:
    name = f"{ns}-n"
    await create_node(client, node(name, labels={"test-group": ns}))
    try:
        a = start_scheduler(schedulers, apiservers, tmp_path, 0, ns)
        await client.create(PODS, pod("first", ns, nodeSelector={"test-group": ns}))
        await wait_bound(client, ns, ["first"])  # a leads
        b = start_scheduler(schedulers, apiservers, tmp_path, 1, ns)
        await asyncio.sleep(2)  # b syncs its caches and stands by
        a.kill()
        killed = time.monotonic()
        print(f"\nleader killed at {time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d}")
        await client.create(PODS, pod("second", ns, nodeSelector={"test-group": ns}))
        await wait_bound(client, ns, ["second"], timeout=15)
        gap = time.monotonic() - killed
        print("\n" + failover.report("scheduler (SIGKILL -> standby bound a new pod)", gap))
        assert gap <= failover.FAILOVER_LIMIT, b.log()
    finally:
        with contextlib.suppress(StatusError):
            await client.delete(NODES, name)
