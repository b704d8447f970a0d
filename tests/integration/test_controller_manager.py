"""`kubeha controller-manager` against real etcd + api-servers: the replicaset controller scales,
adopts and releases pods; two managers share the leader Lease and the standby takes over after
the leader is SIGKILLed (the measured gap is printed, run with -s)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeha.cli.procs import stop_process
from tests.support import failover
from tests.support.apiserver import ApiServer
from tests.support.kubectl import Kubectl, kubectl_path

FAST_LE = [
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
]


@dataclass
class Manager:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self, tail: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture
def start_manager(tmp_path: Path) -> Iterator[Callable[..., Manager]]:
    started: list[Manager] = []

    def start(server: ApiServer, *extra: str, controllers: str = "replicaset,deployment", lease: str = "") -> Manager:
        log_path = tmp_path / f"kcm-{len(started)}.log"
        args = [f"--kubeconfig={server.kubeconfig}", f"--controllers={controllers}", *FAST_LE, *extra]
        if lease:
            args.append(f"--leader-elect-resource-name={lease}")
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kubeha", "controller-manager", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        m = Manager(proc, log_path)
        started.append(m)
        return m

    yield start
    for m in started:
        stop_process(m.proc, 10)


def kubectl_for(server: ApiServer, home: Path) -> Kubectl:
    binary = kubectl_path("1.32") or kubectl_path("1.27")
    if binary is None:
        pytest.skip("no kubectl")
    return Kubectl(binary, server.kubeconfig, home, "1.32")


@pytest.fixture
def k(apiservers: list[ApiServer], tmp_path: Path) -> Kubectl:
    return kubectl_for(apiservers[0], tmp_path / "home")


@pytest.fixture
def ns(k: Kubectl) -> Iterator[str]:
    name = f"cm-{uuid.uuid4().hex[:8]}"
    k.ok("create", "namespace", name)
    yield name
    k.run("delete", "namespace", name, "--wait=false")


def wait_for(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def rs_manifest(name: str, replicas: int, app: str = "web") -> str:
    return f"""
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {app}}}
    spec:
      containers:
      - name: c
        image: nginx
"""


def pods(k: Kubectl, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", ns]
    if selector:
        args += ["-l", selector]
    items: list[dict[str, Any]] = k.json(*args)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def owner_uid(pod: dict[str, Any]) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


def make_ready(k: Kubectl, ns: str, name: str) -> None:
    """What a kubelet would report: Running and Ready (status subresource)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": now}
    patch = json.dumps({"status": {"phase": "Running", "conditions": [ready]}})
    k.ok("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", patch)


