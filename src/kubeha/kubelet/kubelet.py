"""The kubelet's core: pod sources (API informer, static manifests), one worker per pod running
SyncPod against the runtime, mirror pods, and the wiring of PLEG, probes and status.

Pods whose ``runtimeClassName`` is not served by a runtime of this kubelet are left alone (logged
once): the Docker runtime will serve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from kubeha.api.errors import StatusError
from kubeha.client.resources import CONFIGMAPS, NODES, PODS, SECRETS, SERVICEACCOUNTS, SERVICES
from kubeha.client.rest import ApiClient
from kubeha.kubelet import env as envmod
from kubeha.kubelet import static_pods
from kubeha.kubelet.backoff import RestartBackoff
from kubeha.kubelet.cni import NETWORK_NOT_READY
from kubeha.kubelet.network import HostGatewayRoutes
from kubeha.kubelet.node import NodeManager
from kubeha.kubelet.pleg import Pleg
from kubeha.kubelet.pod_workers import DONE, PodWorkers
from kubeha.kubelet.probes import LIVENESS, READINESS, STARTUP, ProbeManager, resolve_port
from kubeha.kubelet.runtime import CREATED, EXITED, RUNNING, ContainerState, Runtime, RuntimePod, Sandbox
from kubeha.kubelet.status_manager import ContainerView, StatusManager, compute_status
from kubeha.kubelet.volumes import VolumeManager
from kubeha.machinery.events import EventRecorder
from kubeha.machinery.indexer import NAMESPACE_INDEX
from kubeha.machinery.informer import SharedInformer, SharedInformerFactory
from kubeha.machinery.tasks import TaskSet

log = logging.getLogger("kubeha.kubelet")

Obj = dict[str, Any]
DEFAULT_GRACE = 30
CONFIG_RETRY = 5.0  # seconds before retrying a container that could not be created


@dataclass
class KubeletConfig:
    node_name: str
    node_ip: str
    root_dir: str
    pod_manifest_path: str = ""
    sync_frequency: float = 60.0
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    static_scan_period: float = 5.0
    host_gw_routes: bool = False  # keep routes to the other nodes' podCIDRs (kubelet/network.py)


def _meta(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def _uid(pod: Obj) -> str:
    return str(_meta(pod).get("uid") or "")


def pod_desc(pod: Obj) -> str:
    m = _meta(pod)
    return f"{m.get('namespace')}/{m.get('name')}"


def grace_seconds(pod: Obj) -> int:
    meta, spec = _meta(pod), pod.get("spec") or {}
    for v in (meta.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if isinstance(v, int) and v >= 0:
            return v
    return DEFAULT_GRACE


def should_restart(policy: str, exit_code: int | None) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class Kubelet:
    def __init__(
        self, client: ApiClient, cfg: KubeletConfig, runtime: Runtime, node: NodeManager, *, pleg_period: float = 1.0
    ) -> None:
        self.client = client
        self.cfg = cfg
        self.runtime = runtime
        self.node = node
        self.workers = PodWorkers(self._sync)
        self.pleg = Pleg(runtime, self.workers.wake, pleg_period)
        self.probes = ProbeManager(runtime, self._probe_target, self._wake)
        self.status = StatusManager(client)
        self.backoff = RestartBackoff()
        self.recorder = EventRecorder(client, "kubelet", cfg.node_name)
        self.static = static_pods.StaticPodSource(cfg.pod_manifest_path, cfg.node_name, cfg.static_scan_period)
        self._factory = SharedInformerFactory(client)
        self.pods: SharedInformer = self._factory.informer_for(
            PODS, namespace=None, field_selector=f"spec.nodeName={cfg.node_name}"
        )
        self.pods.add_event_handler(
            on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n), on_delete=self._on_gone
        )
        # our own Node (upstream's node informer): the podCIDR arriving makes the network ready
        self.own_node: SharedInformer = self._factory.informer_for(
            NODES, namespace=None, field_selector=f"metadata.name={cfg.node_name}"
        )
        self.own_node.add_event_handler(on_add=self._on_node, on_update=lambda _o, n: self._on_node(n))
        # every Service (upstream's service lister): the pods' *_SERVICE_HOST/_PORT variables
        self.services: SharedInformer = self._factory.informer_for(SERVICES, namespace=None)
        self.routes = HostGatewayRoutes(client, cfg.node_name, factory=self._factory) if cfg.host_gw_routes else None
        self._network_waiting: set[str] = set()  # uids of pods held back until the network is ready
        self._api_pods: dict[str, Obj] = {}  # uid -> pod, for pods this kubelet runs
        self._waiting: dict[tuple[str, str], tuple[str, str]] = {}  # (uid, container) -> (reason, message)
        self._ignored: set[str] = set()
        self._touched: dict[str, set[str]] = {}  # uid -> containers created or stopped by the running sync
        self._tasks = TaskSet("kubelet", log)
        self._mirror_wake = asyncio.Event()
        self.volumes: VolumeManager | None = None  # set by app.py with the docker runtime

    # -- sources -------------------------------------------------------------------------------

    def _ours(self, pod: Obj) -> bool:
        rc = (pod.get("spec") or {}).get("runtimeClassName") or ""
        serves = getattr(self.runtime, "serves", None)  # MultiRuntime: docker by default, host
        if serves(rc) if serves is not None else rc == self.runtime.name:
            return True
        uid = _uid(pod)
        if uid not in self._ignored:
            self._ignored.add(uid)
            log.info(
                "pod %s (runtimeClassName %r) is not for the %s runtime: left alone",
                pod_desc(pod),
                rc,
                self.runtime.name,
            )
        return False

    def _on_pod(self, pod: Obj) -> None:
        if static_pods.is_mirror(pod):
            self._mirror_wake.set()
            return
        if not self._ours(pod):
            return
        uid = _uid(pod)
        self._api_pods[uid] = pod
        self.workers.update(uid, pod)

    def _on_gone(self, pod: Obj) -> None:
        if static_pods.is_mirror(pod):
            self._mirror_wake.set()
            return
        uid = _uid(pod)
        self._ignored.discard(uid)
        if self._api_pods.pop(uid, None) is not None or uid in self.pleg.pods:
            self.workers.update(uid, None)

    def _on_static_change(self) -> None:
        for uid, pod in self.static.pods.items():
            if self.workers.pod(uid) is not pod:
                self.workers.update(uid, pod)
        for uid in list(self.workers.uids()):
            current = self.workers.pod(uid)
            if current is not None and static_pods.CONFIG_SOURCE in (_meta(current).get("annotations") or {}):
                if uid not in self.static.pods and uid not in self._api_pods:
                    self.workers.update(uid, None)
        self._mirror_wake.set()

    def _handler(self, pod: Obj) -> str:
        """The runtime handler serving ``pod`` (the ``<handler>://`` of its container ids)."""
        handler = getattr(self.runtime, "handler", None)
        return str(handler(pod)) if handler is not None else self.runtime.name

    def _wake(self, uid: str) -> None:
        self.workers.wake(uid)

    def _on_node(self, node: Obj) -> None:
        self.node.observe(node)
        if self._network_waiting and self.node.network_ready():
            log.info("runtime network ready (podCIDR %s): starting held pods", self.node.pod_cidr)
            for uid in self._network_waiting:
                self.workers.wake(uid)
            self._network_waiting.clear()

    def _needs_network(self, pod: Obj) -> bool:
        """Pods whose sandbox gets a CNI network (not hostNetwork, not host-runtime pods)."""
        return not (pod.get("spec") or {}).get("hostNetwork") and self._handler(pod) != "host"

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled."""
        await self.pleg.relist()  # the runtime cache before any sync
        await asyncio.to_thread(self.static.scan)
        self._on_static_change()  # static pods run at once, with or without the api-server
        self._tasks.guard("node", self._register)
        self._tasks.guard("pleg", self.pleg.run, restart_on_return=True)
        self._tasks.guard("status", self.status.run, restart_on_return=True)
        self._tasks.guard("static pods", lambda: self.static.run(self._on_static_change), restart_on_return=True)
        self._tasks.guard("mirror pods", self._mirror_loop, restart_on_return=True)
        if self.routes is not None:
            self._tasks.guard("host-gw routes", self.routes.run, restart_on_return=True)
        await self._factory.start()
        try:
            await self.pods.wait_for_sync()
            self._remove_orphans()
            await asyncio.Event().wait()
        finally:
            await self._tasks.stop(timeout=5)
            await self.probes.stop()
            await self.workers.stop()
            await self._factory.stop()
            with contextlib.suppress(Exception):
                await self.recorder.stop()

    async def _register(self) -> None:
        await self.node.register()
        for handler in getattr(self.runtime, "runtimes", None) or [self.runtime.name]:
            await self.node.ensure_runtime_class(handler)
        self._tasks.guard("lease", self.node.heartbeat_loop, restart_on_return=True)
        self._tasks.guard("node status", self.node.status_loop, restart_on_return=True)
        self._mirror_wake.set()

    def _remove_orphans(self) -> None:
        """Runtime pods that no source wants any more (deleted while we were down)."""
        for uid in list(self.pleg.pods):
            if uid not in self._api_pods and uid not in self.static.pods and uid not in self.workers:
                log.info(
                    "removing pod %s/%s: no longer in the API", self.pleg.pods[uid].namespace, self.pleg.pods[uid].name
                )
                self.workers.update(uid, None)

    # -- SyncPod -------------------------------------------------------------------------------

    async def _runtime_pod(self, uid: str) -> RuntimePod | None:
        # a listing newer than this call, shared with the other workers asking meanwhile; what it
        # shows of this pod wakes no worker (we are the worker)
        await self.pleg.fresh(quiet=uid)
        return self.pleg.pods.get(uid)

    async def _sync(self, uid: str, pod: Obj | None) -> float | None:
        rpod = await self._runtime_pod(uid)
        if pod is None:
            if rpod is not None:
                await self._kill_pod(None, rpod, grace=2)
                if self.volumes is not None:
                    await self.volumes.teardown(uid)
                await self.runtime.remove_sandbox(uid)
            self._forget(uid)
            return DONE
        if _meta(pod).get("deletionTimestamp"):
            if rpod is not None:
                await self._kill_pod(pod, rpod, grace=grace_seconds(pod))
                if self.volumes is not None:
                    await self.volumes.teardown(uid)
                await self.runtime.remove_sandbox(uid)
            self._forget(uid)
            await self._confirm_deletion(pod)
            return DONE
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and (rpod is None or not any(c.state == RUNNING for c in rpod.containers)):
            return None  # finished for good: nothing runs, the status says so already
        if rpod is None and self._needs_network(pod) and not self.node.network_ready():
            # as upstream: no sandbox without the network; the pod stays Pending (ContainerCreating)
            # and its worker is woken when the podCIDR arrives (_on_node)
            if uid not in self._network_waiting:
                self._network_waiting.add(uid)
                self.recorder.event(pod, "Warning", "NetworkNotReady", f"network is not ready: {NETWORK_NOT_READY}")
            self._set_status(pod, RuntimePod(uid, str(_meta(pod).get("name")), str(_meta(pod).get("namespace"))), "")
            return self.cfg.sync_frequency
        sandbox = await self.runtime.run_sandbox(pod)
        if self.volumes is not None:
            await self.volumes.refresh(pod)  # configMap/secret/token updates reach running pods
        self.probes.ensure(uid, pod)
        # the containers are as listed above (a sandbox start adds none): no second listing
        rpod = rpod or RuntimePod(uid, str(_meta(pod).get("name")), str(_meta(pod).get("namespace")))
        self._seed_probes(pod, rpod)
        wake = await self._sync_containers(pod, rpod)
        rpod = await self._after_sync(rpod, sandbox)
        self._set_status(pod, rpod, sandbox.ip)
        if any(k[0] == uid and v[0] != "CrashLoopBackOff" for k, v in self._waiting.items()):
            wake = min(wake, CONFIG_RETRY) if wake is not None else CONFIG_RETRY  # e.g. a ConfigMap still missing
        return min(wake, self.cfg.sync_frequency) if wake is not None else self.cfg.sync_frequency

    async def _after_sync(self, rpod: RuntimePod, sandbox: Sandbox) -> RuntimePod:
        """The pod as the runtime has it after the sync: the listing it began with plus a look
        at each container the sync created or stopped (no listing of the whole node, which
        would wait behind every other pod starting meanwhile)."""
        touched = sorted(self._touched.pop(rpod.uid, ()))
        states = await asyncio.gather(*(self.runtime.container_status(cid) for cid in touched))
        containers = {c.id: c for c in rpod.containers}
        for cid, st in zip(touched, states, strict=True):
            if st is None:
                containers.pop(cid, None)
            else:
                containers[cid] = st
        box = rpod.sandbox if rpod.sandbox is not None and rpod.sandbox.id == sandbox.id else sandbox
        after = RuntimePod(rpod.uid, rpod.name, rpod.namespace, box, list(containers.values()))
        if touched:
            self.pleg.pods[rpod.uid] = after  # probes see the new container before the next listing
        return after

    def _seed_probes(self, pod: Obj, rpod: RuntimePod) -> None:
        """Adopted containers keep the readiness and startup results the API shows for them, so
        a kubelet restart does not flip ready pods to NotReady until their probes run again."""
        target = self._status_target(pod) or {}
        for cs in (target.get("status") or {}).get("containerStatuses") or ():
            st = rpod.latest(str(cs.get("name")))
            if st is None or st.state != RUNNING or cs.get("containerID") != f"{self._handler(pod)}://{st.id}":
                continue
            if cs.get("ready"):
                self.probes.seed(rpod.uid, st.name, READINESS, st.id, True)
            if cs.get("started"):
                self.probes.seed(rpod.uid, st.name, STARTUP, st.id, True)

    async def _sync_containers(self, pod: Obj, rpod: RuntimePod) -> float | None:
        """Start, restart or kill containers; returns when to look again (back-off)."""
        spec = pod.get("spec") or {}
        policy = str(spec.get("restartPolicy") or "Always")
        uid = rpod.uid
        # init containers, one at a time, in order
        for c in spec.get("initContainers") or ():
            name = str(c["name"])
            latest = rpod.latest(name)
            if latest is not None and latest.state == EXITED and latest.exit_code == 0:
                continue
            if latest is not None and latest.state == RUNNING:
                return None
            if latest is not None and latest.state == EXITED:
                if policy == "Never":
                    return None  # the pod has failed
                return await self._restart(pod, c, latest)
            await self._start(pod, c, latest.attempt + 1 if latest is not None else 0)
            return None
        wake: float | None = None
        for c in spec.get("containers") or ():
            name = str(c["name"])
            latest = rpod.latest(name)
            if latest is None:
                await self._start(pod, c, 0)
            elif latest.state == CREATED:
                await self._start(pod, c, latest.attempt)
            elif latest.state == RUNNING:
                live = self.probes.result(uid, name, LIVENESS, latest.id) is not False
                if not live or self.probes.startup_failed(uid, name, latest.id):
                    self.recorder.event(
                        pod,
                        "Normal",
                        "Killing",
                        f"Container {name} failed {'liveness' if not live else 'startup'} probe, will be restarted",
                    )
                    await self._kill_container(pod, c, latest, grace_seconds(pod))
                    st = await self.runtime.container_status(latest.id)
                    if should_restart(policy, st.exit_code if st else 137):
                        w = await self._restart(pod, c, st or latest)
                        wake = w if wake is None or (w is not None and w < wake) else wake
            elif latest.state == EXITED and should_restart(policy, latest.exit_code):
                w = await self._restart(pod, c, latest)
                wake = w if wake is None or (w is not None and w < wake) else wake
        return wake

    async def _restart(self, pod: Obj, c: Obj, latest: ContainerState) -> float | None:
        uid, name = _uid(pod), str(c["name"])
        key = f"{uid}/{name}"
        left = self.backoff.remaining(key)
        if left > 0:
            msg = f"back-off {int(self.backoff._entries[key][0])}s restarting failed container={name} pod={_meta(pod).get('name')}_{_meta(pod).get('namespace')}({uid})"
            if self._waiting.get((uid, name), ("",))[0] != "CrashLoopBackOff":
                self.recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
            self._waiting[(uid, name)] = ("CrashLoopBackOff", msg)
            return left
        ran = 0.0
        if latest.started_at and latest.finished_at:
            ran = (latest.finished_at - latest.started_at).total_seconds()
        self.backoff.restarted(key, ran)
        await self._start(pod, c, latest.attempt + 1)
        return None

    async def request_token(self, namespace: str, service_account: str, spec: Obj) -> str:
        """A bound service-account token (TokenRequest) for projected volumes."""
        req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        out = await self.client.create(SERVICEACCOUNTS, req, namespace, subresource="token", name=service_account)
        return str((out.get("status") or {}).get("token") or "")

    async def lookup_config(self, kind: str, ns: str, name: str) -> Obj | None:
        return await self._lookup(kind, ns, name)

    async def _lookup(self, kind: str, ns: str, name: str) -> Obj | None:
        try:
            return await self.client.get(CONFIGMAPS if kind == "configmaps" else SECRETS, name, ns)
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _service_env(self, pod: Obj) -> dict[str, str]:
        # as upstream: an API pod waits for the first list of Services (KUBERNETES_SERVICE_HOST
        # is what in-cluster clients read); a static pod starts with what is known, even nothing
        static = (_meta(pod).get("annotations") or {}).get(static_pods.CONFIG_SOURCE) == "file"
        if not static and not self.services.has_synced():
            await self.services.wait_for_sync(timeout=10)
            if not self.services.has_synced():
                raise envmod.EnvError("services have not yet been read at least once, cannot construct envvars")
        idx = self.services.indexer
        ns = str(_meta(pod).get("namespace") or "default")
        chosen = envmod.pod_services(pod, idx.by_index(NAMESPACE_INDEX, ns), idx.by_index(NAMESPACE_INDEX, "default"))
        return envmod.service_env(chosen)

    async def _start(self, pod: Obj, c: Obj, attempt: int) -> None:
        uid, name = _uid(pod), str(c["name"])
        sandbox = await self.runtime.run_sandbox(pod)
        pod_ip = sandbox.ip or self.cfg.node_ip
        status_pod = {
            **pod,
            "status": {**(pod.get("status") or {}), "hostIP": self.cfg.node_ip, "podIP": pod_ip},
        }
        try:
            services = await self._service_env(pod)
            env = await envmod.container_env(status_pod, c, self._lookup, self.node.allocatable, services)
        except (envmod.EnvError, StatusError, ConnectionError, ValueError) as e:
            self._waiting[(uid, name)] = ("CreateContainerConfigError", str(e))
            return
        base = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOSTNAME": self.cfg.node_name}
        if self._handler(pod) != "host":
            base = {"HOSTNAME": str(_meta(pod).get("name") or "")}  # the image supplies PATH
        try:
            mounts = await self.volumes.mounts(pod, c) if self.volumes is not None else []
        except (ValueError, OSError, StatusError, ConnectionError) as e:
            self._waiting[(uid, name)] = ("CreateContainerConfigError", str(e))
            return
        run_c = envmod.expand_command(c, env)
        try:
            cid = await self.runtime.create_container(pod, run_c, sandbox, {**base, **env}, mounts, attempt)
        except (ValueError, OSError, RuntimeError) as e:
            # image pulls say ErrImagePull / ImagePullBackOff
            self._waiting[(uid, name)] = (str(getattr(e, "reason", "CreateContainerError")), str(e))
            return
        self._touched.setdefault(uid, set()).add(cid)
        try:
            await self.runtime.start_container(cid)
        except (OSError, RuntimeError) as e:
            self._waiting[(uid, name)] = ("RunContainerError", str(e))
            return
        self._waiting.pop((uid, name), None)
        self.recorder.event(pod, "Normal", "Started", f"Started container {name}")
        # keep the previous attempt (logs --previous), drop older ones
        if attempt >= 2:
            with contextlib.suppress(OSError, ValueError):
                await self.runtime.remove_container(cid.rsplit("_", 1)[0] + f"_{attempt - 2}")
        hook = ((c.get("lifecycle") or {}).get("postStart")) or None
        if hook and not await self._run_hook(hook, cid, c, grace_seconds(pod)):
            self.recorder.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook of {name} failed")
            await self.runtime.stop_container(cid, grace_seconds(pod))

    async def _run_hook(self, hook: Obj, cid: str, c: Obj, timeout: float) -> bool:  # noqa: ASYNC109
        try:
            if "exec" in hook:
                cmd = [str(a) for a in (hook["exec"] or {}).get("command") or []]
                code, _, _ = await self.runtime.exec_sync(cid, cmd, max(1.0, timeout))
                return code == 0
            if "httpGet" in hook:
                action = hook["httpGet"] or {}
                port = resolve_port(action.get("port"), c)
                url = f"{str(action.get('scheme') or 'HTTP').lower()}://{action.get('host') or self.cfg.node_ip}:{port}{action.get('path') or '/'}"
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max(1.0, timeout))) as s,
                    s.get(url, ssl=False) as resp,
                ):
                    return 200 <= resp.status < 400
            if "sleep" in hook:
                await asyncio.sleep(float((hook["sleep"] or {}).get("seconds") or 0))
                return True
        except (TimeoutError, OSError, aiohttp.ClientError, ValueError) as e:
            log.info("hook of %s failed: %s", cid, e)
            return False
        return True

    async def _kill_container(self, pod: Obj | None, c: Obj | None, st: ContainerState, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        hook = ((c or {}).get("lifecycle") or {}).get("preStop") if c else None
        if hook and grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._run_hook(hook, st.id, c or {}, grace), grace)
        await self.runtime.stop_container(st.id, max(0.0, deadline - loop.time()))
        if pod is not None:
            self._touched.setdefault(_uid(pod), set()).add(st.id)
            self.recorder.event(pod, "Normal", "Killing", f"Stopping container {st.name}")

    async def _kill_pod(self, pod: Obj | None, rpod: RuntimePod, grace: float) -> None:
        specs = {
            str(c.get("name")): c
            for key in ("containers", "initContainers")
            for c in ((pod or {}).get("spec") or {}).get(key) or ()
        }
        running = [c for c in rpod.containers if c.state == RUNNING]
        await asyncio.gather(*(self._kill_container(pod, specs.get(c.name), c, grace) for c in running))

    async def _confirm_deletion(self, pod: Obj) -> None:
        if static_pods.CONFIG_SOURCE in (_meta(pod).get("annotations") or {}) and not static_pods.is_mirror(pod):
            return
        meta = _meta(pod)
        try:
            await self.client.delete(
                PODS,
                str(meta["name"]),
                str(meta["namespace"]),
                grace_period_seconds=0,
                preconditions={"uid": meta["uid"]},
            )
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    def _forget(self, uid: str) -> None:
        self._touched.pop(uid, None)
        self.probes.remove(uid)
        self.status.forget(uid)
        self.backoff.forget_prefix(uid + "/")
        self._network_waiting.discard(uid)
        for key in [k for k in self._waiting if k[0] == uid]:
            del self._waiting[key]

    # -- status --------------------------------------------------------------------------------

    def _views(self, pod: Obj, rpod: RuntimePod, key: str) -> dict[str, ContainerView]:
        uid = rpod.uid
        out: dict[str, ContainerView] = {}
        for c in (pod.get("spec") or {}).get(key) or ():
            name = str(c["name"])
            latest = rpod.latest(name)
            previous = None
            if latest is not None:
                previous = next(
                    (x for x in rpod.containers if x.name == name and x.attempt == latest.attempt - 1), None
                )
            running = latest is not None and latest.state == RUNNING
            started = running and latest is not None and self.probes.started(uid, name, latest.id)
            ready = started
            if ready and latest is not None and key == "containers":
                r = self.probes.result(uid, name, READINESS, latest.id)
                ready = r is None or r
            if key == "initContainers":
                ready = latest is not None and latest.state == EXITED and latest.exit_code == 0
            waiting = self._waiting.get((uid, name))
            if waiting is not None and running:
                waiting = None
            out[name] = ContainerView(latest, previous, waiting, ready, started)
        return out

    def _status_target(self, pod: Obj) -> Obj | None:
        if static_pods.CONFIG_SOURCE in (_meta(pod).get("annotations") or {}) and not static_pods.is_mirror(pod):
            return self.pods.indexer.get_obj(str(_meta(pod).get("namespace")), str(_meta(pod).get("name")))
        return self.pods.indexer.get_obj(str(_meta(pod).get("namespace")), str(_meta(pod).get("name"))) or pod

    def _set_status(self, pod: Obj, rpod: RuntimePod, ip: str) -> None:
        target = self._status_target(pod)
        if target is None:
            return  # a static pod without its mirror yet: written once the mirror exists
        if not static_pods.is_mirror(target) and _uid(target) != rpod.uid:
            return
        status = compute_status(
            {**pod, "status": target.get("status") or {}},
            self._views(pod, rpod, "containers"),
            self._views(pod, rpod, "initContainers"),
            runtime=self._handler(pod),
            host_ip=self.cfg.node_ip,
            pod_ips=[ip] if ip else [],
            sandbox_ready=rpod.sandbox is not None,
            now=datetime.now(UTC),
        )
        self.status.set(rpod.uid, target, status)

    def _probe_target(self, uid: str, name: str) -> tuple[Obj, Obj, ContainerState] | None:
        pod = self.workers.pod(uid)
        rpod = self.pleg.pods.get(uid)
        if pod is None or rpod is None:
            return None
        c = next((x for x in (pod.get("spec") or {}).get("containers") or () if x.get("name") == name), None)
        st = rpod.latest(name)
        if c is None or st is None:
            return None
        ip = (rpod.sandbox.ip if rpod.sandbox is not None else "") or self.cfg.node_ip
        return {**pod, "status": {"podIP": ip}}, c, st

    # -- mirror pods ---------------------------------------------------------------------------

    async def _mirror_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._mirror_wake.wait(), 10.0)
            self._mirror_wake.clear()
            if not self.node.registered.is_set() or not self.pods.has_synced():
                continue
            try:
                await self.sync_mirrors()
            except (StatusError, ConnectionError) as e:
                log.warning("mirror pod sync failed: %s", e)
                await asyncio.sleep(2)
                self._mirror_wake.set()

    async def sync_mirrors(self) -> None:
        wanted = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in self.static.pods.values()}
        for mirror in self.pods.indexer.list():
            if not static_pods.is_mirror(mirror):
                continue
            meta = _meta(mirror)
            key = (str(meta.get("namespace")), str(meta.get("name")))
            static = wanted.get(key)
            stale = static is None or (meta.get("annotations") or {}).get(static_pods.CONFIG_MIRROR) != _uid(static)
            if stale or meta.get("deletionTimestamp"):
                await self._confirm_deletion(mirror)
        for key, want in wanted.items():
            existing = self.pods.indexer.get_obj(*key)
            if existing is not None:
                if not static_pods.is_mirror(existing):
                    continue  # a pod by that name that is not ours: leave it
                current = (_meta(existing).get("annotations") or {}).get(static_pods.CONFIG_MIRROR) == _uid(want)
                if current and not _meta(existing).get("deletionTimestamp"):
                    continue
            try:
                await self.client.create(PODS, static_pods.mirror_pod(want, self.cfg.node_name, self.node.uid), key[0])
            except StatusError as e:
                if e.code != 409:
                    raise
                continue
            log.info("created mirror pod %s/%s", *key)
            self.status.forget(_uid(want))
            self.workers.wake(_uid(want))
