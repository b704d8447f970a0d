"""The pure parts of kubelet/cni.py: network configs (generated and loaded), per-plugin stdin,
invocation environment, plugin output and results, and network readiness."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from kubeha.kubelet import cni

Obj = dict[str, Any]


def test_generated_conflist_is_bridge_host_local_portmap() -> None:
    conf = cni.generate_conflist("10.244.3.0/24", "/var/lib/x/networks")
    assert conf["cniVersion"] == "0.4.0" and conf["name"] == "kubeha"
    bridge, portmap = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "cni0"
    assert bridge["isGateway"] is True and bridge["ipMasq"] is False
    assert bridge["ipam"]["type"] == "host-local"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]]
    assert bridge["ipam"]["dataDir"] == "/var/lib/x/networks"
    assert bridge["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}
    assert cni.generate_conflist("10.0.0.0/24", "/d", bridge="br9")["plugins"][0]["bridge"] == "br9"


def test_load_conflist_takes_the_first_valid_file_by_name(tmp_path: Path) -> None:
    (tmp_path / "05-broken.conflist").write_text("{not json")
    (tmp_path / "07-list.json").write_text("[1, 2]")  # not an object: skipped
    (tmp_path / "10-net.conflist").write_text(json.dumps({"cniVersion": "0.4.0", "name": "a", "plugins": []}))
    (tmp_path / "20-other.conflist").write_text(json.dumps({"cniVersion": "0.4.0", "name": "b", "plugins": []}))
    (tmp_path / "00-readme.txt").write_text("ignored suffix")
    assert cni.load_conflist(str(tmp_path)) == {"cniVersion": "0.4.0", "name": "a", "plugins": []}


def test_load_conflist_wraps_a_single_plugin_conf(tmp_path: Path) -> None:
    (tmp_path / "10-bridge.conf").write_text(json.dumps({"cniVersion": "0.3.1", "name": "n", "type": "bridge"}))
    assert cni.load_conflist(str(tmp_path)) == {
        "cniVersion": "0.3.1",
        "name": "n",
        "plugins": [{"cniVersion": "0.3.1", "name": "n", "type": "bridge"}],
    }


def test_load_conflist_without_a_config(tmp_path: Path) -> None:
    assert cni.load_conflist("") is None
    assert cni.load_conflist(str(tmp_path / "missing")) is None
    assert cni.load_conflist(str(tmp_path)) is None
    (tmp_path / "x.conf").write_text(json.dumps({"name": "neither plugins nor type"}))
    assert cni.load_conflist(str(tmp_path)) is None


def test_network_ready_needs_a_pod_cidr_or_a_config(tmp_path: Path) -> None:
    assert not cni.network_ready("", "")
    assert not cni.network_ready(str(tmp_path), "")
    assert cni.network_ready("", "10.244.0.0/24")
    (tmp_path / "10-net.conflist").write_text(json.dumps({"name": "a", "plugins": [{"type": "bridge"}]}))
    assert cni.network_ready(str(tmp_path), "")
    assert "NetworkPluginNotReady" in cni.NETWORK_NOT_READY


def test_plugin_config_passes_only_declared_capabilities() -> None:
    conflist = {"cniVersion": "1.0.0", "name": "net"}
    plugin = {"type": "portmap", "capabilities": {"portMappings": True}}
    rc = {"portMappings": [{"hostPort": 8080}], "bandwidth": {"ingressRate": 1}}
    conf = cni.plugin_config(conflist, plugin, {"ips": []}, rc)
    assert conf == {
        "type": "portmap",
        "name": "net",
        "cniVersion": "1.0.0",
        "runtimeConfig": {"portMappings": [{"hostPort": 8080}]},
        "prevResult": {"ips": []},
    }
    assert "capabilities" in plugin  # the conflist itself is not modified
    bare = cni.plugin_config(conflist, {"type": "bridge"}, None, rc)
    assert bare == {"type": "bridge", "name": "net", "cniVersion": "1.0.0"}


def test_port_mappings_from_host_ports_only() -> None:
    pod = {
        "spec": {
            "containers": [
                {"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]},
                {"ports": [{"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"}]},
                {},
            ]
        }
    }
    assert cni.port_mappings(pod) == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
    ]
    assert cni.port_mappings({}) == []


def test_result_ips_without_prefix_ipv4_first() -> None:
    result = {"ips": [{"address": "fd00::5/64"}, {"address": "10.244.1.5/24"}, {"gateway": "10.244.1.1"}]}
    assert cni.result_ips(result) == ["10.244.1.5", "fd00::5"]
    assert cni.result_ips({}) == []


def test_cni_args_name_the_pod() -> None:
    pod = {"metadata": {"namespace": "ns", "name": "p", "uid": "u-1"}}
    assert cni.cni_args(pod, "sb") == (
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=sb;K8S_POD_UID=u-1"
    )


def _plugin(d: Path, name: str) -> str:
    path = d / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_build_invocation_finds_the_plugin_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _plugin(second, "bridge")
    want = _plugin(first, "bridge")
    conf = {"type": "bridge", "name": "n"}
    inv = cni.build_invocation([str(first), str(second)], "ADD", "cid", "/proc/1/ns/net", "eth0", conf, "K=V")
    assert inv.binary == want
    assert inv.env["CNI_COMMAND"] == "ADD" and inv.env["CNI_CONTAINERID"] == "cid"
    assert inv.env["CNI_NETNS"] == "/proc/1/ns/net" and inv.env["CNI_IFNAME"] == "eth0"
    assert inv.env["CNI_PATH"] == f"{first}{os.pathsep}{second}"
    assert inv.env["CNI_ARGS"] == "K=V"
    assert json.loads(inv.stdin) == conf
    no_args = cni.build_invocation([str(first)], "DEL", "cid", "", "eth0", conf)
    assert "CNI_ARGS" not in no_args.env


def test_build_invocation_without_the_plugin(tmp_path: Path) -> None:
    with pytest.raises(cni.CNIError, match="'macvlan' not found"):
        cni.build_invocation([str(tmp_path)], "ADD", "c", "n", "eth0", {"type": "macvlan"})


def test_parse_output_result_and_errors() -> None:
    assert cni.parse_output("bridge", "ADD", 0, b'{"ips": [{"address": "10.0.0.2/24"}]}') == {
        "ips": [{"address": "10.0.0.2/24"}]
    }
    assert cni.parse_output("bridge", "DEL", 0, b"") == {}
    with pytest.raises(cni.CNIError) as err:
        cni.parse_output("bridge", "ADD", 1, b'{"code": 11, "msg": "address in use"}')
    assert err.value.code == 11 and "address in use" in str(err.value)
    with pytest.raises(cni.CNIError) as err:
        cni.parse_output("bridge", "ADD", 2, b"plain text failure")
    assert err.value.code == 2 and "plain text failure" in str(err.value)
    with pytest.raises(cni.CNIError, match="exit status 3"):
        cni.parse_output("bridge", "ADD", 3, b"")


def test_chain_for_drops_portmap_only_without_host_ports() -> None:
    conf = cni.generate_conflist("10.244.3.0/24", "/d")
    plain = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}
    chain = cni.chain_for(conf, plain)
    assert [p["type"] for p in chain["plugins"]] == ["bridge"]
    assert chain["name"] == conf["name"] and chain["cniVersion"] == conf["cniVersion"]
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap"]  # the input is left as it was
    mapped = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}
    assert cni.chain_for(conf, mapped) == conf
