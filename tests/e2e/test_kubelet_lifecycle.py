"""The kubelet's lifecycle on real Docker + CNI, driven as a user would (issue 5, "Done when").

On the two-node e2e cluster (tests/e2e/conftest.py): ``kubectl logs`` (follow, tail, timestamps,
container choice, previous instance), ``kubectl port-forward``, readiness gating a Service's
endpoints, an httpGet liveness probe restarting a container, graceful deletion with a preStop hook
and a SIGTERM-ignoring process, a SIGKILLed kubelet that comes back without touching its running
pods (and cleans up two deleted meanwhile, gracefully and forcibly), and a hostNetwork pod on its
node's IP.

One scenario is a strict xfail with the cause next to it: a hostNetwork pod answering on its
node's IP (the shared dockerd's "host" namespace is not the node's in this cluster).

Each test works in its own namespace (``ns``, deleted after) and removes whatever else it makes
(host directories, kubectl processes) by name or pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

import pytest

from kubeha.api.errors import StatusError
from kubeha.cli.procs import free_port
from kubeha.client import ApiClient
from kubeha.client.resources import ENDPOINTS, ENDPOINTSLICES, EVENTS, PODS, SERVICES
from tests.support import waiting
from tests.support.cluster import DEMO_IMAGE, Cluster
from tests.support.kubectl import Kubectl

Obj = dict[str, Any]

# the machine is shared and loaded: generous, bounded patience
eventually = functools.partial(waiting.eventually, within=60.0, every=0.3)

POD_UID_LABEL = "io.kubernetes.pod.uid"


def container(name: str = "main", **fields: Any) -> Obj:
    return {"name": name, "image": DEMO_IMAGE, "imagePullPolicy": "IfNotPresent", **fields}


def pod(name: str, node: str, *containers: Obj, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": list(containers), **spec},
    }


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


async def status(client: ApiClient, ns: str, name: str) -> Obj:
    return (await client.get(PODS, name, ns)).get("status") or {}


def condition(st: Obj, kind: str) -> str:
    return next((str(c.get("status")) for c in st.get("conditions") or () if c.get("type") == kind), "")


async def running(client: ApiClient, ns: str, name: str, cluster: Cluster, ready: bool = False) -> Obj:
    """The pod's status once it is Running with an IP (and Ready, if asked)."""

    async def check() -> Obj | None:
        st = await status(client, ns, name)
        if st.get("phase") != "Running" or not st.get("podIP"):
            return None
        return st if not ready or condition(st, "Ready") == "True" else None

    try:
        return dict(await eventually(check))
    except AssertionError:
        st = await status(client, ns, name)
        raise AssertionError(f"{name} not running: {json.dumps(st)}\n{cluster.logs()}") from None


async def gone(client: ApiClient, ns: str, name: str, within: float = 60.0) -> None:
    async def check() -> bool:
        try:
            await client.get(PODS, name, ns)
        except StatusError as e:
            return e.code == 404
        return False

    await eventually(check, within=within)


def docker(cluster: Cluster, *args: str) -> str:
    assert cluster.docker is not None
    res = subprocess.run(
        ["docker", "-H", cluster.docker.endpoint, *args], capture_output=True, text=True, check=False, timeout=30
    )
    assert res.returncode == 0, (args, res.stderr)
    return res.stdout


def pod_containers(cluster: Cluster, uid: str) -> list[str]:
    """Every Docker container (sandbox included, running or not) of the pod with ``uid``."""
    return docker(cluster, "ps", "-aq", "--no-trunc", "--filter", f"label={POD_UID_LABEL}={uid}").split()


def started_at(cluster: Cluster, container_id: str) -> str:
    return docker(cluster, "inspect", "-f", "{{.State.StartedAt}}", container_id.removeprefix("docker://")).strip()


