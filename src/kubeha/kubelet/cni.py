"""CNI plugin invocation (the CNI spec, v0.4.0 results) for pod sandboxes.

The kubelet runs in the node's network namespace, so plugins it starts create their bridge
(``cni0``) there and move the pod end of a veth pair into the sandbox's namespace
(``/proc/<pid>/ns/net``). A network configuration list comes from ``--cni-conf-dir`` (the first
``*.conflist``/``*.conf`` by name, as upstream) or is generated from the node's podCIDR:
``bridge`` (gateway on ``cni0``) + ``host-local`` IPAM + ``portmap`` (hostPort), with
``loopback`` for ``lo``. A pod without hostPorts gets the list without ``portmap``
(``chain_for``), and a caller whose namespaces come with ``lo`` up (Docker) skips ``loopback``:
each plugin is a process start. The ADD result of each sandbox and the chain it ran are cached
next to the pod so DEL and CHECK run that chain with the ``prevResult`` the spec asks for, even
after a kubelet restart.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

CNI_VERSION = "0.4.0"
DEFAULT_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
BRIDGE = "cni0"
NETWORK_NAME = "kubeha"
LOOPBACK: Obj = {"cniVersion": CNI_VERSION, "name": "lo", "type": "loopback"}


class CNIError(RuntimeError):
    """A plugin failed; ``code``/``msg`` as the plugin reported them."""

    def __init__(self, plugin: str, command: str, code: int, msg: str) -> None:
        super().__init__(f"CNI {plugin} {command} failed (code {code}): {msg}")
        self.code = code


def generate_conflist(pod_cidr: str, data_dir: str, bridge: str = BRIDGE) -> Obj:
    """The network for a node's podCIDR: pods on ``bridge`` with the first address of the range
    as their gateway; host-local keeps its allocations under ``data_dir`` (per node, so several
    local nodes never hand out from one store)."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": data_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def load_conflist(conf_dir: str) -> Obj | None:
    """The first network configuration in ``conf_dir`` (by file name), as a conflist."""
    d = Path(conf_dir)
    if not conf_dir or not d.is_dir():
        return None
    for path in sorted(p for p in d.iterdir() if p.suffix in (".conflist", ".conf", ".json")):
        try:
            conf = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(conf, dict):
            continue
        if "plugins" in conf:
            return conf
        if "type" in conf:  # a single-plugin .conf: wrap it as a list
            return {"cniVersion": conf.get("cniVersion", CNI_VERSION), "name": conf.get("name", ""), "plugins": [conf]}
    return None


# upstream's runtime network error, word for word (the Ready condition's message and the
# NetworkNotReady events say it while a node has neither a podCIDR nor a CNI config)
NETWORK_NOT_READY = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)


def network_ready(conf_dir: str, pod_cidr: str) -> bool:
    """Whether sandboxes can get a network: a config exists (generated from the podCIDR, or
    found in ``conf_dir``)."""
    return bool(pod_cidr) or load_conflist(conf_dir) is not None


def plugin_config(conflist: Obj, plugin: Obj, prev_result: Obj | None, runtime_config: Obj) -> Obj:
    """One plugin's stdin per the spec: the plugin's own keys plus the list's name and version,
    ``prevResult`` when chained, and ``runtimeConfig`` only for the capabilities it declares."""
    conf = dict(plugin)
    conf["name"] = conflist.get("name", "")
    conf["cniVersion"] = conflist.get("cniVersion", CNI_VERSION)
    caps = conf.pop("capabilities", None) or {}
    wanted = {k: v for k, v in runtime_config.items() if caps.get(k)}
    if wanted:
        conf["runtimeConfig"] = wanted
    if prev_result is not None:
        conf["prevResult"] = prev_result
    return conf


def port_mappings(pod: Obj) -> list[Obj]:
    """hostPort mappings of a pod, in portmap's ``portMappings`` capability form."""
    out: list[Obj] = []
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("hostPort"):
                out.append(
                    {
                        "hostPort": int(p["hostPort"]),
                        "containerPort": int(p["containerPort"]),
                        "protocol": str(p.get("protocol") or "TCP").lower(),
                        **({"hostIP": p["hostIP"]} if p.get("hostIP") else {}),
                    }
                )
    return out


def chain_for(conflist: Obj, pod: Obj) -> Obj:
    """The plugin chain to run for ``pod``: the conflist without its ``portmap`` plugins when
    the pod has no hostPorts. With no ``portMappings`` portmap passes the previous result
    through, yet it is one more process start (measured ~65 ms ADD, ~45 ms DEL on the shared
    2-core machine), paid by every pod. DEL and CHECK must run the chain the ADD ran, so the
    caller saves the returned list with the ADD result."""
    if port_mappings(pod):
        return conflist
    plugins = [p for p in conflist.get("plugins") or () if p.get("type") != "portmap"]
    return {**conflist, "plugins": plugins}


def result_ips(result: Obj) -> list[str]:
    """Pod addresses (no prefix length) from an ADD result, IPv4 first."""
    ips = [str(i.get("address", "")).split("/")[0] for i in result.get("ips") or () if i.get("address")]
    return sorted(ips, key=lambda ip: ":" in ip)


