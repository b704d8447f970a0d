"""The namespace controller: empties a terminating namespace, then releases it.

For a namespace with a deletionTimestamp it discovers every namespaced resource the server
serves, deletes each collection in the namespace (list + delete where deletecollection is not
served), and checks what is left. While something remains (pods in graceful termination, objects
held by finalizers) it records why in the namespace's conditions and looks again with backoff.
When nothing is left it removes the ``kubernetes`` finalizer through ``namespaces/{name}/finalize``
and the api-server deletes the namespace.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import NAMESPACES, ResourceRef
from kubeha.client.rest import ApiClient
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, Requeue, enqueue_on
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
DISCOVERY_TTL = 10.0
# resources that only accept creates (reviews, bindings) or must not be touched
SKIP = frozenset(
    {
        ("", "bindings"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
    }
)

# condition types and upstream reasons (each: failing reason, fine reason)
COND_DISCOVERY = "NamespaceDeletionDiscoveryFailure"
COND_PARSING = "NamespaceDeletionGroupVersionParsingFailure"
COND_CONTENT_FAILURE = "NamespaceDeletionContentFailure"
COND_REMAINING = "NamespaceContentRemaining"
COND_FINALIZERS = "NamespaceFinalizersRemaining"
REASONS = {
    COND_DISCOVERY: ("DiscoveryFailed", "ResourcesDiscovered"),
    COND_PARSING: ("GroupVersionParsingFailed", "ParsedGroupVersions"),
    COND_CONTENT_FAILURE: ("ContentDeletionFailed", "ContentDeleted"),
    COND_REMAINING: ("SomeResourcesRemain", "ContentRemoved"),
    COND_FINALIZERS: ("SomeFinalizersRemain", "ContentHasNoFinalizers"),
}
FINE_MESSAGES = {
    COND_DISCOVERY: "All resources discovered",
    COND_PARSING: "All group versions parsed",
    COND_CONTENT_FAILURE: "All content deleted, finalization may still be pending",
    COND_REMAINING: "All content removed",
    COND_FINALIZERS: "No content-preserving finalizers remain",
}


@dataclass(frozen=True)
class Resource:
    ref: ResourceRef
    verbs: frozenset[str]


@dataclass
class Outcome:
    """What one deletion pass found: per condition type the problem message (absent = fine)."""

    problems: dict[str, str] = field(default_factory=dict)
    remaining: int = 0
    estimate: float = 0.0  # seconds until graceful deletions should be done


def namespaced_resources(groups: list[tuple[str, str, Obj]]) -> list[Resource]:
    """Deletable namespaced resources from (group, version, APIResourceList) documents."""
    out: list[Resource] = []
    for group, version, doc in groups:
        for r in doc.get("resources") or []:
            name = str(r.get("name") or "")
            verbs = frozenset(r.get("verbs") or [])
            if "/" in name or not r.get("namespaced") or (group, name) in SKIP:
                continue
            if "delete" not in verbs and "deletecollection" not in verbs:
                continue
            if "list" not in verbs:
                continue
            out.append(Resource(ResourceRef(group, version, name, str(r.get("kind") or ""), True), verbs))
    return out


def set_conditions(status: Obj, outcome: Outcome, now: str) -> Obj:
    """Status with every deletion condition set from ``outcome`` (transition times kept)."""
    old = {c.get("type"): c for c in status.get("conditions") or []}
    conds = [c for c in status.get("conditions") or [] if c.get("type") not in REASONS]
    for typ, (bad, good) in REASONS.items():
        msg = outcome.problems.get(typ)
        want = {
            "type": typ,
            "status": "True" if msg else "False",
            "reason": bad if msg else good,
            "message": msg or FINE_MESSAGES[typ],
        }
        prev = old.get(typ)
        if prev is not None and all(prev.get(k) == v for k, v in want.items()):
            want["lastTransitionTime"] = prev.get("lastTransitionTime") or now
        else:
            want["lastTransitionTime"] = now
        conds.append(want)
    return {**status, "conditions": conds}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NamespaceController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client: ApiClient = ctx.client
        self.namespaces = ctx.informers.informer_for(NAMESPACES)
        self.queue = RateLimitingQueue(name="namespace")
        enqueue_on(self.namespaces, self.queue)
        self.controller = Controller("namespace", self.reconcile, self.queue, ctx.options.concurrent_namespace_syncs)
        self._discovered: tuple[float, list[Resource], list[str]] | None = None

    async def run(self) -> None:
        await self.controller.run([self.namespaces])

    async def discover(self) -> tuple[list[Resource], list[str]]:
        """(namespaced resources, groups that failed) from /api/v1 and each group's preferred version."""
        if self._discovered is not None and time.monotonic() - self._discovered[0] < DISCOVERY_TTL:
            return self._discovered[1], self._discovered[2]
        docs: list[tuple[str, str, Obj]] = [("", "v1", await self.client.request("GET", "/api/v1"))]
        failed: list[str] = []
        groups = await self.client.request("GET", "/apis")
        for g in groups.get("groups") or []:
            gv = (g.get("preferredVersion") or {}).get("groupVersion") or ""
            if not gv:
                continue
            group, _, version = gv.rpartition("/")
            try:
                docs.append((group, version, await self.client.request("GET", f"/apis/{gv}")))
            except (StatusError, ConnectionError) as e:
                failed.append(f"{gv}: {e}")
        resources = namespaced_resources(docs)
        if not failed:
            self._discovered = (time.monotonic(), resources, failed)
        return resources, failed

    async def reconcile(self, key: str) -> Requeue | None:
        ns = self.namespaces.indexer.get(key)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None  # our part is done; other finalizers are someone else's
        outcome = Outcome()
        try:
            resources, failed = await self.discover()
        except (StatusError, ConnectionError) as e:
            resources, failed = [], [str(e)]
        if failed:
            outcome.problems[COND_DISCOVERY] = "Discovery failed for some groups: " + "; ".join(failed)
        failures: list[str] = []
        for res in resources:
            try:
                await self.delete_all(res, key, outcome)
            except StatusError as e:
                if e.code in (404, 405):
                    continue
                failures.append(f"{res.ref}: {e}")
        if failures:
            outcome.problems[COND_CONTENT_FAILURE] = "Failed to delete all resource types: " + "; ".join(failures)
        await self.update_conditions(key, outcome)
        if outcome.problems or outcome.remaining:
            # pods in graceful deletion: look again when they should be gone, else back off
            if outcome.estimate > 0 and not failures and not failed:
                return Requeue(after=outcome.estimate)
            return Requeue()
        await self.finalize(key)
        return None

    async def delete_all(self, res: Resource, namespace: str, outcome: Outcome) -> None:
        """Delete every ``res`` object in ``namespace``; count what remains (and why)."""
        path = res.ref.path(namespace)
        if "deletecollection" in res.verbs:
            await self.client.request("DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1"})
            left = (await self.client.request("GET", path)).get("items") or []
        else:
            items = (await self.client.request("GET", path)).get("items") or []
            for item in items:
                name = (item.get("metadata") or {}).get("name", "")
                try:
                    await self.client.delete(res.ref, name, namespace)
                except StatusError as e:
                    if e.code != 404:
                        raise
            left = ((await self.client.request("GET", path)).get("items") or []) if items else []
        if not left:
            return
        outcome.remaining += len(left)
        outcome.problems[COND_REMAINING] = _append(
            outcome.problems.get(COND_REMAINING, "Some resources are remaining:"), f"{res.ref} has {len(left)} left"
        )
        fins = sorted({f for item in left for f in (item.get("metadata") or {}).get("finalizers") or []})
        if fins:
            outcome.problems[COND_FINALIZERS] = _append(
                outcome.problems.get(COND_FINALIZERS, "Some content in the namespace has finalizers remaining:"),
                ", ".join(fins),
            )
        if res.ref.group == "" and res.ref.resource == "pods":
            # graceful pod deletion: expect them gone after their grace period
            for item in left:
                grace = (item.get("metadata") or {}).get("deletionGracePeriodSeconds")
                if grace is not None:
                    outcome.estimate = max(outcome.estimate, float(grace) + 1.0)

    async def update_conditions(self, name: str, outcome: Outcome) -> None:
        try:
            ns = await self.client.get(NAMESPACES, name)
        except StatusError as e:
            if e.code == 404:
                return
            raise
        status = ns.get("status") or {}
        new_status = set_conditions(status, outcome, _now())
        if _strip_times(new_status.get("conditions")) == _strip_times(status.get("conditions")):
            return
        try:
            await self.client.update(NAMESPACES, {**ns, "status": new_status}, subresource="status")
        except StatusError as e:
            if e.code not in (404, 409):  # gone or changed: the next pass writes again
                raise

    async def finalize(self, name: str) -> None:
        """Remove our finalizer through the finalize subresource (the server then deletes it)."""
        for _ in range(5):
            try:
                ns = await self.client.get(NAMESPACES, name)
            except StatusError as e:
                if e.code == 404:
                    return
                raise
            fins = list((ns.get("spec") or {}).get("finalizers") or [])
            if FINALIZER not in fins:
                return
            spec = {**(ns.get("spec") or {}), "finalizers": [f for f in fins if f != FINALIZER]}
            try:
                await self.client.update(NAMESPACES, {**ns, "spec": spec}, subresource="finalize")
                return
            except StatusError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise Requeue()


def _append(msg: str, part: str) -> str:
    return f"{msg} {part}" if msg.endswith(":") else f"{msg}, {part}"


def _strip_times(conds: Any) -> list[Obj]:
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds or []]


@register("namespace")
async def start(ctx: ControllerContext) -> None:
    ctl = NamespaceController(ctx)
    await ctx.informers.start()
    await ctl.run()
