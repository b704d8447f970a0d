"""Integration fixtures: real etcd, real api-server processes, real kubectl binaries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.apiserver import ApiServer, apiserver_factory, apiservers
from tests.support.etcd import etcd_server
from tests.support.kubectl import VERSIONS, Kubectl, kubectl_path

__all__ = ["apiserver_factory", "apiservers", "etcd_server"]


@pytest.fixture(params=VERSIONS, ids=[f"kubectl{v}" for v in VERSIONS])
def kubectl_version(request: pytest.FixtureRequest) -> str:
    version: str = request.param
    if kubectl_path(version) is None:
        pytest.skip(f"kubectl {version} not found (run `make deps`)")
    return version


def _kubectl(version: str, server: ApiServer, home: Path) -> Kubectl:
    binary = kubectl_path(version)
    assert binary is not None
    return Kubectl(binary, server.kubeconfig, home, version)


@pytest.fixture
def kubectl(kubectl_version: str, apiservers: list[ApiServer], tmp_path: Path) -> Kubectl:
    """The kubectl under test, talking to api-server A."""
    return _kubectl(kubectl_version, apiservers[0], tmp_path / "home-a")


@pytest.fixture
def kubectl_b(kubectl_version: str, apiservers: list[ApiServer], tmp_path: Path) -> Kubectl:
    """The same kubectl version talking to api-server B (same etcd)."""
    return _kubectl(kubectl_version, apiservers[1], tmp_path / "home-b")


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test (created with kubectl, deleted without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl.ok("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")