def cni_args(pod: Obj, sandbox_id: str) -> str:
    meta = pod.get("metadata") or {}
    return ";".join(
        [
            "IgnoreUnknown=1",
            f"K8S_POD_NAMESPACE={meta.get('namespace', '')}",
            f"K8S_POD_NAME={meta.get('name', '')}",
            f"K8S_POD_INFRA_CONTAINER_ID={sandbox_id}",
            f"K8S_POD_UID={meta.get('uid', '')}",
        ]
    )


@dataclass
class Invocation:
    """Everything one plugin run needs; ``env`` is what the spec passes in the environment."""

    binary: str
    env: dict[str, str]
    stdin: bytes


def build_invocation(
    bin_dirs: list[str], command: str, container_id: str, netns: str, ifname: str, conf: Obj, args: str = ""
) -> Invocation:
    ptype = str(conf.get("type") or "")
    binary = next((os.path.join(d, ptype) for d in bin_dirs if os.path.isfile(os.path.join(d, ptype))), "")
    if not binary:
        raise CNIError(ptype, command, 0, f"plugin {ptype!r} not found in {':'.join(bin_dirs)}")
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": ":".join(bin_dirs),
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    }
    if args:
        env["CNI_ARGS"] = args
    return Invocation(binary, env, json.dumps(conf).encode())


def parse_output(plugin: str, command: str, code: int, out: bytes) -> Obj:
    """A plugin's stdout: its result on success, its error object otherwise (raised)."""
    data: Any = None
    if out.strip():
        try:
            data = json.loads(out)
        except ValueError:
            data = None
    if code != 0:
        if isinstance(data, dict):
            raise CNIError(plugin, command, int(data.get("code") or code), str(data.get("msg") or data))
        raise CNIError(plugin, command, code, out.decode(errors="replace").strip() or f"exit status {code}")
    return data if isinstance(data, dict) else {}


async def run_plugin(inv: Invocation, command: str, timeout: float = 30.0) -> Obj:  # noqa: ASYNC109
    proc = await asyncio.create_subprocess_exec(
        inv.binary,
        env=inv.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(inv.stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CNIError(os.path.basename(inv.binary), command, 0, "timed out") from None
    if proc.returncode != 0 and not out.strip():
        out = err
    return parse_output(os.path.basename(inv.binary), command, proc.returncode or 0, out)


class CNI:
    """ADD/DEL/CHECK of a sandbox on the node's network."""

    def __init__(self, bin_dirs: list[str], conf_dir: str, state_dir: str) -> None:
        self.bin_dirs = bin_dirs or list(DEFAULT_BIN_DIRS)
        self.conf_dir = conf_dir
        self.state_dir = state_dir  # host-local allocations when the config is generated

    def conflist(self, pod_cidr: str) -> Obj:
        conf = load_conflist(self.conf_dir)
        if conf is not None:
            return conf
        if not pod_cidr:
            raise CNIError("bridge", "ADD", 0, "network not ready: the node has no podCIDR yet")
        return generate_conflist(pod_cidr, os.path.join(self.state_dir, "networks"))

    async def add(
        self, conflist: Obj, pod: Obj, container_id: str, netns: str, ifname: str = "eth0", *, loopback: bool = True
    ) -> Obj:
        """Set up ``lo`` (unless ``loopback`` is false: the namespace's owner brought it up
        already) and ``ifname``; returns the final result (cache it for DEL/CHECK)."""
        args = cni_args(pod, container_id)
        if loopback:
            lo = build_invocation(self.bin_dirs, "ADD", container_id, netns, "lo", LOOPBACK, args)
            await run_plugin(lo, "ADD")
        runtime_config: Obj = {"portMappings": port_mappings(pod)}
        prev: Obj | None = None
        for plugin in conflist.get("plugins") or ():
            conf = plugin_config(conflist, plugin, prev, runtime_config)
            inv = build_invocation(self.bin_dirs, "ADD", container_id, netns, ifname, conf, args)
            prev = await run_plugin(inv, "ADD") or prev
        return prev or {}

    async def check(
        self, conflist: Obj, pod: Obj, container_id: str, netns: str, result: Obj, ifname: str = "eth0"
    ) -> None:
        args = cni_args(pod, container_id)
        runtime_config: Obj = {"portMappings": port_mappings(pod)}
        for plugin in conflist.get("plugins") or ():
            conf = plugin_config(conflist, plugin, result, runtime_config)
            await run_plugin(build_invocation(self.bin_dirs, "CHECK", container_id, netns, ifname, conf, args), "CHECK")

    async def delete(
        self, conflist: Obj, pod: Obj, container_id: str, netns: str, result: Obj | None, ifname: str = "eth0"
    ) -> None:
        """Tear down in reverse order; an already gone namespace is fine (the spec lets DEL
        run with an empty CNI_NETNS and asks plugins to release what they can)."""
        args = cni_args(pod, container_id)
        runtime_config: Obj = {"portMappings": port_mappings(pod)}
        errors: list[CNIError] = []
        for plugin in reversed(conflist.get("plugins") or ()):
            conf = plugin_config(conflist, plugin, result, runtime_config)
            try:
                await run_plugin(build_invocation(self.bin_dirs, "DEL", container_id, netns, ifname, conf, args), "DEL")
            except CNIError as e:
                errors.append(e)
        if errors:
            raise errors[0]
