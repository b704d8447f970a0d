"""The ``docker`` runtime: pods as Docker containers, networked by CNI.

Docker stays the one owner of images and containers; the kubelet keeps no database of its own.
Each pod is a sandbox container (``k8s_POD_<pod>_<ns>_<uid>_<n>``, a sleeping process with
``--network none``) whose network namespace the CNI plugins wire up, plus one container per
(app or init container, attempt) named as dockershim did (``k8s_<container>_<pod>_<ns>_<uid>_<attempt>``)
and joined to the sandbox's network and IPC namespaces. The container *name* is this runtime's
container id (Docker accepts names wherever it takes ids), so an id says which attempt it is.

Labels (upstream's dockershim names plus ``kubeha.node``) let a restarted kubelet re-adopt
everything by listing containers, and let several kubelets share one Docker engine. Per-pod
files live under ``<root-dir>/pods/<uid>/``: ``sandbox.json`` (the CNI result: pod IP),
``etc-hosts`` and ``resolv.conf`` (bind-mounted into every container).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from kubeha.api.core.pod import parse_quantity
from kubeha.kubelet import logs as crilog
from kubeha.kubelet.cni import CNI, CNIError, result_ips
from kubeha.kubelet.runtime import CREATED, EXITED, RUNNING, ContainerState, Mount, Obj, RuntimePod, Sandbox

log = logging.getLogger(__name__)

HANDLER = "docker"
API_VERSION = "v1.41"  # Docker 20.10
DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
DEFAULT_SANDBOX_IMAGE = "kubeha/demo:latest"
SANDBOX_COMMAND = ["sleep", "2147483647"]

L_NODE = "kubeha.node"
L_TYPE = "io.kubernetes.docker.type"
L_POD_NAME = "io.kubernetes.pod.name"
L_POD_NS = "io.kubernetes.pod.namespace"
L_POD_UID = "io.kubernetes.pod.uid"
L_CONTAINER = "io.kubernetes.container.name"
L_SANDBOX = "io.kubernetes.sandbox.id"
L_ATTEMPT = "annotation.io.kubernetes.container.restartCount"
TYPE_SANDBOX = "podsandbox"
TYPE_CONTAINER = "container"
PULL_BACKOFF_START = 10.0
PULL_BACKOFF_MAX = 300.0


class DockerError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"docker: {message} (HTTP {status})")
        self.status = status
        self.message = message


class ImagePullError(RuntimeError):
    """The image is not there and could not be pulled; ``reason`` is ErrImagePull or
    ImagePullBackOff, as the container's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# -- the Engine API client -------------------------------------------------------------------------


def socket_path(endpoint: str) -> str:
    """``unix:///run/docker.sock`` or a bare path -> the socket path."""
    return endpoint[len("unix://") :] if endpoint.startswith("unix://") else endpoint


def demux(buf: bytearray) -> list[tuple[int, bytes]]:
    """Complete frames of Docker's multiplexed stream (8-byte header: stream, 0, 0, 0, size
    big-endian), consumed from ``buf``; 1 is stdout, 2 stderr."""
    out: list[tuple[int, bytes]] = []
    while len(buf) >= 8:
        stream, size = buf[0], struct.unpack(">I", bytes(buf[4:8]))[0]
        if len(buf) < 8 + size:
            break
        out.append((stream, bytes(buf[8 : 8 + size])))
        del buf[: 8 + size]
    return out


