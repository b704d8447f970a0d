"""The garbage collector: ownerReferences with background, foreground and orphan propagation.

A dependency graph keyed by uid is fed by informers of every deletable resource the server
serves (shared with the other controllers of the process). Graph changes put uids in two queues:

- *attempt to delete*: an object whose owners may all be gone (an owner vanished, or a reference
  names an owner the graph has not seen), or an owner in foreground deletion;
- *attempt to orphan*: an owner being deleted with the ``orphan`` finalizer.

Deciding that an owner is gone never trusts the graph alone (another informer may simply lag):
an owner missing from the graph is looked up with a live GET and counts as absent only on 404 or
a different uid, as upstream does.

Only full objects are watched: the REST client cannot ask for PartialObjectMetadata yet, and the
informers are shared with other controllers that need whole objects anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubeha.api.errors import StatusError
from kubeha.client.resources import ResourceRef
from kubeha.client.rest import ApiClient
from kubeha.controllers.context import ControllerContext, register
from kubeha.machinery.controller import Controller, Requeue, object_of
from kubeha.machinery.tasks import TaskSet
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# events come and go too fast to be worth tracking (upstream ignores them as well)
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


@dataclass
class Node:
    uid: str
    res: ResourceRef
    namespace: str
    name: str
    owners: list[Obj]
    finalizers: frozenset[str]
    deleting: bool  # has a deletionTimestamp

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.deleting and ORPHAN in self.finalizers

    def ref_to(self, owner_uid: str) -> Obj | None:
        return next((r for r in self.owners if r.get("uid") == owner_uid), None)


def node_of(obj: Obj, res: ResourceRef) -> Node | None:
    md = obj.get("metadata") or {}
    uid = md.get("uid")
    if not uid:
        return None
    return Node(
        uid=str(uid),
        res=res,
        namespace=str(md.get("namespace") or ""),
        name=str(md.get("name") or ""),
        owners=[r for r in md.get("ownerReferences") or [] if isinstance(r, dict) and r.get("uid")],
        finalizers=frozenset(md.get("finalizers") or []),
        deleting=bool(md.get("deletionTimestamp")),
    )


@dataclass
class Work:
    """uids a graph change asks the workers to look at."""

    delete: set[str] = field(default_factory=set)
    orphan: set[str] = field(default_factory=set)


class Graph:
    """Objects by uid and, per owner uid, the uids of the objects that name it as an owner."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}

    def dependents_of(self, uid: str) -> list[Node]:
        return [self.nodes[d] for d in sorted(self.dependents.get(uid, ())) if d in self.nodes]

    def upsert(self, node: Node) -> Work:
        work = Work()
        old = self.nodes.get(node.uid)
        old_owners = {r["uid"] for r in old.owners} if old else set()
        new_owners = {r["uid"] for r in node.owners}
        for uid in old_owners - new_owners:
            deps = self.dependents.get(uid)
            if deps is not None:
                deps.discard(node.uid)
                if not deps:
                    del self.dependents[uid]
            # an owner waiting for its dependents may be free now
            owner = self.nodes.get(uid)
            if owner is not None and owner.deleting_dependents:
                work.delete.add(uid)
        for uid in new_owners:
            self.dependents.setdefault(uid, set()).add(node.uid)
        self.nodes[node.uid] = node
        if any(uid not in self.nodes or self.nodes[uid].deleting_dependents for uid in new_owners):
            work.delete.add(node.uid)  # maybe dangling, or its owner waits for it
        if node.deleting_dependents:
            work.delete.add(node.uid)
            if old is None or not old.deleting_dependents:
                work.delete |= {d.uid for d in self.dependents_of(node.uid)}
        if node.orphaning:
            work.orphan.add(node.uid)
        return work

    def remove(self, uid: str) -> Work:
        work = Work()
        node = self.nodes.pop(uid, None)
        if node is None:
            return work
        for ref in node.owners:
            deps = self.dependents.get(ref["uid"])
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self.dependents[ref["uid"]]
            owner = self.nodes.get(ref["uid"])
            if owner is not None and owner.deleting_dependents:
                work.delete.add(owner.uid)
        # its dependents may have lost their last owner
        work.delete |= set(self.dependents.get(uid, ()))
        return work


# -- decisions (pure) -----------------------------------------------------------------------------


SOLID, DANGLING, WAITING = "solid", "dangling", "waiting"


def classify(owner: Obj | None, ref: Obj) -> str:
    """An owner's state for a dependent: absent (or a different object) is dangling; in
    foreground deletion it is waiting for its dependents; otherwise solid."""
    if owner is None:
        return DANGLING
    md = owner.get("metadata") or {}
    if md.get("uid") != ref.get("uid"):
        return DANGLING
    if md.get("deletionTimestamp") and FOREGROUND in (md.get("finalizers") or []):
        return WAITING
    return SOLID


