"""Real `kubeha apiserver` processes for integration tests.

Each server runs as ``python -m kubeha apiserver`` on a free loopback port against a given etcd,
logs to a file, is ready when ``/readyz`` answers 200 over HTTPS with the admin certificate,
and is stopped by its own PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kubeha.cli.dev import apiserver_args
from kubeha.cli.procs import free_port, stop_process, wait_http_ok
from tests.support.pki import PKI

LOG_TAIL_LINES = 200


@dataclass
class ApiServer:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    kubeconfig: Path
    pki: PKI

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        return stop_process(self.proc, timeout)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def log(self, tail: int | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-tail:]) if tail else text


def start_apiserver(
    pki: PKI,
    etcd_endpoint: str,
    workdir: Path,
    name: str = "apiserver",
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> ApiServer:
    """Start one api-server and wait until it is ready; on failure its log is in the exception."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"{name}.log"
    cmd = [sys.executable, "-m", "kubeha", "apiserver", *apiserver_args(etcd_endpoint, port, pki.dir), *extra_args]
    if not any("admission-plugins" in a and "ServiceAccount" in a for a in extra_args):
        # No controller-manager runs beside these servers, so nothing creates each namespace's
        # "default" ServiceAccount and upstream's ServiceAccount admission would refuse every pod.
        cmd.append("--disable-admission-plugins=ServiceAccount")
    # Extra flags for every test api-server, e.g. to debug one run (later flags win).
    cmd += shlex.split(os.environ.get("KUBEHA_TEST_APISERVER_ARGS", ""))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = ApiServer(
        name, port, proc, log_path, pki.kubeconfig(f"https://127.0.0.1:{port}", workdir / f"{name}.kubeconfig"), pki
    )
    try:
        wait_http_ok(f"{server.url}/readyz", pki.ssl_context(), timeout=timeout, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise RuntimeError(
            f"{name} did not become ready: {exc}\n--- {name} log ---\n{server.log(LOG_TAIL_LINES)}"
        ) from exc
    return server


@dataclass
class ApiServerFactory:
    """Starts api-servers for one test or module and stops all of them at teardown."""

    pki: PKI
    workdir: Path
    servers: list[ApiServer] = field(default_factory=list)

    def __call__(self, etcd_endpoint: str, extra_args: Sequence[str] = (), name: str | None = None) -> ApiServer:
        server = start_apiserver(
            self.pki, etcd_endpoint, self.workdir, name or f"apiserver-{len(self.servers)}", extra_args
        )
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def logs(self, tail: int = LOG_TAIL_LINES) -> str:
        return "\n".join(f"--- {s.name} (port {s.port}) ---\n{s.log(tail)}" for s in self.servers)


def _endpoint(etcd: object) -> str:
    return str(getattr(etcd, "endpoint", etcd))


@pytest.fixture
def apiserver_factory(pki: PKI, tmp_path: Path) -> Iterator[ApiServerFactory]:
    """Function-scoped: ``apiserver_factory(etcd_server.endpoint)`` starts one more api-server."""
    factory = ApiServerFactory(pki, tmp_path / "apiservers")
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def apiservers(pki: PKI, etcd_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ApiServer]]:
    """Two api-servers (A and B) sharing the session's etcd, for a whole test module."""
    factory = ApiServerFactory(pki, tmp_path_factory.mktemp("apiservers"))
    try:
        endpoint = _endpoint(etcd_server)
        factory(endpoint, name="apiserver-a")
        factory(endpoint, name="apiserver-b")
        yield factory.servers
    finally:
        factory.stop_all()