def running_in_docker(cluster: Cluster, container_id: str) -> bool | None:
    """Whether Docker runs the container (None: Docker has no such container)."""
    assert cluster.docker is not None
    name = container_id.removeprefix("docker://")
    res = subprocess.run(
        ["docker", "-H", cluster.docker.endpoint, "inspect", "-f", "{{.State.Running}}", name],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if res.returncode != 0:
        assert "No such" in res.stderr, res.stderr
        return None
    return res.stdout.strip() == "true"


def container_status(st: Obj, name: str = "main") -> Obj:
    return next(c for c in st.get("containerStatuses") or () if c.get("name") == name)


# -- 1. kubectl logs ---------------------------------------------------------------------------


async def test_logs_follow_tail_timestamps_and_container(
    cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl
) -> None:
    node = cluster.nodes[0].name
    lines = 40  # one each 0.2 s: about 8 s of output
    ticker = container(command=sh(f"for i in $(seq 1 {lines}); do echo line $i; sleep 0.2; done"))
    await client.create(PODS, pod("ticker", node, ticker, restartPolicy="Never"), ns)
    await running(client, ns, "ticker", cluster)

    # -f streams while the container runs and ends by itself when it exits
    t0 = time.monotonic()
    follow = kubectl.popen("logs", "-f", "ticker", "-n", ns)
    arrivals: list[tuple[float, str]] = []
    try:
        assert follow.stdout is not None
        for raw in await asyncio.to_thread(lambda: list(_timed_lines(follow.stdout))):
            arrivals.append(raw)
        rc = await asyncio.to_thread(follow.wait, 30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(10)
    ended = time.monotonic() - t0
    got = [text for _, text in arrivals]
    assert got == [f"line {i}" for i in range(1, lines + 1)], (got, follow.stderr and follow.stderr.read())
    assert rc == 0
    # not one burst at the end: the lines arrived spread over the container's run
    spread = arrivals[-1][0] - arrivals[0][0]
    assert spread > 3.0, f"lines arrived within {spread:.2f}s"
    # and -f returned once the container had exited (not at a timeout of its own)
    assert ended < 30, ended
    print(f"logs -f: lines over {spread:.2f}s, exit {ended - (arrivals[-1][0] - t0):.2f}s after the last line")
    assert ended - (arrivals[-1][0] - t0) < 5, ended

    # the container has exited (-f ended): its whole output stays readable
    tail = await asyncio.to_thread(kubectl.ok, "logs", "ticker", "-n", ns, "--tail=3")
    assert tail.splitlines() == [f"line {i}" for i in range(lines - 2, lines + 1)], tail
    stamped = (await asyncio.to_thread(kubectl.ok, "logs", "ticker", "-n", ns, "--timestamps", "--tail=2")).splitlines()
    assert len(stamped) == 2, stamped
    for line, n in zip(stamped, (lines - 1, lines), strict=True):
        # RFC 3339 with nanoseconds, a space, then the line
        assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line {n}", line), line

    # -c picks one container of a two-container pod
    two = pod(
        "two",
        node,
        container("first", command=sh("echo from-first; exec sleep 3600")),
        container("second", command=sh("echo from-second; exec sleep 3600")),
    )
    await client.create(PODS, two, ns)
    await running(client, ns, "two", cluster)

    async def logs_of(c: str) -> str:
        return await asyncio.to_thread(kubectl.ok, "logs", "two", "-n", ns, "-c", c)

    assert await eventually(lambda: logs_of("second"), within=20) == "from-second\n"
    assert await logs_of("first") == "from-first\n"


def _timed_lines(stream: Any) -> Any:
    for line in iter(stream.readline, ""):
        yield time.monotonic(), line.rstrip("\n")


async def test_logs_previous_after_exit_restart(cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl) -> None:
    node = cluster.nodes[0].name
    # --previous: the instance before the restart (exit 3 under restartPolicy Always); an
    # emptyDir outlives the container, so the second instance knows it is the second
    script = (
        "if [ -f /data/once ]; then echo second-run; exec sleep 3600; fi; "
        "touch /data/once; echo first-run; sleep 2; exit 3"
    )
    again = pod(
        "again",
        node,
        container(command=sh(script), volumeMounts=[{"name": "data", "mountPath": "/data"}]),
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    await client.create(PODS, again, ns)

    async def restarted_once() -> Obj | None:
        st = await status(client, ns, "again")
        cs = (st.get("containerStatuses") or [{}])[0]
        return cs if cs.get("restartCount") == 1 and "running" in (cs.get("state") or {}) else None

    cs = await eventually(restarted_once, within=40)
    assert cs["lastState"]["terminated"]["exitCode"] == 3, cs
    previous = await asyncio.to_thread(kubectl.ok, "logs", "again", "-n", ns, "--previous")
    assert previous == "first-run\n", previous
    assert await asyncio.to_thread(kubectl.ok, "logs", "again", "-n", ns) == "second-run\n"


# -- 2. kubectl port-forward -------------------------------------------------------------------


async def test_port_forward_to_httpd(cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl) -> None:
    await client.create(PODS, pod("web", cluster.nodes[1].name, container(ports=[{"containerPort": 80}])), ns)
    await running(client, ns, "web", cluster)
    local = free_port("127.0.0.1")
    pf = kubectl.popen("port-forward", "pod/web", f"{local}:80", "-n", ns)
    try:
        assert pf.stdout is not None
        first = await asyncio.to_thread(pf.stdout.readline)
        assert f"Forwarding from 127.0.0.1:{local} -> 80" in first, (first, pf.stderr and pf.stderr.read())

        def get() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=20) as resp:
                assert resp.status == 200
                return str(resp.read().decode())

        # two requests: each is its own stream over the one forwarding connection
        for _ in range(2):
            body = await asyncio.to_thread(get)
            assert "kubeha demo" in body, body
        assert pf.poll() is None, pf.stderr and pf.stderr.read()
    finally:
        pf.terminate()
        try:
            pf.wait(10)
        except subprocess.TimeoutExpired:
            pf.kill()
            pf.wait(10)


# -- 3. readiness ------------------------------------------------------------------------------


def _ready_ips(endpoints: Obj) -> tuple[set[str], set[str]]:
    ready: set[str] = set()
    unready: set[str] = set()
    for s in endpoints.get("subsets") or ():
        ready |= {a["ip"] for a in s.get("addresses") or ()}
        unready |= {a["ip"] for a in s.get("notReadyAddresses") or ()}
    return ready, unready


async def _slice_endpoints(client: ApiClient, ns: str, service: str) -> dict[str, bool]:
    """Address -> ready, over the Service's EndpointSlices."""
    slices = (await client.list(ENDPOINTSLICES, ns, label_selector=f"kubernetes.io/service-name={service}")).get(
        "items"
    ) or []
    out: dict[str, bool] = {}
    for s in slices:
        for ep in s.get("endpoints") or ():
            for addr in ep.get("addresses") or ():
                out[addr] = bool((ep.get("conditions") or {}).get("ready"))
    return out


async def test_readiness_probe_gates_ready_and_endpoints(
    cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl
) -> None:
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}
    c = container(ports=[{"containerPort": 80}], readinessProbe=probe)
    await client.create(PODS, pod("gated", cluster.nodes[0].name, c, labels={"app": "gated"}), ns)
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gated"},
        "spec": {"selector": {"app": "gated"}, "ports": [{"port": 80, "targetPort": 80}]},
    }
    await client.create(SERVICES, svc, ns)
    st = await running(client, ns, "gated", cluster)
    ip = st["podIP"]

    # the endpoint controllers have seen the pod: its address is there, but only as not ready
    async def listed_unready() -> bool:
        try:
            ready, unready = _ready_ips(await client.get(ENDPOINTS, "gated", ns))
        except StatusError:
            return False
        sliced = await _slice_endpoints(client, ns, "gated")
        return ip in unready and ip not in ready and sliced.get(ip) is False

    await eventually(listed_unready)
    # several probe periods have passed (the pod has been Running meanwhile): still not ready
    await asyncio.sleep(3)
    st = await status(client, ns, "gated")
    assert st["phase"] == "Running", st
    assert condition(st, "Ready") == "False" and condition(st, "ContainersReady") == "False", st["conditions"]
    cs = container_status(st)
    assert cs["ready"] is False and "running" in cs["state"], cs
    ready, _ = _ready_ips(await client.get(ENDPOINTS, "gated", ns))
    assert ip not in ready

    await asyncio.to_thread(kubectl.ok, "exec", "gated", "-n", ns, "--", "touch", "/tmp/ready")
    st = await running(client, ns, "gated", cluster, ready=True)
    assert condition(st, "ContainersReady") == "True" and container_status(st)["ready"] is True, st

    async def listed_ready() -> bool:
        ready, unready = _ready_ips(await client.get(ENDPOINTS, "gated", ns))
        sliced = await _slice_endpoints(client, ns, "gated")
        return ip in ready and ip not in unready and sliced.get(ip) is True

    await eventually(listed_ready)
    # the container was never restarted on the way
    assert container_status(st)["restartCount"] == 0


