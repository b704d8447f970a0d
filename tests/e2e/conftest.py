"""End-to-end fixtures: real etcd and api-servers (as the integration tests), plus a private
dockerd. These tests need root, dockerd, CNI plugins and busybox-static (`make e2e`)."""

from __future__ import annotations

from tests.support.apiserver import apiserver_factory, apiservers
from tests.support.etcd import etcd_server

__all__ = ["apiserver_factory", "apiservers", "etcd_server"]
