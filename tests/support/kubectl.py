"""Drive a real, versioned kubectl binary as a user would.

Binaries are found per version ``1.N``: env ``KUBEHA_KUBECTL_1_N``, then the preinstalled
``/usr/lib/google-cloud-sdk/bin/kubectl.1.N``, then ``.tools/kubectl-1.N`` (fetched by
``make deps``). The dispatcher ``kubectl`` is never used: it picks a binary from the server's
reported version and caches that choice, which would hide which client is under test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

REPO_ROOT = Path(__file__).resolve().parents[2]
GCLOUD_BIN = Path("/usr/lib/google-cloud-sdk/bin")
VERSIONS = ("1.32", "1.27")


def kubectl_path(version: str) -> Path | None:
    env = os.environ.get("KUBEHA_KUBECTL_" + version.replace(".", "_"))
    candidates = [Path(env)] if env else []
    candidates += [GCLOUD_BIN / f"kubectl.{version}", REPO_ROOT / ".tools" / f"kubectl-{version}"]
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


class Result(NamedTuple):
    rc: int
    stdout: str
    stderr: str


class Kubectl:
    """One kubectl version against one kubeconfig, with its own HOME (fresh discovery cache)."""

    def __init__(self, binary: Path, kubeconfig: Path, home: Path, version: str = "") -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.home = home
        self.version = version
        home.mkdir(parents=True, exist_ok=True)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env.update({"HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig), "NO_COLOR": "1"})
        env.update(extra or {})
        return env

    def argv(self, args: tuple[str, ...]) -> list[str]:
        return [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args]

    def run(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None, timeout: float = 60.0
    ) -> Result:
        proc = subprocess.run(
            self.argv(args), input=input, capture_output=True, text=True, env=self.env(env), timeout=timeout
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Run and require success; returns stdout (the failure message carries both streams)."""
        res = self.run(*args, input=input, env=env)
        assert res.rc == 0, f"kubectl {' '.join(args)} failed ({res.rc}):\n{res.stderr}\n{res.stdout}"
        return res.stdout

    def fail(self, *args: str, input: str | None = None) -> str:
        """Run and require failure; returns stderr."""
        res = self.run(*args, input=input)
        assert res.rc != 0, f"kubectl {' '.join(args)} unexpectedly succeeded:\n{res.stdout}"
        return res.stderr

    def json(self, *args: str) -> Any:
        return orjson.loads(self.ok(*args, "-o", "json"))

    def apply(self, manifest: str, *args: str) -> Result:
        """``kubectl apply -f -`` with the YAML given as a string (one or many documents)."""
        return self.run("apply", "-f", "-", *args, input=manifest)

    def create(self, manifest: str, *args: str) -> Result:
        return self.run("create", "-f", "-", *args, input=manifest)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start a long-running kubectl (e.g. ``get -w``); the caller stops it by its pid."""
        return subprocess.Popen(
            self.argv(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            start_new_session=True,
        )


def run_on_pty(
    argv: list[str],
    env: Mapping[str, str],
    answer: bytes,
    *,
    size: tuple[int, int] | None = None,
    prompt: bytes = b"term=",
    within: float = 60.0,
) -> tuple[str, int]:
    """Run ``argv`` (e.g. ``kubectl exec -it``) on a real terminal of ``size`` (rows, cols) and
    type ``answer`` once ``prompt`` shows; returns the terminal's text and the exit code. The
    process is killed after ``within`` seconds."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        os.execve(argv[0], argv, dict(env))
    if size is not None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    out = b""
    sent = False
    deadline = time.monotonic() + within
    status = 0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and prompt in out:
                os.write(fd, answer)
                sent = True
        else:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)