class DockerClient:
    """A small asyncio client for the parts of the Engine API the kubelet uses."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT) -> None:
        self.path = socket_path(endpoint)
        self._session: aiohttp.ClientSession | None = None

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.path, limit=64),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def url(path: str) -> str:
        return f"http://docker/{API_VERSION}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        body: Any = None,
        data: bytes | AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """JSON (or None) for 2xx and for the statuses in ``ok``; DockerError otherwise."""
        items = params.items() if isinstance(params, Mapping) else (params or [])
        kwargs: dict[str, Any] = {"params": [(k, str(v)) for k, v in items]}
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = dict(headers)
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self._s().request(method, self.url(path), **kwargs) as resp:
            raw = await resp.read()
            if resp.status >= 300 and resp.status not in ok:
                msg = raw.decode(errors="replace")
                with contextlib.suppress(ValueError):
                    msg = str(json.loads(raw).get("message") or msg)
                raise DockerError(resp.status, msg.strip())
            if not raw or resp.status in ok:
                return None
            if "json" in resp.headers.get("Content-Type", ""):
                # /images/create, /images/load and /build stream one JSON object per line
                try:
                    return json.loads(raw)
                except ValueError:
                    return [json.loads(line) for line in raw.splitlines() if line.strip()]
            return raw

    async def stream(
        self, path: str, params: Mapping[str, Any], method: str = "GET", body: Any = None
    ) -> AsyncIterator[bytes]:
        kwargs: dict[str, Any] = {"params": {k: str(v) for k, v in params.items()}}
        if body is not None:
            kwargs["json"] = body
        async with self._s().request(method, self.url(path), **kwargs) as resp:
            if resp.status >= 300:
                raise DockerError(resp.status, (await resp.read()).decode(errors="replace").strip())
            async for chunk in resp.content.iter_any():
                yield chunk

    async def version(self) -> Obj:
        return dict(await self.request("GET", "/version"))

    async def inspect_container(self, cid: str) -> Obj | None:
        try:
            return dict(await self.request("GET", f"/containers/{quote(cid)}/json"))
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def inspect_image(self, image: str) -> Obj | None:
        try:
            return dict(await self.request("GET", f"/images/{quote(image, safe='/:@')}/json"))
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def list_containers(self, labels: list[str]) -> list[Obj]:
        filters = json.dumps({"label": labels})
        return list(await self.request("GET", "/containers/json", params={"all": 1, "filters": filters}) or [])

    async def create_container(self, name: str, config: Obj) -> str:
        out = await self.request("POST", "/containers/create", params={"name": name}, body=config)
        return str(out["Id"])

    async def start(self, cid: str) -> None:
        await self.request("POST", f"/containers/{quote(cid)}/start", ok=(304,))

    async def stop(self, cid: str, seconds: int) -> None:
        await self.request("POST", f"/containers/{quote(cid)}/stop", params={"t": seconds}, ok=(304, 404))

    async def kill(self, cid: str) -> None:
        await self.request("POST", f"/containers/{quote(cid)}/kill", ok=(404, 409))

    async def remove(self, cid: str) -> None:
        await self.request("DELETE", f"/containers/{quote(cid)}", params={"force": 1, "v": 1}, ok=(404,))

    async def pull(self, image: str, timeout: float) -> None:  # noqa: ASYNC109
        name, tag = split_image(image)
        out = await self.request("POST", "/images/create", params={"fromImage": name, "tag": tag}, timeout=timeout)
        _raise_stream_error(out)

    async def import_image(self, rootfs_tar: bytes, repo: str, tag: str, changes: list[str]) -> None:
        """``docker import``: a root filesystem tarball as a one-layer image."""
        params = [("fromSrc", "-"), ("repo", repo), ("tag", tag), *(("changes", c) for c in changes)]
        out = await self.request(
            "POST", "/images/create", params=params, data=rootfs_tar, headers={"Content-Type": "application/x-tar"}
        )
        _raise_stream_error(out)

    async def load_image(self, data: bytes | AsyncIterator[bytes]) -> list[str]:
        """``docker load``: an image archive (``docker save`` format); the loaded image names."""
        out = await self.request(
            "POST", "/images/load", params={"quiet": 1}, data=data, headers={"Content-Type": "application/x-tar"}
        )
        _raise_stream_error(out)
        msgs = out if isinstance(out, list) else [out]
        return [str(m.get("stream", "")).strip() for m in msgs if isinstance(m, dict) and m.get("stream")]

    async def exec_run(self, cid: str, cmd: list[str]) -> tuple[int, bytes, bytes]:
        created = await self.request(
            "POST",
            f"/containers/{quote(cid)}/exec",
            body={"Cmd": cmd, "AttachStdout": True, "AttachStderr": True, "Tty": False},
        )
        eid = str(created["Id"])
        buf = bytearray()
        out, err = bytearray(), bytearray()
        async for chunk in self.stream(f"/exec/{eid}/start", {}, method="POST", body={"Detach": False, "Tty": False}):
            buf.extend(chunk)
            for stream, data in demux(buf):
                (err if stream == 2 else out).extend(data)
        info = await self.request("GET", f"/exec/{eid}/json")
        return int(info.get("ExitCode") or 0), bytes(out), bytes(err)


def _raise_stream_error(out: Any) -> None:
    """Streamed image operations report failures in-band, with HTTP 200."""
    for msg in out if isinstance(out, list) else [out]:
        if isinstance(msg, dict) and msg.get("error"):
            raise DockerError(500, str(msg["error"]))


def split_image(image: str) -> tuple[str, str]:
    """``repo[:tag][@digest]`` -> (repo, tag or digest), tag ``latest`` when none."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


