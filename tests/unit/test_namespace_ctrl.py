"""Namespace controller (discovery filtering, deletion conditions) and the serviceaccount and
root CA helpers (pure parts)."""

from __future__ import annotations

from kubeha.controllers import namespace as nsc
from kubeha.controllers import serviceaccount as sac


def test_namespaced_resources_filter() -> None:
    core = {
        "resources": [
            {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["list", "delete", "deletecollection"]},
            {"name": "pods/status", "kind": "Pod", "namespaced": True, "verbs": ["get", "patch"]},
            {"name": "bindings", "kind": "Binding", "namespaced": True, "verbs": ["create"]},
            {"name": "nodes", "kind": "Node", "namespaced": False, "verbs": ["list", "delete"]},
            {"name": "services", "kind": "Service", "namespaced": True, "verbs": ["list", "delete"]},
        ]
    }
    authz = {
        "resources": [
            {"name": "localsubjectaccessreviews", "kind": "X", "namespaced": True, "verbs": ["create"]},
        ]
    }
    out = nsc.namespaced_resources([("", "v1", core), ("authorization.k8s.io", "v1", authz)])
    assert [(r.ref.resource, "deletecollection" in r.verbs) for r in out] == [("pods", True), ("services", False)]
    assert out[0].ref.path("x") == "/api/v1/namespaces/x/pods"


def test_conditions_reasons_and_transitions() -> None:
    outcome = nsc.Outcome(problems={nsc.COND_REMAINING: "pods has 1 left"}, remaining=1)
    status = nsc.set_conditions({"phase": "Terminating"}, outcome, "T1")
    by_type = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Terminating"
    assert set(by_type) == set(nsc.REASONS)
    assert by_type[nsc.COND_REMAINING]["status"] == "True"
    assert by_type[nsc.COND_REMAINING]["reason"] == "SomeResourcesRemain"
    assert by_type[nsc.COND_DISCOVERY]["reason"] == "ResourcesDiscovered"
    assert by_type[nsc.COND_DISCOVERY]["status"] == "False"
    assert by_type[nsc.COND_FINALIZERS]["reason"] == "ContentHasNoFinalizers"
    # unchanged conditions keep their transition time; changed ones get the new time
    again = nsc.set_conditions(status, nsc.Outcome(), "T2")
    by_type2 = {c["type"]: c for c in again["conditions"]}
    assert by_type2[nsc.COND_DISCOVERY]["lastTransitionTime"] == "T1"
    assert by_type2[nsc.COND_REMAINING]["lastTransitionTime"] == "T2"
    assert by_type2[nsc.COND_REMAINING]["reason"] == "ContentRemoved"


def test_namespace_active_and_root_ca_configmap() -> None:
    assert sac.namespace_active({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
    assert not sac.namespace_active({"metadata": {"name": "a", "deletionTimestamp": "t"}})
    assert not sac.namespace_active(None)
    cm = sac.root_ca_configmap("ns", "PEM", None)
    assert cm is not None and cm["metadata"]["name"] == sac.ROOT_CA_CONFIGMAP and cm["data"] == {"ca.crt": "PEM"}
    stored = {**cm, "metadata": {**cm["metadata"], "resourceVersion": "5"}}
    assert sac.root_ca_configmap("ns", "PEM", stored) is None
    changed = sac.root_ca_configmap("ns", "NEW", stored)
    assert changed is not None and changed["metadata"]["resourceVersion"] == "5" and changed["data"]["ca.crt"] == "NEW"
