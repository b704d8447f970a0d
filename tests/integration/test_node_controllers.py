"""node-ipam and node-lifecycle in-process against a real etcd and api-server. The test plays the
kubelet: it registers a node, posts its Ready condition and renews its Lease, then stops."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.procs import stop_process
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import LEASES, NAMESPACES, NODES, PODS, SERVICEACCOUNTS
from kubeha.controllers.context import ControllerContext, ControllerOptions
from kubeha.controllers.nodeipam import NodeIpamController
from kubeha.controllers.nodelifecycle import TAINT_UNREACHABLE, NodeLifecycleController
from kubeha.machinery.informer import SharedInformerFactory
from tests.support import waiting
from tests.support.apiserver import ApiServer

Obj = dict[str, Any]
LEASE_NS = "kube-node-lease"


def now_rfc3339(micro: bool = False) -> str:
    t = time.time()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return f"{base}.{int((t % 1) * 1e6):06d}Z" if micro else base + "Z"


# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=20.0, every=0.1)


class FakeKubelet:
    """Registers a node, posts Ready, renews its Lease every ``every`` seconds until stopped."""

    def __init__(self, client: ApiClient, name: str, every: float = 0.3) -> None:
        self.client = client
        self.name = name
        self.every = every
        self.task: asyncio.Task[None] | None = None

    async def register(self) -> None:
        await self.client.create(
            NODES, {"metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name}}}
        )
        await self.post_ready("True")
        lease = {
            "metadata": {"name": self.name},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": now_rfc3339(True)},
        }
        await self.client.create(LEASES, lease, LEASE_NS)

    async def post_ready(self, status: str) -> None:
        node = await self.client.get(NODES, self.name)
        stamp = now_rfc3339()
        node["status"] = {
            "conditions": [
                {
                    "type": "Ready",
                    "status": status,
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ]
        }
        await self.client.update(NODES, node, subresource="status")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.client.patch(LEASES, self.name, {"spec": {"renewTime": now_rfc3339(True)}}, LEASE_NS)

    def start(self) -> None:
        self.task = asyncio.create_task(self._renew())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None


@pytest.fixture
async def env(apiservers: list[ApiServer]) -> AsyncIterator[tuple[ApiClient, ControllerContext, str]]:
    client = ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig)), user_agent="node-test", timeout=10)
    for name in (LEASE_NS,):
        with contextlib.suppress(StatusError):
            await client.create(NAMESPACES, {"metadata": {"name": name}})
    ns = f"nd-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    await client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, ns)
    options = ControllerOptions(
        cluster_cidr="10.250.0.0/16",
        allocate_node_cidrs=True,
        node_cidr_mask_size=24,
        node_monitor_period=0.3,
        node_monitor_grace_period=2.0,
        node_startup_grace_period=2.0,
    )
    ctx = ControllerContext(client, SharedInformerFactory(client), options)
    try:
        yield client, ctx, ns
    finally:
        await ctx.informers.stop()
        with contextlib.suppress(StatusError):
            await client.delete(NAMESPACES, ns)
        await client.close()


def pod(name: str, node: str, tolerations: list[Obj]) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "tolerations": tolerations,
        },
    }


async def test_node_gets_pod_cidr(env: tuple[ApiClient, ControllerContext, str]) -> None:
    client, ctx, _ = env
    ipam = NodeIpamController(ctx)
    await ctx.informers.start()
    task = asyncio.create_task(ipam.run())
    names = [f"ipam-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    try:
        for n in names:
            await client.create(NODES, {"metadata": {"name": n}})

        async def cidrs() -> list[str] | None:
            got = [(await client.get(NODES, n)).get("spec", {}).get("podCIDR") for n in names]
            return got if all(got) else None

        got = await eventually(cidrs)
        assert len(set(got)) == 2 and all(c.startswith("10.250.") and c.endswith("/24") for c in got)
        node = await client.get(NODES, names[0])
        assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for n in names:
            with contextlib.suppress(StatusError):
                await client.delete(NODES, n)


async def test_silent_node_is_tainted_and_its_pods_evicted(env: tuple[ApiClient, ControllerContext, str]) -> None:
    client, ctx, ns = env
    name = f"node-{uuid.uuid4().hex[:6]}"
    kubelet = FakeKubelet(client, name)
    await kubelet.register()
    kubelet.start()
    unreachable = {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    # (without any toleration of its own a pod gets 300 s from the DefaultTolerationSeconds admission)
    await client.create(PODS, pod("plain", name, [{**unreachable, "tolerationSeconds": 0}]), ns)
    await client.create(PODS, pod("tolerant", name, [{**unreachable, "tolerationSeconds": 2}]), ns)
    await client.create(PODS, pod("forever", name, [unreachable]), ns)
    for p in ("plain", "tolerant", "forever"):
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        await client.patch(PODS, p, {"status": status}, ns, subresource="status")

    lifecycle = NodeLifecycleController(ctx)
    await ctx.informers.start()
    task = asyncio.create_task(lifecycle.run())
    try:
        # healthy while the lease is renewed: no taints after more than a grace period
        await asyncio.sleep(3.0)
        node = await client.get(NODES, name)
        assert not (node.get("spec") or {}).get("taints")

        await kubelet.stop()  # the kubelet dies

        async def tainted() -> Obj | None:
            n = await client.get(NODES, name)
            return n if any(t["key"] == TAINT_UNREACHABLE for t in (n.get("spec") or {}).get("taints") or []) else None

        node = await eventually(tainted, within=10)
        seen_at = time.time()
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown",
            "NodeStatusUnknown",
            "Kubelet stopped posting node status.",
        )
        assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
            (TAINT_UNREACHABLE, "NoSchedule"),
            (TAINT_UNREACHABLE, "NoExecute"),
        }

        async def evicted(p: str) -> bool:
            try:
                got = await client.get(PODS, p, ns)
            except StatusError as err:
                return err.code == 404
            return bool(got["metadata"].get("deletionTimestamp"))

        await eventually(lambda: evicted("plain"), within=5)
        assert not await evicted("tolerant")
        await eventually(lambda: evicted("tolerant"), within=6)
        assert time.time() - seen_at >= 0.8  # it waited for its tolerationSeconds (from timeAdded)
        await asyncio.sleep(1.0)
        assert not await evicted("forever")
        forever = await client.get(PODS, "forever", ns)
        assert next(c for c in forever["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"

        # the kubelet comes back: the taints go
        kubelet.start()
        await kubelet.post_ready("True")

        async def untainted() -> bool:
            n = await client.get(NODES, name)
            return not (n.get("spec") or {}).get("taints")

        await eventually(untainted, within=10)
    finally:
        await kubelet.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(StatusError):
            await client.delete(NODES, name)


def start_manager(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kubeha", "controller-manager", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def test_controller_manager_process_runs_node_controllers(
    apiservers: list[ApiServer], env: tuple[ApiClient, ControllerContext, str], tmp_path: Path
) -> None:
    """The same controllers inside a real `kubeha controller-manager` process."""
    client, _, _ = env
    log_path = tmp_path / "kcm.log"
    args = [
        f"--kubeconfig={apiservers[0].kubeconfig}",
        "--controllers=nodeipam,nodelifecycle,daemonset,statefulset,job,cronjob,ttl-after-finished",
        "--allocate-node-cidrs",
        "--cluster-cidr=10.251.0.0/16",
        "--node-monitor-period=300ms",
        "--node-monitor-grace-period=2s",
        "--node-startup-grace-period=2s",
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
        f"--leader-elect-resource-name=kcm-nodes-{uuid.uuid4().hex[:6]}",
    ]
    proc = start_manager(args, log_path)
    name = f"proc-{uuid.uuid4().hex[:6]}"
    kubelet = FakeKubelet(client, name)
    try:
        await kubelet.register()

        async def cidr_and_unknown() -> Obj | None:
            n = await client.get(NODES, name)
            ready: Obj = next((c for c in n["status"]["conditions"] if c["type"] == "Ready"), {})
            ok = (
                str((n.get("spec") or {}).get("podCIDR", "")).startswith("10.251.") and ready.get("status") == "Unknown"
            )
            return n if ok else None

        # never renewed: it gets a CIDR, and after the grace period it is Unknown and tainted
        node = await eventually(cidr_and_unknown, within=20)
        assert {t["key"] for t in node["spec"]["taints"]} == {TAINT_UNREACHABLE}
        assert proc.poll() is None
        text = log_path.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
    finally:
        stop_process(proc, 10)
        with contextlib.suppress(StatusError):
            await client.delete(NODES, name)
