"""The ``docker`` runtime's pure translations: pod specs into Engine API configs and back.

Names follow dockershim (``k8s_POD_<pod>_<ns>_<uid>_<n>`` for the sandbox,
``k8s_<container>_<pod>_<ns>_<uid>_<attempt>`` for containers): the container *name* is the
runtime's container id, so an id says which attempt it is. Labels (dockershim's plus
``kubeha.node``) let a restarted kubelet re-adopt everything by listing containers and let
several kubelets share one engine. No I/O here: everything is a function of its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubeha.api.core.pod import parse_quantity
from kubeha.kubelet import logs as crilog
from kubeha.kubelet.runtime import CREATED, EXITED, RUNNING, ContainerState, Mount, Obj

HANDLER = "docker"
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


# -- request building (pure) -----------------------------------------------------------------------


def meta(pod: Obj) -> Obj:
    """The pod's metadata ({} when absent)."""
    return pod.get("metadata") or {}


def sandbox_name(pod: Obj, attempt: int = 0) -> str:
    m = meta(pod)
    return f"k8s_POD_{m.get('name')}_{m.get('namespace')}_{m.get('uid')}_{attempt}"


def container_name(pod: Obj, container: Obj, attempt: int) -> str:
    m = meta(pod)
    return f"k8s_{container.get('name')}_{m.get('name')}_{m.get('namespace')}_{m.get('uid')}_{attempt}"


def parse_name(name: str) -> tuple[str, str, int]:
    """(pod uid, container name, attempt) of one of our container names."""
    parts = name.lstrip("/").split("_")
    if len(parts) != 6 or parts[0] != "k8s":
        raise ValueError(f"not a kubelet container name: {name!r}")
    return parts[4], parts[1], int(parts[5])


def pod_labels(pod: Obj, node: str) -> dict[str, str]:
    m = meta(pod)
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
        cfg["Hostname"] = str(spec.get("hostname") or meta(pod).get("name") or "")[:63]
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
    hostname = str(spec.get("hostname") or meta(pod).get("name") or "")
    if pod_ip:
        if spec.get("subdomain"):
            ns = meta(pod).get("namespace")
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
        ns = meta(pod).get("namespace") or "default"
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


# -- inspect results -> container states -----------------------------------------------------------


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
