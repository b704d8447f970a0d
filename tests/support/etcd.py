"""Run a real single-member etcd on free loopback ports, for tests and benchmarks.

    with EtcdServer() as etcd:
        kv = EtcdKV([etcd.endpoint])

In pytest, import the session fixture into a test module:
``from tests.support.etcd import etcd_server  # noqa: F401``.
``stop()``/``kill()`` then ``start()`` keep the data dir and ports, so tests can simulate outages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from types import TracebackType

import pytest

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdServer:
    """``tls`` = (ca_file, cert_file, key_file): serve clients over https and require client
    certificates signed by that CA (the same pair is used as etcd's server certificate and as our
    health-check client certificate, so it must be valid for both and for 127.0.0.1)."""

    def __init__(
        self, name: str = "default", *, extra_args: list[str] | None = None, tls: tuple[str, str, str] | None = None
    ) -> None:
        self.name = name
        self.tls = tls
        self.client_port = free_port()
        self.peer_port = free_port()
        scheme = "https" if tls else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.dir = tempfile.mkdtemp(prefix="kubeha-etcd-")
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        return [
            ETCD_BIN,
            "--name",
            self.name,
            "--data-dir",
            os.path.join(self.dir, "data"),
            "--listen-client-urls",
            self.endpoint,
            "--advertise-client-urls",
            self.endpoint,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            f"{self.name}={self.peer_url}",
            "--log-level",
            "error",
            # tests want a quick leader; a single member elects itself at once anyway
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            *self._tls_args(),
            *self.extra_args,
        ]

    def _tls_args(self) -> list[str]:
        if not self.tls:
            return []
        ca, cert, key = self.tls
        return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth"]

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ca, cert, key = self.tls
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)
        return ctx

    def start(self, timeout: float = 15.0) -> EtcdServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(self._args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}; see {self.dir}/etcd.log")
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1, context=self._ssl_context()) as r:
                    if b'"true"' in r.read():
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd at {self.endpoint} not healthy after {timeout}s")
            time.sleep(0.05)

    def _signal(self, sig: int, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)  # our own child, by its PID
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        """Graceful stop (SIGTERM); the data dir stays for a later start()."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Crash (SIGKILL); the data dir stays for a later start()."""
        self._signal(signal.SIGKILL)

    def close(self) -> None:
        """Stop and remove the data dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """One etcd for the whole session; tests isolate themselves by key prefix."""
    with EtcdServer() as server:
        yield server
