"""Service ClusterIP / NodePort allocation across two api-servers sharing one etcd."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubeha.apiserver.config import ServerConfig
from tests.integration.test_apiserver_support import Api, start_api, stop_api
from tests.support.etcd import EtcdServer

# a tiny range so that collisions are likely if claims were not exclusive
RANGE = "10.99.0.0/28"  # 16 addresses: .2 .. .14 allocatable at random
PORTS = "30100-30119"


@pytest.fixture(scope="module")
async def two_apis() -> AsyncIterator[tuple[Api, Api]]:
    # a private etcd: the claim keys of this module must not meet other tests' services
    with EtcdServer() as etcd:
        cfg = ServerConfig(service_cluster_ip_range=RANGE, service_node_port_range=PORTS)
        a, kva = await start_api(etcd.endpoint, cfg)
        b, kvb = await start_api(etcd.endpoint, cfg)
        try:
            yield a, b
        finally:
            await stop_api(a, kva)
            await stop_api(b, kvb)


def svc(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], **spec},
    }


async def test_allocation_is_exclusive_across_servers(two_apis: tuple[Api, Api]) -> None:
    a, b = two_apis
    ns = await a.namespace()
    path = f"/api/v1/namespaces/{ns}/services"

    async def create(api: Api, i: int) -> dict[str, Any]:
        code, obj = await api.post(path, svc(f"s{i}", type="NodePort"))
        assert code == 201, obj
        return obj

    created = await asyncio.gather(*(create(a if i % 2 else b, i) for i in range(10)))
    ips = [o["spec"]["clusterIP"] for o in created]
    ports = [o["spec"]["ports"][0]["nodePort"] for o in created]
    assert len(set(ips)) == 10 and len(set(ports)) == 10
    net = ipaddress.ip_network(RANGE)
    for o in created:
        ip = ipaddress.ip_address(o["spec"]["clusterIP"])
        assert ip in net and ip not in (net.network_address, net.network_address + 1, net.broadcast_address)
        assert o["spec"]["clusterIPs"] == [o["spec"]["clusterIP"]]
        assert 30100 <= o["spec"]["ports"][0]["nodePort"] <= 30119

    # an explicitly requested, taken IP / port is refused with upstream's message
    taken_ip = ips[0]
    code, st = await a.post(path, svc("dup-ip", clusterIP=taken_ip))
    assert code == 422
    assert (
        f'spec.clusterIPs: Invalid value: ["{taken_ip}"]: failed to allocate IP {taken_ip}: '
        "provided IP is already allocated" in st["message"]
    )
    body = svc("dup-port", type="NodePort")
    body["spec"]["ports"][0]["nodePort"] = ports[0]
    code, st = await b.post(path, body)
    assert (
        code == 422
        and f"spec.ports[0].nodePort: Invalid value: {ports[0]}: provided port is already allocated" in st["message"]
    )

    code, st = await a.post(path, svc("out", clusterIP="10.1.2.3"))
    assert code == 422 and "not in the valid range" in st["message"]

    # deleting releases both: the same IP and port can be requested again
    assert (await b.delete(f"{path}/s0"))[0] == 200
    body = svc("again", type="NodePort", clusterIP=created[0]["spec"]["clusterIP"])
    body["spec"]["ports"][0]["nodePort"] = created[0]["spec"]["ports"][0]["nodePort"]
    code, obj = await a.post(path, body)
    assert code == 201, obj

    # NodePort -> ClusterIP releases the node port
    s1 = created[1]
    s1["spec"]["type"] = "ClusterIP"
    code, obj = await a.put(f"{path}/s1", s1)
    assert code == 200, obj
    assert "nodePort" not in obj["spec"]["ports"][0] and obj["spec"]["clusterIP"] == ips[1]
    body = svc("reuse-port", type="NodePort")
    body["spec"]["ports"][0]["nodePort"] = ports[1]
    assert (await b.post(path, body))[0] == 201

    # headless and ExternalName services allocate nothing
    code, obj = await a.post(path, svc("headless", clusterIP="None"))
    assert code == 201 and obj["spec"]["clusterIPs"] == ["None"]
    code, obj = await a.post(
        path, {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}
    )
    assert code == 201 and "clusterIP" not in obj["spec"]


async def test_kubernetes_service_bootstrap(two_apis: tuple[Api, Api]) -> None:
    from kubeha.apiserver import startup
    from kubeha.apiserver.app import REST

    a, b = two_apis
    for api, addr in ((a, "10.0.0.1"), (b, "10.0.0.2")):
        rest = api.app[REST]
        rest.ctx.config.advertise_address = addr
        await startup.ensure_system_objects(rest)
        await startup.ensure_system_objects(rest)  # idempotent
    code, s = await a.get("/api/v1/namespaces/default/services/kubernetes")
    assert code == 200 and s["spec"]["clusterIP"] == "10.99.0.1"
    code, ep = await a.get("/api/v1/namespaces/default/endpoints/kubernetes")
    assert [x["ip"] for x in ep["subsets"][0]["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert (await b.get(f"/api/v1/namespaces/{ns}"))[0] == 200
    await startup.set_endpoint_address(b.app[REST], "10.0.0.2", 6443, present=False)
    code, ep = await a.get("/api/v1/namespaces/default/endpoints/kubernetes")
    assert [x["ip"] for x in ep["subsets"][0]["addresses"]] == ["10.0.0.1"]
