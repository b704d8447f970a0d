"""kubelet container environment (src/kubeha/kubelet/env.py): ``$(VAR)`` expansion with
upstream's syntax (third_party/forked/golang/expansion), definition order, envFrom and key refs
with their optional flags, fieldRef paths and resourceFieldRef rounding.

test_kubelet_units.py has one broad resolution test; these cover the edges."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubeha.kubelet import env as envmod
from kubeha.kubelet.env import EnvError, container_env, expand, field_value, go_quote, resource_value

Obj = dict[str, Any]


# -- $(VAR) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y22z"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),  # an unknown reference stays as written
        ("$$", "$"),
        ("$$(A)", "$(A)"),  # escaped: not expanded
        ("$$$(A)", "$1"),
        ("$$$$(A)", "$$(A)"),
        ("$(A", "$(A"),  # incomplete reference
        ("$A", "$A"),
        ("cost: 5$", "cost: 5$"),
        ("$", "$"),
        ("$()", "$()"),
        ("$(A)$(A)", "11"),
        ("$(REF)", "$(A)"),  # a value is not expanded again
        ("$(A$(B))", "$(A$(B))"),  # the name runs to the first ')': "A$(B" is not defined
        ("$(1st)", "one"),  # names need not be C identifiers (relaxed env var names)
        ("$(with space)", "sp"),
    ],
)
def test_expand_follows_upstream_syntax(text: str, want: str) -> None:
    env = {"A": "1", "B": "22", "REF": "$(A)", "1st": "one", "with space": "sp"}
    assert expand(text, env) == want


# -- definition order and sources -------------------------------------------------------------------


def objects() -> dict[tuple[str, str, str], Obj]:
    return {
        ("configmaps", "ns", "cm"): {"data": {"HOST": "db", "PORT": "5432"}, "binaryData": {"BIN": "YmluYXJ5"}},
        ("secrets", "ns", "sec"): {"data": {"USER": base64.b64encode(b"admin").decode()}},
    }


async def env_of(container: Obj, pod: Obj | None = None, allocatable: dict[str, str] | None = None) -> dict[str, str]:
    objs = objects()

    async def lookup(kind: str, ns: str, name: str) -> Obj | None:
        return objs.get((kind, ns, name))

    p = pod or {"metadata": {"name": "p", "namespace": "ns"}}
    return await container_env(p, container, lookup, allocatable or {})


async def test_env_refers_only_to_earlier_variables_and_later_entries_win() -> None:
    env = await env_of(
        {
            "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}, "prefix": "DB_"}],
            "env": [
                {"name": "URL", "value": "pg://$(DB_USER)@$(HOST):$(PORT)/$(NAME)"},  # NAME comes later
                {"name": "NAME", "value": "app"},
                {"name": "PORT", "value": "6543"},  # overrides the configMap's
                {"name": "AFTER", "value": "$(PORT)"},
                {"name": "NAME", "value": "$(NAME)-2"},  # redefinition sees the earlier value
            ],
        }
    )
    assert env["URL"] == "pg://admin@db:5432/$(NAME)"
    assert env["PORT"] == "6543" and env["AFTER"] == "6543"
    assert env["NAME"] == "app-2"
    assert env["DB_USER"] == "admin" and "USER" not in env
    assert env["BIN"] == "binary"  # binaryData keys come through envFrom too
    assert list(env)[:4] == ["HOST", "PORT", "BIN", "DB_USER"]  # envFrom first, in order


async def test_env_from_missing_sources() -> None:
    assert await env_of({"envFrom": [{"configMapRef": {"name": "absent", "optional": True}}]}) == {}
    assert await env_of({"envFrom": [{"secretRef": {"name": "absent", "optional": True}}]}) == {}
    with pytest.raises(EnvError, match='configmap "absent" not found'):
        await env_of({"envFrom": [{"configMapRef": {"name": "absent"}}]})
    with pytest.raises(EnvError, match='secret "absent" not found'):
        await env_of({"envFrom": [{"secretRef": {"name": "absent"}}]})


async def test_key_refs_and_their_optional_flag() -> None:
    def ref(kind: str, name: str, key: str, optional: bool | None = None) -> Obj:
        r: Obj = {"name": name, "key": key}
        if optional is not None:
            r["optional"] = optional
        return {"name": "V", "valueFrom": {kind: r}}

    assert await env_of({"env": [ref("configMapKeyRef", "cm", "HOST")]}) == {"V": "db"}
    assert await env_of({"env": [ref("secretKeyRef", "sec", "USER")]}) == {"V": "admin"}
    # optional: a missing object or key leaves the variable out
    assert await env_of({"env": [ref("configMapKeyRef", "cm", "NOPE", True)]}) == {}
    assert await env_of({"env": [ref("secretKeyRef", "absent", "X", True)]}) == {}
    with pytest.raises(EnvError, match="couldn't find key NOPE in configmap ns/cm"):
        await env_of({"env": [ref("configMapKeyRef", "cm", "NOPE")]})
    with pytest.raises(EnvError, match="couldn't find key NOPE in secret ns/sec"):
        await env_of({"env": [ref("secretKeyRef", "sec", "NOPE", False)]})
    with pytest.raises(EnvError, match='secret "absent" not found'):
        await env_of({"env": [ref("secretKeyRef", "absent", "X")]})


async def test_empty_value_and_value_from() -> None:
    env = await env_of({"env": [{"name": "EMPTY"}, {"name": "ALSO", "value": ""}]})
    assert env == {"EMPTY": "", "ALSO": ""}


# -- fieldRef -------------------------------------------------------------------------------------------


POD: Obj = {
    "metadata": {
        "name": "web-0",
        "namespace": "prod",
        "uid": "1234",
        "labels": {"app": "web", "zone": "a"},
        "annotations": {"owner": "team"},
    },
    "spec": {"nodeName": "n1", "serviceAccountName": "builder"},
    "status": {
        "hostIP": "10.0.0.5",
        "hostIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00:244::7"}],
    },
}


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("metadata.name", "web-0"),
        ("metadata.namespace", "prod"),
        ("metadata.uid", "1234"),
        ("spec.nodeName", "n1"),
        ("spec.serviceAccountName", "builder"),
        ("status.hostIP", "10.0.0.5"),
        ("status.podIP", "10.244.1.7"),
        ("status.podIPs", "10.244.1.7,fd00:244::7"),
        ("status.hostIPs", "10.0.0.5,fd00::5"),
        ("metadata.labels['app']", "web"),
        ("metadata.labels['missing']", ""),
        ("metadata.annotations['owner']", "team"),
        ("metadata.labels", 'app="web"\nzone="a"'),
    ],
)
def test_field_paths(path: str, want: str) -> None:
    assert field_value(POD, path) == want


def test_field_paths_of_an_unscheduled_pod_are_empty_and_unknown_ones_fail() -> None:
    bare: Obj = {"metadata": {"name": "p"}}
    assert field_value(bare, "spec.nodeName") == ""
    assert field_value(bare, "status.podIPs") == ""
    assert field_value(bare, "metadata.labels") == ""
    with pytest.raises(EnvError, match="unsupported fieldRef"):
        field_value(bare, "spec.containers")


def test_go_quote() -> None:
    assert go_quote("plain") == '"plain"'
    assert go_quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert go_quote("tab\tnl\ncr\r") == '"tab\\tnl\\ncr\\r"'
    assert go_quote("\x01\x7f") == '"\\x01\\x7f"'
    assert go_quote("héllo ✓") == '"héllo ✓"'  # printable unicode stays
    assert go_quote("\u200b") == '"\\u200b"'


# -- resourceFieldRef -----------------------------------------------------------------------------------


C: Obj = {
    "resources": {
        "limits": {"cpu": "1500m", "memory": "1Gi", "ephemeral-storage": "2G"},
        "requests": {"cpu": "250m", "memory": "100M"},
    }
}


@pytest.mark.parametrize(
    ("resource", "divisor", "want"),
    [
        ("limits.cpu", None, "2"),  # 1.5 cores rounded up
        ("limits.cpu", "1m", "1500"),
        ("requests.cpu", None, "1"),
        ("requests.cpu", "1m", "250"),
        ("requests.cpu", "100m", "3"),  # 2.5 → 3
        ("limits.memory", None, str(1024**3)),
        ("limits.memory", "1Mi", "1024"),
        ("limits.memory", "1M", "1074"),  # 1073.74 → 1074
        ("requests.memory", "1Ki", "97657"),  # 97656.25 → 97657
        ("limits.ephemeral-storage", "1Gi", "2"),  # 1.86 → 2
        ("requests.ephemeral-storage", None, "0"),  # unset request
    ],
)
def test_resource_values_round_up(resource: str, divisor: str | None, want: str) -> None:
    ref: Obj = {"resource": resource}
    if divisor:
        ref["divisor"] = divisor
    assert resource_value(C, ref, {}) == want


def test_unset_limits_fall_back_to_node_allocatable() -> None:
    alloc = {"cpu": "4", "memory": "8Gi"}
    assert resource_value({}, {"resource": "limits.cpu"}, alloc) == "4"
    assert resource_value({}, {"resource": "limits.memory", "divisor": "1Gi"}, alloc) == "8"
    assert resource_value({}, {"resource": "requests.cpu"}, alloc) == "0"  # requests do not fall back


async def test_resource_field_ref_in_env() -> None:
    env = await env_of(
        {**C, "env": [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}]}
    )
    assert env == {"CPU": "1500"}


def test_command_and_args_expand_from_the_container_env() -> None:
    c = {"name": "c", "command": ["sh", "-c", "echo $(GREETING) $$(HOME) $(MISSING)"], "args": ["$(WHO)"]}
    out = envmod.expand_command(c, {"GREETING": "hi", "WHO": "you"})
    assert out["command"] == ["sh", "-c", "echo hi $(HOME) $(MISSING)"]
    assert out["args"] == ["you"]
    assert c["args"] == ["$(WHO)"]  # the pod's own spec is left alone
    assert "command" not in envmod.expand_command({"name": "c"}, {})


def _svc(name: str, ns: str, ip: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


def test_service_env_matches_what_a_real_pod_sees() -> None:
    k8s = _svc("kubernetes", "default", "10.96.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])
    assert envmod.service_env([k8s]) == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
    }
    dns = _svc(
        "kube-dns", "kube-system", "10.96.0.10", [{"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 9153}]
    )
    env = envmod.service_env([dns])
    assert env["KUBE_DNS_SERVICE_PORT"] == "53" and env["KUBE_DNS_PORT"] == "udp://10.96.0.10:53"
    assert env["KUBE_DNS_PORT_9153_TCP_ADDR"] == "10.96.0.10" and "KUBE_DNS_SERVICE_PORT_9153" not in env
    assert envmod.service_env([_svc("headless", "x", "None", [{"port": 80}])]) == {}


def test_pod_services_choice_follows_enable_service_links() -> None:
    k8s = _svc("kubernetes", "default", "10.96.0.1", [{"port": 443}])
    other_default = _svc("web", "default", "10.96.0.5", [{"port": 80}])
    mine = _svc("api", "team", "10.96.0.7", [{"port": 8080}])
    pod: dict[str, Any] = {"metadata": {"namespace": "team"}, "spec": {}}
    names = [s["metadata"]["name"] for s in envmod.pod_services(pod, [mine], [k8s, other_default])]
    assert names == ["api", "kubernetes"]
    pod["spec"]["enableServiceLinks"] = False
    assert [s["metadata"]["name"] for s in envmod.pod_services(pod, [mine], [k8s, other_default])] == ["kubernetes"]


async def test_container_env_overrides_and_expands_service_variables() -> None:
    async def lookup(kind: str, ns: str, name: str) -> dict[str, Any] | None:
        return None

    c = {
        "name": "c",
        "env": [
            {"name": "URL", "value": "http://$(API_SERVICE_HOST):$(API_SERVICE_PORT)"},
            {"name": "API_SERVICE_PORT", "value": "9"},
        ],
    }
    pod = {"metadata": {"namespace": "team"}, "spec": {"containers": [c]}}
    env = await container_env(pod, c, lookup, {}, {"API_SERVICE_HOST": "10.96.0.7", "API_SERVICE_PORT": "8080"})
    assert env["URL"] == "http://10.96.0.7:8080" and env["API_SERVICE_PORT"] == "9"
