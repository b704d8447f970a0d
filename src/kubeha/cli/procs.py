"""Small process and probe helpers shared by `kubeha dev up` and the test harness."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the kernel picks it; a tiny race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def client_ssl_context(ca: str | Path, cert: str | Path | None = None, key: str | Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def http_get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """One blocking GET; returns (status, body). Raises OSError when nothing answers."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http_ok(
    url: str,
    ctx: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    proc: subprocess.Popen[Any] | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with code {proc.returncode} before {url} was ready")
        try:
            status, body = http_get(url, ctx)
            if status == 200:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s ({last})")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM the process (by its own pid), then SIGKILL it if it lingers; returns its exit code."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
