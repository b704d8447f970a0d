"""kubeconfig and in-cluster loading."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from kubeha.bootstrap import pki
from kubeha.client.kubeconfig import ClientConfig, ConfigError, in_cluster_config, load_kubeconfig


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _write(path: Path, doc: Mapping[str, object]) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _doc(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://one:6443/", "certificate-authority-data": _b64(b"CA1")}},
            {"name": "c2", "cluster": {"server": "https://two:6443", "certificate-authority": "certs/ca.crt"}},
        ],
        "users": [
            {"name": "u1", "user": {"client-certificate-data": _b64(b"CERT"), "client-key-data": _b64(b"KEY")}},
            {"name": "u2", "user": {"token": "tok-2"}},
            {"name": "u3", "user": {"tokenFile": "tokens/t", "client-certificate": "/abs/c.crt"}},
        ],
        "contexts": [
            {"name": "one", "context": {"cluster": "c1", "user": "u1"}},
            {"name": "two", "context": {"cluster": "c2", "user": "u2", "namespace": "team"}},
            {"name": "three", "context": {"cluster": "c2", "user": "u3"}},
            {"name": "broken", "context": {"cluster": "nope", "user": "u1"}},
        ],
        "current-context": "one",
    }
    doc.update(over)
    return doc


def test_inline_data_and_current_context(tmp_path: Path) -> None:
    cfg = load_kubeconfig(_write(tmp_path / "config", _doc()))
    assert cfg.server == "https://one:6443"
    assert (cfg.ca_data, cfg.cert_data, cfg.key_data) == (b"CA1", b"CERT", b"KEY")
    assert cfg.token is None and cfg.namespace is None and not cfg.insecure


def test_file_paths_relative_to_kubeconfig_and_namespace(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes(b"CA2")
    cfg = load_kubeconfig(_write(tmp_path / "config", _doc()), context="two")
    assert cfg.server == "https://two:6443" and cfg.ca_data == b"CA2"
    assert cfg.token == "tok-2" and cfg.bearer_token() == "tok-2" and cfg.namespace == "team"


def test_token_file_is_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes(b"CA2")
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "t").write_text("first\n")
    doc = _doc()
    doc["users"] = [{"name": "u3", "user": {"tokenFile": "tokens/t"}}]
    cfg = load_kubeconfig(_write(tmp_path / "config", doc), context="three")
    assert cfg.token_file == str(tmp_path / "tokens" / "t")
    assert cfg.bearer_token() == "first"
    (tmp_path / "tokens" / "t").write_text("second")
    assert cfg.bearer_token() == "first"  # cached for a minute
    clock = [1e9]
    monkeypatch.setattr("kubeha.client.kubeconfig.time.monotonic", lambda: clock[0])
    assert cfg.bearer_token() == "second"


def test_missing_file_reference_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="certificate-authority"):
        load_kubeconfig(_write(tmp_path / "config", _doc()), context="two")


def test_unknown_context_and_cluster(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _doc())
    with pytest.raises(ConfigError, match="does not exist"):
        load_kubeconfig(path, context="missing")
    with pytest.raises(ConfigError, match='cluster "nope"'):
        load_kubeconfig(path, context="broken")


def test_kubeconfig_env_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = {
        "clusters": [{"name": "c1", "cluster": {"server": "https://first:1", "insecure-skip-tls-verify": True}}],
        "users": [],
        "contexts": [],
    }
    a = _write(tmp_path / "a", first)
    b = _write(tmp_path / "b", _doc())
    monkeypatch.setenv("KUBECONFIG", f"{a}:{tmp_path / 'missing'}:{b}")
    cfg = load_kubeconfig()
    assert cfg.server == "https://first:1" and cfg.insecure  # c1 from the first file
    assert cfg.cert_data == b"CERT"  # user and context from the second


def test_no_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no kubeconfig"):
        load_kubeconfig(str(tmp_path / "none"))


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "namespace").write_text("kube-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = in_cluster_config(str(tmp_path))
    assert cfg.server == "https://[fd00::1]:443"
    assert cfg.bearer_token() == "sa-token" and cfg.ca_data == b"CA" and cfg.namespace == "kube-system"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ConfigError):
        in_cluster_config(str(tmp_path))


def test_ssl_context_with_real_pki(tmp_path: Path) -> None:
    pki.quickstart(tmp_path, ["127.0.0.1"], "https://127.0.0.1:6443")
    cfg = ClientConfig(
        "https://127.0.0.1:6443",
        ca_data=(tmp_path / "ca.crt").read_bytes(),
        cert_data=(tmp_path / "admin.crt").read_bytes(),
        key_data=(tmp_path / "admin.key").read_bytes(),
    )
    ctx = cfg.ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert len(ctx.get_ca_certs()) == 1
    assert cfg.ssl_context() is ctx
    insecure = ClientConfig("https://x", insecure=True).ssl_context()
    assert insecure.verify_mode == ssl.CERT_NONE
