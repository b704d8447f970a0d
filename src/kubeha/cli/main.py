"""The ``kubeha`` command: argument parsing only; each subcommand calls into the package."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from importlib import metadata

# Components parse their own upstream-style flags: the CLI hands them everything after the
# subcommand name. Imported lazily so `kubeha version` does not load the whole server.
COMPONENTS: dict[str, str] = {
    "apiserver": "kubeha.apiserver.server",
    "scheduler": "kubeha.scheduler.app",
    "controller-manager": "kubeha.controllers.manager",
    "fake-nodes": "kubeha.fakenode.fakenode",
    "kubelet": "kubeha.kubelet.app",
    "image": "kubeha.kubelet.images",
}


def _version() -> str:
    try:
        return metadata.version("kubeha")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"kubeha {_version()}")
    return 0


def _cmd_certs_quickstart(args: argparse.Namespace) -> int:
    from kubeha.bootstrap.pki import quickstart

    hosts = [h for h in args.hosts.split(",") if h]
    server = args.server or f"https://{hosts[0] if hosts else '127.0.0.1'}:6443"
    kubeconfig = quickstart(args.dir, hosts, server, days=args.days)
    print(f"wrote ca, apiserver and admin certificates and {kubeconfig}")
    return 0


def _cmd_dev_up(args: argparse.Namespace) -> int:
    from kubeha.cli.dev import DevCluster

    return DevCluster(
        args.dir,
        apiservers=args.apiservers,
        etcd_port=args.etcd_port,
        first_apiserver_port=args.port,
        apiserver_extra_args=args.apiserver_arg,
    ).run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubeha", description="A Kubernetes-compatible HA cluster.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for name in COMPONENTS:
        # Listed for --help only; dispatched before argparse sees the component's flags.
        sub.add_parser(name, help=f"run the {name} (flags as upstream's)", add_help=False)

    p = sub.add_parser("version", help="print the kubeha version")
    p.set_defaults(func=_cmd_version)

    certs = sub.add_parser("certs", help="certificate tools").add_subparsers(dest="certs_command", metavar="COMMAND")
    p = certs.add_parser("quickstart", help="write a CA, api-server and admin certificates and an admin kubeconfig")
    p.add_argument("--dir", required=True, help="output directory")
    p.add_argument("--hosts", default="127.0.0.1,localhost", help="comma-separated api-server IPs/DNS names")
    p.add_argument("--server", default="", help="api-server URL for the kubeconfig (default https://<first host>:6443)")
    p.add_argument("--days", type=int, default=365, help="validity of the leaf certificates")
    p.set_defaults(func=_cmd_certs_quickstart)

    dev = sub.add_parser("dev", help="development helpers").add_subparsers(dest="dev_command", metavar="COMMAND")
    p = dev.add_parser("up", help="run etcd and api-servers on loopback in the foreground (Ctrl-C stops)")
    p.add_argument("--dir", default=".run", help="state directory (certs, etcd data, logs, kubeconfig)")
    p.add_argument("--apiservers", type=int, default=2, help="number of api-server processes")
    p.add_argument("--etcd-port", type=int, default=2379, help="etcd client port (peer port is +1)")
    p.add_argument("--port", type=int, default=6443, help="secure port of the first api-server (others follow)")
    p.add_argument(
        "--apiserver-arg", action="append", default=[], metavar="FLAG", help="extra api-server flag (repeatable)"
    )
    p.set_defaults(func=_cmd_dev_up)
    return parser


def _run_component(module_name: str, argv: list[str]) -> int:
    module = importlib.import_module(module_name)
    entry: Callable[[list[str]], int | None] = module.main
    return entry(argv) or 0


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in COMPONENTS:
        return _run_component(COMPONENTS[args_list[0]], args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        # A group without its subcommand (`kubeha`, `kubeha certs`): show what is available.
        parser.print_help()
        return 2
    return func(args)
