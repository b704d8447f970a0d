"""The ``docker`` runtime: pods as Docker containers, networked by CNI.

Docker stays the one owner of images and containers; the kubelet keeps no database of its own.
Each pod is a sandbox container (``k8s_POD_<pod>_<ns>_<uid>_<n>``, a sleeping process with
``--network none``) whose network namespace the CNI plugins wire up, plus one container per
(app or init container, attempt) named as dockershim did (``k8s_<container>_<pod>_<ns>_<uid>_<attempt>``)
and joined to the sandbox's network and IPC namespaces. The container *name* is this runtime's
container id (Docker accepts names wherever it takes ids), so an id says which attempt it is.

Labels (upstream's dockershim names plus ``kubeha.node``) let a restarted kubelet re-adopt
everything by listing containers, and let several kubelets share one Docker engine. Per-pod
files live under ``<root-dir>/pods/<uid>/``: ``sandbox.json`` (the CNI result: pod IP, and
the plugin chain the ADD ran, which DEL and CHECK repeat), ``etc-hosts`` and ``resolv.conf``
(bind-mounted into every container).

The startup path keeps Engine API calls few: ``run_sandbox`` (which the kubelet calls before
each container start) answers from memory while the event stream is connected, present images
are inspected once per reference, and a container create removes a leftover of its name only
when the engine answers 409.

Modules: ``dockerapi`` (the Engine API client), ``dockerspec`` (pure translations of pod specs),
``dockerexec`` (interactive exec), this one (the runtime), ``multi`` (routing between runtimes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from kubeha.kubelet.cni import CNI, CNIError, chain_for, result_ips
from kubeha.kubelet.runtime import ContainerState, ExecProcess, Mount, Obj, RuntimePod, Sandbox
from kubeha.kubelet.runtime.dockerapi import DEFAULT_ENDPOINT, STDERR, DockerClient, DockerError, demux
from kubeha.kubelet.runtime.dockerexec import DockerExec
from kubeha.kubelet.runtime.dockerspec import (
    DEFAULT_SANDBOX_IMAGE,
    HANDLER,
    L_NODE,
    L_POD_NAME,
    L_POD_NS,
    L_POD_UID,
    L_TYPE,
    TYPE_SANDBOX,
    container_config,
    container_name,
    container_state,
    host_network,
    hosts_file,
    meta,
    parse_name,
    resolv_conf,
    sandbox_config,
    sandbox_name,
)

log = logging.getLogger(__name__)

PULL_BACKOFF_START = 10.0
PULL_BACKOFF_MAX = 300.0
# container events that change what a relist would report for the pod
EVENTS = ("create", "start", "die", "oom", "destroy")
EVENTS_BACKOFF_START = 0.5
EVENTS_BACKOFF_MAX = 30.0


class ImagePullError(RuntimeError):
    """The image is not there and could not be pulled; ``reason`` is ErrImagePull or
    ImagePullBackOff, as the container's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _PullFailure:
    until: float
    delay: float
    message: str


def status_key(status: Any) -> str:
    """The stable part of a ``/containers/json`` Status ("Up 3 seconds" -> "Up",
    "Exited (137) 2 minutes ago" -> "Exited (137)"): what changes only when the state does."""
    m = re.match(r"[A-Za-z]+(?: \(-?\d+\))?", str(status or ""))
    return m.group(0) if m else ""


@dataclass
class _Listed:
    """A container as the last relist saw it: the list entry's key and what its inspect said."""

    name: str
    key: tuple[str, str, str]  # (docker id, State, status_key(Status))
    container: ContainerState | None = None  # app/init containers
    sandbox_running: bool = False
    host_network: bool = False


