"""The serviceaccount controller (a ``default`` ServiceAccount in every active namespace) and the
root CA publisher (a ``kube-root-ca.crt`` ConfigMap in every active namespace).

Both react to namespace adds/updates and to deletions or edits of the object they keep, so a
deleted ``default`` account or a changed ConfigMap comes back.
"""

from __future__ import annotations

import logging
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, object_of
from kubeha.machinery.informer import SharedInformer
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_SA = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
ROOT_CA_DESCRIPTION = (
    "CA bundle for verifying the api-server through in-cluster endpoints "
    "(the kubernetes service IP, kubernetes.default.svc)."
)


def namespace_active(ns: Obj | None) -> bool:
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (ns.get("status") or {}).get("phase", "Active") != "Terminating"


def _terminating_error(e: StatusError) -> bool:
    return e.code == 403 and "terminat" in str(e)


def _watch_named(informer: SharedInformer, name: str, queue: RateLimitingQueue, *, updates: bool) -> None:
    """Enqueue the namespace of a changed/deleted object called ``name``."""

    def changed(obj: Any) -> None:
        o = object_of(obj)
        md = (o or {}).get("metadata") or {}
        if md.get("name") == name and md.get("namespace"):
            queue.add(str(md["namespace"]))

    informer.add_event_handler(on_update=(lambda o, n: changed(n)) if updates else None, on_delete=changed)


def _watch_namespaces(namespaces: SharedInformer, queue: RateLimitingQueue) -> None:
    def add(obj: Any) -> None:
        ns = object_of(obj)
        if namespace_active(ns):
            queue.add(str(((ns or {}).get("metadata") or {}).get("name")))

    namespaces.add_event_handler(on_add=add, on_update=lambda o, n: add(n))


class ServiceAccountsController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.namespaces = ctx.informers.informer_for(NAMESPACES)
        self.accounts = ctx.informers.informer_for(SERVICEACCOUNTS)
        self.queue = RateLimitingQueue(name="serviceaccount")
        _watch_namespaces(self.namespaces, self.queue)
        _watch_named(self.accounts, DEFAULT_SA, self.queue, updates=False)
        self.controller = Controller("serviceaccount", self.reconcile, self.queue, ctx.options.concurrent_syncs)

    async def run(self) -> None:
        await self.controller.run([self.namespaces, self.accounts])

    async def reconcile(self, ns: str) -> None:
        if not namespace_active(self.namespaces.indexer.get(ns)):
            return
        if self.accounts.indexer.get(f"{ns}/{DEFAULT_SA}") is not None:
            return
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_SA, "namespace": ns}}
        try:
            await self.client.create(SERVICEACCOUNTS, sa, ns)
        except StatusError as e:
            if e.code in (404, 409) or _terminating_error(e):
                return  # exists already (cache lag), or the namespace is going
            raise


def root_ca_configmap(ns: str, ca: str, current: Obj | None) -> Obj | None:
    """The ConfigMap to write, or None when ``current`` already holds ``ca``."""
    if current is not None and (current.get("data") or {}) == {ROOT_CA_KEY: ca}:
        return None
    md: Obj = dict((current or {}).get("metadata") or {"name": ROOT_CA_CONFIGMAP, "namespace": ns})
    ann = dict(md.get("annotations") or {})
    ann.setdefault("kubernetes.io/description", ROOT_CA_DESCRIPTION)
    md["annotations"] = ann
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {ROOT_CA_KEY: ca}}


class RootCAPublisher:
    def __init__(self, ctx: ControllerContext, ca: str) -> None:
        self.client = ctx.client
        self.ca = ca
        self.namespaces = ctx.informers.informer_for(NAMESPACES)
        # only the one ConfigMap per namespace, as upstream: no need to cache every ConfigMap
        self.configmaps = ctx.informers.informer_for(CONFIGMAPS, field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.queue = RateLimitingQueue(name="root-ca-cert-publisher")
        _watch_namespaces(self.namespaces, self.queue)
        _watch_named(self.configmaps, ROOT_CA_CONFIGMAP, self.queue, updates=True)
        self.controller = Controller("root-ca-cert-publisher", self.reconcile, self.queue, ctx.options.concurrent_syncs)

    async def run(self) -> None:
        await self.controller.run([self.namespaces, self.configmaps])

    async def reconcile(self, ns: str) -> None:
        if not namespace_active(self.namespaces.indexer.get(ns)):
            return
        current = self.configmaps.indexer.get(f"{ns}/{ROOT_CA_CONFIGMAP}")
        want = root_ca_configmap(ns, self.ca, current)
        if want is None:
            return
        try:
            if current is None:
                await self.client.create(CONFIGMAPS, want, ns)
            else:
                await self.client.update(CONFIGMAPS, want, ns)
        except StatusError as e:
            if e.code == 404 or _terminating_error(e):
                return
            raise


def cluster_ca(ctx: ControllerContext) -> str:
    """The CA to publish: ``--root-ca-file`` when the options carry one, else (as upstream) the
    CA the controller-manager itself trusts the api-server with."""
    path = str(getattr(ctx.options, "root_ca_file", "") or "")
    if path:
        with open(path) as f:
            return f.read()
    data = ctx.client.config.ca_data
    return data.decode("ascii") if data else ""


@register("serviceaccount")
async def start(ctx: ControllerContext) -> None:
    ctl = ServiceAccountsController(ctx)
    await ctx.informers.start()
    await ctl.run()


@register("root-ca-cert-publisher")
async def start_root_ca_publisher(ctx: ControllerContext) -> None:
    ca = cluster_ca(ctx)
    if not ca:
        log.warning("root-ca-cert-publisher: no cluster CA known (no --root-ca-file, no CA in the kubeconfig); idle")
        return
    ctl = RootCAPublisher(ctx, ca)
    await ctx.informers.start()
    await ctl.run()
