"""Deployments through a real controller-manager and the real kubectl: create → ReplicaSet → pods,
`rollout status`, a rolling update within maxSurge/maxUnavailable, history, undo, restart, pause
and resume, Recreate, and cleanup of old ReplicaSets. No kubelet runs: the test marks pods Ready
itself, as the kwok-like fake nodes will later."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration import test_controller_manager as cm
from tests.integration.test_controller_manager import Manager, make_ready, owner_uid, pods, wait_for
from tests.support.apiserver import ApiServer
from tests.support.kubectl import Kubectl

# the controller-manager module's fixtures, shared
k = cm.k
ns = cm.ns
start_manager = cm.start_manager

SAFE = set("bcdfghjklmnpqrstvwxz2456789")


def deployment(name: str, replicas: int, image: str = "nginx:1", *, strategy: str = "", extra: str = "") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  revisionHistoryLimit: 2
{strategy}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: {image}
{extra}
"""


class Kwok:
    """Marks every pod of a namespace Ready shortly after it appears (a stand-in kubelet), and
    records the most pods and the fewest ready ones seen at once."""

    def __init__(self, k: Kubectl, ns: str, selector: str, delay: float = 0.3) -> None:
        self.k, self.ns, self.selector, self.delay = k, ns, selector, delay
        self.max_pods = 0
        self.min_ready: int | None = None
        self.enabled = True
        self._stop = threading.Event()
        self._seen: dict[str, float] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Kwok:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def reset(self) -> None:
        self.max_pods, self.min_ready = 0, None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                current = pods(self.k, self.ns, self.selector)
            except (AssertionError, subprocess.SubprocessError, ValueError):
                continue
            ready = [p for p in current if _ready(p)]
            self.max_pods = max(self.max_pods, len(current))
            self.min_ready = len(ready) if self.min_ready is None else min(self.min_ready, len(ready))
            now = time.monotonic()
            for p in current:
                name = p["metadata"]["name"]
                first = self._seen.setdefault(name, now)
                if self.enabled and not _ready(p) and now - first >= self.delay:
                    try:
                        make_ready(self.k, self.ns, name)
                    except AssertionError:
                        pass  # deleted meanwhile
            self._stop.wait(0.05)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def rs_of(k: Kubectl, ns: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = k.json("get", "rs", "-n", ns, "-l", f"app={name}")["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def rollout_status(k: Kubectl, ns: str, name: str, timeout: str = "60s") -> str:
    return k.ok("rollout", "status", f"deployment/{name}", "-n", ns, f"--timeout={timeout}")


@pytest.fixture
def manager(apiservers: list[ApiServer], start_manager: Callable[..., Manager], ns: str) -> Iterator[Manager]:
    m = start_manager(apiservers[0], lease=f"kcm-{ns}")
    yield m
    if not m.alive():
        print(m.log())


def test_deployment_create_and_rollout_status(manager: Manager, k: Kubectl, ns: str) -> None:
    k.create(deployment("web", 3), "-n", ns)
    d = k.json("get", "deploy", "web", "-n", ns)
    rss = wait_for(lambda: rs_of(k, ns, "web"), what="a ReplicaSet")
    rs = rss[0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}" and set(h) <= SAFE
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    ann = rs["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "1"
    assert ann["deployment.kubernetes.io/desired-replicas"] == "3"
    assert ann["deployment.kubernetes.io/max-replicas"] == "4"  # 3 + ceil(25% of 3)
    assert owner_uid(rs) == d["metadata"]["uid"]
    wait_for(lambda: len(pods(k, ns, "app=web")) == 3, what="3 pods")
    assert all(p["metadata"]["labels"]["pod-template-hash"] == h for p in pods(k, ns, "app=web"))

    # rollout status waits until the pods are ready, then succeeds with upstream's wording
    proc = k.popen("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    time.sleep(1.0)
    assert proc.poll() is None, "rollout status must wait while no pod is available"
    for p in pods(k, ns, "app=web"):
        make_ready(k, ns, p["metadata"]["name"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert 'deployment "web" successfully rolled out' in out
    d = k.json("get", "deploy", "web", "-n", ns)
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Progressing"]["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    events = k.json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=web")["items"]
    assert f"Scaled up replica set web-{h} to 3" in {e["message"] for e in events}


def test_rolling_update_bounds_history_undo_restart(manager: Manager, k: Kubectl, ns: str) -> None:
    strategy = """  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}"""
    k.create(deployment("app", 4, strategy=strategy), "-n", ns)
    with Kwok(k, ns, "app=app") as kwok:
        rollout_status(k, ns, "app")
        kwok.reset()
        k.ok("set", "image", "deployment/app", "c=nginx:2", "-n", ns)
        rollout_status(k, ns, "app")
        print(
            f"\nrolling update 4 replicas, maxSurge 1, maxUnavailable 1: max pods {kwok.max_pods}, min ready {kwok.min_ready}"
        )
        assert kwok.max_pods <= 5, kwok.max_pods
        assert kwok.min_ready is not None and kwok.min_ready >= 3, kwok.min_ready
        rss = rs_of(k, ns, "app")
        assert [rs["spec"]["replicas"] for rs in rss] == [0, 4]
        assert rss[1]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
        assert all(p["spec"]["containers"][0]["image"] == "nginx:2" for p in pods(k, ns, "app=app"))

        history = k.ok("rollout", "history", "deployment/app", "-n", ns)
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

        # undo: the first ReplicaSet becomes the new one again, with revision 3
        first_name = rss[0]["metadata"]["name"]
        k.ok("rollout", "undo", "deployment/app", "-n", ns)
        rollout_status(k, ns, "app")
        rss = rs_of(k, ns, "app")
        assert len(rss) == 2
        assert rss[-1]["metadata"]["name"] == first_name
        assert rss[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert rss[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        assert rss[-1]["spec"]["replicas"] == 4
        assert all(p["spec"]["containers"][0]["image"] == "nginx:1" for p in pods(k, ns, "app=app"))

        # restart: a template annotation → a third ReplicaSet; history limit 2 drops the oldest
        k.ok("rollout", "restart", "deployment/app", "-n", ns)
        rollout_status(k, ns, "app")
        rss = wait_for(lambda: (r := rs_of(k, ns, "app")) and len(r) == 3 and r, what="3 ReplicaSets")
        assert rss[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
        assert "kubectl.kubernetes.io/restartedAt" in rss[-1]["spec"]["template"]["metadata"]["annotations"]
        d = k.json("get", "deploy", "app", "-n", ns)
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


def test_pause_resume_and_scale(manager: Manager, k: Kubectl, ns: str) -> None:
    k.create(deployment("p", 2), "-n", ns)
    with Kwok(k, ns, "app=p"):
        rollout_status(k, ns, "p")
        k.ok("rollout", "pause", "deployment/p", "-n", ns)
        k.ok("set", "image", "deployment/p", "c=nginx:2", "-n", ns)
        # paused: no new ReplicaSet, but scaling still works
        k.ok("scale", "deployment/p", "--replicas=4", "-n", ns)
        wait_for(lambda: len(pods(k, ns, "app=p")) == 4, what="scaled while paused")
        assert len(rs_of(k, ns, "p")) == 1
        cond = wait_for(
            lambda: next(
                (
                    c
                    for c in k.json("get", "deploy", "p", "-n", ns)["status"].get("conditions", [])
                    if c["type"] == "Progressing" and c["reason"] == "DeploymentPaused"
                ),
                None,
            ),
            what="DeploymentPaused",
        )
        assert cond["status"] == "Unknown"
        k.ok("rollout", "resume", "deployment/p", "-n", ns)
        rollout_status(k, ns, "p")
        rss = rs_of(k, ns, "p")
        assert [rs["spec"]["replicas"] for rs in rss] == [0, 4]


def test_recreate(manager: Manager, k: Kubectl, ns: str) -> None:
    k.create(deployment("r", 3, strategy="  strategy: {type: Recreate}"), "-n", ns)
    with Kwok(k, ns, "app=r") as kwok:
        rollout_status(k, ns, "r")
        old_uid = rs_of(k, ns, "r")[0]["metadata"]["uid"]
        kwok.reset()
        k.ok("set", "image", "deployment/r", "c=nginx:2", "-n", ns)
        rollout_status(k, ns, "r")
        # never old and new pods at once: at most 3 pods, and none of the old ones remain
        assert kwok.max_pods <= 3
        assert all(owner_uid(p) != old_uid for p in pods(k, ns, "app=r"))


def test_json_in_status_is_upstream_shaped(manager: Manager, k: Kubectl, ns: str) -> None:
    k.create(deployment("s", 0), "-n", ns)
    d = wait_for(
        lambda: (x := k.json("get", "deploy", "s", "-n", ns)).get("status", {}).get("observedGeneration") and x,
        what="status",
    )
    json.dumps(d)
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    out = rollout_status(k, ns, "s")
    assert "successfully rolled out" in out
