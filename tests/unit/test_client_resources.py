"""Resource references and their REST paths."""

from __future__ import annotations

import pytest

from kubeha.client.resources import CONFIGMAPS, DEPLOYMENTS, JOBS, LEASES, NAMESPACES, NODES, PODS, ref_for


def test_core_paths() -> None:
    assert PODS.path() == "/api/v1/pods"
    assert PODS.path("ns") == "/api/v1/namespaces/ns/pods"
    assert PODS.path("ns", "p") == "/api/v1/namespaces/ns/pods/p"
    assert PODS.path("ns", "p", "binding") == "/api/v1/namespaces/ns/pods/p/binding"
    assert NODES.path("ignored", "n1", "status") == "/api/v1/nodes/n1/status"
    assert NAMESPACES.path(None, "kube-system") == "/api/v1/namespaces/kube-system"


def test_group_paths() -> None:
    assert DEPLOYMENTS.path("d", "web", "scale") == "/apis/apps/v1/namespaces/d/deployments/web/scale"
    assert LEASES.path("kube-system") == "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    assert DEPLOYMENTS.api_version == "apps/v1" and PODS.api_version == "v1"
    assert CONFIGMAPS.list_kind == "ConfigMapList"


def test_bad_segments() -> None:
    with pytest.raises(ValueError):
        PODS.path("ns", "a/b")
    with pytest.raises(ValueError):
        PODS.path("ns", None, "status")
    assert PODS.path("ns", "a b") == "/api/v1/namespaces/ns/pods/a%20b"


def test_ref_for() -> None:
    assert ref_for("v1", "Pod") == PODS
    assert ref_for("apps/v1", "Deployment") == DEPLOYMENTS
    ev = ref_for("events.k8s.io/v1", "Event")
    assert (ev.group, ev.resource, ev.namespaced) == ("events.k8s.io", "events", True)
    assert ref_for("batch/v1", "Job") == JOBS  # known but not served yet
    with pytest.raises(KeyError):
        ref_for("example.com/v1", "Widget")