# -- request building (pure) -----------------------------------------------------------------------


def _meta(pod: Obj) -> Obj:
    return pod.get("metadata") or {}


def sandbox_name(pod: Obj, attempt: int = 0) -> str:
    m = _meta(pod)
    return f"k8s_POD_{m.get('name')}_{m.get('namespace')}_{m.get('uid')}_{attempt}"


def container_name(pod: Obj, container: Obj, attempt: int) -> str:
    m = _meta(pod)
    return f"k8s_{container.get('name')}_{m.get('name')}_{m.get('namespace')}_{m.get('uid')}_{attempt}"


def parse_name(name: str) -> tuple[str, str, int]:
    """(pod uid, container name, attempt) of one of our container names."""
    parts = name.lstrip("/").split("_")
    if len(parts) != 6 or parts[0] != "k8s":
        raise ValueError(f"not a kubelet container name: {name!r}")
    return parts[4], parts[1], int(parts[5])


def pod_labels(pod: Obj, node: str) -> dict[str, str]:
    m = _meta(pod)
    return {
        L_NODE: node,
        L_POD_NAME: str(m.get("name") or ""),
        L_POD_NS: str(m.get("namespace") or ""),
        L_POD_UID: str(m.get("uid") or ""),
    }


def host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def sandbox_config(pod: Obj, node: str, image: str) -> Obj:
    spec = pod.get("spec") or {}
    labels = {**pod_labels(pod, node), L_TYPE: TYPE_SANDBOX, L_CONTAINER: "POD"}
    host_cfg: Obj = {
        "NetworkMode": "host" if host_network(pod) else "none",
        "IpcMode": "host" if spec.get("hostIPC") else "shareable",
        "PidMode": "host" if spec.get("hostPID") else "",
        "RestartPolicy": {"Name": "no"},
        "LogConfig": {"Type": "json-file"},
        "Init": False,
    }
    cfg: Obj = {"Image": image, "Cmd": SANDBOX_COMMAND, "Entrypoint": [], "Labels": labels, "HostConfig": host_cfg}
    if not host_network(pod):
        cfg["Hostname"] = str(spec.get("hostname") or _meta(pod).get("name") or "")[:63]
    return cfg


def _milli(q: Any) -> int:
    return int(parse_quantity(q) * 1000)