# -- 4. httpGet liveness -----------------------------------------------------------------------


async def test_http_liveness_failure_restarts_container(
    cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl
) -> None:
    # httpd serves /www/healthz, which each new instance writes before it starts serving; the
    # emptyDir counts instances, so each one's log names it
    script = (
        "n=$(($(cat /data/n 2>/dev/null || echo 0) + 1)); echo $n > /data/n; echo instance $n; "
        "echo ok > /www/healthz; exec httpd -f -p 80 -h /www"
    )
    c = container(
        command=sh(script),
        livenessProbe={"httpGet": {"path": "/healthz", "port": 80}, "periodSeconds": 1, "failureThreshold": 2},
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
    )
    await client.create(PODS, pod("live", cluster.nodes[1].name, c, volumes=[{"name": "data", "emptyDir": {}}]), ns)
    st = await running(client, ns, "live", cluster)
    first = container_status(st)
    assert first["restartCount"] == 0
    # healthy for a while: the probe passes and nothing restarts
    await asyncio.sleep(3)
    assert container_status(await status(client, ns, "live"))["restartCount"] == 0

    await asyncio.to_thread(kubectl.ok, "exec", "live", "-n", ns, "--", "rm", "/www/healthz")

    async def restarted() -> Obj | None:
        cs = container_status(await status(client, ns, "live"))
        return cs if cs.get("restartCount", 0) >= 1 and "running" in (cs.get("state") or {}) else None

    cs = await eventually(restarted)
    assert cs["restartCount"] == 1, cs
    terminated = cs["lastState"]["terminated"]
    assert terminated["containerID"] == first["containerID"], (terminated, first)
    # httpd ends on SIGTERM (143), or SIGKILL after the 1 s grace (137)
    assert terminated.get("finishedAt") and terminated.get("exitCode") in (137, 143), terminated
    assert cs["containerID"] != first["containerID"]

    # the kill says why, as upstream's event
    async def killing() -> list[Obj]:
        events = (await client.list(EVENTS, ns)).get("items") or []
        return [
            e for e in events if e.get("reason") == "Killing" and (e.get("involvedObject") or {}).get("name") == "live"
        ]

    assert "failed liveness probe" in (await eventually(killing, within=20))[0].get("message", "")
    # kubectl logs --previous reads the killed instance, plain logs the new one
    previous = await asyncio.to_thread(kubectl.ok, "logs", "live", "-n", ns, "--previous")
    assert previous.splitlines()[:1] == ["instance 1"], previous
    current = await asyncio.to_thread(kubectl.ok, "logs", "live", "-n", ns)
    assert current.splitlines()[:1] == ["instance 2"], current
    # the new instance is healthy again: no further restarts
    await asyncio.sleep(3)
    assert container_status(await status(client, ns, "live"))["restartCount"] == 1


