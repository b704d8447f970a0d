"""A real `kubeha kubelet` process with the host runtime against a real etcd and api-server:
registration and lease, a host pod's life (run, logs, liveness restart, deletion), static pods
and their mirror pods, and re-adoption of running processes by a restarted kubelet."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.procs import stop_process
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import LEASES, NAMESPACES, NODES, PODS
from tests.support import waiting
from tests.support.apiserver import ApiServer

Obj = dict[str, Any]


# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=30.0, every=0.2)


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


@dataclass
class Node:
    name: str
    root: Path
    manifests: Path
    kubeconfig: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubeha",
                "kubelet",
                f"--kubeconfig={self.kubeconfig}",
                f"--hostname-override={self.name}",
                "--node-ip=127.0.0.1",
                f"--root-dir={self.root}",
                f"--pod-manifest-path={self.manifests}",
                "--node-lease-duration-seconds=4",
                "--node-status-update-frequency=1s",
                "--node-labels=kubeha.test/kubelet=true",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def runtime_pids(self) -> list[int]:
        """Every process the host runtime started (commands and their shims)."""
        pids: list[int] = []
        for state in self.root.glob("pods/*/*/*.state.json"):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(state.read_text())
                pids += [int(data[k]) for k in ("pid", "shimPid") if data.get(k)]
        return pids


@pytest.fixture(scope="module")
def node(apiservers: list[ApiServer]) -> Iterator[Node]:
    tmp = Path(tempfile.mkdtemp(prefix="kubelet-host-"))
    n = Node(
        f"kl-{uuid.uuid4().hex[:8]}", tmp / "root", tmp / "manifests", apiservers[0].kubeconfig, tmp / "kubelet.log"
    )
    n.manifests.mkdir(parents=True)
    n.start()
    text = ""
    try:
        yield n
    finally:
        n.stop()
        text = n.log_path.read_text(errors="replace")
        Path("/tmp/last-kubelet-host-test.log").write_text(text)
        for pid in n.runtime_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
    assert "Traceback" not in text, text[-4000:]


@pytest.fixture
async def client(apiservers: list[ApiServer], node: Node) -> AsyncIterator[ApiClient]:
    c = ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig)))
    yield c
    await c.close()


@pytest.fixture
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"kl-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(StatusError):
        await client.delete(NAMESPACES, name)


def host_pod(name: str, node: str, command: str, **container: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "runtimeClassName": "host",
            "hostNetwork": True,
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": "host", "command": ["sh", "-c", command], **container}],
        },
    }


def cond(obj: Obj, type_: str) -> str:
    return next(
        (c.get("status", "") for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), ""
    )


async def test_node_registers_and_renews_lease(client: ApiClient, node: Node) -> None:
    n = await eventually(lambda: _get(client, NODES, node.name), within=30)
    labels = n["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node.name and labels["kubeha.test/kubelet"] == "true"
    assert n["status"]["capacity"]["pods"] == "110"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in n["status"]["addresses"]
    assert n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("host://")
    assert cond(n, "Ready") == "True"
    lease = await eventually(lambda: _get(client, LEASES, node.name, "kube-node-lease"))
    assert lease["metadata"]["ownerReferences"][0]["uid"] == n["metadata"]["uid"]
    first = lease["spec"]["renewTime"]

    async def renewed() -> bool:
        got = await _get(client, LEASES, node.name, "kube-node-lease")
        return got is not None and got["spec"]["renewTime"] != first

    await eventually(renewed, within=10)


async def _get(client: ApiClient, res: Any, name: str, namespace: str | None = None) -> Obj | None:
    try:
        return await client.get(res, name, namespace)
    except StatusError as e:
        if e.code == 404:
            return None
        raise


async def _running_ready(client: ApiClient, name: str, ns: str) -> Obj | None:
    p = await _get(client, PODS, name, ns)
    if p and (p.get("status") or {}).get("phase") == "Running" and cond(p, "Ready") == "True":
        return p
    return None


def _pid_of(node: Node, pod: Obj, container: str = "main") -> int:
    cs = next(c for c in pod["status"]["containerStatuses"] if c["name"] == container)
    attempt = cs["restartCount"]
    state = node.root / "pods" / pod["metadata"]["uid"] / container / f"{attempt}.state.json"
    return int(json.loads(state.read_text())["pid"])


async def test_host_pod_runs_restarts_on_liveness_and_is_deleted(client: ApiClient, node: Node, ns: str) -> None:
    await eventually(lambda: _get(client, NODES, node.name))
    marker = node.root.parent / f"prestop-{ns}"
    pod = host_pod(
        "hello",
        node.name,
        "echo hi; sleep 1000",
        lifecycle={"preStop": {"exec": {"command": ["sh", "-c", f"echo bye > {marker}"]}}},
    )
    await client.create(PODS, pod, ns)
    p = await eventually(lambda: _running_ready(client, "hello", ns), within=30)
    cs = p["status"]["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("host://")
    assert p["status"]["podIP"] == "127.0.0.1" and p["status"]["hostIP"] == "127.0.0.1"
    uid = p["metadata"]["uid"]
    log_file = node.root / "pods" / uid / "main" / "0.log"
    assert " stdout F hi" in log_file.read_text()
    pid = _pid_of(node, p)
    assert pid_alive(pid)

    await client.delete(PODS, "hello", ns)
    await eventually(lambda: _gone(client, "hello", ns), within=30)
    assert not pid_alive(pid)
    assert marker.read_text() == "bye\n"  # preStop ran before the process was stopped


async def _gone(client: ApiClient, name: str, ns: str) -> bool:
    return await _get(client, PODS, name, ns) is None


async def test_liveness_failure_restarts_container(client: ApiClient, node: Node, ns: str) -> None:
    await eventually(lambda: _get(client, NODES, node.name))
    pod = host_pod(
        "live",
        node.name,
        "sleep 1000",
        livenessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
    )
    await client.create(PODS, pod, ns)

    async def restarted() -> Obj | None:
        p = await _get(client, PODS, "live", ns)
        statuses = ((p or {}).get("status") or {}).get("containerStatuses") or []
        return p if statuses and statuses[0]["restartCount"] >= 1 else None

    p = await eventually(restarted, within=40)
    cs = p["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] in (137, 143)
    await client.delete(PODS, "live", ns, grace_period_seconds=1)
    await eventually(lambda: _gone(client, "live", ns), within=30)


async def test_static_pod_is_mirrored_and_pods_readopted_after_restart(client: ApiClient, node: Node, ns: str) -> None:
    await eventually(lambda: _get(client, NODES, node.name))
    await client.create(PODS, host_pod("survivor", node.name, "sleep 1000"), ns)
    survivor = await eventually(lambda: _running_ready(client, "survivor", ns), within=30)
    survivor_pid = _pid_of(node, survivor)
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "static-web", "namespace": "default"},
        "spec": {
            "runtimeClassName": "host",
            "hostNetwork": True,
            "containers": [{"name": "main", "image": "host", "command": ["sh", "-c", "echo static; sleep 1000"]}],
        },
    }
    path = node.manifests / "static-web.json"
    path.write_text(json.dumps(manifest))
    name = f"static-web-{node.name}"
    try:
        mirror = await eventually(lambda: _running_ready(client, name, "default"), within=40)
        ann = mirror["metadata"]["annotations"]
        assert ann["kubernetes.io/config.source"] == "file" and ann["kubernetes.io/config.mirror"]
        assert mirror["metadata"]["ownerReferences"][0]["kind"] == "Node"
        static_uid = ann["kubernetes.io/config.mirror"]
        state = json.loads((node.root / "pods" / static_uid / "main" / "0.state.json").read_text())
        pid = int(state["pid"])
        assert pid_alive(pid)

        # restart the kubelet: the process is re-adopted, not restarted
        node.stop()
        assert pid_alive(pid)
        node.start()
        await asyncio.sleep(4)
        again = await eventually(lambda: _running_ready(client, name, "default"), within=30)
        cs = again["status"]["containerStatuses"][0]
        assert cs["restartCount"] == 0
        assert pid_alive(pid)
        after = await eventually(lambda: _running_ready(client, "survivor", ns), within=30)
        assert after["status"]["containerStatuses"][0]["restartCount"] == 0
        assert _pid_of(node, after) == survivor_pid and pid_alive(survivor_pid)
        assert not (node.root / "pods" / static_uid / "main" / "1.json").exists()
        assert "Traceback" not in node.log(), node.log()
    finally:
        path.unlink(missing_ok=True)

    async def mirror_gone() -> bool:
        return await _get(client, PODS, name, "default") is None

    await eventually(mirror_gone, within=30)
    await eventually(lambda: _async_true(not pid_alive(pid)), within=15)
    await client.delete(PODS, "survivor", ns, grace_period_seconds=1)
    await eventually(lambda: _gone(client, "survivor", ns), within=30)
    assert not pid_alive(survivor_pid)


async def _async_true(value: bool) -> bool:
    return value


async def test_crash_loop_back_off_and_completed_pods(client: ApiClient, node: Node, ns: str) -> None:
    await eventually(lambda: _get(client, NODES, node.name))
    await client.create(PODS, host_pod("crash", node.name, "echo dying; exit 3"), ns)
    done = host_pod("done", node.name, "echo $GREETING")
    done["spec"]["restartPolicy"] = "Never"
    done["spec"]["containers"][0]["env"] = [
        {"name": "GREETING", "value": "hello-$(POD)"},
        {"name": "POD", "value": "x"},
    ]
    done["spec"]["initContainers"] = [{"name": "first", "image": "host", "command": ["true"]}]
    await client.create(PODS, done, ns)

    async def backing_off() -> Obj | None:
        p = await _get(client, PODS, "crash", ns)
        cs = (((p or {}).get("status") or {}).get("containerStatuses") or [{}])[0]
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return p if waiting.get("reason") == "CrashLoopBackOff" and cs.get("restartCount", 0) >= 1 else None

    p = await eventually(backing_off, within=30)
    cs = p["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert p["status"]["phase"] == "Running" and cond(p, "Ready") == "False"

    async def succeeded() -> Obj | None:
        p = await _get(client, PODS, "done", ns)
        return p if ((p or {}).get("status") or {}).get("phase") == "Succeeded" else None

    p = await eventually(succeeded, within=30)
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    log_file = node.root / "pods" / p["metadata"]["uid"] / "main" / "0.log"
    assert " stdout F hello-$(POD)" in log_file.read_text()  # POD was defined after GREETING: not expanded
    for name in ("crash", "done"):
        await client.delete(PODS, name, ns, grace_period_seconds=1)
    for name in ("crash", "done"):
        await eventually(lambda n=name: _gone(client, n, ns), within=30)  # type: ignore[misc]