def resources_config(container: Obj) -> Obj:
    """cpu limit -> CFS quota (period 100 ms), cpu request -> shares, memory limit -> Memory."""
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: Obj = {}
    cpu_req = requests.get("cpu", limits.get("cpu"))
    if cpu_req is not None:
        out["CpuShares"] = max(2, _milli(cpu_req) * 1024 // 1000)
    if limits.get("cpu") is not None:
        out["CpuPeriod"] = 100000
        out["CpuQuota"] = max(1000, _milli(limits["cpu"]) * 100000 // 1000)
    if limits.get("memory") is not None:
        out["Memory"] = int(parse_quantity(limits["memory"]).to_integral_value())
    return out


def security_config(pod: Obj, container: Obj) -> tuple[str, Obj]:
    """(User, HostConfig fields) from the container's securityContext over the pod's."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    gid = sc.get("runAsGroup", psc.get("runAsGroup"))
    user = ""
    if uid is not None:
        user = str(uid) + (f":{gid}" if gid is not None else "")
    host: Obj = {}
    if sc.get("privileged"):
        host["Privileged"] = True
    if sc.get("readOnlyRootFilesystem"):
        host["ReadonlyRootfs"] = True
    caps = sc.get("capabilities") or {}
    if caps.get("add"):
        host["CapAdd"] = [str(c) for c in caps["add"]]
    if caps.get("drop"):
        host["CapDrop"] = [str(c) for c in caps["drop"]]
    groups = psc.get("supplementalGroups") or []
    if groups:
        host["GroupAdd"] = [str(g) for g in groups]
    return user, host


def bind(m: Mount) -> str:
    return f"{m.host_path}:{m.container_path}:{'ro' if m.read_only else 'rw'}"


def container_config(
    pod: Obj,
    container: Obj,
    sandbox_id: str,
    node: str,
    env: Mapping[str, str],
    mounts: list[Mount],
    attempt: int,
) -> Obj:
    spec = pod.get("spec") or {}
    labels = {
        **pod_labels(pod, node),
        L_TYPE: TYPE_CONTAINER,
        L_CONTAINER: str(container.get("name") or ""),
        L_SANDBOX: sandbox_id,
        L_ATTEMPT: str(attempt),
    }
    joined = f"container:{sandbox_id}"
    user, sec = security_config(pod, container)
    host: Obj = {
        "NetworkMode": joined,
        "IpcMode": joined,
        "PidMode": joined if spec.get("shareProcessNamespace") or spec.get("hostPID") else "",
        "Binds": [bind(m) for m in mounts],
        "RestartPolicy": {"Name": "no"},
        "LogConfig": {"Type": "json-file"},
        **resources_config(container),
        **sec,
    }
    cfg: Obj = {
        "Image": str(container.get("image") or ""),
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": labels,
        "Tty": bool(container.get("tty")),
        "OpenStdin": bool(container.get("stdin")),
        "StdinOnce": bool(container.get("stdinOnce")),
        "AttachStdin": False,
        "HostConfig": host,
    }
    # command replaces the image's entrypoint, args its cmd (upstream's rules)
    if container.get("command"):
        cfg["Entrypoint"] = [str(a) for a in container["command"]]
        cfg["Cmd"] = [str(a) for a in container.get("args") or []]
    elif container.get("args"):
        cfg["Cmd"] = [str(a) for a in container["args"]]
    if container.get("workingDir"):
        cfg["WorkingDir"] = str(container["workingDir"])
    if user:
        cfg["User"] = user
    # no ExposedPorts: Docker refuses them with a container: network mode (ports are the sandbox's)
    return cfg


# -- /etc/hosts and /etc/resolv.conf ---------------------------------------------------------------


def hosts_file(pod: Obj, pod_ip: str) -> str:
    """The kubelet-managed /etc/hosts: localhost, the pod's own name, hostAliases."""
    spec = pod.get("spec") or {}
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    hostname = str(spec.get("hostname") or _meta(pod).get("name") or "")
    if pod_ip:
        if spec.get("subdomain"):
            ns = _meta(pod).get("namespace")
            lines.append(f"{pod_ip}\t{hostname}.{spec['subdomain']}.{ns}.svc.cluster.local\t{hostname}")
        else:
            lines.append(f"{pod_ip}\t{hostname}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for a in aliases:
            lines.append(f"{a.get('ip')}\t" + "\t".join(str(h) for h in a.get("hostnames") or ()))
    return "\n".join(lines) + "\n"


def _host_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
        elif parts[0] == "options":
            options.extend(parts[1:])
    return servers, search, options


def resolv_conf(pod: Obj, cluster_dns: list[str], cluster_domain: str, host_resolv: str) -> str:
    """resolv.conf for the pod's dnsPolicy (ClusterFirst, ClusterFirstWithHostNet, Default, None)
    merged with its dnsConfig, as upstream: cluster search path first, ndots:5."""
    spec = pod.get("spec") or {}
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    if policy == "ClusterFirst" and host_network(pod):
        policy = "Default"  # hostNetwork pods only use cluster DNS with ClusterFirstWithHostNet
    h_servers, h_search, h_options = _host_resolv(host_resolv)
    servers: list[str]
    search: list[str]
    options: list[str]
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        ns = _meta(pod).get("namespace") or "default"
        servers = list(cluster_dns)
        search = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain, *h_search]
        options = ["ndots:5"]
    elif policy == "None":
        servers, search, options = [], [], []
    else:  # Default (or ClusterFirst without cluster DNS: upstream falls back to the node's)
        servers, search, options = h_servers, h_search, h_options
    cfg = spec.get("dnsConfig") or {}
    servers += [str(s) for s in cfg.get("nameservers") or () if str(s) not in servers]
    search += [str(s) for s in cfg.get("searches") or () if str(s) not in search]
    for opt in cfg.get("options") or ():
        name = str(opt.get("name") or "")
        options = [o for o in options if o.split(":")[0] != name]
        options.append(f"{name}:{opt['value']}" if opt.get("value") is not None else name)
    lines = [f"nameserver {s}" for s in servers[:3]]
    if search:
        lines.append("search " + " ".join(search[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


# -- the runtime -----------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not value or str(value).startswith("0001-"):
        return None
    try:
        return crilog.parse_timestamp(str(value))
    except ValueError:
        return None


def container_state(name: str, info: Obj) -> ContainerState:
    """A ContainerState from ``GET /containers/{id}/json``."""
    _, cname, attempt = parse_name(name)
    st = info.get("State") or {}
    status = str(st.get("Status") or "")
    base: Obj = {
        "id": name,
        "name": cname,
        "attempt": attempt,
        "image": str((info.get("Config") or {}).get("Image") or ""),
        "image_id": "docker-pullable://" + str(info.get("Image") or ""),
        "pid": int(st.get("Pid") or 0),
        "started_at": _time(st.get("StartedAt")),
    }
    if status in ("running", "paused", "restarting"):
        return ContainerState(state=RUNNING, **base)
    if status == "created":
        return ContainerState(state=CREATED, **base)
    code = int(st.get("ExitCode") or 0)
    reason = "OOMKilled" if st.get("OOMKilled") else ("Completed" if code == 0 else "Error")
    return ContainerState(
        state=EXITED,
        finished_at=_time(st.get("FinishedAt")),
        exit_code=code,
        reason=reason,
        message=str(st.get("Error") or ""),
        **base,
    )


@dataclass
class _PullFailure:
    until: float
    delay: float
    message: str


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
        self._inspect: dict[str, tuple[str, str, Obj]] = {}  # name -> (docker id, list State, inspect)
        self._pull_failures: dict[str, _PullFailure] = {}
        self._sandbox_locks: dict[str, asyncio.Lock] = {}

    async def connect(self) -> None:
        """Ask the engine its version (nodeInfo.containerRuntimeVersion); fails when it is down."""
        v = await self.client.version()
        self.version = f"docker://{v.get('Version', 'unknown')}"

    async def close(self) -> None:
        await self.client.close()

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    # -- listing ------------------------------------------------------------------------------

    async def _state_of(self, entry: Obj) -> tuple[str, Obj] | None:
        name = str((entry.get("Names") or ["/"])[0]).lstrip("/")
        key = (str(entry.get("Id")), str(entry.get("State")))
        cached = self._inspect.get(name)
        if cached is not None and cached[:2] == key:
            return name, cached[2]
        info = await self.client.inspect_container(name)
        if info is None:
            return None
        self._inspect[name] = (*key, info)
        return name, info

    async def list_pods(self) -> list[RuntimePod]:
        entries = await self.client.list_containers([f"{L_NODE}={self.node}"])
        pods: dict[str, RuntimePod] = {}
        states = await asyncio.gather(*(self._state_of(e) for e in entries))
        seen: set[str] = set()
        for entry, got in zip(entries, states, strict=True):
            if got is None:
                continue
            name, info = got
            seen.add(name)
            labels = entry.get("Labels") or {}
            uid = str(labels.get(L_POD_UID) or "")
            pod = pods.get(uid)
            if pod is None:
                pod = pods[uid] = RuntimePod(uid, str(labels.get(L_POD_NAME)), str(labels.get(L_POD_NS)))
            if labels.get(L_TYPE) == TYPE_SANDBOX:
                if (info.get("State") or {}).get("Status") == "running":
                    ips = tuple(self._saved_ips(uid, name))
                    if (info.get("HostConfig") or {}).get("NetworkMode") == "host":
                        ips = (self.node_ip,)
                    pod.sandbox = Sandbox(name, ips[0] if ips else "", ips)
                continue
            with contextlib.suppress(ValueError):
                pod.containers.append(container_state(name, info))
        for gone in set(self._inspect) - seen:
            del self._inspect[gone]
        return list(pods.values())

    def _saved_ips(self, uid: str, sandbox: str) -> list[str]:
        try:
            saved = json.loads((self.pod_dir(uid) / "sandbox.json").read_text())
        except (OSError, ValueError):
            return []
        if saved.get("sandbox") != sandbox:
            return []
        return [str(i) for i in saved.get("ips") or ()]

    # -- sandboxes ----------------------------------------------------------------------------

    async def run_sandbox(self, pod: Obj) -> Sandbox:
        uid = str(_meta(pod).get("uid") or "")
        lock = self._sandbox_locks.setdefault(uid, asyncio.Lock())
        async with lock:
            return await self._run_sandbox(pod, uid)

    async def _run_sandbox(self, pod: Obj, uid: str) -> Sandbox:
        pdir = self.pod_dir(uid)
        for attempt in range(0, 100):
            name = sandbox_name(pod, attempt)
            info = await self.client.inspect_container(name)
            if info is None:
                break
            if (info.get("State") or {}).get("Status") == "running":
                ips = [self.node_ip] if host_network(pod) else self._saved_ips(uid, name)
                if ips:
                    return Sandbox(name, ips[0] if ips else "", tuple(ips))
                await self._setup_network(pod, uid, name, info)  # created but not networked yet
                ips = self._saved_ips(uid, name)
                return Sandbox(name, ips[0] if ips else "", tuple(ips))
            # the sandbox died: release its network and start a new one (next attempt)
            await self._teardown_network(pod, uid, name)
            await self.client.remove(name)
        else:
            raise RuntimeError(f"too many sandboxes for pod {uid}")
        await asyncio.to_thread(pdir.mkdir, parents=True, exist_ok=True)
        await self.ensure_image(self.sandbox_image, "IfNotPresent")
        await self.client.create_container(name, sandbox_config(pod, self.node, self.sandbox_image))
        await self.client.start(name)
        info = await self.client.inspect_container(name) or {}
        if host_network(pod):
            ips = [self.node_ip]
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

    async def _setup_network(self, pod: Obj, uid: str, name: str, info: Obj) -> None:
        pid = int((info.get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise RuntimeError(f"sandbox {name} has no process")
        conflist = self.cni.conflist(self.pod_cidr())
        result = await self.cni.add(conflist, pod, name, f"/proc/{pid}/ns/net")
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
        uid = str(_meta(pod).get("uid") or "")
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
        # volumes (tmpfs) are unmounted by the volume manager before this
        await asyncio.to_thread(shutil.rmtree, self.pod_dir(pod_uid), True)

    # -- images -------------------------------------------------------------------------------

    async def ensure_image(self, image: str, policy: str) -> None:
        """Pull per imagePullPolicy. Offline clusters: with ``Always`` a failed pull falls back
        to the local copy when there is one (logged), so ``:latest`` demo images run."""
        present = await self.client.inspect_image(image) is not None
        if present and policy != "Always":
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

    # -- containers ---------------------------------------------------------------------------

    async def create_container(
        self, pod: Obj, container: Obj, sandbox: Sandbox, env: Mapping[str, str], mounts: list[Mount], attempt: int
    ) -> str:
        uid = str(_meta(pod).get("uid") or "")
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
        await self.client.remove(name)  # a leftover of an interrupted attempt
        try:
            await self.client.create_container(name, cfg)
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
        try:
            return await asyncio.wait_for(self.client.exec_run(container_id, cmd), timeout)
        except DockerError as e:
            return 126, b"", e.message.encode()

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


class MultiRuntime:
    """The kubelet's runtime when it serves several handlers (``docker`` by default, ``host``):
    sandbox calls go by the pod's ``runtimeClassName``, container calls by the id's shape
    (Docker ids are our ``k8s_...`` names; host ids are ``<uid>_<name>_<attempt>``)."""

    def __init__(self, runtimes: Mapping[str, Any], default: str) -> None:
        self.runtimes = dict(runtimes)
        self.default = default
        self.name = default

    @property
    def version(self) -> str:
        return str(self.runtimes[self.default].version)

    def handler(self, pod: Obj) -> str:
        return str((pod.get("spec") or {}).get("runtimeClassName") or self.default)

    def serves(self, runtime_class: str) -> bool:
        return (runtime_class or self.default) in self.runtimes

    def _by_id(self, cid: str) -> Any:
        if cid.startswith("k8s_") and HANDLER in self.runtimes:
            return self.runtimes[HANDLER]
        return self.runtimes.get("host") or self.runtimes[self.default]

    def handler_of(self, cid: str) -> str:
        rt = self._by_id(cid)
        return next(h for h, r in self.runtimes.items() if r is rt)

    def __getattr__(self, attr: str) -> Any:
        # container-level calls added to the interface later (exec_stream, ...) route by id
        def call(container_id: str, *args: Any, **kwargs: Any) -> Any:
            return getattr(self._by_id(container_id), attr)(container_id, *args, **kwargs)

        if attr.startswith("_"):
            raise AttributeError(attr)
        return call

    async def list_pods(self) -> list[RuntimePod]:
        out: list[RuntimePod] = []
        for rt in self.runtimes.values():
            out.extend(await rt.list_pods())
        return out

    async def _holder(self, uid: str) -> Any:
        for rt in self.runtimes.values():
            if any(p.uid == uid for p in await rt.list_pods()):
                return rt
        return None

    async def run_sandbox(self, pod: Obj) -> Sandbox:
        return await self.runtimes[self.handler(pod)].run_sandbox(pod)  # type: ignore[no-any-return]

    async def stop_sandbox(self, pod_uid: str) -> None:
        rt = await self._holder(pod_uid)
        if rt is not None:
            await rt.stop_sandbox(pod_uid)

    async def remove_sandbox(self, pod_uid: str) -> None:
        rt = await self._holder(pod_uid)
        if rt is not None:
            await rt.remove_sandbox(pod_uid)

    async def create_container(
        self, pod: Obj, container: Obj, sandbox: Sandbox, env: Mapping[str, str], mounts: list[Mount], attempt: int
    ) -> str:
        rt = self.runtimes[self.handler(pod)]
        return await rt.create_container(pod, container, sandbox, env, mounts, attempt)  # type: ignore[no-any-return]

    async def start_container(self, container_id: str) -> None:
        await self._by_id(container_id).start_container(container_id)

    async def stop_container(self, container_id: str, grace_seconds: float) -> None:
        await self._by_id(container_id).stop_container(container_id, grace_seconds)

    async def remove_container(self, container_id: str) -> None:
        await self._by_id(container_id).remove_container(container_id)

    async def container_status(self, container_id: str) -> ContainerState | None:
        return await self._by_id(container_id).container_status(container_id)  # type: ignore[no-any-return]

    async def exec_sync(
        self,
        container_id: str,
        cmd: list[str],
        timeout: float,  # noqa: ASYNC109
    ) -> tuple[int, bytes, bytes]:
        return await self._by_id(container_id).exec_sync(container_id, cmd, timeout)  # type: ignore[no-any-return]

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        return self._by_id(container_id).logs(  # type: ignore[no-any-return]
            container_id, follow=follow, tail=tail, since=since, timestamps=timestamps, previous=previous
        )
