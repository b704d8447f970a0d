"""Lifecycle controllers against real etcd + api-server: namespace, garbage collector,
serviceaccount, endpoints and EndpointSlices.

The controllers run in this test's process (each registered start function as a task on one
shared informer factory), the way the controller-manager runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kubeha.api.errors import StatusError
from kubeha.cli.procs import stop_process
from kubeha.client import ApiClient, load_kubeconfig
from kubeha.client.resources import (
    CONFIGMAPS,
    ENDPOINTS,
    ENDPOINTSLICES,
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
)
from kubeha.controllers import endpoints, endpointslice, garbagecollector, namespace, serviceaccount
from kubeha.controllers.context import ControllerContext
from kubeha.machinery.informer import SharedInformerFactory
from tests.support import waiting
from tests.support.apiserver import ApiServer
from tests.support.kubectl import Kubectl, kubectl_path

Obj = dict[str, Any]

STARTS = [
    namespace.start,
    garbagecollector.start,
    serviceaccount.start,
    serviceaccount.start_root_ca_publisher,
    endpoints.start,
    endpointslice.start,
]


def client_for(server: ApiServer) -> ApiClient:
    return ApiClient(load_kubeconfig(str(server.kubeconfig)), user_agent="kubeha-lifecycle-test", timeout=10)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(apiservers: list[ApiServer]) -> AsyncIterator[ApiClient]:
    """A client to api-server A, with the lifecycle controllers running behind it."""
    ctl_client = client_for(apiservers[0])
    ctx = ControllerContext(ctl_client, SharedInformerFactory(ctl_client))
    tasks = [asyncio.ensure_future(start(ctx)) for start in STARTS]
    async with client_for(apiservers[0]) as c:
        try:
            yield c
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ctx.informers.stop()
            await ctl_client.close()


# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=20.0, every=0.1, retry_on=(AssertionError, StatusError))


async def gone(c: ApiClient, res: Any, name: str, ns: str | None = None) -> bool:
    try:
        await c.get(res, name, ns)
    except StatusError as e:
        if e.code == 404:
            return True
        raise
    return False


@pytest_asyncio.fixture(loop_scope="session")
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"lc-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(StatusError):
        await client.delete(NAMESPACES, name)


def cm(name: str, owners: list[Obj] | None = None) -> Obj:
    md: Obj = {"name": name}
    if owners:
        md["ownerReferences"] = owners
    return {"metadata": md, "data": {"k": name}}


def owner_ref(obj: Obj, block: bool = False) -> Obj:
    ref: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


pytestmark = pytest.mark.asyncio(loop_scope="session")


MY_CONTROLLERS = "namespace,garbagecollector,serviceaccount,root-ca-cert-publisher,endpoint,endpointslice,podgc"
FAST_LE = ["--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"]


def start_manager(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kubeha", "controller-manager", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# First in the file: it runs before the in-process controllers of the ``client`` fixture start,
# so what it sees is the work of the real `kubeha controller-manager` process.
async def test_through_controller_manager_process(apiservers: list[ApiServer], tmp_path: Path) -> None:
    log_path = tmp_path / "kcm.log"
    args = [
        f"--kubeconfig={apiservers[1].kubeconfig}",
        f"--controllers={MY_CONTROLLERS}",
        f"--leader-elect-resource-name=lifecycle-{uuid.uuid4().hex[:6]}",
        *FAST_LE,
    ]
    proc = start_manager(args, log_path)
    name = f"lc-proc-{uuid.uuid4().hex[:6]}"
    try:
        async with client_for(apiservers[0]) as c:
            await c.create(NAMESPACES, {"metadata": {"name": name}})
            await eventually(lambda: c.get(SERVICEACCOUNTS, "default", name), within=30)
            owner = await c.create(CONFIGMAPS, cm("owner"), name)
            await c.create(CONFIGMAPS, cm("dep", [owner_ref(owner)]), name)
            await c.delete(CONFIGMAPS, "owner", name)
            await eventually(lambda: gone(c, CONFIGMAPS, "dep", name))
            await c.create(CONFIGMAPS, cm("left"), name)
            await c.delete(NAMESPACES, name)
            await eventually(lambda: gone(c, NAMESPACES, name))
    except AssertionError as e:
        raise AssertionError(
            f"{e}\n--- controller-manager log ---\n{log_path.read_text(errors='replace')[-4000:]}"
        ) from e
    finally:
        await asyncio.to_thread(stop_process, proc, 10)


async def test_default_serviceaccount_and_root_ca(client: ApiClient, ns: str) -> None:
    sa = await eventually(lambda: client.get(SERVICEACCOUNTS, "default", ns))
    assert sa["metadata"]["name"] == "default"
    root = await eventually(lambda: client.get(CONFIGMAPS, "kube-root-ca.crt", ns))
    assert "BEGIN CERTIFICATE" in root["data"]["ca.crt"]
    await client.delete(SERVICEACCOUNTS, "default", ns)

    async def recreated() -> bool:
        new = await client.get(SERVICEACCOUNTS, "default", ns)
        return bool(new["metadata"]["uid"] != sa["metadata"]["uid"])

    await eventually(recreated)


async def test_background_cascade(client: ApiClient, ns: str) -> None:
    owner = await client.create(CONFIGMAPS, cm("owner"), ns)
    for i in range(3):
        await client.create(CONFIGMAPS, cm(f"dep-{i}", [owner_ref(owner)]), ns)
    # a dependent with a second, living owner only loses the reference
    other = await client.create(CONFIGMAPS, cm("other"), ns)
    await client.create(CONFIGMAPS, cm("shared", [owner_ref(owner), owner_ref(other)]), ns)
    await client.delete(CONFIGMAPS, "owner", ns, propagation_policy="Background")

    async def cleaned() -> bool:
        for i in range(3):
            assert await gone(client, CONFIGMAPS, f"dep-{i}", ns)
        shared = await client.get(CONFIGMAPS, "shared", ns)
        assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["other"]
        return True

    await eventually(cleaned)


async def test_dangling_reference_to_absent_owner(client: ApiClient, ns: str) -> None:
    fake = {"apiVersion": "v1", "kind": "ConfigMap", "name": "never", "uid": str(uuid.uuid4())}
    await client.create(CONFIGMAPS, cm("orphaned", [fake]), ns)
    await eventually(lambda: gone(client, CONFIGMAPS, "orphaned", ns))


async def test_foreground_cascade(client: ApiClient, ns: str) -> None:
    owner = await client.create(CONFIGMAPS, cm("fg-owner"), ns)
    mid = await client.create(CONFIGMAPS, cm("fg-mid", [owner_ref(owner, block=True)]), ns)
    await client.create(CONFIGMAPS, cm("fg-leaf", [owner_ref(mid, block=True)]), ns)
    await client.delete(CONFIGMAPS, "fg-owner", ns, propagation_policy="Foreground")
    # the owner stays (with the finalizer) while dependents exist
    held = await client.get(CONFIGMAPS, "fg-owner", ns)
    assert "foregroundDeletion" in held["metadata"]["finalizers"]
    assert held["metadata"].get("deletionTimestamp")

    async def all_gone() -> bool:
        for name in ("fg-leaf", "fg-mid", "fg-owner"):
            assert await gone(client, CONFIGMAPS, name, ns), name
        return True

    await eventually(all_gone)


async def test_orphan(client: ApiClient, ns: str) -> None:
    owner = await client.create(CONFIGMAPS, cm("o-owner"), ns)
    await client.create(CONFIGMAPS, cm("o-dep", [owner_ref(owner)]), ns)
    await client.delete(CONFIGMAPS, "o-owner", ns, propagation_policy="Orphan")
    await eventually(lambda: gone(client, CONFIGMAPS, "o-owner", ns))
    dep = await client.get(CONFIGMAPS, "o-dep", ns)
    assert not dep["metadata"].get("ownerReferences")
    await asyncio.sleep(0.5)  # and it is not collected afterwards
    assert not await gone(client, CONFIGMAPS, "o-dep", ns)


def pod(name: str, port_name: str = "http") -> Obj:
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "c", "image": "nginx", "ports": [{"name": port_name, "containerPort": 8080}]}]
        },
    }


async def set_pod_status(c: ApiClient, ns: str, name: str, ip: str, ready: bool) -> None:
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    await c.patch(PODS, name, {"status": status}, ns, subresource="status")


async def test_endpoints_follow_readiness(client: ApiClient, ns: str) -> None:
    svc = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    await client.create(SERVICES, svc, ns)
    await client.create(PODS, pod("web-1"), ns)
    await client.create(PODS, pod("web-2"), ns)
    await set_pod_status(client, ns, "web-1", "10.244.1.10", ready=True)
    await set_pod_status(client, ns, "web-2", "10.244.1.11", ready=False)

    async def ep_state() -> tuple[list[str], list[str]]:
        ep = await client.get(ENDPOINTS, "web", ns)
        subsets = ep.get("subsets") or []
        assert len(subsets) == 1
        ready = [a["ip"] for a in subsets[0].get("addresses") or []]
        unready = [a["ip"] for a in subsets[0].get("notReadyAddresses") or []]
        assert subsets[0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        return ready, unready

    async def expect(ready: list[str], unready: list[str]) -> None:
        async def check() -> bool:
            assert await ep_state() == (ready, unready)
            return True

        await eventually(check)

    await expect(["10.244.1.10"], ["10.244.1.11"])
    await set_pod_status(client, ns, "web-2", "10.244.1.11", ready=True)
    await expect(["10.244.1.10", "10.244.1.11"], [])

    async def slices_ready() -> bool:
        lst = await client.list(ENDPOINTSLICES, ns, label_selector="kubernetes.io/service-name=web")
        items = lst["items"]
        assert len(items) == 1
        s = items[0]
        assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
        conds = sorted((e["addresses"][0], e["conditions"]["ready"]) for e in s["endpoints"])
        assert conds == [("10.244.1.10", True), ("10.244.1.11", True)]
        return True

    await eventually(slices_ready)
    rv = (await client.get(ENDPOINTS, "web", ns))["metadata"]["resourceVersion"]
    await set_pod_status(client, ns, "web-1", "10.244.1.10", ready=False)
    await expect(["10.244.1.11"], ["10.244.1.10"])
    assert (await client.get(ENDPOINTS, "web", ns))["metadata"]["resourceVersion"] != rv

    # the service goes: its Endpoints and slices go too
    await client.delete(SERVICES, "web", ns)

    async def cleaned() -> bool:
        assert await gone(client, ENDPOINTS, "web", ns)
        lst = await client.list(ENDPOINTSLICES, ns, label_selector="kubernetes.io/service-name=web")
        assert lst["items"] == []
        return True

    await eventually(cleaned)


async def test_service_without_selector_is_left_alone(client: ApiClient, ns: str) -> None:
    await client.create(SERVICES, {"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}}, ns)
    manual = {"metadata": {"name": "ext"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}
    await client.create(ENDPOINTS, manual, ns)
    await asyncio.sleep(1.0)
    ep = await client.get(ENDPOINTS, "ext", ns)
    assert ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]


async def test_namespace_deletion_with_kubectl(client: ApiClient, apiservers: list[ApiServer], tmp_path: Path) -> None:
    binary = kubectl_path("1.32")
    if binary is None:
        pytest.skip("kubectl 1.32 not found")
    name = f"lc-del-{uuid.uuid4().hex[:6]}"
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    for i in range(3):
        await client.create(CONFIGMAPS, cm(f"c{i}"), name)
    await client.create(SECRETS, {"metadata": {"name": "s"}, "stringData": {"a": "b"}}, name)
    await client.create(SERVICES, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}, name)
    await client.create(PODS, pod("p"), name)
    await eventually(lambda: client.get(SERVICEACCOUNTS, "default", name))
    kubectl = Kubectl(binary, apiservers[0].kubeconfig, tmp_path / "home")
    res = await asyncio.to_thread(kubectl.run, "delete", "namespace", name, "--timeout=60s")
    assert res.rc == 0, res.stderr
    assert await gone(client, NAMESPACES, name)
    assert (await client.list(CONFIGMAPS, name))["items"] == []
