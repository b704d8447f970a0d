"""Where a client finds its api-server and credentials: kubeconfig files or the in-cluster mount.

kubeconfig semantics follow kubectl: ``$KUBECONFIG`` may list several files (``:``-separated);
for each named cluster/user/context the first file that defines it wins, and so does the first
``current-context``. File references (``certificate-authority``, ``client-certificate``,
``client-key``, ``tokenFile``) are relative to the kubeconfig file that holds them; inline
``*-data`` fields are base64 PEM.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Bound service-account tokens rotate (kubelet refreshes the file well before expiry); re-reading
# once a minute is what client-go does.
TOKEN_REREAD_SECONDS = 60.0


class ConfigError(Exception):
    """The kubeconfig (or in-cluster environment) does not describe a usable client."""


@dataclass
class ClientConfig:
    server: str  # https://host:port
    ca_data: bytes | None = None  # PEM
    cert_data: bytes | None = None  # PEM client certificate
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None  # re-read periodically (bound SA tokens rotate)
    insecure: bool = False
    namespace: str | None = None  # the context's namespace (in-cluster: the pod's namespace)
    tls_server_name: str | None = None
    username: str | None = None  # basic auth, only if the kubeconfig says so
    password: str | None = None
    _ssl: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)
    _file_token: tuple[float, str] | None = field(default=None, init=False, repr=False, compare=False)

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context trusting ``ca_data`` (else the system store) and presenting the client cert."""
        if self._ssl is not None:
            return self._ssl
        # With a CA given, trust only that CA (as client-go): the system store stays out.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode("ascii"))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.cert_data and self.key_data:
            _load_cert_chain(ctx, self.cert_data, self.key_data)
        self._ssl = ctx
        return ctx

    def bearer_token(self) -> str | None:
        """The token to send: from ``token_file`` (re-read at most once a minute), else ``token``."""
        if self.token_file:
            now = time.monotonic()
            cached = self._file_token
            if cached is None or now - cached[0] >= TOKEN_REREAD_SECONDS:
                try:
                    text = Path(self.token_file).read_text().strip()
                except OSError:
                    # keep using the last good token (the file is swapped atomically, but be safe)
                    text = cached[1] if cached else (self.token or "")
                self._file_token = (now, text)
                cached = self._file_token
            return cached[1] or None
        return self.token


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl can load a certificate chain only from files: write both to a private temporary
    # directory and remove them at once.
    with tempfile.TemporaryDirectory(prefix="kubeha-tls-") as d:
        os.chmod(d, 0o700)
        cert_path, key_path = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


def default_kubeconfig_paths() -> list[str]:
    env = os.environ.get("KUBECONFIG", "")
    paths = [p for p in env.split(os.pathsep) if p]
    return paths or [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def _named(items: Any) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for item in items or []:
        if isinstance(item, dict) and "name" in item:
            out.append((str(item["name"]), item))
    return out


def _merge(paths: list[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str | None]:
    """(clusters, users, contexts, current-context) over ``paths``; entries keep a ``_dir`` key."""
    clusters: dict[str, Any] = {}
    users: dict[str, Any] = {}
    contexts: dict[str, Any] = {}
    current: str | None = None
    found = False
    for path in paths:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            continue
        found = True
        doc = yaml.safe_load(text) or {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: not a kubeconfig document")
        base = os.path.dirname(os.path.abspath(path))
        for section, key, target in (
            ("clusters", "cluster", clusters),
            ("users", "user", users),
            ("contexts", "context", contexts),
        ):
            for name, item in _named(doc.get(section)):
                if name not in target:
                    target[name] = {**(item.get(key) or {}), "_dir": base}
        if current is None and doc.get("current-context"):
            current = str(doc["current-context"])
    if not found:
        raise ConfigError(f"no kubeconfig found at {', '.join(paths)}")
    return clusters, users, contexts, current


def _data_or_file(entry: dict[str, Any], data_key: str, file_key: str) -> bytes | None:
    if entry.get(data_key):
        return base64.b64decode(entry[data_key])
    if entry.get(file_key):
        p = Path(os.path.expanduser(str(entry[file_key])))
        if not p.is_absolute():
            p = Path(entry["_dir"]) / p
        try:
            return p.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read {file_key} {p}: {e}") from e
    return None


def load_kubeconfig(path: str | None = None, context: str | None = None) -> ClientConfig:
    """A :class:`ClientConfig` from a kubeconfig (``path``, else ``$KUBECONFIG``, else
    ``~/.kube/config``) for ``context`` (else the current context)."""
    paths = [path] if path else default_kubeconfig_paths()
    clusters, users, contexts, current = _merge(paths)
    ctx_name = context or current
    if not ctx_name:
        raise ConfigError("kubeconfig has no current-context and no context was given")
    if ctx_name not in contexts:
        raise ConfigError(f'context "{ctx_name}" does not exist')
    ctx = contexts[ctx_name]
    cluster_name = ctx.get("cluster")
    if not cluster_name or cluster_name not in clusters:
        raise ConfigError(f'cluster "{cluster_name}" of context "{ctx_name}" does not exist')
    cluster = clusters[cluster_name]
    user: dict[str, Any] = {}
    if ctx.get("user"):
        if ctx["user"] not in users:
            raise ConfigError(f'user "{ctx["user"]}" of context "{ctx_name}" does not exist')
        user = users[ctx["user"]]
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(f'cluster "{cluster_name}" has no server')
    token_file = user.get("tokenFile")
    if token_file and not os.path.isabs(os.path.expanduser(token_file)):
        token_file = os.path.join(user["_dir"], token_file)
    return ClientConfig(
        server=server.rstrip("/"),
        ca_data=_data_or_file(cluster, "certificate-authority-data", "certificate-authority"),
        cert_data=_data_or_file(user, "client-certificate-data", "client-certificate"),
        key_data=_data_or_file(user, "client-key-data", "client-key"),
        token=user.get("token") or None,
        token_file=os.path.expanduser(token_file) if token_file else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=ctx.get("namespace") or None,
        tls_server_name=cluster.get("tls-server-name") or None,
        username=user.get("username") or None,
        password=user.get("password") or None,
    )


def in_cluster_config(sa_dir: str = SA_DIR) -> ClientConfig:
    """The config of a pod: ``KUBERNETES_SERVICE_HOST``/``PORT`` and the service-account mount."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    token_file = os.path.join(sa_dir, "token")
    if not os.path.exists(token_file):
        raise ConfigError(f"no service-account token at {token_file}")
    ca_path = Path(sa_dir) / "ca.crt"
    ns_path = Path(sa_dir) / "namespace"
    return ClientConfig(
        server=f"https://{host}:{port}",
        ca_data=ca_path.read_bytes() if ca_path.exists() else None,
        token_file=token_file,
        namespace=ns_path.read_text().strip() if ns_path.exists() else None,
    )