@dataclass
class Decision:
    action: str  # "none" | "delete" | "unlink"
    policy: str = ""  # for delete: Background | Foreground | Orphan
    unlink: list[str] = field(default_factory=list)  # owner uids to drop from ownerReferences


def decide(node: Node, states: dict[str, str], has_dependents: bool) -> Decision:
    """What to do with ``node`` given its owners' states (upstream's attemptToDeleteItem)."""
    solid = [u for u, s in states.items() if s == SOLID]
    dangling = [u for u, s in states.items() if s == DANGLING]
    waiting = [u for u, s in states.items() if s == WAITING]
    if not states:
        return Decision("none")
    if solid:
        if dangling or waiting:
            return Decision("unlink", unlink=sorted(dangling + waiting))
        return Decision("none")
    if waiting and has_dependents:
        return Decision("delete", "Foreground")
    if ORPHAN in node.finalizers:
        return Decision("delete", "Orphan")
    if FOREGROUND in node.finalizers:
        return Decision("delete", "Foreground")
    return Decision("delete", "Background")


def blocking_dependents(graph: Graph, owner_uid: str) -> list[Node]:
    """Dependents that hold up an owner's foreground deletion (blockOwnerDeletion)."""
    out = []
    for dep in graph.dependents_of(owner_uid):
        ref = dep.ref_to(owner_uid)
        if ref is not None and ref.get("blockOwnerDeletion"):
            out.append(dep)
    return out


# -- the controller -------------------------------------------------------------------------------


async def discover_resources(client: ApiClient) -> list[ResourceRef]:
    """Every resource (preferred versions) that can be listed, watched and deleted."""
    docs: list[tuple[str, str, Obj]] = [("", "v1", await client.request("GET", "/api/v1"))]
    for g in (await client.request("GET", "/apis")).get("groups") or []:
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or ""
        if gv:
            try:
                docs.append((*_split(gv), await client.request("GET", f"/apis/{gv}")))
            except StatusError as e:
                log.warning("garbage collector: discovery of %s failed: %s", gv, e)
    out = []
    for group, version, doc in docs:
        for r in doc.get("resources") or []:
            name = str(r.get("name") or "")
            verbs = set(r.get("verbs") or [])
            if "/" in name or (group, name) in IGNORED or not {"list", "watch", "delete"} <= verbs:
                continue
            out.append(ResourceRef(group, version, name, str(r.get("kind") or ""), bool(r.get("namespaced"))))
    return out


def _split(gv: str) -> tuple[str, str]:
    group, _, version = gv.rpartition("/")
    return group, version


