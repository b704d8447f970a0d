"""Streaming through a real api-server to a real `kubeha kubelet` (host runtime) with the real
kubectl 1.32: logs (-f, --tail, --timestamps, --previous), exec (exit codes, -i, -it on a pty),
port-forward (SPDY tunnelled over WebSocket), the official Python client's v4 exec, and the
kubelet's own authentication."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeha.cli.procs import free_port, stop_process
from tests.support.apiserver import ApiServer
from tests.support.kubectl import Kubectl, kubectl_path, run_on_pty

KUBECTL = kubectl_path("1.32")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl 1.32 is not installed")


class Env:
    def __init__(self, server: ApiServer, tmp: Path) -> None:
        assert KUBECTL is not None
        self.server = server
        self.tmp = tmp
        self.kubectl = Kubectl(KUBECTL, server.kubeconfig, tmp / "home", "1.32")
        self.node = f"ks-{uuid.uuid4().hex[:6]}"
        self.ns = f"ks-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.root = tmp / "root"
        self.log_path = tmp / "kubelet.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kubeha",
                    "kubelet",
                    f"--kubeconfig={self.server.kubeconfig}",
                    f"--hostname-override={self.node}",
                    "--node-ip=127.0.0.1",
                    f"--root-dir={self.root}",
                    f"--port={self.port}",
                    "--address=127.0.0.1",
                    f"--client-ca-file={self.server.pki.ca_crt}",
                    "--node-status-update-frequency=1s",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def k(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.kubectl.argv(("-n", self.ns, *args)),
            input=input,
            capture_output=True,
            text=True,
            env=self.kubectl.env(),
            timeout=timeout,
        )

    def create_pod(self, name: str, command: str, restart: str = "Always") -> None:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": self.node,
                "runtimeClassName": "host",
                "hostNetwork": True,
                "restartPolicy": restart,
                "terminationGracePeriodSeconds": 2,
                "containers": [
                    {
                        "name": "main",
                        "image": "host",
                        "command": ["sh", "-c", command],
                        "env": [{"name": "X", "value": "1"}],
                    }
                ],
            },
        }
        r = self.k("create", "-f", "-", input=json.dumps(pod))
        assert r.returncode == 0, r.stderr

    def pod(self, name: str) -> dict[str, Any]:
        r = self.k("get", "pod", name, "-o", "json")
        assert r.returncode == 0, r.stderr
        out: dict[str, Any] = json.loads(r.stdout)
        return out

    def wait_for(self, name: str, check: Any, within: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + within
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.pod(name)
            if check(last):
                return last
            time.sleep(0.3)
        raise AssertionError(f"pod {name} never got there: {last.get('status')}\n{self.log_tail()}")

    def running(self, name: str) -> dict[str, Any]:
        return self.wait_for(name, lambda p: (p.get("status") or {}).get("phase") == "Running")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def runtime_pids(self) -> list[int]:
        pids: list[int] = []
        for state in self.root.glob("pods/*/*/*.state.json"):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(state.read_text())
                pids += [int(data[k]) for k in ("pid", "shimPid") if data.get(k)]
        return pids


@pytest.fixture(scope="module")
def env(apiservers: list[ApiServer]) -> Iterator[Env]:
    tmp = Path(tempfile.mkdtemp(prefix="kubelet-stream-"))
    e = Env(apiservers[0], tmp)
    e.start()
    try:
        assert e.kubectl.run("create", "namespace", e.ns).rc == 0
        yield e
    finally:
        e.kubectl.run("delete", "namespace", e.ns, "--wait=false")
        if e.proc is not None:
            stop_process(e.proc, 10)
        text = e.log_path.read_text(errors="replace")
        Path("/tmp/last-kubelet-streaming-test.log").write_text(text)
        for pid in e.runtime_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
        assert "Traceback" not in text, text[-4000:]


@pytest.fixture(scope="module")
def sleeper(env: Env) -> str:
    env.create_pod("sleeper", "echo started; exec sleep 3600")
    env.running("sleeper")
    return "sleeper"


def test_logs_follow_ends_with_container(env: Env) -> None:
    env.create_pod("counter", "for i in 1 2 3 4 5 6; do echo n$i; sleep 0.4; done", restart="Never")
    env.running("counter")
    r = env.k("logs", "-f", "counter", timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"n{i}" for i in range(1, 7)]
    env.wait_for("counter", lambda p: p["status"].get("phase") == "Succeeded")
    r = env.k("logs", "counter", "--tail=1")
    assert r.stdout == "n6\n", r
    r = env.k("logs", "counter", "--timestamps", "-c", "main")
    first = r.stdout.splitlines()[0]
    ts, _, text = first.partition(" ")
    assert text == "n1" and ts.endswith("Z") and "T" in ts, first
    r = env.k("logs", "counter", "-c", "nope")
    assert r.returncode != 0 and "container nope is not valid for pod counter" in r.stderr


def test_logs_previous_after_restart(env: Env) -> None:
    env.create_pod("crasher", "echo attempt-$(date +%s%N); sleep 0.5; exit 1")
    env.wait_for(
        "crasher", lambda p: any(c.get("restartCount", 0) >= 1 for c in p["status"].get("containerStatuses") or ())
    )
    r = env.k("logs", "crasher", "--previous")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("attempt-"), r.stdout


def test_exec_exit_code_and_stdin(env: Env, sleeper: str) -> None:
    r = env.k("exec", sleeper, "--", "sh", "-c", "echo hi; echo oops >&2; echo X=$X; exit 3")
    assert r.returncode == 3, r
    assert r.stdout == "hi\nX=1\n" and "oops" in r.stderr
    r = env.k("exec", "-i", sleeper, "--", "sh", "-c", "cat; echo done", input="hello\nworld\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\nworld\ndone\n"
    r = env.k("exec", sleeper, "--", "no-such-command-xyz")
    assert r.returncode != 0


def test_exec_tty(env: Env, sleeper: str) -> None:
    argv = env.kubectl.argv(
        ("-n", env.ns, "exec", "-it", sleeper, "--", "sh", "-c", "tty; echo term=$TERM; read x; echo got-$x; exit 5")
    )
    text, code = run_on_pty(argv, env.kubectl.env(), b"abc\r", within=30)
    assert "/dev/pts/" in text and "term=xterm" in text and "got-abc" in text, text
    assert code == 5, text


def test_port_forward(env: Env) -> None:
    port, local = free_port(), free_port()
    env.create_pod("web", f"exec python3 -m http.server {port} --bind 127.0.0.1")
    env.running("web")
    proc = subprocess.Popen(
        env.kubectl.argv(("-n", env.ns, "port-forward", "pod/web", f"{local}:{port}")),
        env=env.kubectl.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        body = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as resp:
                    assert resp.status == 200
                    body = resp.read()
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert b"Directory listing" in body, proc.stderr
        # a second connection over the same session
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as resp:
            assert resp.status == 200
    finally:
        stop_process(proc, 5)


def test_python_client_exec_v4(env: Env, sleeper: str) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    api_client = config.new_client_from_config(str(env.server.kubeconfig))
    try:
        api = client.CoreV1Api(api_client)
        out = stream(
            api.connect_get_namespaced_pod_exec,
            sleeper,
            env.ns,
            command=["sh", "-c", "echo from-python"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
        assert out == "from-python\n"
    finally:
        api_client.close()


def test_kubelet_requires_authentication(env: Env, sleeper: str) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{env.port}/pods"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url, context=ctx, timeout=5)
    assert exc.value.code == 401
    crt, key = env.server.pki.issue_client("nobody-streaming")
    ctx.load_cert_chain(str(crt), str(key))
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url, context=ctx, timeout=5)
    assert exc.value.code == 403
    pki = env.server.pki.dir
    good = ssl.create_default_context()
    good.check_hostname = False
    good.verify_mode = ssl.CERT_NONE
    good.load_cert_chain(str(pki / "apiserver-kubelet-client.crt"), str(pki / "apiserver-kubelet-client.key"))
    with urllib.request.urlopen(url, context=good, timeout=5) as resp:
        names = [p["metadata"]["name"] for p in json.loads(resp.read())["items"]]
    assert sleeper in names
