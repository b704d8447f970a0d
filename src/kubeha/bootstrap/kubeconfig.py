"""kubeconfig files, in the shape kubectl and client-go read (credentials embedded as base64)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    user: str = "kubernetes-admin",
    cluster: str = "kubeha",
) -> dict[str, Any]:
    """The kubeconfig document as a dict: one cluster, one user, one context ``<user>@<cluster>``."""
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {"name": user, "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}}
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    user: str = "kubernetes-admin",
    cluster: str = "kubeha",
) -> None:
    """Write a kubeconfig (mode 0600: it holds a private key)."""
    doc = build_kubeconfig(server, ca_pem, cert_pem, key_pem, user=user, cluster=cluster)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)
    os.chmod(p, 0o600)
