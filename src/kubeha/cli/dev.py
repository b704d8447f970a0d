"""`kubeha dev up`: one etcd and N api-servers on loopback, in the foreground.

A development stopgap until the multi-node `kubeha up` provider exists. Everything lives under
one state directory (default ``.run/``): certificates, etcd data, logs, ``admin.kubeconfig``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from kubeha.bootstrap.kubeconfig import write_kubeconfig
from kubeha.bootstrap.pki import quickstart
from kubeha.cli.procs import client_ssl_context, stop_process, wait_http_ok


def apiserver_args(
    etcd_url: str, port: int, pki_dir: Path, bind: str = "127.0.0.1", extra: list[str] | None = None
) -> list[str]:
    """The flags of one api-server, named as upstream kube-apiserver's."""
    return [
        f"--etcd-servers={etcd_url}",
        f"--bind-address={bind}",
        f"--advertise-address={bind}",
        f"--secure-port={port}",
        f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
        f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
        f"--service-account-key-file={pki_dir / 'sa.pub'}",
        *kubelet_client_args(pki_dir),
        *(extra or []),
    ]


def kubelet_client_args(pki_dir: Path) -> list[str]:
    """How the api-server authenticates to kubelets (a PKI made before that pair existed has none)."""
    crt, key = pki_dir / "apiserver-kubelet-client.crt", pki_dir / "apiserver-kubelet-client.key"
    if not (crt.exists() and key.exists()):
        return []
    return [f"--kubelet-client-certificate={crt}", f"--kubelet-client-key={key}"]


def etcd_args(name: str, data_dir: Path, client_port: int, peer_port: int, host: str = "127.0.0.1") -> list[str]:
    client, peer = f"http://{host}:{client_port}", f"http://{host}:{peer_port}"
    return [
        f"--name={name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster={name}={peer}",
        "--initial-cluster-state=new",
        # Tests and development churn many revisions; keep the history bounded.
        "--auto-compaction-retention=1h",
    ]


class _Stop(Exception):
    pass


class DevCluster:
    def __init__(
        self,
        state_dir: str,
        apiservers: int = 2,
        etcd_port: int = 2379,
        first_apiserver_port: int = 6443,
        apiserver_extra_args: list[str] | None = None,
    ) -> None:
        self.dir = Path(state_dir).resolve()
        self.extra_args = apiserver_extra_args or []
        self.apiservers = apiservers
        self.etcd_port = etcd_port
        self.first_port = first_apiserver_port
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log_path = self.dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            # New session: Ctrl-C in the terminal reaches only us, and we stop children in order.
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        print(f"started {name} (pid {proc.pid}), log {log_path}", flush=True)
        return proc

    def _pki(self) -> Path:
        pki_dir = self.dir / "pki"
        server = f"https://127.0.0.1:{self.first_port}"
        if not (pki_dir / "ca.crt").exists():
            quickstart(pki_dir, ["127.0.0.1", "localhost"], server)
        kubeconfig = self.dir / "admin.kubeconfig"
        shutil.copyfile(pki_dir / "admin.kubeconfig", kubeconfig)
        kubeconfig.chmod(0o600)
        return pki_dir

    def start(self) -> None:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise RuntimeError("etcd is not installed (run `make deps`)")
        pki_dir = self._pki()
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        proc = self._spawn("etcd", [etcd, *etcd_args("default", self.dir / "etcd", self.etcd_port, self.etcd_port + 1)])
        wait_http_ok(f"{etcd_url}/health", timeout=30, proc=proc)
        ctx = client_ssl_context(pki_dir / "ca.crt", pki_dir / "admin.crt", pki_dir / "admin.key")
        for i in range(self.apiservers):
            port = self.first_port + i
            cmd = [
                sys.executable,
                "-m",
                "kubeha",
                "apiserver",
                *apiserver_args(etcd_url, port, pki_dir, extra=self.extra_args),
            ]
            proc = self._spawn(f"apiserver-{i}", cmd)
            wait_http_ok(f"https://127.0.0.1:{port}/readyz", ctx, timeout=60, proc=proc)
        # One controller-manager and one scheduler beside each api-server, leader-elected (the
        # project's fast-failover defaults), as on stacked control-plane nodes. They use the admin identity until `kubeha init` gives
        # each component its own certificate (upstream: --use-service-account-credentials).
        for i in range(self.apiservers):
            kubeconfig = self.dir / f"admin-{i}.kubeconfig"
            write_kubeconfig(
                kubeconfig,
                f"https://127.0.0.1:{self.first_port + i}",
                (pki_dir / "ca.crt").read_bytes(),
                (pki_dir / "admin.crt").read_bytes(),
                (pki_dir / "admin.key").read_bytes(),
            )
            self._spawn(
                f"controller-manager-{i}",
                [
                    sys.executable,
                    "-m",
                    "kubeha",
                    "controller-manager",
                    f"--kubeconfig={kubeconfig}",
                    "--allocate-node-cidrs=true",
                    f"--root-ca-file={pki_dir / 'ca.crt'}",
                    f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
                    f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
                ],
            )
            self._spawn(
                f"scheduler-{i}",
                [sys.executable, "-m", "kubeha", "scheduler", f"--kubeconfig={kubeconfig}"],
            )

    def stop(self) -> None:
        # Reverse order: api-servers before the etcd they depend on.
        for name, proc in reversed(self.procs):
            code = stop_process(proc)
            print(f"stopped {name} (exit {code})", flush=True)
        self.procs.clear()

    def run(self) -> int:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            raise _Stop()

        # Installed explicitly: a shell that starts us in the background leaves SIGINT ignored.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start()
            print(
                f"\nkubeha dev control plane is up: {self.apiservers} api-server(s) on 127.0.0.1:{self.first_port}..,"
                f" etcd on 127.0.0.1:{self.etcd_port}.\n"
                f"  kubectl --kubeconfig {self.dir / 'admin.kubeconfig'} get ns\n"
                "Ctrl-C stops everything.",
                flush=True,
            )
            while True:
                for name, proc in self.procs:
                    if proc.poll() is not None:
                        print(f"{name} exited with code {proc.returncode}; stopping", file=sys.stderr, flush=True)
                        return 1
                time.sleep(0.5)
        except _Stop:
            return 0
        except (RuntimeError, TimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self.stop()