# -- 5. graceful deletion ----------------------------------------------------------------------


async def test_graceful_delete_runs_prestop_and_waits_for_grace(
    cluster: Cluster, client: ApiClient, ns: str, kubectl: Kubectl
) -> None:
    host_dir = tempfile.mkdtemp(prefix="kubeha-prestop-")
    try:
        grace = 5
        c = container(
            # SIGTERM ignored (inherited by sleep): only the SIGKILL at the end of the grace ends it
            command=sh("trap '' TERM; while true; do sleep 1; done"),
            lifecycle={"preStop": {"exec": {"command": sh("date +%s > /marker/prestop")}}},
            volumeMounts=[{"name": "marker", "mountPath": "/marker"}],
        )
        spec = pod(
            "stubborn",
            cluster.nodes[0].name,
            c,
            volumes=[{"name": "marker", "hostPath": {"path": host_dir, "type": "Directory"}}],
        )
        spec["spec"]["terminationGracePeriodSeconds"] = grace
        await client.create(PODS, spec, ns)
        st = await running(client, ns, "stubborn", cluster)
        cid = container_status(st)["containerID"]
        uid = (await client.get(PODS, "stubborn", ns))["metadata"]["uid"]

        # watch the container from Docker while kubectl delete waits for the pod to go
        t0 = time.monotonic()
        delete = asyncio.create_task(asyncio.to_thread(kubectl.run, "delete", "pod", "stubborn", "-n", ns))

        async def stopped() -> bool:
            return await asyncio.to_thread(running_in_docker, cluster, cid) is not True

        await eventually(stopped, every=0.1)
        stopped_after = time.monotonic() - t0
        res = await delete
        returned_after = time.monotonic() - t0
        print(f"container stopped {stopped_after:.2f}s, kubectl delete returned {returned_after:.2f}s after delete")
        assert res.rc == 0, res
        assert 'pod "stubborn" deleted' in res.stdout, res
        marker = await asyncio.to_thread(lambda: sorted(os.listdir(host_dir)))
        assert marker == ["prestop"], marker
        # the whole grace period was granted (the process ignores SIGTERM), and not much more
        assert grace - 1 <= stopped_after <= grace + 8, stopped_after
        await gone(client, ns, "stubborn", within=20)
        # the kubelet removed the pod's containers (sandbox included)
        await eventually(lambda: asyncio.to_thread(lambda: pod_containers(cluster, uid) == []), within=20)
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)


