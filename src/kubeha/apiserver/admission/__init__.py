"""Admission control: an ordered chain of plugins that may change (mutating) or refuse (validating)
a write after it is decoded and defaulted and before it is stored, as upstream's admission chain.

The REST layer builds :class:`Attributes` for every create, update, delete and connect (including
subresources) and calls, in this order: :meth:`AdmissionChain.admit` (mutating plugins, after
defaulting and before validation), :meth:`AdmissionChain.validate` (validating plugins, after
validation and before the write), and :meth:`AdmissionChain.rollback` when the write then fails
(plugins that charged something, like ResourceQuota, refund it there).

Plugins are registered by name with :func:`register_plugin` (webhook-style checks can be added the
same way later); ``--enable-admission-plugins`` / ``--disable-admission-plugins`` choose among them
and the chain always runs them in upstream's order.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeha.api import errors
from kubeha.api.registry import ResourceInfo
from kubeha.api.schema import Obj
from kubeha.apiserver.authn import CURRENT_USER
from kubeha.storage.interface import Compare

log = logging.getLogger(__name__)

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"
CONNECT = "CONNECT"

# Upstream's order of every admission plugin it knows (plugins run in this order, whatever order the
# flags name them in). Names we do not implement are accepted by the flags and do nothing.
ALL_ORDERED_PLUGINS: tuple[str, ...] = (
    "AlwaysAdmit",
    "NamespaceAutoProvision",
    "NamespaceLifecycle",
    "NamespaceExists",
    "AlwaysPullImages",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "TaintNodesByCondition",
    "PodNodeSelector",
    "Priority",
    "DefaultTolerationSeconds",
    "PodTolerationRestriction",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "DenyServiceExternalIPs",
    "PodSecurity",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
    "AlwaysDeny",
)

# What upstream's kube-apiserver enables when no flag says otherwise.
DEFAULT_ENABLED: frozenset[str] = frozenset(
    {
        "NamespaceLifecycle",
        "LimitRanger",
        "ServiceAccount",
        "TaintNodesByCondition",
        "PodSecurity",
        "Priority",
        "DefaultTolerationSeconds",
        "DefaultStorageClass",
        "StorageObjectInUseProtection",
        "PersistentVolumeClaimResize",
        "RuntimeClass",
        "CertificateApproval",
        "CertificateSigning",
        "ClusterTrustBundleAttest",
        "CertificateSubjectRestriction",
        "DefaultIngressClass",
        "MutatingAdmissionWebhook",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionWebhook",
        "ResourceQuota",
    }
)


# -- the request being served ------------------------------------------------------------------------


@dataclass
class RequestScope:
    """Per-request state shared by the admission chain and the audit log (set by a middleware)."""

    user: Any = None  # kubeha.apiserver.authn.UserInfo
    warnings: list[str] = field(default_factory=list)
    # audit annotations (authorization decision, pod-security results...)
    annotations: dict[str, str] = field(default_factory=dict)


SCOPE: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar("kubeha_request_scope", default=None)


def current_scope() -> RequestScope | None:
    return SCOPE.get()


def add_warning(message: str) -> None:
    """A ``Warning`` header for the response of the current request."""
    scope = SCOPE.get()
    if scope is not None and message not in scope.warnings:
        scope.warnings.append(message)


def add_annotation(key: str, value: str) -> None:
    """An annotation on the audit event of the current request (first writer wins, as upstream)."""
    scope = SCOPE.get()
    if scope is not None:
        scope.annotations.setdefault(key, value)


# -- attributes --------------------------------------------------------------------------------------


Rollback = Callable[[], Awaitable[None]]


@dataclass
class Attributes:
    """What is being admitted (upstream's admission.Attributes)."""

    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    info: ResourceInfo  # the resource (for subresources: the parent resource)
    namespace: str
    name: str
    obj: Obj | None = None  # the new object (for subresources: the subresource's object)
    old_obj: Obj | None = None  # the stored object for UPDATE / DELETE
    subresource: str = ""
    user: Any = None  # kubeha.apiserver.authn.UserInfo (None: the server itself)
    dry_run: bool = False
    # 0 on the first try of a write; the REST layer retries after a guard failed (plugins that
    # answered from a watch cache then read live)
    attempt: int = 0
    # etcd guards the write must carry (e.g. the namespace is still at the revision checked)
    guards: list[Compare] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.info.group

    @property
    def resource(self) -> str:
        return self.info.resource

    @property
    def kind(self) -> str:
        obj = self.obj if self.obj is not None else self.old_obj
        if obj is not None and obj.get("kind"):
            return str(obj["kind"])
        return self.info.kind

    def is_(self, group: str, resource: str, subresource: str = "") -> bool:
        return self.info.group == group and self.info.resource == resource and self.subresource == subresource

    @property
    def user_name(self) -> str:
        return str(getattr(self.user, "name", "") or "")

    @property
    def user_groups(self) -> tuple[str, ...]:
        return tuple(getattr(self.user, "groups", ()) or ())

    def object_name(self) -> str:
        if self.name:
            return self.name
        obj = self.obj if self.obj is not None else self.old_obj
        md = (obj or {}).get("metadata") or {}
        return str(md.get("name") or "")


def forbidden(attrs: Attributes, message: str) -> errors.StatusError:
    """Upstream's admission.NewForbidden: `<resource> "<name>" is forbidden: <message>`."""
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    name = attrs.object_name()
    text = f'{qualified} "{name}" is forbidden: {message}' if name else f"{qualified} is forbidden: {message}"
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if attrs.group:
        details["group"] = attrs.group
    details["kind"] = attrs.resource
    return errors.StatusError(403, "Forbidden", text, details)


def aggregate(messages: Sequence[str]) -> str:
    """Go's utilerrors.NewAggregate text: one message as is, several in brackets."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


# -- plugins -----------------------------------------------------------------------------------------


class Plugin:
    """Base of admission plugins; ``handles`` keeps a plugin off requests it has no business with."""

    name = ""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx  # kubeha.apiserver.context.ApiContext (watch caches, store)

    def handles(self, attrs: Attributes) -> bool:
        return True

    async def release(self, info: ResourceInfo, obj: Obj) -> None:
        """The object was removed from storage (ResourceQuota gives its usage back)."""


class MutatingPlugin(Plugin):
    async def admit(self, attrs: Attributes) -> None:
        raise NotImplementedError


class ValidatingPlugin(Plugin):
    async def validate(self, attrs: Attributes) -> None:
        raise NotImplementedError


PluginFactory = Callable[[Any], Plugin]
_FACTORIES: dict[str, PluginFactory] = {}
# modules that register the built-in plugins (imported on first use to keep start-up cheap)
_BUILTIN_MODULES = (
    "kubeha.apiserver.admission.always",
    "kubeha.apiserver.admission.namespacelifecycle",
    "kubeha.apiserver.admission.serviceaccount",
    "kubeha.apiserver.admission.priority",
    "kubeha.apiserver.admission.tolerations",
    "kubeha.apiserver.admission.resourcequota",
    "kubeha.apiserver.admission.limitranger",
    "kubeha.apiserver.admission.noderestriction",
    "kubeha.apiserver.admission.podsecurity",
)
_loaded = False


def register_plugin(name: str, factory: PluginFactory, *, after: str | None = None) -> None:
    """Make a plugin available to the flags under ``name``. A name upstream does not know runs
    after ``after`` (default: just before ResourceQuota, where upstream's webhooks run)."""
    _FACTORIES[name] = factory
    global ALL_ORDERED_PLUGINS
    if name not in ALL_ORDERED_PLUGINS:
        order = list(ALL_ORDERED_PLUGINS)
        anchor = after or "ValidatingAdmissionWebhook"
        order.insert(order.index(anchor) + 1 if anchor in order else len(order), name)
        ALL_ORDERED_PLUGINS = tuple(order)


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def plugin_names(enable: Iterable[str] = (), disable: Iterable[str] = ()) -> list[str]:
    """The enabled plugins in upstream order: the defaults plus ``enable`` minus ``disable``.
    Raises ValueError for a name nobody knows (as upstream refuses to start)."""
    _load_builtins()
    enable = [n.strip() for n in enable if n.strip()]
    disable = [n.strip() for n in disable if n.strip()]
    for n in (*enable, *disable):
        if n not in ALL_ORDERED_PLUGINS:
            raise ValueError(f'admission plugin "{n}" is unknown')
    chosen = (set(DEFAULT_ENABLED) | set(enable)) - set(disable)
    return [n for n in ALL_ORDERED_PLUGINS if n in chosen]


class AdmissionChain:
    """The enabled plugins: every mutating one first, then every validating one, each in order."""

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        self.plugins = list(plugins)
        self.mutating = [p for p in self.plugins if isinstance(p, MutatingPlugin)]
        self.validating = [p for p in self.plugins if isinstance(p, ValidatingPlugin)]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    async def admit(self, attrs: Attributes) -> None:
        for p in self.mutating:
            if p.handles(attrs):
                await p.admit(attrs)  # type: ignore[attr-defined]

    async def validate(self, attrs: Attributes) -> None:
        for p in self.validating:
            if p.handles(attrs):
                await p.validate(attrs)  # type: ignore[attr-defined]

    async def run(self, attrs: Attributes) -> None:
        """Both phases back to back (for requests with no validation step in between)."""
        await self.admit(attrs)
        await self.validate(attrs)

    async def rollback(self, attrs: Attributes) -> None:
        """Undo what plugins charged for a write that did not happen (best effort)."""
        todo, attrs.rollbacks = attrs.rollbacks, []
        for fn in reversed(todo):
            try:
                await fn()
            except Exception:  # a refund that fails is corrected by the next recount
                log.exception("admission rollback failed for %s %s", attrs.resource, attrs.object_name())

    async def released(self, info: ResourceInfo, obj: Obj) -> None:
        for p in self.plugins:
            try:
                await p.release(info, obj)
            except Exception:
                log.exception("admission release failed for %s", info.resource)


def build_chain(ctx: Any, names: Sequence[str]) -> AdmissionChain:
    _load_builtins()
    plugins = []
    for n in names:
        factory = _FACTORIES.get(n)
        if factory is None:
            log.debug("admission plugin %s is not implemented; skipped", n)
            continue
        p = factory(ctx)
        p.name = n
        plugins.append(p)
    return AdmissionChain(plugins)


# -- glue for the REST layer -----------------------------------------------------------------------------


EMPTY_CHAIN = AdmissionChain([])


def chain_of(ctx: Any) -> AdmissionChain:
    """The chain installed on an api context (an empty one when none was)."""
    chain = getattr(ctx, "admission", None)
    return chain if isinstance(chain, AdmissionChain) else EMPTY_CHAIN


def install(ctx: Any, names: Sequence[str]) -> AdmissionChain:
    chain = build_chain(ctx, names)
    ctx.admission = chain
    return chain


def attributes(
    operation: str,
    info: ResourceInfo,
    namespace: str,
    name: str,
    obj: Obj | None = None,
    old_obj: Obj | None = None,
    *,
    subresource: str = "",
    dry_run: bool = False,
) -> Attributes:
    """Attributes for the request being served (the user comes from the request scope)."""
    scope = SCOPE.get()
    return Attributes(
        operation,
        info,
        namespace if info.namespaced else "",
        name,
        obj,
        old_obj,
        subresource=subresource,
        user=(scope.user if scope is not None else None) or CURRENT_USER.get(),
        dry_run=dry_run,
    )


async def admit_connect(ctx: Any, info: ResourceInfo, namespace: str, name: str, subresource: str, obj: Obj) -> None:
    """Admission for a CONNECT/CREATE-style subresource request served outside the REST verbs
    (serviceaccounts/token, pods/exec...): both phases, nothing to roll back."""
    op = CREATE if obj else CONNECT
    attrs = attributes(op, info, namespace, name, obj, subresource=subresource)
    await chain_of(ctx).run(attrs)