class GarbageCollector:
    def __init__(self, ctx: ControllerContext, resources: list[ResourceRef]) -> None:
        self.client = ctx.client
        self.graph = Graph()
        self.by_kind: dict[tuple[str, str], ResourceRef] = {(r.group, r.kind): r for r in resources}
        self.delete_queue = RateLimitingQueue(name="garbagecollector-delete")
        self.orphan_queue = RateLimitingQueue(name="garbagecollector-orphan")
        self.informers = [ctx.informers.informer_for(r) for r in resources]
        for res, inf in zip(resources, self.informers, strict=True):
            self._watch(inf, res)
        self.deleter = Controller(
            "garbagecollector", self.attempt_to_delete, self.delete_queue, ctx.options.concurrent_gc_syncs
        )
        self.orphaner = Controller("garbagecollector-orphan", self.attempt_to_orphan, self.orphan_queue, 1)

    def _watch(self, informer: Any, res: ResourceRef) -> None:
        def upsert(obj: Any) -> None:
            o = object_of(obj)
            node = node_of(o, res) if o is not None else None
            if node is not None:
                self._enqueue(self.graph.upsert(node))

        def remove(obj: Any) -> None:
            o = object_of(obj)
            uid = ((o or {}).get("metadata") or {}).get("uid")
            if uid:
                self._enqueue(self.graph.remove(str(uid)))

        informer.add_event_handler(on_add=upsert, on_update=lambda old, new: upsert(new), on_delete=remove)

    def _enqueue(self, work: Work) -> None:
        for uid in work.delete:
            self.delete_queue.add(uid)
        for uid in work.orphan:
            self.orphan_queue.add(uid)

    async def run(self) -> None:
        async with TaskSet("garbagecollector") as tasks:
            tasks.spawn("gc-delete", self.deleter.run(self.informers))
            tasks.spawn("gc-orphan", self.orphaner.run(self.informers))
            await tasks.wait()

    # -- owner lookups --------------------------------------------------------------------------

    async def owner_state(self, node: Node, ref: Obj) -> str:
        owner = self.graph.nodes.get(str(ref.get("uid")))
        if owner is not None:
            return WAITING if owner.deleting_dependents else SOLID
        res = self.by_kind.get((_group(str(ref.get("apiVersion") or "")), str(ref.get("kind") or "")))
        if res is None:
            log.warning(
                "garbage collector: unknown owner kind %s/%s of %s", ref.get("apiVersion"), ref.get("kind"), node.name
            )
            return SOLID  # cannot check it: never delete on a guess
        if res.namespaced and not node.namespace:
            return DANGLING  # a cluster-scoped object cannot be owned by a namespaced one
        try:
            live = await self.client.get(res, str(ref.get("name") or ""), node.namespace if res.namespaced else None)
        except StatusError as e:
            if e.code == 404:
                return DANGLING
            raise
        return classify(live, ref)

    # -- workers --------------------------------------------------------------------------------

    async def attempt_to_delete(self, uid: str) -> Requeue | None:
        node = self.graph.nodes.get(uid)
        if node is None:
            return None
        if node.deleting_dependents:
            await self.process_deleting_dependents(node)
            return None
        if node.deleting or not node.owners:
            return None
        states = {str(r["uid"]): await self.owner_state(node, r) for r in node.owners}
        decision = decide(node, states, bool(self.graph.dependents.get(uid)))
        if decision.action == "unlink":
            await self.remove_owner_refs(node, set(decision.unlink))
        elif decision.action == "delete":
            log.info(
                "garbage collector: deleting %s %s/%s (%s)", node.res.kind, node.namespace, node.name, decision.policy
            )
            try:
                await self.client.delete(
                    node.res,
                    node.name,
                    node.namespace or None,
                    propagation_policy=decision.policy,
                    preconditions={"uid": node.uid},
                )
            except StatusError as e:
                if e.code not in (404, 409):  # gone, or replaced by a new object of that name
                    raise
        return None

    async def process_deleting_dependents(self, owner: Node) -> None:
        blocking = blocking_dependents(self.graph, owner.uid)
        if not blocking:
            await self.remove_finalizer(owner, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting:
                self.delete_queue.add(dep.uid)

    async def attempt_to_orphan(self, uid: str) -> None:
        owner = self.graph.nodes.get(uid)
        if owner is None or not owner.orphaning:
            return
        for dep in self.graph.dependents_of(uid):
            await self.remove_owner_refs(dep, {uid})
        await self.remove_finalizer(owner, ORPHAN)

    # -- writes ---------------------------------------------------------------------------------

    async def _modify(self, node: Node, change: Any) -> None:
        """GET the object, apply ``change`` (returns False when nothing to do), PUT it back with
        its resourceVersion; retried on conflicts."""
        for _ in range(5):
            try:
                obj = await self.client.get(node.res, node.name, node.namespace or None)
            except StatusError as e:
                if e.code == 404:
                    return
                raise
            if (obj.get("metadata") or {}).get("uid") != node.uid or not change(obj):
                return
            try:
                await self.client.update(node.res, obj, node.namespace or None)
                return
            except StatusError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
        raise Requeue()

    async def remove_owner_refs(self, node: Node, uids: Iterable[str]) -> None:
        drop = set(uids)

        def change(obj: Obj) -> bool:
            md = obj.setdefault("metadata", {})
            refs = md.get("ownerReferences") or []
            keep = [r for r in refs if r.get("uid") not in drop]
            if len(keep) == len(refs):
                return False
            if keep:
                md["ownerReferences"] = keep
            else:
                md.pop("ownerReferences", None)
            return True

        await self._modify(node, change)

    async def remove_finalizer(self, node: Node, finalizer: str) -> None:
        def change(obj: Obj) -> bool:
            md = obj.setdefault("metadata", {})
            fins = md.get("finalizers") or []
            if finalizer not in fins:
                return False
            md["finalizers"] = [f for f in fins if f != finalizer]
            return True

        await self._modify(node, change)


@register("garbagecollector")
async def start(ctx: ControllerContext) -> None:
    delay = 0.5
    while True:  # the api-server may not be reachable yet: keep trying, as upstream does
        try:
            resources = await discover_resources(ctx.client)
            break
        except (StatusError, ConnectionError) as e:
            log.warning("garbage collector: discovery failed (%s); retrying in %.1fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
    gc = GarbageCollector(ctx, resources)
    await ctx.informers.start()
    await gc.run()