# -- 6. kubelet restart ------------------------------------------------------------------------


async def _watch_modifications(client: ApiClient, ns: str, rv: str, counts: dict[str, list[Obj]]) -> None:
    async with contextlib.aclosing(client.watch(PODS, ns, resource_version=rv, allow_bookmarks=False)) as events:
        async for typ, obj in events:
            counts.setdefault(obj["metadata"]["name"], []).append({"type": typ, "status": obj.get("status")})


async def test_kubelet_sigkill_restart_adopts_running_pods(cluster: Cluster, client: ApiClient, ns: str) -> None:
    node = cluster.nodes[0]
    probe = {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}
    await client.create(PODS, pod("web", node.name, container(readinessProbe=probe)), ns)
    await client.create(PODS, pod("sleeper", node.name, container(command=["sleep", "3600"])), ns)
    # deleted while the kubelet is down: one gracefully (the object waits for the kubelet), one
    # forcibly (the object is gone at once: only the kubelet's own listing finds its containers)
    await client.create(PODS, pod("graceful", node.name, container(command=["sleep", "3600"])), ns)
    await client.create(PODS, pod("forced", node.name, container(command=["sleep", "3600"])), ns)
    kept = ("web", "sleeper")
    before: dict[str, Obj] = {}
    uids: dict[str, str] = {}
    for name in (*kept, "graceful", "forced"):
        before[name] = await running(client, ns, name, cluster, ready=True)
        uids[name] = (await client.get(PODS, name, ns))["metadata"]["uid"]
    for name in ("graceful", "forced"):
        assert pod_containers(cluster, uids[name]), name
    docker_started = {name: started_at(cluster, container_status(before[name])["containerID"]) for name in kept}
    # a settled status: give the kubelet a moment to finish writing, then take the version
    await asyncio.sleep(2)
    listing = await client.list(PODS, ns)
    rv = listing["metadata"]["resourceVersion"]
    before = {p["metadata"]["name"]: p["status"] for p in listing["items"]}
    versions = {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in listing["items"]}

    changes: dict[str, list[Obj]] = {}
    watcher = asyncio.create_task(_watch_modifications(client, ns, rv, changes))
    try:
        node.kubelet.kill()
        try:
            await client.delete(PODS, "graceful", ns)
            await client.delete(PODS, "forced", ns, grace_period_seconds=0)
            await asyncio.sleep(3)
        finally:
            node.kubelet.start()
        restarted = time.monotonic()

        # the deleted pods' containers go (and the graceful one's object with them)
        await gone(client, ns, "graceful")
        for name in ("graceful", "forced"):
            await eventually(lambda n=name: asyncio.to_thread(lambda: pod_containers(cluster, uids[n]) == []))
        print(f"deleted pods cleaned up {time.monotonic() - restarted:.2f}s after the kubelet started")
        # let the restarted kubelet settle (probes, a status sync, several heartbeats)
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - restarted)))
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    # the watch was live across the whole window: it saw both deletions
    for name in ("graceful", "forced"):
        assert "DELETED" in [c["type"] for c in changes.get(name, [])], (name, changes.get(name))
    for name in kept:
        now = await client.get(PODS, name, ns)
        st = now["status"]
        old = before[name]
        assert st["podIP"] == old["podIP"] and st["startTime"] == old["startTime"], (name, old, st)
        cs, old_cs = container_status(st), container_status(old)
        assert cs["containerID"] == old_cs["containerID"], (name, old_cs, cs)
        assert cs["restartCount"] == old_cs["restartCount"] == 0, (name, cs)
        assert cs["state"] == old_cs["state"], (name, old_cs, cs)
        assert condition(st, "Ready") == "True", (name, st)
        assert started_at(cluster, cs["containerID"]) == docker_started[name], name
        # observed: no status write at all. By design: the status manager seeds what it last
        # wrote from the API's copy, the kubelet rebuilds the same status from Docker, and the
        # readiness of a container that was ready before the restart is seeded from the API
        # (upstream keeps it too), so the first probe result changes nothing. The brief's
        # allowance was one write each; zero is what this kubelet does, so zero is asserted.
        mods = [c for c in changes.get(name, []) if c["type"] == "MODIFIED"]
        print(f"{name}: {len(mods)} status write(s) across the kubelet restart")
        assert mods == [], (name, json.dumps(mods))
        assert now["metadata"]["resourceVersion"] == versions[name], name
        assert "Traceback" not in node.kubelet.log(400)