def test_replicaset_scale_adopt_release(
    apiservers: list[ApiServer], start_manager: Callable[..., Manager], k: Kubectl, ns: str
) -> None:
    m = start_manager(apiservers[0], lease=f"kcm-{ns}")
    # an orphan pod that matches the selector, created before the ReplicaSet
    k.ok("run", "orphan", "-n", ns, "--image=nginx", "--labels=app=web", "--restart=Always")
    k.create(rs_manifest("web", 3), "-n", ns)
    rs = k.json("get", "rs", "web", "-n", ns)
    uid = rs["metadata"]["uid"]
    try:
        wait_for(lambda: len(pods(k, ns, "app=web")) == 3, what="3 pods")
    except AssertionError:
        print(m.log())
        raise
    current = pods(k, ns, "app=web")
    assert all(owner_uid(p) == uid for p in current), [p["metadata"].get("ownerReferences") for p in current]
    assert "orphan" in {p["metadata"]["name"] for p in current}, "the orphan was adopted, not replaced"
    assert all(p["metadata"]["generateName"] == "web-" for p in current if p["metadata"]["name"] != "orphan")

    # status follows readiness
    for p in current[:2]:
        make_ready(k, ns, p["metadata"]["name"])
    st = wait_for(
        lambda: (s := k.json("get", "rs", "web", "-n", ns)["status"]).get("readyReplicas") == 2 and s,
        what="readyReplicas 2",
    )
    assert st["replicas"] == 3 and st["fullyLabeledReplicas"] == 3 and st["availableReplicas"] == 2
    assert st["observedGeneration"] == rs["metadata"]["generation"]

    # scale up and down: the not-ready pod goes first
    k.ok("scale", "rs", "web", "-n", ns, "--replicas=5")
    wait_for(lambda: len(pods(k, ns, "app=web")) == 5, what="5 pods")
    ready_names = {p["metadata"]["name"] for p in current[:2]}
    k.ok("scale", "rs", "web", "-n", ns, "--replicas=2")
    wait_for(lambda: len(pods(k, ns, "app=web")) == 2, what="2 pods")
    left = pods(k, ns, "app=web")
    assert {p["metadata"]["name"] for p in left} == ready_names, "ready pods are kept when scaling down"

    # release: relabel one pod; the RS lets it go and makes a replacement
    victim = left[0]["metadata"]["name"]
    k.ok("label", "pod", victim, "-n", ns, "app=other", "--overwrite")
    wait_for(lambda: owner_uid(k.json("get", "pod", victim, "-n", ns)) is None, what="release")
    wait_for(lambda: len(pods(k, ns, "app=web")) == 2, what="replacement")

    # events with upstream wording
    events = k.json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=web")["items"]
    reasons = {(e["reason"], e["message"].split(":")[0]) for e in events}
    assert ("SuccessfulCreate", "Created pod") in reasons
    assert ("SuccessfulDelete", "Deleted pod") in reasons
    assert m.alive()


def test_leader_failover_gap(
    apiservers: list[ApiServer], start_manager: Callable[..., Manager], k: Kubectl, ns: str
) -> None:
    lease = f"kcm-{ns}"
    a = start_manager(apiservers[0], lease=lease)
    b = start_manager(apiservers[1], lease=lease)
    k.create(rs_manifest("fo", 1, app="fo"), "-n", ns)
    wait_for(lambda: len(pods(k, ns, "app=fo")) == 1, what="first pod")
    holder = wait_for(
        lambda: k.json("get", "lease", lease, "-n", "kube-system")["spec"].get("holderIdentity"), what="a holder"
    )
    # which process leads? the lease holder identity is hostname_uuid; ask the logs
    leader, standby = (a, b) if "became leader" in a.log(400) else (b, a)
    assert "became leader" in leader.log(400), (holder, a.log(), b.log())
    leader.proc.kill()
    leader.proc.wait()
    killed = time.monotonic()
    k.ok("scale", "rs", "fo", "-n", ns, "--replicas=2")
    wait_for(lambda: len(pods(k, ns, "app=fo")) == 2, timeout=15, what="standby creates the pod", interval=0.05)
    gap = time.monotonic() - killed
    print("\n" + failover.report("controller-manager (SIGKILL -> standby created a pod)", gap))
    assert gap <= failover.FAILOVER_LIMIT, standby.log()
    assert standby.alive()


def test_lost_leadership_exits_nonzero(
    apiservers: list[ApiServer], start_manager: Callable[..., Manager], k: Kubectl, ns: str
) -> None:
    """Another holder steals the lease (as if our renewals failed): the manager stops and exits
    non-zero, as upstream does."""
    lease = f"kcm-{ns}"
    m = start_manager(apiservers[0], lease=lease)
    wait_for(lambda: "became leader" in m.log(), what="leadership")
    patch = '{"spec":{"holderIdentity":"someone-else","leaseDurationSeconds":60}}'
    k.ok("patch", "lease", lease, "-n", "kube-system", "--type=merge", "-p", patch)
    rc = wait_for(lambda: m.proc.poll(), timeout=10, what="exit")
    assert rc != 0
    with contextlib.suppress(Exception):
        assert "leaderelection lost" in m.log()
