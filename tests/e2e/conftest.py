"""End-to-end fixtures: one real multi-node cluster for the whole session (tests/support/cluster.py).

Fixtures (names are stable; other e2e modules build on them):

- ``cluster`` (session): a :class:`tests.support.cluster.Cluster` with two nodes, each a network
  namespace running a real ``kubeha kubelet`` (Docker runtime, CNI, host-gw routes), plus etcd,
  one api-server, a controller-manager and a scheduler. Useful members:
  ``cluster.kubeconfig`` (admin kubeconfig path, server ``https://<host ip>:<port>``),
  ``cluster.server``, ``cluster.host_ip``, ``cluster.cluster_cidr``, ``cluster.docker`` (the
  private dockerd: ``.endpoint``), ``cluster.logs()`` (every component's log tail) and
  ``cluster.nodes[i]`` with ``.name``, ``.ip`` (InternalIP), ``.netns``, ``.pod_cidr`` (from the
  Node), ``.kubelet`` (``start()``, ``stop()`` = SIGTERM, ``kill()`` = SIGKILL, ``alive()``,
  ``log()``) and ``.run(argv)`` (run a command in the node's namespace, e.g.
  ``node.run(["busybox", "wget", "-qO-", url])``). A test that stops a kubelet starts it again.
  The demo image ``kubeha/demo:latest`` (busybox httpd on port 80 serving "kubeha demo") is built.
- ``client`` (function): an async :class:`kubeha.client.ApiClient` on the admin kubeconfig.
- ``ns`` (function): a fresh namespace whose ``default`` ServiceAccount exists (the
  controller-manager makes it); deleted after the test.
- ``kubectl`` (function): :class:`tests.support.kubectl.Kubectl` 1.32 on the admin kubeconfig.

These tests need root, dockerd, the CNI plugins (``/usr/lib/cni``), busybox-static and nsenter;
``make test`` installs them. A failed session's component logs are kept in /tmp/kubeha-e2e-logs/.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import NAMESPACES, SERVICEACCOUNTS
from tests.support import waiting
from tests.support.cluster import Cluster
from tests.support.docker import docker_available
from tests.support.kubectl import Kubectl, kubectl_path


def missing_prerequisites() -> str:
    if os.geteuid() != 0:
        return "root"
    if not docker_available():
        return "dockerd (docker.io)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "CNI plugins (containernetworking-plugins)"
    if shutil.which("busybox") is None:
        return "busybox-static"
    if shutil.which("nsenter") is None or shutil.which("ip") is None:
        return "nsenter and ip (util-linux, iproute2)"
    return ""


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    missing = missing_prerequisites()
    if missing:
        pytest.skip(f"e2e tests need {missing} (make test installs it)")
    c = Cluster().start()
    failed_before = request.session.testsfailed
    try:
        yield c
    finally:
        c.teardown(keep_logs=request.session.testsfailed > failed_before)


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(str(cluster.kubeconfig))) as c:
        yield c


@pytest.fixture
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    async def default_account() -> bool:
        try:
            await client.get(SERVICEACCOUNTS, "default", name)
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return True

    await waiting.eventually(default_account, within=30, every=0.1)
    yield name
    try:
        await client.delete(NAMESPACES, name)
    except StatusError as e:
        if e.code != 404:
            raise


@pytest.fixture
def kubectl(cluster: Cluster, tmp_path: Path) -> Kubectl:
    binary = kubectl_path("1.32")
    if binary is None:
        pytest.skip("kubectl 1.32 is not installed (make deps fetches it)")
    return Kubectl(binary, cluster.kubeconfig, tmp_path / "kubectl-home", "1.32")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """A failing e2e test carries the tail of every component's log."""
    report = yield
    if isinstance(report, pytest.TestReport) and report.failed:
        c = getattr(item, "funcargs", {}).get("cluster")
        if isinstance(c, Cluster):
            report.sections.append(("cluster logs (tail)", c.logs(80)))
    return report