class DockerRuntime:
    """Runtime (see ``runtime/__init__.py``) backed by the Docker Engine and CNI."""

    name = HANDLER

    def __init__(
        self,
        endpoint: str,
        node_name: str,
        root_dir: str,
        *,
        node_ip: str = "",
        pod_cidr: Callable[[], str] = lambda: "",
        cni_bin_dirs: list[str] | None = None,
        cni_conf_dir: str = "",
        cluster_dns: list[str] | None = None,
        cluster_domain: str = "cluster.local",
        sandbox_image: str = DEFAULT_SANDBOX_IMAGE,
        host_resolv_conf: str = "/etc/resolv.conf",
        pull_timeout: float = 60.0,
    ) -> None:
        self.client = DockerClient(endpoint or DEFAULT_ENDPOINT)
        self.node = node_name
        self.node_ip = node_ip
        self.root = Path(root_dir) / "pods"
        self.pod_cidr = pod_cidr
        self.cni = CNI(cni_bin_dirs or [], cni_conf_dir, str(Path(root_dir) / "cni"))
        self.cluster_dns = cluster_dns or []
        self.cluster_domain = cluster_domain
        self.sandbox_image = sandbox_image
        self.host_resolv_conf = host_resolv_conf
        self.pull_timeout = pull_timeout
        self.version = "docker://unknown"
        self._inspect: dict[str, _Listed] = {}  # container name -> what its last inspect said
        # containers an event named since their last inspect: Docker sends "die" before its
        # container list shows the exit, so the list alone would keep them "running"
        self._dirty: set[str] = set()
        self._ips: dict[tuple[str, str], tuple[str, ...]] = {}  # (pod uid, sandbox name) -> pod IPs
        self._pull_failures: dict[str, _PullFailure] = {}
        self._sandbox_locks: dict[str, asyncio.Lock] = {}
        # pod uid -> its sandbox, running and networked as this runtime last set it up or saw
        # it: run_sandbox answers from here (the kubelet calls it before every container start)
        # while the event stream is connected, since a "die"/"destroy" event of the sandbox
        # drops the entry; without a live stream every call inspects
        self._sandboxes: dict[str, Sandbox] = {}
        self._events_live = False
        # images known present (by the reference the pod names): no inspect before each create;
        # a create refused for a missing image drops the reference, so the next attempt pulls
        self._images: set[str] = set()

    async def connect(self) -> None:
        """Ask the engine its version (nodeInfo.containerRuntimeVersion); fails when it is down."""
        v = await self.client.version()
        self.version = f"docker://{v.get('Version', 'unknown')}"

    async def close(self) -> None:
        await self.client.close()

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    # -- listing ------------------------------------------------------------------------------

    async def _inspect_listed(
        self, name: str, key: tuple[str, str, str], labels: Mapping[str, str]
    ) -> tuple[str, _Listed | None]:
        info = await self.client.inspect_container(name)
        if info is None:  # removed since the list
            self._inspect.pop(name, None)
            return name, None
        got = _Listed(name, key)
        if labels.get(L_TYPE) == TYPE_SANDBOX:
            got.sandbox_running = (info.get("State") or {}).get("Status") == "running"
            got.host_network = (info.get("HostConfig") or {}).get("NetworkMode") == "host"
        else:
            with contextlib.suppress(ValueError):
                got.container = container_state(name, info)
        self._inspect[name] = got
        return name, got

    async def list_pods(self) -> list[RuntimePod]:
        """One ``GET /containers/json`` (it carries labels and state); a container is inspected
        only when it is new or its state moved since the last relist, so a steady node's relist
        inspects nothing."""
        entries = await self.client.list_containers([f"{L_NODE}={self.node}"])
        listed: list[tuple[str, tuple[str, str, str], Mapping[str, str]]] = []
        for e in entries:
            name = str((e.get("Names") or ["/"])[0]).lstrip("/")
            key = (str(e.get("Id")), str(e.get("State")), status_key(e.get("Status")))
            listed.append((name, key, e.get("Labels") or {}))
        dirty = set(self._dirty)  # inspects from here on see what those events announced
        stale = [x for x in listed if x[0] in dirty or (c := self._inspect.get(x[0])) is None or c.key != x[1]]
        # this call's own inspects win over the cache (a concurrent relist may have rewritten it)
        fresh = dict(await asyncio.gather(*(self._inspect_listed(*x) for x in stale))) if stale else {}
        self._dirty -= dirty
        pods: dict[str, RuntimePod] = {}
        seen: set[str] = set()
        for name, _, labels in listed:
            got = fresh[name] if name in fresh else self._inspect.get(name)
            if got is None:
                continue
            seen.add(name)
            uid = str(labels.get(L_POD_UID) or "")
            pod = pods.get(uid)
            if pod is None:
                pod = pods[uid] = RuntimePod(uid, str(labels.get(L_POD_NAME)), str(labels.get(L_POD_NS)))
            if labels.get(L_TYPE) == TYPE_SANDBOX:
                if got.sandbox_running:
                    ips = (self.node_ip,) if got.host_network else self._saved_ips(uid, name)
                    pod.sandbox = Sandbox(name, ips[0] if ips else "", ips)
                else:
                    self._sandbox_gone(uid, name)
            elif got.container is not None:
                pod.containers.append(got.container)
        for gone in set(self._inspect) - seen:
            del self._inspect[gone]
        for gone_uid in {u for u, _ in self._ips} - set(pods):
            self._forget_ips(gone_uid)
        for gone_uid in set(self._sandboxes) - set(pods):
            self._sandbox_gone(gone_uid)
        return list(pods.values())

    def _saved_ips(self, uid: str, sandbox: str) -> tuple[str, ...]:
        """The pod IPs CNI gave ``sandbox`` (from sandbox.json; remembered until it is rewritten)."""
        cached = self._ips.get((uid, sandbox))
        if cached is not None:
            return cached
        try:
            saved = json.loads((self.pod_dir(uid) / "sandbox.json").read_text())
        except (OSError, ValueError):
            return ()
        ips = tuple(str(i) for i in saved.get("ips") or ()) if saved.get("sandbox") == sandbox else ()
        if ips:
            self._ips[(uid, sandbox)] = ips
        return ips

    def _forget_ips(self, uid: str) -> None:
        for k in [k for k in self._ips if k[0] == uid]:
            del self._ips[k]

    # -- sandboxes ----------------------------------------------------------------------------

    async def run_sandbox(self, pod: Obj) -> Sandbox:
        uid = str(meta(pod).get("uid") or "")
        lock = self._sandbox_locks.setdefault(uid, asyncio.Lock())
        async with lock:
            known = self._sandboxes.get(uid)
            if known is not None and self._events_live:
                return known
            sandbox = await self._run_sandbox(pod, uid)
            self._sandboxes[uid] = sandbox
            return sandbox

    def _sandbox_gone(self, uid: str, name: str = "") -> None:
        """Forget the cached sandbox of ``uid`` (only if it is ``name``, when given)."""
        known = self._sandboxes.get(uid)
        if known is not None and (not name or known.id == name):
            del self._sandboxes[uid]

    async def _run_sandbox(self, pod: Obj, uid: str) -> Sandbox:
        pdir = self.pod_dir(uid)
        for attempt in range(0, 100):
            name = sandbox_name(pod, attempt)
            info = await self.client.inspect_container(name)
            if info is None:
                break
            if (info.get("State") or {}).get("Status") == "running":
                ips = (self.node_ip,) if host_network(pod) else self._saved_ips(uid, name)
                if ips:
                    return Sandbox(name, ips[0] if ips else "", tuple(ips))
                await self._setup_network(pod, uid, name, info)  # created but not networked yet
                ips = self._saved_ips(uid, name)
                return Sandbox(name, ips[0] if ips else "", tuple(ips))
            # the sandbox died: release its network and start a new one (next attempt)
            self._sandbox_gone(uid, name)
            await self._teardown_network(pod, uid, name)
            await self.client.remove(name)
        else:
            raise RuntimeError(f"too many sandboxes for pod {uid}")
        await asyncio.to_thread(pdir.mkdir, parents=True, exist_ok=True)
        await self.ensure_image(self.sandbox_image, "IfNotPresent")
        await self._create(name, sandbox_config(pod, self.node, self.sandbox_image))
        await self.client.start(name)
        info = await self.client.inspect_container(name) or {}
        if host_network(pod):
            ips = (self.node_ip,)
            await self._write_saved(uid, {"sandbox": name, "ips": [], "result": None})
        else:
            try:
                await self._setup_network(pod, uid, name, info)
            except BaseException:
                await self.client.remove(name)
                raise
            ips = self._saved_ips(uid, name)
        await self._write_pod_files(pod, uid, ips[0] if ips else "")
        return Sandbox(name, ips[0] if ips else "", tuple(ips))

    async def _write_saved(self, uid: str, data: Obj) -> None:
        path = self.pod_dir(uid) / "sandbox.json"
        tmp = path.with_suffix(".tmp")
        await asyncio.to_thread(tmp.write_text, json.dumps(data))
        await asyncio.to_thread(os.replace, tmp, path)
        self._forget_ips(uid)  # after the last await: a relist in between may have cached the old IPs

    async def _setup_network(self, pod: Obj, uid: str, name: str, info: Obj) -> None:
        pid = int((info.get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise RuntimeError(f"sandbox {name} has no process")
        # the chain actually run is what sandbox.json keeps: DEL and CHECK repeat it
        conflist = chain_for(self.cni.conflist(self.pod_cidr()), pod)
        # Docker's "none" network mode brings the namespace's lo up itself (test_docker_runtime
        # checks it): no loopback plugin process
        result = await self.cni.add(conflist, pod, name, f"/proc/{pid}/ns/net", loopback=False)
        await self._write_saved(uid, {"sandbox": name, "ips": result_ips(result), "result": result, "conf": conflist})

    async def _teardown_network(self, pod: Obj, uid: str, name: str) -> None:
        try:
            saved = json.loads((self.pod_dir(uid) / "sandbox.json").read_text())
        except (OSError, ValueError):
            return
        if saved.get("sandbox") != name or not saved.get("result"):
            return
        info = await self.client.inspect_container(name)
        pid = int(((info or {}).get("State") or {}).get("Pid") or 0)
        netns = f"/proc/{pid}/ns/net" if pid > 0 else ""
        try:
            await self.cni.delete(saved.get("conf") or {}, pod, name, netns, saved["result"])
        except CNIError as e:
            log.warning("CNI DEL of %s: %s", name, e)
        saved["result"] = None
        await self._write_saved(uid, saved)

    async def check_network(self, pod: Obj) -> None:
        """CNI CHECK of a re-adopted sandbox (logged, not fatal)."""
        uid = str(meta(pod).get("uid") or "")
        try:
            saved = json.loads((self.pod_dir(uid) / "sandbox.json").read_text())
        except (OSError, ValueError):
            return
        if not saved.get("result"):
            return
        info = await self.client.inspect_container(str(saved["sandbox"])) or {}
        pid = int((info.get("State") or {}).get("Pid") or 0)
        if pid > 0:
            try:
                await self.cni.check(
                    saved.get("conf") or {}, pod, str(saved["sandbox"]), f"/proc/{pid}/ns/net", saved["result"]
                )
            except CNIError as e:
                log.warning("CNI CHECK of %s: %s", saved["sandbox"], e)

    async def _write_pod_files(self, pod: Obj, uid: str, ip: str) -> None:
        d = self.pod_dir(uid)
        try:
            host = await asyncio.to_thread(Path(self.host_resolv_conf).read_text)
        except OSError:
            host = ""
        await asyncio.to_thread((d / "etc-hosts").write_text, hosts_file(pod, ip))
        resolv = resolv_conf(pod, self.cluster_dns, self.cluster_domain, host)
        await asyncio.to_thread((d / "resolv.conf").write_text, resolv)

    async def _pod_containers(self, uid: str) -> list[Obj]:
        return await self.client.list_containers([f"{L_NODE}={self.node}", f"{L_POD_UID}={uid}"])

    async def stop_sandbox(self, pod_uid: str) -> None:
        self._sandbox_gone(pod_uid)
        entries = await self._pod_containers(pod_uid)
        apps = [e for e in entries if (e.get("Labels") or {}).get(L_TYPE) != TYPE_SANDBOX]
        await asyncio.gather(*(self.client.stop(str(e["Id"]), 0) for e in apps if e.get("State") == "running"))
        for e in entries:
            if (e.get("Labels") or {}).get(L_TYPE) == TYPE_SANDBOX:
                name = str((e.get("Names") or ["/"])[0]).lstrip("/")
                labels = e.get("Labels") or {}
                pod = {"metadata": {"uid": pod_uid, "name": labels.get(L_POD_NAME), "namespace": labels.get(L_POD_NS)}}
                await self._teardown_network(pod, pod_uid, name)
                await self.client.kill(name)

    async def remove_sandbox(self, pod_uid: str) -> None:
        await self.stop_sandbox(pod_uid)
        entries = await self._pod_containers(pod_uid)
        await asyncio.gather(*(self.client.remove(str(e["Id"])) for e in entries))
        for e in entries:
            self._inspect.pop(str((e.get("Names") or ["/"])[0]).lstrip("/"), None)
        self._sandbox_locks.pop(pod_uid, None)
        self._sandbox_gone(pod_uid)
        self._forget_ips(pod_uid)
        # volumes (tmpfs) are unmounted by the volume manager before this
        await asyncio.to_thread(shutil.rmtree, self.pod_dir(pod_uid), True)

    # -- images -------------------------------------------------------------------------------

    async def ensure_image(self, image: str, policy: str) -> None:
        """Pull per imagePullPolicy. Offline clusters: with ``Always`` a failed pull falls back
        to the local copy when there is one (logged), so ``:latest`` demo images run."""
        if policy != "Always" and image in self._images:
            return
        present = await self.client.inspect_image(image) is not None
        if present:
            self._images.add(image)
            if policy != "Always":
                return
        if policy == "Never":
            raise ImagePullError(
                "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
            )
        fail = self._pull_failures.get(image)
        now = time.monotonic()
        if fail is not None and now < fail.until:
            if present:
                return
            raise ImagePullError("ImagePullBackOff", f'Back-off pulling image "{image}": {fail.message}')
        try:
            await self.client.pull(image, self.pull_timeout)
        except (DockerError, aiohttp.ClientError, TimeoutError) as e:
            delay = min(PULL_BACKOFF_MAX, fail.delay * 2) if fail else PULL_BACKOFF_START
            msg = str(e) if not isinstance(e, TimeoutError) else "pull timed out"
            self._pull_failures[image] = _PullFailure(now + delay, delay, msg)
            if present:
                log.info("pulling %s failed (%s): using the local image", image, msg)
                return
            raise ImagePullError("ErrImagePull", f'failed to pull image "{image}": {msg}') from e
        self._pull_failures.pop(image, None)
        self._images.add(image)

    async def _create(self, name: str, cfg: Obj) -> None:
        """Create ``name``; a leftover of the same name (an attempt interrupted between its
        create and the kubelet noting it) answers 409: remove it and create once more. A
        refusal for a missing image forgets the image, so the next attempt pulls it."""
        try:
            await self.client.create_container(name, cfg)
            return
        except DockerError as e:
            if e.status == 404:
                self._images.discard(str(cfg.get("Image") or ""))
            if e.status != 409:
                raise
        await self.client.remove(name)
        await self.client.create_container(name, cfg)

    # -- containers ---------------------------------------------------------------------------

    async def create_container(
        self, pod: Obj, container: Obj, sandbox: Sandbox, env: Mapping[str, str], mounts: list[Mount], attempt: int
    ) -> str:
        uid = str(meta(pod).get("uid") or "")
        image = str(container.get("image") or "")
        await self.ensure_image(image, str(container.get("imagePullPolicy") or "IfNotPresent"))
        d = self.pod_dir(uid)
        extra: list[Mount] = []
        targets = {m.container_path for m in mounts}
        if not host_network(pod) and "/etc/hosts" not in targets and (d / "etc-hosts").exists():
            extra.append(Mount(str(d / "etc-hosts"), "/etc/hosts"))
        if "/etc/resolv.conf" not in targets and (d / "resolv.conf").exists():
            extra.append(Mount(str(d / "resolv.conf"), "/etc/resolv.conf"))
        # the kubelet's host-style PATH/HOSTNAME would hide the image's own PATH
        env = {k: v for k, v in env.items() if k not in ("PATH", "HOSTNAME")}
        name = container_name(pod, container, attempt)
        cfg = container_config(pod, container, sandbox.id, self.node, env, [*mounts, *extra], attempt)
        try:
            await self._create(name, cfg)
        except DockerError as e:
            raise RuntimeError(e.message) from e
        return name

    async def start_container(self, container_id: str) -> None:
        try:
            await self.client.start(container_id)
        except DockerError as e:
            raise RuntimeError(e.message) from e

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        # Docker sends the image's stop signal (SIGTERM), waits t seconds, then SIGKILL
        await self.client.stop(container_id, max(0, math.ceil(grace_seconds)))

    async def remove_container(self, container_id: str) -> None:
        await self.client.remove(container_id)
        self._inspect.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerState | None:
        info = await self.client.inspect_container(container_id)
        if info is None:
            return None
        return container_state(container_id, info)

    async def exec_sync(
        self,
        container_id: str,
        cmd: list[str],
        timeout: float,  # noqa: ASYNC109 - the runtime interface's per-call deadline
    ) -> tuple[int, bytes, bytes]:
        """Exec probes and hooks; an overrunning command is killed, then TimeoutError."""
        try:
            proc = await asyncio.wait_for(
                DockerExec.start(self.client, container_id, cmd, stdin=False, tty=False), timeout
            )
        except (FileNotFoundError, RuntimeError) as e:
            return 126, b"", str(e).encode()
        out, err = bytearray(), bytearray()

        async def drain(read: Callable[[], Any], into: bytearray) -> None:
            while chunk := await read():
                into.extend(chunk)

        async def run() -> int:
            await asyncio.gather(drain(proc.read_stdout, out), drain(proc.read_stderr, err))
            return await proc.wait()

        try:
            code = await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            await proc.kill()
            raise
        finally:
            await proc.close()
        return code, bytes(out), bytes(err)

    async def exec_stream(self, container_id: str, cmd: list[str], *, stdin: bool, tty: bool) -> ExecProcess:
        """``kubectl exec``: the command runs as a Docker exec instance (dockerexec.py)."""
        return await DockerExec.start(self.client, container_id, cmd, stdin=stdin, tty=tty)

    async def attach(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        """``kubectl attach`` (output only): what the container writes from now on, until it
        exits; nothing when it is gone or not running."""
        info = await self.client.inspect_container(container_id)
        if info is None or not (info.get("State") or {}).get("Running"):
            return
        tty = bool((info.get("Config") or {}).get("Tty"))
        try:
            conn = await self.client.attach(container_id)
        except DockerError as e:
            if e.status in (404, 409):  # removed or stopped meanwhile
                return
            raise
        buf = bytearray()
        try:
            while chunk := await conn.reader.read(65536):
                if tty:
                    yield "stdout", chunk
                    continue
                buf.extend(chunk)
                for stream, data in demux(buf):
                    yield ("stderr" if stream == STDERR else "stdout"), data
        except (ConnectionError, OSError) as e:
            log.debug("attach to %s: stream broke: %s", container_id, e)
        finally:
            conn.close()

    def watch_events(self) -> AsyncIterator[str]:
        """The pod uid of each container of this node that is created, started, dies, is
        OOM-killed or destroyed, as the engine reports it (``GET /events``); events from the
        moment of this call on. When the stream breaks it reconnects with back-off and yields
        ``""``: something may have been missed, relist everything."""
        return self._watch_events(time.time())

    async def _watch_events(self, since: float) -> AsyncIterator[str]:
        filters = {"type": ["container"], "event": list(EVENTS), "label": [f"{L_NODE}={self.node}"]}
        delay = EVENTS_BACKOFF_START
        first = True
        while True:
            try:
                # the first connection replays from the call on; after a break the relist ("") covers the gap
                async for ev in self.client.events(filters, since=since if first else None):
                    if not ev:  # connected
                        self._events_live = True
                        if not first:
                            yield ""
                        first = False
                        delay = EVENTS_BACKOFF_START
                        continue
                    attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                    uid = attrs.get(L_POD_UID)
                    if attrs.get("name"):
                        self._dirty.add(str(attrs["name"]))
                        if uid and (ev.get("Action") or ev.get("status")) in ("die", "destroy"):
                            self._sandbox_gone(str(uid), str(attrs["name"]))
                    if uid:
                        yield str(uid)
                log.info("docker event stream ended; reconnecting in %.1fs", delay)
            except (DockerError, aiohttp.ClientError, OSError) as e:
                log.info("docker event stream broke (%s); reconnecting in %.1fs", e, delay)
            finally:
                # events may be missed from here on: sandboxes are inspected again
                self._events_live = False
                self._sandboxes.clear()
            first = False
            await asyncio.sleep(delay)
            delay = min(EVENTS_BACKOFF_MAX, delay * 2)

    async def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        if previous:
            _, _, attempt = parse_name(container_id)
            if attempt == 0:
                return
            container_id = container_id.rsplit("_", 1)[0] + f"_{attempt - 1}"
        info = await self.client.inspect_container(container_id)
        if info is None:
            return
        tty = bool((info.get("Config") or {}).get("Tty"))
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": int(timestamps), "follow": int(follow)}
        params["tail"] = str(tail) if tail is not None and tail >= 0 else "all"
        if since is not None:
            params["since"] = f"{since.timestamp():.9f}"
        buf = bytearray()
        async for chunk in self.client.stream(f"/containers/{quote(container_id)}/logs", params):
            if tty:
                yield chunk
                continue
            buf.extend(chunk)
            for _, data in demux(buf):
                yield data
