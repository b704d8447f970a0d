"""A throwaway cluster PKI for tests: CA, api-server serving cert, admin client cert, kubeconfigs."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubeha.bootstrap import pki as kpki
from kubeha.bootstrap.kubeconfig import write_kubeconfig
from kubeha.cli.procs import client_ssl_context


@dataclass(frozen=True)
class PKI:
    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_crt(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_crt(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    def issue_client(self, cn: str, orgs: list[str] | None = None) -> tuple[Path, Path]:
        """A client certificate for another user (CN = user name, O = groups), written beside the CA."""
        cert, key = kpki.issue_cert(self.ca_crt.read_bytes(), self.ca_key.read_bytes(), cn, orgs=orgs, client=True)
        safe = cn.replace(":", "_").replace("/", "_")
        return kpki.write_pair(self.dir / "users", safe, cert, key)

    def kubeconfig(self, server: str, path: Path, cn: str = "kubernetes-admin", orgs: list[str] | None = None) -> Path:
        """A kubeconfig for ``server``; the admin identity unless ``cn`` names another user."""
        if cn == "kubernetes-admin" and orgs is None:
            cert, key = self.admin_crt, self.admin_key
        else:
            cert, key = self.issue_client(cn, orgs)
        write_kubeconfig(path, server, self.ca_crt.read_bytes(), cert.read_bytes(), key.read_bytes(), user=cn)
        return path

    def ssl_context(self) -> ssl.SSLContext:
        """Client TLS context trusting the CA and presenting the admin certificate."""
        return client_ssl_context(self.ca_crt, self.admin_crt, self.admin_key)


def make_pki(directory: Path) -> PKI:
    kpki.quickstart(directory, ["127.0.0.1", "localhost"], "https://127.0.0.1:6443")
    return PKI(directory)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    yield make_pki(tmp_path_factory.mktemp("pki"))
