"""The admission chain: flags, order, phases, rollback; and the plugins' pure decisions."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from kubeha.api import errors
from kubeha.api.registry import load_all, lookup
from kubeha.apiserver import admission
from kubeha.apiserver.admission import quotausage, serviceaccount, tolerations

load_all()
PODS = lookup("", "v1", "pods")
NAMESPACES = lookup("", "v1", "namespaces")
assert PODS is not None and NAMESPACES is not None


def test_plugin_names_follow_upstream_defaults_and_order() -> None:
    names = admission.plugin_names()
    assert "NodeRestriction" not in names and "AlwaysDeny" not in names
    assert names.index("NamespaceLifecycle") < names.index("ServiceAccount") < names.index("ResourceQuota")
    names = admission.plugin_names(enable=["NodeRestriction"], disable=["ResourceQuota"])
    assert "NodeRestriction" in names and "ResourceQuota" not in names
    assert names.index("ServiceAccount") < names.index("NodeRestriction") < names.index("Priority")
    with pytest.raises(ValueError, match='"Bogus" is unknown'):
        admission.plugin_names(enable=["Bogus"])


def test_mutating_before_validating_and_rollback() -> None:
    calls: list[str] = []

    class M(admission.MutatingPlugin):
        async def admit(self, attrs: admission.Attributes) -> None:
            calls.append(f"admit {self.name}")

    class V(admission.ValidatingPlugin):
        async def validate(self, attrs: admission.Attributes) -> None:
            calls.append(f"validate {self.name}")

            async def undo() -> None:
                calls.append(f"undo {self.name}")

            attrs.rollbacks.append(undo)

    v1, m1 = V(None), M(None)
    v1.name, m1.name = "v1", "m1"
    chain = admission.AdmissionChain([v1, m1])
    attrs = admission.Attributes(admission.CREATE, PODS, "ns", "p", {})
    asyncio.run(chain.run(attrs))
    asyncio.run(chain.rollback(attrs))
    assert calls == ["admit m1", "validate v1", "undo v1"]
    assert attrs.rollbacks == []


def test_always_deny_and_forbidden_message() -> None:
    chain = admission.build_chain(None, ["AlwaysDeny"])
    attrs = admission.Attributes(admission.CREATE, PODS, "ns", "", {"metadata": {"name": "web"}})
    with pytest.raises(errors.StatusError) as e:
        asyncio.run(chain.run(attrs))
    assert e.value.code == 403
    assert e.value.message == 'pods "web" is forbidden: admission control is denying all modifications'


def test_system_namespaces_cannot_be_deleted() -> None:
    chain = admission.build_chain(None, ["NamespaceLifecycle"])
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        attrs = admission.Attributes(admission.DELETE, NAMESPACES, "", ns, None, {"metadata": {"name": ns}})
        with pytest.raises(errors.StatusError) as e:
            asyncio.run(chain.run(attrs))
        assert e.value.message == f'namespaces "{ns}" is forbidden: this namespace may not be deleted'
    ok = admission.Attributes(admission.DELETE, NAMESPACES, "", "mine", None, {"metadata": {"name": "mine"}})
    asyncio.run(chain.run(ok))


def test_default_tolerations_added_once() -> None:
    pod: dict[str, Any] = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]}}
    tolerations.add_default_tolerations(pod)
    keys = [(t["key"], t.get("tolerationSeconds")) for t in pod["spec"]["tolerations"]]
    assert keys == [("node.kubernetes.io/unreachable", None), ("node.kubernetes.io/not-ready", 300)]
    everything: dict[str, Any] = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    tolerations.add_default_tolerations(everything)
    assert len(everything["spec"]["tolerations"]) == 1


def test_token_volume_and_mounts() -> None:
    pod: dict[str, Any] = {
        "spec": {
            "containers": [
                {"name": "a"},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": serviceaccount.MOUNT_PATH}]},
            ],
            "initContainers": [{"name": "i"}],
        }
    }
    serviceaccount.mount_token(pod)
    (vol,) = pod["spec"]["volumes"]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    sources = vol["projected"]["sources"]
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["name"] == vol["name"]
    assert len(pod["spec"]["containers"][1]["volumeMounts"]) == 1  # its own mount wins
    assert pod["spec"]["initContainers"][0]["volumeMounts"][0]["readOnly"] is True
    assert not serviceaccount.should_automount({"spec": {}}, {"automountServiceAccountToken": False})
    assert serviceaccount.should_automount(
        {"spec": {"automountServiceAccountToken": True}}, {"automountServiceAccountToken": False}
    )


def test_quota_usage_of_pods() -> None:
    pod = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
        }
    }
    u = quotausage.usage(PODS, pod)
    assert u["pods"] == 1 and u["count/pods"] == 1
    assert u["requests.cpu"] == Decimal(2) and u["cpu"] == Decimal(2)  # the init container is larger
    assert quotausage.format_quantity(u["requests.memory"]) == "128Mi"
    assert quotausage.pretty({"requests.cpu": Decimal("0.5"), "pods": Decimal(3)}) == "pods=3,requests.cpu=500m"
    assert quotausage.usage(PODS, {"status": {"phase": "Succeeded"}}) == {}
    assert quotausage.missing_constraints(PODS, pod, {"limits.cpu", "pods"}) == ["limits.cpu"]
