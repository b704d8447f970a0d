"""daemonset: one pod of a DaemonSet on every node that should run it.

Which nodes (upstream ``NodeShouldRunDaemonPod``): the pod template's ``nodeSelector`` and
required node affinity match the node, and every NoSchedule/NoExecute taint is tolerated by the
template plus the tolerations every daemon pod gets automatically (not-ready and unreachable
NoExecute; disk/memory/pid pressure and unschedulable NoSchedule; network-unavailable for host
network pods). A pod already running stays while only NoSchedule taints are untolerated.

Pods are created unbound with a required node affinity on ``metadata.name`` — the scheduler
places them, as upstream since 1.12. Each template version is a ControllerRevision named
``<ds>-<hash>``; pods carry the hash in ``controller-revision-hash``. ``RollingUpdate`` deletes
out-of-date pods (unavailable ones first) while at most ``maxUnavailable`` nodes lack an available
pod; their replacements come from the normal "node has no pod" path. ``OnDelete`` waits for the
user to delete pods.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import orjson

from kubeha.api.apps.v1 import selector_matches
from kubeha.api.errors import StatusError
from kubeha.client.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.nodelifecycle import tolerates
from kubeha.controllers.podcontrol import (
    Expectations,
    PodControl,
    is_pod_available,
    is_pod_ready,
    meta,
    parse_time,
    pod_condition,
    slow_start_batch,
)
from kubeha.machinery.controller import (
    Controller,
    Requeue,
    controller_ref,
    enqueue_on,
    enqueue_owner,
    object_of,
    owner_key,
)
from kubeha.machinery.indexer import meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
# index names are per process (shared informers): keep them unique to this module family
OWNER_UID_INDEX = "workloads/controller-uid"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # upstream's rand.SafeEncodeString alphabet

DAEMON_TOLERATIONS: list[Obj] = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
NETWORK_UNAVAILABLE_TOLERATION: Obj = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


# -- ControllerRevision history (shared with the statefulset controller) -------------------------


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(value: int) -> str:
    """The hash's decimal digits mapped onto an alphabet without vowels (no accidental words)."""
    return "".join(_SAFE[int(d) % len(_SAFE)] for d in str(value))


def revision_data(template: Obj) -> Obj:
    """What a revision stores: the pod template as a replacing patch (upstream's form)."""
    tmpl = copy.deepcopy(template)
    tmpl["$patch"] = "replace"
    return {"spec": {"template": tmpl}}


def revision_hash(data: Obj, collision_count: int = 0) -> str:
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        raw += str(collision_count).encode()
    return safe_encode(fnv32a(raw))


