"""``kubeha apiserver``: flags (upstream names), TLS serving, graceful shutdown.

Shutdown on SIGTERM/SIGINT: /readyz fails at once, after --shutdown-delay-duration the listener
closes, in-flight requests drain (bounded), watches end cleanly, etcd is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import ssl
import sys

from kubeha.apiserver import admission, startup
from kubeha.apiserver.app import AUTHZ, CTX, POLICY, REST, build_app
from kubeha.apiserver.config import ServerConfig
from kubeha.apiserver.httpserver import App, Server
from kubeha.apiserver.rest import Rest
from kubeha.machinery import process

log = logging.getLogger("kubeha.apiserver")

GC_GEN0_THRESHOLD = 20_000  # the default is 700 allocations


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeha apiserver", description="The kubeha API server (kube-apiserver twin).")
    p.add_argument("--etcd-servers", required=True, help="comma-separated etcd client URLs")
    p.add_argument("--etcd-cafile")
    p.add_argument("--etcd-certfile")
    p.add_argument("--etcd-keyfile")
    p.add_argument("--bind-address", default="0.0.0.0")
    p.add_argument("--secure-port", type=int, default=6443)
    p.add_argument("--advertise-address", default="")
    p.add_argument("--tls-cert-file", required=True)
    p.add_argument("--tls-private-key-file", required=True)
    p.add_argument("--client-ca-file")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12")
    p.add_argument("--service-node-port-range", default="30000-32767")
    p.add_argument(
        "--authorization-mode",
        default="Node,RBAC",
        help="comma list, in order, of AlwaysAllow, AlwaysDeny, Node, RBAC (system:masters is always allowed)",
    )
    p.add_argument("--anonymous-auth", type=process.parse_bool, default=True, nargs="?", const=True)
    p.add_argument("--token-auth-file", default="", help='static tokens, CSV: token,user,uid,"group1,group2"')
    p.add_argument("--enable-bootstrap-token-auth", type=process.parse_bool, default=False, nargs="?", const=True)
    p.add_argument(
        "--service-account-issuer",
        action="append",
        default=[],
        help="issuer of service account tokens (may repeat: the first signs, all are accepted)",
    )
    p.add_argument("--service-account-signing-key-file", default="", help="private key (RSA or P-256) signing tokens")
    p.add_argument(
        "--service-account-key-file",
        action="append",
        default=[],
        help="PEM file of public keys verifying service account tokens (may repeat)",
    )
    p.add_argument("--api-audiences", default="", help="comma list of audiences tokens must carry")
    p.add_argument("--shutdown-delay-duration", type=process.parse_duration, default=0.0)
    p.add_argument(
        "--shutdown-timeout",
        type=process.parse_duration,
        default=30.0,
        help="how long in-flight requests may take to drain at shutdown",
    )
    p.add_argument("--max-requests-inflight", type=int, default=400)
    p.add_argument("--min-request-timeout", type=int, default=1800)
    p.add_argument(
        "--request-timeout",
        type=process.parse_duration,
        default=60.0,
        help="how long a client may take to send a request body (408 past it)",
    )
    p.add_argument("--enable-admission-plugins", default="", help="admission plugins to enable beyond the defaults")
    p.add_argument("--disable-admission-plugins", default="", help="default admission plugins to disable")
    p.add_argument("--audit-log-path", default="", help="audit log file (JSON lines); '-' means stdout")
    p.add_argument("--audit-policy-file", default="", help="audit.k8s.io/v1 Policy deciding what is logged")
    p.add_argument("--audit-log-maxsize", type=int, default=0, help="rotate the audit log at this many MB")
    p.add_argument("--audit-log-maxbackup", type=int, default=0, help="rotated audit logs to keep")
    p.add_argument("--audit-log-maxage", type=int, default=0, help="days to keep rotated audit logs")
    p.add_argument("--kubelet-client-certificate", default="", help="client certificate presented to kubelets")
    p.add_argument("--kubelet-client-key", default="", help="key of --kubelet-client-certificate")
    p.add_argument(
        "--kubelet-certificate-authority", default="", help="CA that signs kubelets' serving certs (unset: no check)"
    )
    p.add_argument(
        "--kubelet-preferred-address-types",
        default="InternalIP,ExternalIP,Hostname",
        help="node address types to reach kubelets by, in order",
    )
    p.add_argument("--kubelet-port", type=int, default=10250, help="kubelet port when a node reports none")
    p.add_argument("-v", "--v", type=int, default=0, help="log verbosity")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        advertise_address=args.advertise_address
        or (args.bind_address if args.bind_address not in ("0.0.0.0", "::") else "127.0.0.1"),
        secure_port=args.secure_port,
        service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=args.service_node_port_range,
        authorization_modes=tuple(m for m in args.authorization_mode.split(",") if m),
        anonymous_auth=args.anonymous_auth,
        token_auth_file=args.token_auth_file,
        enable_bootstrap_token_auth=args.enable_bootstrap_token_auth,
        service_account_issuers=tuple(args.service_account_issuer) or ServerConfig().service_account_issuers,
        service_account_signing_key_file=args.service_account_signing_key_file,
        service_account_key_files=tuple(args.service_account_key_file),
        api_audiences=tuple(a for a in args.api_audiences.split(",") if a),
        max_requests_inflight=args.max_requests_inflight,
        admission_plugins=tuple(
            admission.plugin_names(
                args.enable_admission_plugins.split(","),
                args.disable_admission_plugins.split(","),
            )
        ),
        audit_log_path=args.audit_log_path,
        audit_policy_file=args.audit_policy_file,
        audit_log_maxsize=args.audit_log_maxsize,
        audit_log_maxbackup=args.audit_log_maxbackup,
        audit_log_maxage=args.audit_log_maxage,
        min_request_timeout=args.min_request_timeout,
        request_timeout=args.request_timeout,
        kubelet_client_certificate=args.kubelet_client_certificate,
        kubelet_client_key=args.kubelet_client_key,
        kubelet_certificate_authority=args.kubelet_certificate_authority,
        kubelet_preferred_address_types=tuple(t for t in args.kubelet_preferred_address_types.split(",") if t),
        kubelet_port=args.kubelet_port,
    )


def ssl_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # client certs are one authenticator among several
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def serve(args: argparse.Namespace) -> int:
    from kubeha.storage.etcd import EtcdKV
    from kubeha.storage.store import Store

    config = config_from_args(args)
    kv = EtcdKV(
        [e for e in args.etcd_servers.split(",") if e],
        ca_file=args.etcd_cafile,
        cert_file=args.etcd_certfile,
        key_file=args.etcd_keyfile,
    )
    await kv.connect()
    store = Store(kv)
    app = build_app(config, store)
    _tune_gc()
    ctx = app[CTX]
    rest = app[REST]
    server = Server(app)
    await server.listen(
        args.bind_address,
        args.secure_port,
        ssl=ssl_context(args.tls_cert_file, args.tls_private_key_file, args.client_ca_file),
    )
    log.info("serving on https://%s:%d", args.bind_address, args.secure_port)
    ctx.bootstrapped = False
    bootstrap = asyncio.create_task(_ensure_system_objects(rest, app))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    bootstrap.cancel()
    ctx.shutting_down.set()  # /readyz fails from now on
    try:
        await startup.set_endpoint_address(rest, config.advertise_address, config.secure_port, present=False)
    except Exception as e:
        log.warning("removing our endpoint address failed: %s", e)
    if args.shutdown_delay_duration:
        await asyncio.sleep(args.shutdown_delay_duration)
    ctx.begin_shutdown()  # end watch streams
    # stop accepting, drain in-flight requests, then on_cleanup closes caches
    await server.shutdown(args.shutdown_timeout)
    await kv.close()
    return 0


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections: every collection pauses all requests in flight, and the
    watch caches make full collections slow. What exists at startup (modules, schemas, routes) is
    moved out of the collector's sight for good; the young generation may grow much larger before a
    collection (request handling allocates, but rarely builds cycles)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


async def _ensure_system_objects(rest: Rest, app: App | None = None) -> None:
    """Create the system namespaces, the `kubernetes` service, the default RBAC policy and the
    system PriorityClasses; etcd may not answer yet. Ready once the authorizers are fed."""
    from kubeha.apiserver.authz import sync

    for attempt in range(10_000):
        try:
            await startup.ensure_system_objects(rest)
            chain = app[AUTHZ] if app is not None else None
            if chain is not None and chain.rbac is not None:
                counts = await sync.reconcile_default_policy(rest)
                log.info("default RBAC policy reconciled: %s", counts)
            await sync.ensure_priority_classes(rest)
            await _start_watch_caches(rest)
            policy = app.get(POLICY) if app is not None else None
            if policy is not None:
                await policy.wait_synced()
            rest.ctx.bootstrapped = True
            return
        except Exception as e:
            if attempt % 10 == 0:
                log.warning("creating system objects failed (%s); retrying", e)
            await asyncio.sleep(0.5)


async def _start_watch_caches(rest: Rest) -> None:
    """Start every resource's watch cache before reporting ready, as upstream does: lists read
    etcd, so a cache started lazily by the first watch could begin after the revision that
    client listed at and answer its watch with 410 Expired."""
    from kubeha.api.registry import RESOURCES

    for info in list(RESOURCES.values()):
        if "watch" in info.verbs:
            await rest.ctx.cacher(info)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    process.setup_logging(args.v)
    return process.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
