"""Kubelet pieces without I/O: pod workers, back-off, probe timing, status, CRI logs, static pods,
env resolution, node builders, PLEG diffing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeha.kubelet import logs as crilog
from kubeha.kubelet import static_pods
from kubeha.kubelet.backoff import RestartBackoff
from kubeha.kubelet.env import EnvError, container_env, expand
from kubeha.kubelet.node import conditions, conditions_changed, memory_bytes, new_lease, os_image
from kubeha.kubelet.pleg import Snapshot, changed_pods
from kubeha.kubelet.pod_workers import DONE, PodWorkers
from kubeha.kubelet.probes import LIVENESS, READINESS, STARTUP, ProbeManager, ProbeTracker
from kubeha.kubelet.runtime import EXITED, RUNNING, ContainerState
from kubeha.kubelet.status_manager import ContainerView, compute_status, pod_phase

Obj = dict[str, Any]
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


# -- pod workers ------------------------------------------------------------------------------------


async def test_pod_workers_coalesce_updates_to_the_newest() -> None:
    seen: list[Any] = []
    gate = asyncio.Event()

    async def sync(uid: str, pod: Obj | None) -> float | None:
        seen.append(pod["v"] if pod else None)
        if len(seen) == 1:
            await gate.wait()  # hold the first sync while updates pile up
        return None

    w = PodWorkers(sync)
    w.update("a", {"v": 1})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for v in (2, 3, 4):
        w.update("a", {"v": v})
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert seen == [1, 4]  # 2 and 3 were never synced: only the newest state counts
    await w.stop()


async def test_pod_worker_ends_on_done_and_wakes_on_demand() -> None:
    calls: list[str] = []

    async def sync(uid: str, pod: Obj | None) -> float | None:
        calls.append(uid)
        return DONE if pod is None else None

    w = PodWorkers(sync)
    w.update("a", {"v": 1})
    await asyncio.sleep(0.01)
    w.wake("a")
    await asyncio.sleep(0.01)
    assert calls == ["a", "a"]
    w.update("a", None)
    await asyncio.sleep(0.01)
    assert "a" not in w and calls == ["a", "a", "a"]


async def test_pod_worker_retries_after_a_failed_sync() -> None:
    n = 0

    async def sync(uid: str, pod: Obj | None) -> float | None:
        nonlocal n
        n += 1
        if n == 1:
            raise RuntimeError("boom")
        return None

    w = PodWorkers(sync, retry_after=0.01)
    w.update("a", {})
    await asyncio.sleep(0.1)
    assert n == 2
    await w.stop()


# -- back-off ---------------------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_and_resets_after_a_good_run() -> None:
    now = [0.0]
    b = RestartBackoff(clock=lambda: now[0])
    assert b.remaining("p/c") == 0.0  # the first restart is immediate
    delays = [b.restarted("p/c") for _ in range(7)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert b.remaining("p/c") == 300
    now[0] += 100
    assert b.remaining("p/c") == 200
    assert b.restarted("p/c", ran_for=600) == 10  # ran healthily for 10 minutes: start over
    b.forget_prefix("p/")
    assert b.remaining("p/c") == 0


# -- probes -----------------------------------------------------------------------------------------


def test_probe_tracker_thresholds_and_initial_results() -> None:
    live = ProbeTracker(LIVENESS, {"failureThreshold": 3, "periodSeconds": 2})
    assert live.result is True and live.period == 2 and live.timeout == 1
    assert not live.observe(False) and not live.observe(False)
    assert live.observe(False) and live.result is False  # third consecutive failure flips it
    ready = ProbeTracker(READINESS, {"successThreshold": 2})
    assert ready.result is False
    assert not ready.observe(True) and not ready.observe(False) and not ready.observe(True)
    assert ready.observe(True) and ready.result is True  # two consecutive successes
    start = ProbeTracker(STARTUP, {"failureThreshold": 2})
    assert not start.observe(False) and not start.failed
    assert start.observe(False) and start.failed and start.result is False  # acted on: restart
    ready.reset("new-container")
    assert ready.result is False and ready.container_id == "new-container"


def test_probe_tracker_initial_delay() -> None:
    t = ProbeTracker(READINESS, {"initialDelaySeconds": 5})
    assert not t.due(None, T0)
    assert not t.due(T0, T0 + timedelta(seconds=4.9))
    assert t.due(T0, T0 + timedelta(seconds=5))


def _running(cid: str = "c1", started: datetime = T0) -> ContainerState:
    return ContainerState(id=cid, name="main", attempt=0, state=RUNNING, started_at=started)


async def test_probe_manager_startup_gates_liveness_with_injected_clock() -> None:
    now = [T0]
    outcomes: dict[str, list[bool]] = {"startup": [False, True], "liveness": [False]}
    ran: list[str] = []
    changed: list[str] = []

    async def probe(p: Obj, rt: Any, st: ContainerState, c: Obj, ip: str) -> bool:
        kind = p["kind"]
        ran.append(kind)
        return outcomes[kind].pop(0)

    container = {
        "name": "main",
        "startupProbe": {"kind": "startup", "failureThreshold": 5, "initialDelaySeconds": 2},
        "livenessProbe": {"kind": "liveness", "failureThreshold": 1},
    }
    pod = {"spec": {"containers": [container]}}
    st = _running()
    mgr = ProbeManager(
        runtime=None,  # type: ignore[arg-type]
        current=lambda uid, name: (pod, container, st),
        on_change=changed.append,
        now=lambda: now[0],
        probe=probe,
        sleep=lambda s: asyncio.sleep(3600),
    )
    mgr.ensure("u", pod)
    entries = {k[2]: e for k, e in mgr._entries.items()}
    for e in entries.values():  # drive the ticks by hand
        assert e.task is not None
        e.task.cancel()
    start_key, live_key = ("u", "main", STARTUP), ("u", "main", LIVENESS)
    await mgr.tick(live_key, entries[LIVENESS])
    await mgr.tick(start_key, entries[STARTUP])
    assert ran == []  # startup's initial delay has not passed; liveness waits for startup
    now[0] = T0 + timedelta(seconds=2)
    await mgr.tick(start_key, entries[STARTUP])
    await mgr.tick(live_key, entries[LIVENESS])
    assert ran == ["startup"]
    await mgr.tick(start_key, entries[STARTUP])
    assert changed == ["u"] and mgr.started("u", "main", "c1")
    await mgr.tick(live_key, entries[LIVENESS])
    assert ran == ["startup", "startup", "liveness"]
    assert mgr.result("u", "main", LIVENESS, "c1") is False
    assert mgr.result("u", "main", LIVENESS, "c2") is True  # a new container starts from Success
    assert mgr.result("u", "main", READINESS, "c1") is None  # no readiness probe
    await mgr.stop()


async def test_probe_manager_seeds_adopted_containers() -> None:
    container = {"name": "main", "readinessProbe": {"exec": {"command": ["true"]}}}
    pod = {"spec": {"containers": [container]}}
    mgr = ProbeManager(
        runtime=None,  # type: ignore[arg-type]
        current=lambda uid, name: None,
        on_change=lambda uid: None,
        sleep=lambda s: asyncio.sleep(3600),
    )
    mgr.ensure("u", pod)
    assert mgr.result("u", "main", READINESS, "c1") is False  # a new container starts unready
    mgr.seed("u", "main", READINESS, "c1", True)  # the API said this very container was ready
    assert mgr.result("u", "main", READINESS, "c1") is True
    assert mgr.result("u", "main", READINESS, "c2") is False
    await mgr.stop()


# -- status -----------------------------------------------------------------------------------------


def _exited(code: int, attempt: int = 0, reason: str = "") -> ContainerState:
    return ContainerState(
        id=f"u_main_{attempt}",
        name="main",
        attempt=attempt,
        state=EXITED,
        exit_code=code,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        reason=reason or ("Completed" if code == 0 else "Error"),
    )


def _pod(policy: str = "Always", inits: int = 0) -> Obj:
    spec: Obj = {"restartPolicy": policy, "containers": [{"name": "main", "image": "img"}]}
    if inits:
        spec["initContainers"] = [{"name": f"init{i}", "image": "img"} for i in range(inits)]
    return {
        "metadata": {"uid": "u"},
        "spec": spec,
        "status": {"qosClass": "BestEffort", "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }


def _status(pod: Obj, views: dict[str, ContainerView], inits: dict[str, ContainerView] | None = None) -> Obj:
    return compute_status(
        pod, views, inits or {}, runtime="host", host_ip="10.0.0.1", pod_ips=["10.0.0.1"], sandbox_ready=True, now=T0
    )


def test_status_running_ready() -> None:
    st = _status(_pod(), {"main": ContainerView(_running("u_main_0"), None, None, True, True)})
    assert st["phase"] == "Running"
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "2026-01-02T03:04:05Z"}}
    assert cs["containerID"] == "host://u_main_0" and cs["ready"] and cs["started"] and cs["restartCount"] == 0
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
    }
    assert st["podIPs"] == [{"ip": "10.0.0.1"}] and st["hostIPs"] == [{"ip": "10.0.0.1"}]
    assert "qosClass" not in st  # not ours: left as the api-server has it


def test_status_crash_loop_shows_waiting_and_last_state() -> None:
    view = ContainerView(_exited(1, attempt=2), None, ("CrashLoopBackOff", "back-off 20s"), False, False)
    st = _status(_pod(), {"main": view})
    cs = st["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["restartCount"] == 2
    assert st["phase"] == "Running"  # a restarting container counts as stopped, restartPolicy Always
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [main]"


def test_phase_rules() -> None:
    def term(code: int) -> Obj:
        return {"state": {"terminated": {"exitCode": code}}, "lastState": {}}

    assert pod_phase({"restartPolicy": "Never"}, [], [term(0)]) == "Succeeded"
    assert pod_phase({"restartPolicy": "Never"}, [], [term(1)]) == "Failed"
    assert pod_phase({"restartPolicy": "OnFailure"}, [], [term(1)]) == "Running"
    assert pod_phase({"restartPolicy": "Never"}, [term(2)], [{"state": {"waiting": {}}}]) == "Failed"
    assert pod_phase({"restartPolicy": "Always"}, [{"state": {"running": {}}}], []) == "Pending"


def test_status_init_pending_and_transition_times_kept() -> None:
    pod = _pod(inits=1)
    st = _status(pod, {}, {"init0": ContainerView(_running("u_init0_0"))})
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init = next(c for c in st["conditions"] if c["type"] == "Initialized")
    assert init["status"] == "False" and init["message"] == "containers with incomplete status: [init0]"
    pod["status"]["conditions"] = [
        {"type": "Initialized", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}
    ]
    again = _status(pod, {}, {"init0": ContainerView(_running("u_init0_0"))})
    assert (
        next(c for c in again["conditions"] if c["type"] == "Initialized")["lastTransitionTime"]
        == "2020-01-01T00:00:00Z"
    )


# -- CRI logs ---------------------------------------------------------------------------------------


def test_cri_log_format_roundtrip_and_filters() -> None:
    data = crilog.format_records("stdout", b"one\n", T0)
    assert data == b"2026-01-02T03:04:05.123456000Z stdout F one\n"
    data += crilog.format_records("stderr", b"par", T0 + timedelta(seconds=1))
    data += crilog.format_records("stderr", b"tial\n", T0 + timedelta(seconds=2))
    data += crilog.format_records("stdout", b"three\n", T0 + timedelta(seconds=3))
    recs = crilog.read_records(data)
    assert [r.partial for r in recs] == [False, True, False, False]
    assert b"".join(crilog.render(recs)) == b"one\npartial\nthree\n"
    assert list(crilog.render(recs, tail=1)) == [b"three\n"]
    assert list(crilog.render(recs, tail=0)) == []
    assert list(crilog.render(recs, since=T0 + timedelta(seconds=1))) == [b"partial\n", b"three\n"]
    stamped = list(crilog.render(recs, timestamps=True, tail=1))
    assert stamped == [b"2026-01-02T03:04:08.123456000Z three\n"]
    assert crilog.parse_line(b"garbage") is None
    assert crilog.parse_timestamp("2026-01-02T03:04:05.123456789Z") == T0


def test_cri_long_lines_are_split_into_partials() -> None:
    line = b"x" * (crilog.MAX_RECORD + 5) + b"\n"
    recs = crilog.read_records(crilog.format_records("stdout", line, T0))
    assert [r.partial for r in recs] == [True, False]
    assert b"".join(crilog.render(recs)) == line


# -- static pods ------------------------------------------------------------------------------------


def _manifest() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "etcd", "namespace": "kube-system"},
        "spec": {"containers": [{"name": "c", "image": "i", "command": ["x"]}]},
    }


def test_static_pod_uid_is_a_stable_hash() -> None:
    a = static_pods.static_pod(_manifest(), "node1", "/m/etcd.yaml")
    b = static_pods.static_pod(_manifest(), "node1", "/m/etcd.yaml")
    assert a["metadata"]["uid"] == b["metadata"]["uid"] and len(a["metadata"]["uid"]) == 32
    assert a["metadata"]["name"] == "etcd-node1" and a["spec"]["nodeName"] == "node1"
    assert a["metadata"]["annotations"][static_pods.CONFIG_HASH] == a["metadata"]["uid"]
    assert a["spec"]["restartPolicy"] == "Always"  # defaulted
    changed = _manifest()
    changed["spec"]["containers"][0]["command"] = ["y"]
    assert static_pods.static_pod(changed, "node1", "/m/etcd.yaml")["metadata"]["uid"] != a["metadata"]["uid"]
    assert static_pods.static_pod(_manifest(), "node2", "/m/etcd.yaml")["metadata"]["uid"] != a["metadata"]["uid"]
    mirror = static_pods.mirror_pod(a, "node1", "nuid")
    assert "uid" not in mirror["metadata"] and static_pods.is_mirror(mirror) and not static_pods.is_mirror(a)
    assert mirror["metadata"]["ownerReferences"][0] == {
        "apiVersion": "v1",
        "kind": "Node",
        "name": "node1",
        "uid": "nuid",
        "controller": True,
    }
    with pytest.raises(ValueError):
        static_pods.static_pod({"kind": "Deployment", "metadata": {"name": "x"}}, "n", "f")


def test_static_pod_source_scans_only_changed_files(tmp_path: Any) -> None:
    import json

    src = static_pods.StaticPodSource(str(tmp_path), "n1")
    assert src.scan() is False and src.pods == {}
    (tmp_path / "etcd.json").write_text(json.dumps(_manifest()))
    (tmp_path / ".hidden.json").write_text(json.dumps(_manifest()))
    (tmp_path / "broken.yaml").write_text("{not: [valid")
    assert src.scan() is True and len(src.pods) == 1
    assert src.scan() is False
    (tmp_path / "etcd.json").unlink()
    assert src.scan() is True and src.pods == {}


# -- env --------------------------------------------------------------------------------------------


async def test_container_env_resolution() -> None:
    import base64

    objs = {
        ("configmaps", "ns", "cm"): {"data": {"A": "from-cm", "K": "v"}},
        ("secrets", "ns", "sec"): {"data": {"pw": base64.b64encode(b"s3cret").decode()}},
    }

    async def lookup(kind: str, ns: str, name: str) -> Obj | None:
        return objs.get((kind, ns, name))

    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
        "spec": {"nodeName": "n1"},
        "status": {"podIP": "10.1.1.1"},
    }
    container = {
        "resources": {"limits": {"memory": "64Mi"}},
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "PLAIN", "value": "v-$(CM_A)-$$-$(NOPE)"},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k", "optional": True}}},
        ],
    }
    env = await container_env(pod, container, lookup, {"cpu": "4"})
    assert env["CM_A"] == "from-cm" and env["PLAIN"] == "v-from-cm-$-$(NOPE)"
    assert env["NAME"] == "p" and env["APP"] == "x" and env["IP"] == "10.1.1.1"
    assert env["MEM"] == "64" and env["CPU"] == "4" and env["PW"] == "s3cret" and "OPT" not in env
    with pytest.raises(EnvError):
        await container_env(
            pod, {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}]}, lookup, {}
        )
    assert expand("$(A)$(B)", {"A": "1"}) == "1$(B)"


# -- node -------------------------------------------------------------------------------------------


def test_node_builders() -> None:
    assert os_image('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == "Debian GNU/Linux 12 (bookworm)"
    assert memory_bytes("MemTotal:       1024 kB\nMemFree: 1 kB\n") == 1024 * 1024
    conds = conditions([], T0)
    assert {c["type"]: c["status"] for c in conds} == {
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
        "Ready": "True",
    }
    later = conditions(conds, T0 + timedelta(minutes=1))
    assert all(c["lastTransitionTime"] == "2026-01-02T03:04:05Z" for c in later)  # unchanged: times kept
    assert not conditions_changed({"status": {"conditions": later}}, T0)
    unknown = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c for c in later]
    assert conditions_changed({"status": {"conditions": unknown}}, T0)
    lease = new_lease("n1", "uid1", 40, T0)
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid1" and lease["spec"]["leaseDurationSeconds"] == 40


def test_pleg_diff() -> None:
    old: Snapshot = {"a": {"c1": ("running", None)}, "b": {"c2": ("running", None)}}
    new: Snapshot = {"a": {"c1": ("exited", 1)}, "b": {"c2": ("running", None)}, "c": {}}
    assert changed_pods(old, new) == {"a", "c"}
    assert changed_pods(new, {}) == {"a", "b", "c"}