def new_revision(owner: Obj, kind: str, data: Obj, number: int, collision_count: int = 0) -> Obj:
    h = revision_hash(data, collision_count)
    md = meta(owner)
    labels = dict(((owner.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
    labels[REVISION_HASH_LABEL] = h
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{md['name']}-{h}",
            "namespace": md.get("namespace"),
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "name": md["name"],
                    "uid": md["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": data,
        "revision": number,
    }


def owner_uid_index(obj: Obj) -> list[str]:
    """Index function: the uid of the object's controller (pods and revisions by their owner)."""
    ref = controller_ref(obj)
    return [str(ref.get("uid"))] if ref else []


async def ensure_revision(client: Any, revisions: list[Obj], owner: Obj, kind: str, data: Obj) -> tuple[Obj, list[Obj]]:
    """The revision holding ``data`` (created, or renumbered to be the newest) and the others."""
    top = max((int(r.get("revision") or 0) for r in revisions), default=0)
    match = [r for r in revisions if r.get("data") == data]
    others = [r for r in revisions if r.get("data") != data]
    if match:
        cur = match[0]
        if int(cur.get("revision") or 0) < top:
            new = copy.deepcopy(cur)
            new["revision"] = top + 1
            cur = await client.update(CONTROLLERREVISIONS, new)
        return cur, others
    collision = int((owner.get("status") or {}).get("collisionCount") or 0)
    for attempt in range(5):
        cr = new_revision(owner, kind, data, top + 1, collision + attempt)
        try:
            return await client.create(CONTROLLERREVISIONS, cr, meta(owner).get("namespace")), others
        except StatusError as err:
            if err.code != 409:
                raise
            existing = await client.get(CONTROLLERREVISIONS, cr["metadata"]["name"], meta(owner).get("namespace"))
            if existing.get("data") == data and (controller_ref(existing) or {}).get("uid") == meta(owner).get("uid"):
                return existing, others
    raise RuntimeError(f"could not create a ControllerRevision for {meta_namespace_key(owner)}")


async def truncate_history(client: Any, others: list[Obj], in_use: set[str], limit: int) -> None:
    """Delete the oldest revisions no pod uses beyond ``limit``."""
    unused = [r for r in others if ((meta(r).get("labels") or {}).get(REVISION_HASH_LABEL)) not in in_use]
    unused.sort(key=lambda r: int(r.get("revision") or 0))
    for r in unused[: max(0, len(unused) - limit)]:
        try:
            await client.delete(CONTROLLERREVISIONS, meta(r)["name"], meta(r).get("namespace"))
        except StatusError as err:
            if err.code != 404:
                raise


# -- node eligibility -----------------------------------------------------------------------------


def _requirement_matches(req: Obj, values: dict[str, str]) -> bool:
    key, op, vals = req.get("key", ""), req.get("operator"), req.get("values") or []
    if op == "In":
        return key in values and values[key] in vals
    if op == "NotIn":
        return key not in values or values[key] not in vals
    if op == "Exists":
        return key in values
    if op == "DoesNotExist":
        return key not in values
    if op in ("Gt", "Lt"):
        try:
            have, want = int(values[key]), int(vals[0])
        except (KeyError, ValueError, IndexError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def node_selector_terms_match(terms: list[Obj], node: Obj) -> bool:
    """Terms are ORed; a term's requirements ANDed; an empty term matches nothing."""
    labels = meta(node).get("labels") or {}
    fields = {"metadata.name": str(meta(node).get("name") or "")}
    for term in terms:
        exprs, mfields = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not mfields:
            continue
        if all(_requirement_matches(r, labels) for r in exprs) and all(
            _requirement_matches(r, fields) for r in mfields
        ):
            return True
    return False


def daemon_tolerations(pod_spec: Obj) -> list[Obj]:
    tols = [dict(t) for t in pod_spec.get("tolerations") or []]
    extra = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        extra.append(NETWORK_UNAVAILABLE_TOLERATION)
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    return tols


def should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """(should a new daemon pod start here, may an existing one keep running)."""
    pod_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    labels = meta(node).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False, False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    if required is not None and not node_selector_terms_match(required, node):
        return False, False
    tols = daemon_tolerations(pod_spec)
    run, keep = True, True
    for taint in (node.get("spec") or {}).get("taints") or []:
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute") or tolerates(tols, taint):
            continue
        run = False
        if effect == "NoExecute":
            keep = False
    return run, keep


def pin_to_node(pod_spec: Obj, node_name: str) -> None:
    """Require ``metadata.name == node_name`` in every node selector term (upstream's
    ``ReplaceDaemonSetPodNodeNameNodeAffinity``), keeping the other requirements."""
    field_req = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    aff = pod_spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    req = aff.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        req["nodeSelectorTerms"] = [{"matchFields": [field_req]}]
        return
    for term in terms:
        term["matchFields"] = [field_req]


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            return 0
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return 0


# -- the controller -------------------------------------------------------------------------------


class DaemonSetController:
    def __init__(self, ctx: ControllerContext, *, wall: Callable[[], float] = time.time) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder("daemonset-controller")
        self.pod_control = PodControl(ctx.client, self.recorder)
        self.wall = wall
        self.daemonsets = ctx.informers.informer_for(DAEMONSETS)
        self.nodes = ctx.informers.informer_for(NODES)
        self.pods = ctx.informers.informer_for(PODS, indexers={OWNER_UID_INDEX: owner_uid_index})
        self.revisions = ctx.informers.informer_for(CONTROLLERREVISIONS, indexers={OWNER_UID_INDEX: owner_uid_index})
        self.queue = RateLimitingQueue(name="daemonset")
        self.controller = Controller("daemonset", self.sync, self.queue, workers=ctx.options.concurrent_syncs)
        self.expectations = Expectations()
        enqueue_on(self.daemonsets, self.queue)
        enqueue_owner(self.pods, self.queue, "DaemonSet", "apps")
        self.pods.add_event_handler(on_add=self._pod_added, on_delete=self._pod_deleted)
        self.nodes.add_event_handler(
            on_add=self._node_changed, on_update=self._node_updated, on_delete=self._node_changed
        )

    def _pod_added(self, pod: Obj) -> None:
        key = owner_key(pod, "DaemonSet", "apps")
        if key is not None:
            self.expectations.creation_observed(key)

    def _pod_deleted(self, obj: Any) -> None:
        pod = object_of(obj)
        key = owner_key(pod, "DaemonSet", "apps") if pod is not None else None
        if key is not None and pod is not None:
            self.expectations.deletion_observed(key, meta_namespace_key(pod))

    def _node_changed(self, _: Any) -> None:
        for ds in self.daemonsets.indexer.list():
            self.queue.add(meta_namespace_key(ds))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # only what decides eligibility matters (heartbeats change nodes all the time)
        def relevant(n: Obj) -> Any:
            return (
                meta(n).get("labels"),
                (n.get("spec") or {}).get("taints"),
                (n.get("spec") or {}).get("unschedulable"),
            )

        if relevant(old) != relevant(new):
            self._node_changed(new)

    def ds_pods(self, ds: Obj) -> list[Obj]:
        sel = (ds.get("spec") or {}).get("selector") or {}
        return [
            p
            for p in self.pods.indexer.by_index(OWNER_UID_INDEX, str(meta(ds).get("uid")))
            if selector_matches(sel, meta(p).get("labels") or {})
        ]

    @staticmethod
    def pod_node(pod: Obj) -> str | None:
        """The node a daemon pod is for: where it runs, else the node its affinity pins it to."""
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            return str(spec["nodeName"])
        terms = (
            ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
                "requiredDuringSchedulingIgnoredDuringExecution"
            )
            or {}
        ).get("nodeSelectorTerms") or []
        for term in terms:
            for req in term.get("matchFields") or []:
                if (
                    req.get("key") == "metadata.name"
                    and req.get("operator") == "In"
                    and len(req.get("values") or []) == 1
                ):
                    return str(req["values"][0])
        return None

    async def sync(self, key: str) -> Requeue | None:
        ds = self.daemonsets.indexer.get(key)
        if ds is None:
            self.expectations.delete(key)
            return None
        if meta(ds).get("deletionTimestamp"):
            return None
        spec = ds.get("spec") or {}
        data = revision_data(spec.get("template") or {})
        revisions = self.revisions.indexer.by_index(OWNER_UID_INDEX, str(meta(ds).get("uid")))
        current, others = await ensure_revision(self.client, revisions, ds, "DaemonSet", data)
        cur_hash = (meta(current).get("labels") or {}).get(REVISION_HASH_LABEL, "")

        pods = [p for p in self.ds_pods(ds) if not meta(p).get("deletionTimestamp")]
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            node = self.pod_node(p)
            if node:
                by_node.setdefault(node, []).append(p)
        nodes = self.nodes.indexer.list()
        if self.expectations.satisfied(key):
            await self.manage(ds, key, nodes, by_node, cur_hash)
        in_use = {(meta(p).get("labels") or {}).get(REVISION_HASH_LABEL, "") for p in pods}
        await truncate_history(self.client, others, in_use, int(spec.get("revisionHistoryLimit") or 10))
        await self.update_status(ds, nodes, by_node, cur_hash)
        return self.availability_recheck(ds, pods)

    def availability_recheck(self, ds: Obj, pods: list[Obj]) -> Requeue | None:
        """With minReadySeconds, look again when the next ready pod becomes available (no event
        marks that moment)."""
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready <= 0:
            return None
        now = self.wall()
        waits = []
        for p in pods:
            if is_pod_ready(p) and not is_pod_available(p, min_ready, now):
                since = parse_time((pod_condition(p, "Ready") or {}).get("lastTransitionTime"))
                if since is not None:
                    waits.append(since + min_ready - now)
        return Requeue(after=max(0.1, min(waits))) if waits else None

    async def manage(self, ds: Obj, key: str, nodes: list[Obj], by_node: dict[str, list[Obj]], cur_hash: str) -> None:
        create_on: list[str] = []
        delete: list[Obj] = []
        for node in nodes:
            name = str(meta(node)["name"])
            run, keep = should_run(ds, node)
            here = by_node.get(name, [])
            if run and not here:
                create_on.append(name)
            elif not keep and here:
                delete.extend(here)
            elif here:
                failed = [p for p in here if (p.get("status") or {}).get("phase") == "Failed"]
                if failed:
                    delete.extend(failed)  # a replacement follows on a later sync
                    here = [p for p in here if p not in failed]
                if len(here) > 1:
                    here.sort(key=lambda p: parse_time(meta(p).get("creationTimestamp")) or 0.0)
                    delete.extend(here[1:])  # keep the oldest
        node_names = {str(meta(n)["name"]) for n in nodes}
        for name, here in by_node.items():
            if name not in node_names:
                delete.extend(here)  # the node is gone
        delete += self.rolling_update_deletions(ds, nodes, by_node, cur_hash, {meta_namespace_key(p) for p in delete})
        if delete:
            self.expectations.expect_deletions(key, [meta_namespace_key(p) for p in delete])
            for p in delete:
                try:
                    await self.pod_control.delete_pod(meta(p).get("namespace", ""), meta(p)["name"], ds)
                except StatusError:
                    self.expectations.deletion_observed(key, meta_namespace_key(p))
                    raise
        if create_on:
            await self.create_pods(ds, key, create_on, cur_hash)

    def rolling_update_deletions(
        self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], cur_hash: str, already: set[str]
    ) -> list[Obj]:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self.wall()
        desired = [str(meta(n)["name"]) for n in nodes if should_run(ds, n)[0]]
        max_unavailable = int_or_percent(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(desired), round_up=True
        )
        if max_unavailable < 1:
            max_unavailable = 1  # upstream: with maxSurge 0, 0 would never make progress
        unavailable = 0
        old_unavailable: list[Obj] = []
        old_available: list[Obj] = []
        for name in desired:
            here = [p for p in by_node.get(name, []) if meta_namespace_key(p) not in already]
            if not here:
                unavailable += 1
                continue
            pod = here[0]
            available = is_pod_available(pod, min_ready, now)
            if not available:
                unavailable += 1
            if (meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) != cur_hash:
                (old_available if available else old_unavailable).append(pod)
        out = list(old_unavailable)  # deleting these costs no availability
        budget = max_unavailable - unavailable
        out += old_available[: max(0, budget)]
        return out

    async def create_pods(self, ds: Obj, key: str, node_names: list[str], cur_hash: str) -> None:
        spec = ds.get("spec") or {}
        ref = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": meta(ds)["name"],
            "uid": meta(ds)["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        pending = list(node_names)
        invoked = 0
        self.expectations.expect_creations(key, len(pending))

        async def create_one() -> None:
            nonlocal invoked
            invoked += 1
            node = pending.pop(0)
            template = copy.deepcopy(spec.get("template") or {})
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            labels[REVISION_HASH_LABEL] = cur_hash
            labels[TEMPLATE_GENERATION_LABEL] = str(meta(ds).get("generation") or 1)
            pspec = template.setdefault("spec", {})
            pspec["tolerations"] = daemon_tolerations(pspec)
            pin_to_node(pspec, node)
            try:
                await self.pod_control.create_pod(template, ds, ref)
            except BaseException:
                self.expectations.creation_observed(key)
                raise

        _, err = await slow_start_batch(len(pending), create_one)
        for _ in range(len(node_names) - invoked):
            self.expectations.creation_observed(key)
        if err is not None:
            raise err

    async def update_status(self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], cur_hash: str) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self.wall()
        desired = current = misscheduled = ready = available = updated = 0
        for node in nodes:
            name = str(meta(node)["name"])
            run, _ = should_run(ds, node)
            here = by_node.get(name, [])
            if run:
                desired += 1
                if here:
                    current += 1
                    pod = here[0]
                    if is_pod_ready(pod):
                        ready += 1
                    if is_pod_available(pod, min_ready, now):
                        available += 1
                    if (meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) == cur_hash:
                        updated += 1
            elif here:
                misscheduled += 1
        old = ds.get("status") or {}
        status = {
            **old,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
            "updatedNumberScheduled": updated,
            "observedGeneration": meta(ds).get("generation") or 1,
        }
        if status != old:
            new = copy.deepcopy(ds)
            new["status"] = status
            await self.client.update(DAEMONSETS, new, subresource="status")

    async def run(self) -> None:
        await self.controller.run([self.daemonsets, self.nodes, self.pods, self.revisions])


@register("daemonset")
async def start(ctx: ControllerContext) -> None:
    ctl = DaemonSetController(ctx)
    await ctx.informers.start()
    await ctl.run()
