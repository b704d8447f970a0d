"""Docker + CNI pods on the two-node e2e cluster (tests/e2e/conftest.py).

A demo httpd pod gets an IP from its node's podCIDR and answers HTTP; its logs and exec go through
the api-server to the kubelet in the node's namespace; a failing liveness probe restarts a
container; deletion stops a pod within its grace period; and a Deployment spread over both nodes
serves from every pod to the other node and pod to pod across nodes (host-gw routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import subprocess
import time
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client import ApiClient
from kubeha.client.resources import DEPLOYMENTS, EVENTS, NODES, PODS, SERVICES
from kubeha.kubelet.cni import NETWORK_NOT_READY
from kubeha.kubelet.network import RTPROT_KUBEHA
from kubeha.kubelet.node import RUNTIMECLASSES
from tests.support import waiting
from tests.support.cluster import DEMO_IMAGE, Cluster, Node, in_cidr
from tests.support.kubectl import Kubectl

Obj = dict[str, Any]

# this module's patience; waiting.eventually does the polling
eventually = functools.partial(waiting.eventually, within=60.0, every=0.3)


def pod(name: str, node: str, container: Obj, **spec: Any) -> Obj:
    c = {"name": "main", "image": DEMO_IMAGE, "imagePullPolicy": "IfNotPresent", **container}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [c], **spec},
    }


async def status(client: ApiClient, ns: str, name: str) -> Obj:
    return (await client.get(PODS, name, ns)).get("status") or {}


async def running(client: ApiClient, ns: str, name: str, cluster: Cluster) -> Obj:
    async def check() -> Obj | None:
        st = await status(client, ns, name)
        return st if st.get("phase") == "Running" and st.get("podIP") else None

    try:
        return dict(await eventually(check))
    except AssertionError:
        raise AssertionError(f"{name} not running: {await status(client, ns, name)}\n{cluster.logs()}") from None


async def test_httpd_pod_gets_an_ip_and_serves(cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl) -> None:
    node = cluster.nodes[0]
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web-api"},
        "spec": {"selector": {"app": "none"}, "ports": [{"name": "http", "port": 8080}]},
    }
    svc_ip = (await client.create(SERVICES, svc, ns))["spec"]["clusterIP"]
    await client.create(PODS, pod("web", node.name, {"ports": [{"containerPort": 80}]}), ns)
    st = await running(client, ns, "web", cluster)
    ip = st["podIP"]
    assert in_cidr(ip, node.pod_cidr), (ip, node.pod_cidr)
    assert st["hostIP"] == node.ip
    assert st["containerStatuses"][0]["containerID"].startswith("docker://")
    assert "kubeha demo" in await node.wget(f"http://{ip}/")
    # the container's output (httpd -v logs each request) through api-server -> kubelet
    logs = await eventually(lambda: asyncio.to_thread(lambda: kubectl.ok("logs", "web", "-n", ns)), within=10)
    assert "GET /" in logs or "response:200" in logs or node.ip in logs, logs
    # /etc/hosts written for the pod, read with exec
    hosts = kubectl.ok("exec", "web", "-n", ns, "--", "cat", "/etc/hosts")
    assert "web" in hosts and ip in hosts
    # upstream's service variables: the API's own Service always, the namespace's by enableServiceLinks
    env = dict(
        line.split("=", 1) for line in kubectl.ok("exec", "web", "-n", ns, "--", "env").splitlines() if "=" in line
    )
    k8s_ip = (await client.get(SERVICES, "kubernetes", "default"))["spec"]["clusterIP"]
    assert env.get("KUBERNETES_SERVICE_HOST") == k8s_ip and env.get("KUBERNETES_SERVICE_PORT") == "443", env
    assert env.get("WEB_API_SERVICE_HOST") == svc_ip and env.get("WEB_API_SERVICE_PORT_HTTP") == "8080", env


async def test_liveness_failure_restarts(cluster: Cluster, client: ApiClient, ns: str) -> None:
    c = {
        "command": ["sh", "-c", "touch /tmp/ok; sleep 3; rm /tmp/ok; sleep 3600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "periodSeconds": 1, "failureThreshold": 1},
    }
    await client.create(PODS, pod("live", cluster.nodes[1].name, c, terminationGracePeriodSeconds=1), ns)

    async def restarted() -> bool:
        cs = (await status(client, ns, "live")).get("containerStatuses") or [{}]
        return int(cs[0].get("restartCount") or 0) >= 1

    await eventually(restarted)


async def test_delete_stops_within_grace(cluster: Cluster, client: ApiClient, ns: str) -> None:
    assert cluster.docker is not None
    c = {"command": ["sleep", "3600"]}
    await client.create(PODS, pod("gone", cluster.nodes[0].name, c, terminationGracePeriodSeconds=3), ns)
    await running(client, ns, "gone", cluster)
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
        ["docker", "-H", cluster.docker.endpoint, "ps", "-aq", "--filter", f"label=io.kubernetes.pod.uid={uid}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert left.stdout.split() == []


def deployment(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    # at most one more pod on one node than on the other: both nodes get pods
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "labelSelector": {"matchLabels": labels},
                        }
                    ],
                    "containers": [
                        {
                            "name": "httpd",
                            "image": DEMO_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 80}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }


async def test_deployment_spreads_and_pods_answer_across_nodes(
    cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl
) -> None:
    await client.create(DEPLOYMENTS, deployment("web", 4), ns)

    async def all_ready() -> list[Obj] | None:
        pods = (await client.list(PODS, ns, label_selector="app=web")).get("items") or []
        ready = [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and p.get("status", {}).get("podIP")
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in p["status"].get("conditions") or ())
        ]
        return ready if len(ready) == 4 else None

    try:
        pods = await eventually(all_ready, within=90)
    except AssertionError:
        raise AssertionError(f"{kubectl.ok('get', 'pods', '-n', ns, '-o', 'wide')}\n{cluster.logs()}") from None
    by_node: dict[str, list[Obj]] = {}
    for p in pods:
        by_node.setdefault(p["spec"]["nodeName"], []).append(p)
    assert sorted(by_node) == sorted(n.name for n in cluster.nodes), by_node.keys()
    assert all(len(v) == 2 for v in by_node.values()), {k: len(v) for k, v in by_node.items()}
    # each pod's IP comes from its own node's podCIDR
    for node in cluster.nodes:
        for p in by_node[node.name]:
            assert in_cidr(p["status"]["podIP"], node.pod_cidr), (p["status"]["podIP"], node.pod_cidr)
    # every pod answers from the OTHER node's namespace (routed via host-gw)
    for node in cluster.nodes:
        other = next(n for n in cluster.nodes if n.name != node.name)
        for p in by_node[node.name]:
            body = await other.wget(f"http://{p['status']['podIP']}/")
            assert "kubeha demo" in body, (p["metadata"]["name"], node.name, "from", other.name)
    # pod to pod across nodes: a client pod on node 2 fetches a node-1 pod's page
    target = by_node[cluster.nodes[0].name][0]["status"]["podIP"]
    # each try bounded (a plain wget waits forever on a lost connection), a few tries, the outcome
    # in the exit code and every try's output in the log
    script = (
        f"for i in 1 2 3 4 5; do timeout 5 wget -q -O - http://{target}/ && exit 0; "
        "echo try $i failed; sleep 1; done; exit 1"
    )
    fetch = {"command": ["sh", "-c", script]}
    await client.create(PODS, pod("fetch", cluster.nodes[1].name, fetch, restartPolicy="Never"), ns)

    async def finished() -> bool:
        return (await status(client, ns, "fetch")).get("phase") in ("Succeeded", "Failed")

    try:
        await eventually(finished, within=90)
    except AssertionError:
        st = await status(client, ns, "fetch")
        raise AssertionError(f"fetch did not finish: {json.dumps(st)}\n{cluster.logs()}") from None
    st = await status(client, ns, "fetch")
    logs = kubectl.ok("logs", "fetch", "-n", ns)
    assert st["phase"] == "Succeeded", f"{json.dumps(st)}\n{logs}"
    assert "kubeha demo" in logs


async def _node(client: ApiClient, name: str) -> Obj | None:
    try:
        return dict(await client.get(NODES, name))
    except StatusError as e:
        if e.code == 404:
            return None
        raise


def _ready_condition(node: Obj | None) -> Obj:
    conds = ((node or {}).get("status") or {}).get("conditions") or ()
    return next((c for c in conds if c.get("type") == "Ready"), {})


def _routes(node: Node) -> str:
    return node.run(["ip", "route", "show", "proto", str(RTPROT_KUBEHA)]).stdout


async def test_network_not_ready_until_pod_cidr(cluster: Cluster, client: ApiClient, ns: str) -> None:
    """Without a podCIDR a Docker node is NotReady with upstream's message, holds non-hostNetwork
    pods (NetworkNotReady, no traceback) while hostNetwork pods run, and starts them as soon as the
    podCIDR arrives; the other nodes route to its podCIDR until its Node goes away."""
    assert cluster.controller_manager is not None
    cluster.controller_manager.stop()  # no node IPAM: the new node gets no podCIDR meanwhile
    extra: Node | None = None
    try:
        # tainted: the scheduler keeps other tests' pods off it
        extra = cluster.add_node("node-x", ["--register-with-taints=kubeha.test/held=true:NoSchedule"])

        async def not_ready() -> Obj | None:
            cond = _ready_condition(await _node(client, "node-x"))
            return cond if cond.get("status") == "False" else None

        cond = await eventually(not_ready, within=30)
        assert cond["reason"] == "KubeletNotReady"
        assert cond["message"] == NETWORK_NOT_READY
        held = pod("held", "node-x", {"command": ["sleep", "3600"]}, terminationGracePeriodSeconds=1)
        hostnet = pod("hostnet", "node-x", {"command": ["sleep", "3600"]}, hostNetwork=True)
        hostnet["spec"]["terminationGracePeriodSeconds"] = 1
        await client.create(PODS, held, ns)
        await client.create(PODS, hostnet, ns)
        # a host-runtime pod (supervised host process) needs no CNI network either
        with contextlib.suppress(StatusError):  # 409: a kubelet or another test made it already
            await client.create(
                RUNTIMECLASSES,
                {
                    "apiVersion": "node.k8s.io/v1",
                    "kind": "RuntimeClass",
                    "metadata": {"name": "host"},
                    "handler": "host",
                },
            )
        hostrt = pod("hostrt", "node-x", {"command": ["sleep", "3600"]}, runtimeClassName="host")
        hostrt["spec"]["terminationGracePeriodSeconds"] = 1
        await client.create(PODS, hostrt, ns)
        st = await running(client, ns, "hostnet", cluster)
        assert st["podIP"] == extra.ip
        st = await running(client, ns, "hostrt", cluster)
        assert st["podIP"] == extra.ip

        async def held_event() -> bool:
            events = (await client.list(EVENTS, ns)).get("items") or []
            return any(
                e.get("reason") == "NetworkNotReady" and (e.get("involvedObject") or {}).get("name") == "held"
                for e in events
            )

        await eventually(held_event, within=20)
        st = await status(client, ns, "held")
        assert st.get("phase") == "Pending", st
        waiting_reason = ((st.get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting", {}).get("reason")
        assert waiting_reason == "ContainerCreating", st
        assert "Traceback" not in extra.kubelet.log(1000)

        # node IPAM back: the podCIDR arrives, the node turns Ready and the held pod starts at once
        cluster.controller_manager.start()

        async def pod_cidr() -> str:
            return str(((await _node(client, "node-x") or {}).get("spec") or {}).get("podCIDR") or "")

        extra.pod_cidr = await eventually(pod_cidr, within=60)
        t0 = time.monotonic()
        st = await running(client, ns, "held", cluster)
        started_after = time.monotonic() - t0
        print(f"held pod Running {started_after:.2f}s after its node's podCIDR was seen")
        assert in_cidr(st["podIP"], extra.pod_cidr)
        # woken by the Node watch, not by the next periodic sync (--sync-frequency 60s)
        assert started_after < 15, started_after

        async def ready() -> bool:
            return _ready_condition(await _node(client, "node-x")).get("status") == "True"

        await eventually(ready, within=20)
        # the other nodes route to it (host-gw) and its pod answers from there
        await eventually(
            lambda: asyncio.to_thread(lambda: extra is not None and extra.pod_cidr in _routes(cluster.nodes[0]))
        )
        assert f"via {extra.ip}" in _routes(cluster.nodes[0])
        assert "Traceback" not in extra.kubelet.log(1000)
    finally:
        if extra is not None:
            names = ("held", "hostnet", "hostrt")
            for name in names:
                with contextlib.suppress(StatusError):
                    await client.delete(PODS, name, ns)

            async def gone() -> bool:
                left = (await client.list(PODS, ns)).get("items") or []
                return not any(p["metadata"]["name"] in names for p in left)

            with contextlib.suppress(AssertionError):  # remove_node kills what is left anyway
                await eventually(gone, within=20)
            cluster.remove_node(extra)
            with contextlib.suppress(StatusError):
                await client.delete(NODES, "node-x")
        if not cluster.controller_manager.alive():
            cluster.controller_manager.start()
    # its Node gone: the other nodes drop their route to it (watch-driven)
    cidr = extra.pod_cidr if extra is not None else ""
    if cidr:
        await eventually(lambda: asyncio.to_thread(lambda: cidr not in _routes(cluster.nodes[0])), within=20)


async def test_kubelet_restart_repairs_routes_and_leaves_foreign_ones(cluster: Cluster) -> None:
    """The kubelet only touches its own (proto 74) routes: a route it made and someone deleted
    comes back when it starts, a stale one of its own goes, and another protocol's stays."""
    node, other = cluster.nodes[0], cluster.nodes[1]
    assert f"{other.pod_cidr} via {other.ip}" in _routes(node)
    stale = "10.254.254.0/24"  # no node has it
    foreign = "10.254.253.0/24"
    node.kubelet.stop()
    try:
        for argv in (
            ["ip", "route", "del", other.pod_cidr, "proto", str(RTPROT_KUBEHA)],
            ["ip", "route", "add", stale, "via", other.ip, "proto", str(RTPROT_KUBEHA)],
            ["ip", "route", "add", foreign, "via", other.ip, "proto", "static"],
        ):
            res = node.run(argv)
            assert res.returncode == 0, (argv, res.stderr)
        assert other.pod_cidr not in _routes(node)
    finally:
        node.kubelet.start()

    async def repaired() -> bool:
        ours = await asyncio.to_thread(_routes, node)
        return f"{other.pod_cidr} via {other.ip}" in ours and stale not in ours

    await eventually(repaired, within=30)
    assert foreign in node.run(["ip", "route", "show", "proto", "static"]).stdout
    node.run(["ip", "route", "del", foreign, "proto", "static"])


async def test_routes_follow_a_node_address_change(cluster: Cluster, client: ApiClient) -> None:
    """A Node's InternalIP changing moves the other nodes' route to its podCIDR (watch-driven,
    replaced in place), and back."""
    node, other = cluster.nodes[0], cluster.nodes[1]
    moved = str(ipaddress.ip_address(other.ip) + 100)  # same link, nobody there
    addresses = (await client.get(NODES, other.name))["status"]["addresses"]

    def with_ip(ip: str) -> list[Obj]:
        return [{**a, "address": ip} if a.get("type") == "InternalIP" else a for a in addresses]

    async def route_via(gw: str) -> bool:
        return f"{other.pod_cidr} via {gw}" in await asyncio.to_thread(_routes, node)

    await client.patch(NODES, other.name, {"status": {"addresses": with_ip(moved)}}, subresource="status")
    try:
        await eventually(lambda: route_via(moved), within=20)
        assert _routes(node).count(other.pod_cidr) == 1  # replaced, not added beside the old one
    finally:
        await client.patch(NODES, other.name, {"status": {"addresses": with_ip(other.ip)}}, subresource="status")
    await eventually(lambda: route_via(other.ip), within=20)
