"""The Docker runtime's pure parts: names, labels, sandbox/container configs, resources,
security, binds, /etc/hosts, resolv.conf per dnsPolicy, inspect -> ContainerState, the relist
key, and the Engine API's stream framing and response heads."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from kubeha.kubelet.runtime import CREATED, EXITED, RUNNING, Mount
from kubeha.kubelet.runtime.docker import status_key
from kubeha.kubelet.runtime.dockerapi import _read_body, _read_head, demux, error_message, socket_path, split_image
from kubeha.kubelet.runtime.dockerspec import (
    L_ATTEMPT,
    L_CONTAINER,
    L_NODE,
    L_POD_NAME,
    L_POD_NS,
    L_POD_UID,
    L_SANDBOX,
    L_TYPE,
    bind,
    container_config,
    container_name,
    container_state,
    hosts_file,
    parse_name,
    pod_labels,
    resolv_conf,
    resources_config,
    sandbox_config,
    sandbox_name,
    security_config,
)

Obj = dict[str, Any]
UID = "6f1c2d3e-0000-4000-8000-000000000001"
HOST_RESOLV = "# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions edns0 ndots:2\n"


def pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": UID}, "spec": spec}


# -- names and labels ---------------------------------------------------------------------------------


def test_names_follow_dockershim_and_parse_back() -> None:
    p = pod()
    assert sandbox_name(p) == f"k8s_POD_web_shop_{UID}_0"
    assert sandbox_name(p, 2) == f"k8s_POD_web_shop_{UID}_2"
    name = container_name(p, {"name": "app"}, 3)
    assert name == f"k8s_app_web_shop_{UID}_3"
    assert parse_name(name) == (UID, "app", 3)
    assert parse_name("/" + name) == (UID, "app", 3)  # as /containers/json spells names
    assert parse_name(sandbox_name(p, 1)) == (UID, "POD", 1)


@pytest.mark.parametrize("bad", ["nginx", "k8s_a_b_c_d", "x8s_a_b_c_d_1", "k8s_a_b_c_d_e_1", "k8s_a_b_c_d_one"])
def test_parse_name_refuses_foreign_names(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_name(bad)


def test_labels_carry_the_pod_and_node() -> None:
    assert pod_labels(pod(), "n1") == {L_NODE: "n1", L_POD_NAME: "web", L_POD_NS: "shop", L_POD_UID: UID}


# -- sandbox ----------------------------------------------------------------------------------------


def test_sandbox_config_without_host_namespaces() -> None:
    cfg = sandbox_config(pod(hostname="h" * 70), "n1", "pause:1")
    assert cfg["Image"] == "pause:1"
    assert cfg["Entrypoint"] == [] and cfg["Cmd"][0] == "sleep"
    assert cfg["Labels"][L_TYPE] == "podsandbox" and cfg["Labels"][L_CONTAINER] == "POD"
    assert cfg["Labels"][L_NODE] == "n1"
    host = cfg["HostConfig"]
    assert host["NetworkMode"] == "none"  # CNI wires the namespace
    assert host["IpcMode"] == "shareable" and host["PidMode"] == ""
    assert host["RestartPolicy"] == {"Name": "no"}  # the kubelet restarts, not Docker
    assert cfg["Hostname"] == "h" * 63


def test_sandbox_config_with_host_namespaces() -> None:
    cfg = sandbox_config(pod(hostNetwork=True, hostIPC=True, hostPID=True), "n1", "pause:1")
    assert cfg["HostConfig"]["NetworkMode"] == "host"
    assert cfg["HostConfig"]["IpcMode"] == "host"
    assert cfg["HostConfig"]["PidMode"] == "host"
    assert "Hostname" not in cfg  # the node's own


# -- containers -------------------------------------------------------------------------------------


def test_container_config_joins_the_sandbox_and_labels_the_attempt() -> None:
    c = {"name": "app", "image": "demo:1", "tty": True, "stdin": True, "workingDir": "/w"}
    mounts = [Mount("/var/v", "/data"), Mount("/var/s", "/secret", read_only=True)]
    cfg = container_config(pod(), c, "k8s_POD_x", "n1", {"A": "1", "B": "x=y"}, mounts, 2)
    assert cfg["Image"] == "demo:1"
    assert cfg["Env"] == ["A=1", "B=x=y"]
    assert cfg["Tty"] is True and cfg["OpenStdin"] is True and cfg["StdinOnce"] is False
    assert cfg["WorkingDir"] == "/w"
    labels = cfg["Labels"]
    assert labels[L_TYPE] == "container" and labels[L_CONTAINER] == "app"
    assert labels[L_SANDBOX] == "k8s_POD_x" and labels[L_ATTEMPT] == "2" and labels[L_POD_UID] == UID
    host = cfg["HostConfig"]
    assert host["NetworkMode"] == host["IpcMode"] == "container:k8s_POD_x"
    assert host["PidMode"] == ""
    assert host["Binds"] == ["/var/v:/data:rw", "/var/s:/secret:ro"]
    assert "ExposedPorts" not in cfg  # refused with a container: network mode
    assert "Entrypoint" not in cfg and "Cmd" not in cfg  # the image's own
    assert "User" not in cfg


def test_container_config_shares_the_pid_namespace_when_asked() -> None:
    cfg = container_config(pod(shareProcessNamespace=True), {"name": "a"}, "sb", "n1", {}, [], 0)
    assert cfg["HostConfig"]["PidMode"] == "container:sb"


@pytest.mark.parametrize(
    ("command", "args", "entrypoint", "cmd"),
    [
        (["run"], ["-v"], ["run"], ["-v"]),  # command replaces the entrypoint, args its cmd
        (["run"], None, ["run"], []),  # command alone drops the image's cmd
        (None, ["-v"], None, ["-v"]),  # args alone keep the image's entrypoint
        (None, None, None, None),
    ],
)
def test_command_and_args_follow_upstream(
    command: list[str] | None, args: list[str] | None, entrypoint: list[str] | None, cmd: list[str] | None
) -> None:
    c: Obj = {"name": "a", "image": "i"}
    if command is not None:
        c["command"] = command
    if args is not None:
        c["args"] = args
    cfg = container_config(pod(), c, "sb", "n1", {}, [], 0)
    assert cfg.get("Entrypoint") == entrypoint
    assert cfg.get("Cmd") == cmd


def test_bind_modes() -> None:
    assert bind(Mount("/a", "/b")) == "/a:/b:rw"
    assert bind(Mount("/a", "/b", True)) == "/a:/b:ro"


# -- resources ----------------------------------------------------------------------------------------


def test_resources_cpu_and_memory() -> None:
    out = resources_config({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "128Mi"}}})
    assert out == {"CpuShares": 256, "CpuPeriod": 100000, "CpuQuota": 50000, "Memory": 128 * 1024 * 1024}


def test_resources_request_defaults_to_the_limit_and_minimums() -> None:
    # no request: the limit is the request (as upstream defaults it)
    assert resources_config({"resources": {"limits": {"cpu": "2"}}})["CpuShares"] == 2048
    tiny = resources_config({"resources": {"limits": {"cpu": "1m"}}})
    assert tiny["CpuShares"] == 2 and tiny["CpuQuota"] == 1000  # the kernel's minimums
    assert resources_config({"resources": {"limits": {"memory": "1G"}}}) == {"Memory": 10**9}
    assert resources_config({}) == {}


# -- security ---------------------------------------------------------------------------------------------


def test_security_container_overrides_pod() -> None:
    p = pod(securityContext={"runAsUser": 1000, "runAsGroup": 2000, "supplementalGroups": [5, 6]})
    assert security_config(p, {}) == ("1000:2000", {"GroupAdd": ["5", "6"]})
    user, host = security_config(
        p,
        {
            "securityContext": {
                "runAsUser": 0,
                "privileged": True,
                "readOnlyRootFilesystem": True,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
            }
        },
    )
    assert user == "0:2000"
    assert host == {
        "Privileged": True,
        "ReadonlyRootfs": True,
        "CapAdd": ["NET_ADMIN"],
        "CapDrop": ["ALL"],
        "GroupAdd": ["5", "6"],
    }
    assert security_config(pod(), {"securityContext": {"runAsUser": 7}}) == ("7", {})
    assert security_config(pod(), {}) == ("", {})
    cfg = container_config(p, {"name": "a"}, "sb", "n1", {}, [], 0)
    assert cfg["User"] == "1000:2000" and cfg["HostConfig"]["GroupAdd"] == ["5", "6"]


# -- /etc/hosts ---------------------------------------------------------------------------------------------


def test_hosts_file_names_the_pod_and_adds_aliases() -> None:
    text = hosts_file(pod(hostAliases=[{"ip": "10.1.2.3", "hostnames": ["a", "b"]}]), "10.244.1.5")
    lines = text.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file."
    assert "127.0.0.1\tlocalhost" in lines
    assert "10.244.1.5\tweb" in lines
    assert lines[-2:] == ["# Entries added by HostAliases.", "10.1.2.3\ta\tb"]
    assert text.endswith("\n")


def test_hosts_file_with_subdomain_and_without_ip() -> None:
    text = hosts_file(pod(hostname="db-0", subdomain="db"), "10.0.0.9")
    assert "10.0.0.9\tdb-0.db.shop.svc.cluster.local\tdb-0" in text.splitlines()
    assert "web" not in hosts_file(pod(), "")


# -- resolv.conf ---------------------------------------------------------------------------------------------


def test_resolv_cluster_first() -> None:
    text = resolv_conf(pod(), ["10.96.0.10"], "cluster.local", HOST_RESOLV)
    assert text.splitlines() == [
        "nameserver 10.96.0.10",
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example",
        "options ndots:5",
    ]


def test_resolv_host_network_uses_the_node_unless_cluster_first_with_host_net() -> None:
    host = resolv_conf(pod(hostNetwork=True), ["10.96.0.10"], "cluster.local", HOST_RESOLV)
    assert host.splitlines() == [
        "nameserver 192.0.2.53",
        "nameserver 192.0.2.54",
        "search corp.example",
        "options edns0 ndots:2",
    ]
    both = resolv_conf(
        pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), ["10.96.0.10"], "cluster.local", HOST_RESOLV
    )
    assert both.splitlines()[0] == "nameserver 10.96.0.10"


def test_resolv_default_and_cluster_first_without_cluster_dns_copy_the_node() -> None:
    default = resolv_conf(pod(dnsPolicy="Default"), ["10.96.0.10"], "cluster.local", HOST_RESOLV)
    assert default.splitlines()[0] == "nameserver 192.0.2.53"
    assert resolv_conf(pod(), [], "cluster.local", HOST_RESOLV) == default


def test_resolv_none_takes_dns_config_only() -> None:
    dns = {"nameservers": ["1.1.1.1"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "1"}]}
    text = resolv_conf(pod(dnsPolicy="None", dnsConfig=dns), ["10.96.0.10"], "cluster.local", HOST_RESOLV)
    assert text.splitlines() == ["nameserver 1.1.1.1", "search a.example", "options ndots:1"]


def test_resolv_dns_config_merges_and_overrides_options() -> None:
    dns = {
        "nameservers": ["10.96.0.10", "9.9.9.9"],
        "searches": ["extra.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "single-request"}],
    }
    text = resolv_conf(pod(dnsConfig=dns), ["10.96.0.10"], "k.local", "")
    assert text.splitlines() == [
        "nameserver 10.96.0.10",
        "nameserver 9.9.9.9",
        "search shop.svc.k.local svc.k.local k.local extra.example",
        "options ndots:2 single-request",
    ]
    many = resolv_conf(
        pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]}), [], "k", ""
    )
    assert many.count("nameserver") == 3  # the resolver reads three


# -- inspect -> ContainerState ---------------------------------------------------------------------------------


NAME = f"k8s_app_web_shop_{UID}_1"


def inspect(status: str, **state: Any) -> Obj:
    return {
        "Image": "sha256:abc",
        "Config": {"Image": "demo:1"},
        "State": {"Status": status, "Pid": 42, "StartedAt": "2026-01-02T03:04:05.123456789Z", **state},
    }


def test_container_state_running_and_created() -> None:
    st = container_state(NAME, inspect("running"))
    assert (st.id, st.name, st.attempt, st.state) == (NAME, "app", 1, RUNNING)
    assert st.image == "demo:1" and st.image_id == "docker-pullable://sha256:abc" and st.pid == 42
    assert st.started_at == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    created = container_state(NAME, inspect("created", StartedAt="0001-01-01T00:00:00Z"))
    assert created.state == CREATED and created.started_at is None


@pytest.mark.parametrize(
    ("state", "reason", "code"),
    [
        ({"ExitCode": 0}, "Completed", 0),
        ({"ExitCode": 3, "Error": "boom"}, "Error", 3),
        ({"ExitCode": 137, "OOMKilled": True}, "OOMKilled", 137),
    ],
)
def test_container_state_exited(state: Obj, reason: str, code: int) -> None:
    st = container_state(NAME, inspect("exited", FinishedAt="2026-01-02T03:05:00Z", **state))
    assert (st.state, st.reason, st.exit_code) == (EXITED, reason, code)
    assert st.finished_at == datetime(2026, 1, 2, 3, 5, tzinfo=UTC)
    assert st.message == state.get("Error", "")


def test_status_key_keeps_only_what_changes_with_the_state() -> None:
    assert status_key("Up 3 seconds") == status_key("Up About an hour") == "Up"
    assert status_key("Up 2 minutes (Paused)") == "Up"
    assert status_key("Exited (137) 5 seconds ago") == "Exited (137)"
    assert status_key("Exited (0) 2 hours ago") != status_key("Exited (1) 2 hours ago")
    assert status_key("Created") == "Created"
    assert status_key(None) == ""


# -- the Engine API's framing and heads ------------------------------------------------------------------------


def frame(stream: int, data: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + struct.pack(">I", len(data)) + data


def test_demux_consumes_complete_frames_only() -> None:
    wire = frame(1, b"out") + frame(2, b"err") + frame(1, b"") + frame(1, b"x" * 70000)
    buf = bytearray()
    got: list[tuple[int, bytes]] = []
    # fed in awkward pieces: inside a header, inside a payload
    for i in range(0, len(wire), 5):
        buf.extend(wire[i : i + 5])
        got.extend(demux(buf))
    assert got == [(1, b"out"), (2, b"err"), (1, b""), (1, b"x" * 70000)]
    assert buf == bytearray()
    partial = bytearray(frame(2, b"abc")[:9])
    assert demux(partial) == [] and len(partial) == 9


def test_split_image_and_socket_path() -> None:
    assert split_image("busybox") == ("busybox", "latest")
    assert split_image("kubeha/demo:1.0") == ("kubeha/demo", "1.0")
    assert split_image("registry:5000/x") == ("registry:5000/x", "latest")
    assert split_image("registry:5000/x:2") == ("registry:5000/x", "2")
    assert split_image("x@sha256:ab") == ("x", "sha256:ab")
    assert socket_path("unix:///run/docker.sock") == "/run/docker.sock"
    assert socket_path("/run/docker.sock") == "/run/docker.sock"


def reader(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


async def test_response_heads_and_error_bodies() -> None:
    r = reader(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nUpgrade: tcp\r\n\r\nraw")
    assert await _read_head(r) == (101, {"content-type": "application/vnd.docker.raw-stream", "upgrade": "tcp"})
    assert await r.read() == b"raw"  # the stream starts right after the head
    body = b'{"message":"No such container: x"}'
    r = reader(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    status, headers = await _read_head(r)
    err = error_message(status, await _read_body(r, headers))
    assert (err.status, err.message) == (404, "No such container: x")
    r = reader(
        b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nis no\r\n8\r\nt runnin\r\n1\r\ng\r\n0\r\n\r\n"
    )
    status, headers = await _read_head(r)
    assert error_message(status, await _read_body(r, headers)).message == "is not running"
    with pytest.raises(ConnectionError):
        await _read_head(reader(b"HTTP/1.1 200 OK\r\n"))  # closed mid-head
    with pytest.raises(ConnectionError):
        await _read_head(reader(b"SSH-2.0-x\r\n\r\n"))