# -- 7. hostNetwork ----------------------------------------------------------------------------


async def _host_network_pod(cluster: Cluster, client: ApiClient, ns: str) -> int:
    """A hostNetwork httpd on node 0 (a port no one else uses); returns the port once Running
    with the node's IP."""
    node = cluster.nodes[0]
    port = free_port("127.0.0.1")  # any unused number: the node's namespace has few listeners
    c = container(command=["httpd", "-f", "-p", str(port), "-h", "/www"], ports=[{"containerPort": port}])
    await client.create(PODS, pod("hostweb", node.name, c, hostNetwork=True), ns)
    st = await running(client, ns, "hostweb", cluster)
    assert st["podIP"] == node.ip and st["hostIP"] == node.ip, st
    assert [a["ip"] for a in st.get("podIPs") or ()] == [node.ip], st
    return port


async def test_host_network_pod_gets_node_ip(cluster: Cluster, client: ApiClient, ns: str) -> None:
    await _host_network_pod(cluster, client, ns)


# The Docker runtime gives a hostNetwork sandbox NetworkMode "host": the network namespace of
# dockerd. On a real node that is the node's; in the e2e cluster one dockerd in the host's
# namespace serves every node while each kubelet runs in its node's namespace, so the pod
# listens in the host's namespace, not on the node's IP (connection refused from the other node).
# Needs one dockerd per node namespace in tests/support/cluster.py, or a runtime that joins the
# kubelet's own namespace. See this module author's report.
@pytest.mark.xfail(
    strict=True, reason="e2e topology: hostNetwork Docker pods live in dockerd's namespace, not the node's"
)
async def test_host_network_pod_answers_on_node_ip(cluster: Cluster, client: ApiClient, ns: str) -> None:
    port = await _host_network_pod(cluster, client, ns)
    body = await cluster.nodes[1].wget(f"http://{cluster.nodes[0].ip}:{port}/", within=15)
    assert "kubeha demo" in body, body
