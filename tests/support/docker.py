"""A private ``dockerd`` for tests: its own socket, data root, exec root and pid file under one
temporary directory, no bridge and no iptables rules, so it touches nothing of the host's and is
removed completely by :meth:`PrivateDocker.stop` (by its pid, then its directory)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
from pathlib import Path


def docker_available() -> bool:
    return shutil.which("dockerd") is not None and os.geteuid() == 0


class PrivateDocker:
    def __init__(self, base: str | None = None) -> None:
        # short path: the exec root holds unix sockets (108-byte limit)
        self.dir = Path(base or tempfile.mkdtemp(prefix="kdk-", dir="/tmp"))
        self.socket = str(self.dir / "docker.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60.0) -> None:
        d = self.dir
        for sub in ("data", "exec"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cmd = [
            "dockerd",
            "--host",
            self.endpoint,
            "--data-root",
            str(d / "data"),
            "--exec-root",
            str(d / "exec"),
            "--pidfile",
            str(d / "docker.pid"),
            "--bridge",
            "none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--storage-driver",
            "overlay2",
            "--containerd-namespace",
            f"kdk-{os.getpid()}",
            "--containerd-plugins-namespace",
            f"kdkp-{os.getpid()}",
        ]
        log = open(d / "dockerd.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(d / 'dockerd.log').read_text()[-2000:]}")
            if self._ping():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("dockerd did not answer in time")

    def _ping(self) -> bool:
        import http.client
        import socket

        class _Conn(http.client.HTTPConnection):
            def connect(s) -> None:
                s.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.sock.connect(self.socket)

        try:
            c = _Conn("docker", timeout=2)
            c.request("GET", "/_ping")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except (OSError, urllib.error.URLError, http.client.HTTPException):
            return False

    def containers(self) -> list[str]:
        out = subprocess.run(
            ["docker", "-H", self.endpoint, "ps", "-aq"], capture_output=True, text=True, check=False
        ).stdout
        return out.split()

    def stop(self) -> None:
        """Remove its containers, stop the daemon by its pid and delete its directory."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.containers()
            if ids:
                subprocess.run(["docker", "-H", self.endpoint, "rm", "-f", *ids], capture_output=True, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # overlay mounts of a daemon that died uncleanly would keep the directory busy
        with contextlib.suppress(OSError):
            mounts = Path("/proc/mounts").read_text().splitlines()
            for line in sorted((m.split()[1] for m in mounts), reverse=True):
                if line.startswith(str(self.dir) + "/"):
                    subprocess.run(["umount", "-l", line], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
