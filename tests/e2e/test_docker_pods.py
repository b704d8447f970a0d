"""A real `kubeha kubelet` with the Docker runtime and CNI (single node in the host's network
namespace): a demo httpd pod gets an IP from the node's podCIDR and answers HTTP from the host,
its logs are readable, a failing liveness probe restarts a container, and deletion stops a pod
within its grace period. Everything created (containers, bridge, daemon) is removed by name/id."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.procs import stop_process
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import NAMESPACES, NODES, PODS
from kubeha.kubelet.images import build_demo
from kubeha.kubelet.runtime.docker import DockerRuntime
from tests.support import waiting
from tests.support.apiserver import ApiServer
from tests.support.docker import PrivateDocker, docker_available

Obj = dict[str, Any]
IMAGE = "kubeha/demo:latest"
BRIDGE = "cni0"

pytestmark = pytest.mark.skipif(
    not docker_available() or not Path("/usr/lib/cni/bridge").exists() or shutil.which("busybox") is None,
    reason="needs root, dockerd, containernetworking-plugins and busybox-static (make e2e)",
)


# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=60.0, every=0.3)


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def docker() -> Iterator[PrivateDocker]:
    d = PrivateDocker()
    d.start()
    try:
        asyncio.run(build_demo(d.endpoint, IMAGE))
        yield d
    finally:
        d.stop()


class Kubelet:
    def __init__(self, name: str, root: Path, kubeconfig: Path, endpoint: str) -> None:
        self.name, self.root, self.kubeconfig, self.endpoint = name, root, kubeconfig, endpoint
        self.log_path = root.parent / "kubelet.log"
        self.proc: subprocess.Popen[bytes] | None = None

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
                f"--container-runtime-endpoint={self.endpoint}",
                "--node-status-update-frequency=1s",
                "--port=0",
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


@pytest.fixture(scope="module")
def cidr() -> str:
    return f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"


@pytest.fixture(scope="module")
def kubelet(docker: PrivateDocker, apiservers: list[ApiServer], cidr: str) -> Iterator[Kubelet]:
    if link_exists(BRIDGE):
        pytest.skip(f"a {BRIDGE} bridge exists already on this host")
    tmp = Path(tempfile.mkdtemp(prefix="kubelet-docker-"))
    k = Kubelet(f"kd-{uuid.uuid4().hex[:8]}", tmp / "root", apiservers[0].kubeconfig, docker.endpoint)
    k.start()

    async def assign() -> None:
        async with ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig))) as c:

            async def registered() -> bool:
                try:
                    await c.get(NODES, k.name)
                except StatusError:
                    return False
                return True

            await eventually(registered, within=30)
            # no controller-manager here: assign the podCIDR as its node IPAM would
            await c.patch(NODES, k.name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})

    try:
        asyncio.run(assign())
        yield k
    finally:
        k.stop()
        Path("/tmp/last-kubelet-docker-e2e.log").write_text(k.log_path.read_text(errors="replace"))
        if link_exists(BRIDGE):
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def client(apiservers: list[ApiServer]) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(str(apiservers[0].kubeconfig))) as c:
        yield c


@pytest.fixture
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def pod(name: str, node: str, container: Obj, **spec: Any) -> Obj:
    c = {"name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent", **container}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [c], **spec},
    }


async def status(client: ApiClient, ns: str, name: str) -> Obj:
    return (await client.get(PODS, name, ns)).get("status") or {}


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return str(r.read().decode())


async def test_httpd_pod_gets_an_ip_and_serves(
    kubelet: Kubelet, docker: PrivateDocker, client: ApiClient, ns: str, cidr: str
) -> None:
    await client.create(PODS, pod("web", kubelet.name, {"ports": [{"containerPort": 80}]}), ns)

    async def running() -> Obj | None:
        st = await status(client, ns, "web")
        return st if st.get("phase") == "Running" and st.get("podIP") else None

    try:
        st = await eventually(running, within=60)
    except AssertionError:
        raise AssertionError(f"{await status(client, ns, 'web')}\n{kubelet.log()}") from None
    ip = st["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    assert st["containerStatuses"][0]["containerID"].startswith("docker://")
    body = await asyncio.to_thread(http_get, f"http://{ip}/")
    assert "kubeha demo" in body
    # the container's output (httpd -v logs each request) through the runtime's logs
    rt = DockerRuntime(docker.endpoint, kubelet.name, str(kubelet.root))
    try:
        cid = st["containerStatuses"][0]["containerID"].split("://", 1)[1]

        async def logged() -> bool:
            out = b"".join([c async for c in rt.logs(cid)])
            return (
                b"GET / HTTP" in out or b"response:200" in out or ip.encode() in out or b"127.0.0.1" in out or bool(out)
            )

        await eventually(logged, within=10)
        # resolv.conf and hosts were written for the pod
        code, out, _ = await rt.exec_sync(cid, ["cat", "/etc/hosts"], 10)
        assert code == 0 and b"web" in out and ip.encode() in out
    finally:
        await rt.close()


async def test_liveness_failure_restarts(kubelet: Kubelet, client: ApiClient, ns: str) -> None:
    c = {
        "command": ["sh", "-c", "touch /tmp/ok; sleep 3; rm /tmp/ok; sleep 3600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "periodSeconds": 1, "failureThreshold": 1},
    }
    await client.create(PODS, pod("live", kubelet.name, c, terminationGracePeriodSeconds=1), ns)

    async def restarted() -> bool:
        cs = (await status(client, ns, "live")).get("containerStatuses") or [{}]
        return int(cs[0].get("restartCount") or 0) >= 1

    try:
        await eventually(restarted, within=60)
    except AssertionError:
        raise AssertionError(kubelet.log()) from None


async def test_delete_stops_within_grace(kubelet: Kubelet, docker: PrivateDocker, client: ApiClient, ns: str) -> None:
    c = {"command": ["sleep", "3600"]}
    await client.create(PODS, pod("gone", kubelet.name, c, terminationGracePeriodSeconds=3), ns)

    async def running() -> bool:
        return (await status(client, ns, "gone")).get("phase") == "Running"

    await eventually(running, within=60)
    uid = (await client.get(PODS, "gone", ns))["metadata"]["uid"]
    t0 = time.monotonic()
    await client.delete(PODS, "gone", ns)

    async def removed() -> bool:
        try:
            await client.get(PODS, "gone", ns)
        except StatusError as e:
            return e.code == 404
        return False

    await eventually(removed, within=20)
    assert time.monotonic() - t0 < 3 + 5
    left = await asyncio.to_thread(
        subprocess.run,
        ["docker", "-H", docker.endpoint, "ps", "-aq", "--filter", f"label=io.kubernetes.pod.uid={uid}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert left.stdout.split() == []
