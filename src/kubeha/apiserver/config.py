"""Runtime settings of one api-server (filled from flags by ``server.py``, or directly by tests)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass
class ServerConfig:
    # address other components and the `kubernetes` Endpoints use to reach this api-server
    advertise_address: str = "127.0.0.1"
    secure_port: int = 6443
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    # in order: AlwaysAllow, AlwaysDeny, Node, RBAC (the `kubeha apiserver` flag defaults to Node,RBAC;
    # in-process apps built by tests default to AlwaysAllow)
    authorization_modes: tuple[str, ...] = ("AlwaysAllow",)
    anonymous_auth: bool = True
    token_auth_file: str = ""
    enable_bootstrap_token_auth: bool = False
    # the first issuer signs TokenRequest tokens; every one is accepted when verifying
    service_account_issuers: tuple[str, ...] = ("https://kubernetes.default.svc.cluster.local",)
    service_account_signing_key_file: str = ""
    service_account_key_files: tuple[str, ...] = ()
    # audiences tokens must carry (default: the issuers)
    api_audiences: tuple[str, ...] = ()
    # admission plugins to run, in upstream order (server.py resolves the --enable/--disable flags);
    # None: upstream's default set without ServiceAccount (see app.py)
    admission_plugins: tuple[str, ...] | None = None
    # the audit log (no events without both a path and a policy, as upstream); sizes in MB, age in days
    audit_log_path: str = ""
    audit_policy_file: str = ""
    audit_log_maxsize: int = 0
    audit_log_maxbackup: int = 0
    audit_log_maxage: int = 0
    max_requests_inflight: int = 400
    max_body_bytes: int = 3 * 1024 * 1024
    # seconds a client may take to send a request body (--request-timeout; 408 past it)
    request_timeout: float = 60.0
    max_object_bytes: int = 1536 * 1024
    # watch timeouts are random in [min_request_timeout, 2 * min_request_timeout) as upstream
    min_request_timeout: int = 1800
    bookmark_interval: float = 60.0
    # whether startup creates the default namespaces and the `kubernetes` service
    bootstrap_objects: bool = True
    version: dict[str, str] = field(default_factory=dict)
    # how the api-server reaches kubelets (logs, exec, attach, port-forward)
    kubelet_client_certificate: str = ""
    kubelet_client_key: str = ""
    kubelet_certificate_authority: str = ""  # empty: the kubelet's serving certificate is not verified
    kubelet_preferred_address_types: tuple[str, ...] = ("InternalIP", "ExternalIP", "Hostname")
    kubelet_port: int = 10250  # when the Node does not report daemonEndpoints.kubeletEndpoint

    @property
    def service_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.service_cluster_ip_range, strict=False)

    @property
    def node_port_range(self) -> tuple[int, int]:
        lo, _, hi = self.service_node_port_range.partition("-")
        return int(lo), int(hi or lo)


VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubeha",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
