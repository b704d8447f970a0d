"""statefulset: pods with stable names ``<sts>-<ordinal>`` (upstream's StatefulSet controller).

- **Identity.** Pod ``<sts>-<i>`` for each ordinal ``i`` in ``[start, start+replicas)``, labelled
  ``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index``, with
  ``hostname`` = its name and ``subdomain`` = ``serviceName``. Claims from
  ``volumeClaimTemplates`` are named ``<claim>-<sts>-<i>`` and outlive the pods.
- **OrderedReady** (default): create ordinals ascending, each only when all lower ones are
  Running and Ready; remove surplus ordinals from the highest, one at a time, when the rest is
  healthy. **Parallel**: create and delete without waiting.
- **Revisions.** Each template is a ControllerRevision; pods carry ``controller-revision-hash``.
  ``RollingUpdate`` replaces pods from the highest ordinal down to ``partition``, one at a time,
  only while every pod is healthy; ordinals below the partition keep the current revision. When
  all pods are updated, ``currentRevision`` becomes ``updateRevision``. ``OnDelete`` waits for
  the user to delete pods.

Names make creates idempotent (a repeat is 409 AlreadyExists), so no expectations are needed.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from kubeha.api.apps.v1 import selector_matches
from kubeha.api.errors import StatusError
from kubeha.client.resources import CONTROLLERREVISIONS, PODS, STATEFULSETS, ref_for
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.daemonset import (
    OWNER_UID_INDEX,
    REVISION_HASH_LABEL,
    ensure_revision,
    owner_uid_index,
    revision_data,
    truncate_history,
)
from kubeha.controllers.podcontrol import is_pod_available, is_pod_ready, meta, pod_from_template
from kubeha.machinery.controller import Controller, Requeue, enqueue_on, enqueue_owner
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def _replicas(spec: Obj) -> int:
    value = spec.get("replicas")
    return int(value) if isinstance(value, int) else 1


def ordinal_of(sts_name: str, pod_name: str) -> int | None:
    m = re.fullmatch(re.escape(sts_name) + r"-(\d+)", pod_name)
    return int(m.group(1)) if m else None


def is_healthy(pod: Obj) -> bool:
    """Running and Ready and not being deleted (upstream's gate for ordered progress)."""
    return (
        (pod.get("status") or {}).get("phase") == "Running"
        and is_pod_ready(pod)
        and not meta(pod).get("deletionTimestamp")
    )


def revision_of(pod: Obj) -> str:
    return str((meta(pod).get("labels") or {}).get(REVISION_HASH_LABEL) or "")


def template_of_revision(rev: Obj) -> Obj:
    tmpl = copy.deepcopy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    tmpl.pop("$patch", None)
    return tmpl


def plan(sts: Obj, pods: dict[int, Obj], update_rev: str, current_rev: str) -> tuple[list[int], list[Obj]]:
    """(ordinals to create, pods to delete) for one sync (upstream's ``updateStatefulSet`` order)."""
    spec = sts.get("spec") or {}
    replicas = _replicas(spec)
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    wanted = range(start, start + replicas)
    create: list[int] = []
    delete: list[Obj] = []
    # 1. bring up every wanted ordinal (replacing failed pods)
    for i in wanted:
        pod = pods.get(i)
        if pod is None:
            create.append(i)
            if ordered:
                return create, delete
            continue
        if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded") and not meta(pod).get("deletionTimestamp"):
            delete.append(pod)
            if ordered:
                return create, delete
            continue
        if ordered and not is_healthy(pod):
            return create, delete  # wait for this one before touching higher ordinals
    # 2. surplus ordinals, highest first
    condemned = sorted((o for o in pods if o not in wanted), reverse=True)
    for o in condemned:
        pod = pods[o]
        if meta(pod).get("deletionTimestamp"):
            if ordered:
                return create, delete
            continue
        delete.append(pod)
        if ordered:
            return create, delete
    if create or delete:
        return create, delete
    # 3. rolling update from the highest ordinal down to the partition
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return create, delete
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
    for i in sorted(wanted, reverse=True):
        if i < partition:
            break
        pod = pods.get(i)
        if pod is None or revision_of(pod) == update_rev:
            continue
        if meta(pod).get("deletionTimestamp") or not all(is_healthy(p) for o, p in pods.items() if o in wanted):
            return create, delete  # one at a time, only while everything is healthy
        delete.append(pod)
        return create, delete
    return create, delete


class StatefulSetController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder("statefulset-controller")
        self.statefulsets = ctx.informers.informer_for(STATEFULSETS)
        self.pods = ctx.informers.informer_for(PODS, indexers={OWNER_UID_INDEX: owner_uid_index})
        self.revisions = ctx.informers.informer_for(CONTROLLERREVISIONS, indexers={OWNER_UID_INDEX: owner_uid_index})
        self.queue = RateLimitingQueue(name="statefulset")
        self.controller = Controller("statefulset", self.sync, self.queue, workers=ctx.options.concurrent_syncs)
        enqueue_on(self.statefulsets, self.queue)
        enqueue_owner(self.pods, self.queue, "StatefulSet", "apps")

    def sts_pods(self, sts: Obj) -> dict[int, Obj]:
        sel = (sts.get("spec") or {}).get("selector") or {}
        name = str(meta(sts)["name"])
        out: dict[int, Obj] = {}
        for p in self.pods.indexer.by_index(OWNER_UID_INDEX, str(meta(sts).get("uid"))):
            o = ordinal_of(name, str(meta(p).get("name")))
            if o is not None and selector_matches(sel, meta(p).get("labels") or {}):
                out[o] = p
        return out

    async def sync(self, key: str) -> Requeue | None:
        sts = self.statefulsets.indexer.get(key)
        if sts is None or meta(sts).get("deletionTimestamp"):
            return None
        spec = sts.get("spec") or {}
        revisions = self.revisions.indexer.by_index(OWNER_UID_INDEX, str(meta(sts).get("uid")))
        update, others = await ensure_revision(
            self.client, revisions, sts, "StatefulSet", revision_data(spec.get("template") or {})
        )
        update_rev = str((meta(update).get("labels") or {}).get(REVISION_HASH_LABEL) or "")
        status = sts.get("status") or {}
        current_rev = str(status.get("currentRevision") or update_rev)
        current = next(
            (r for r in [update, *others] if (meta(r).get("labels") or {}).get(REVISION_HASH_LABEL) == current_rev),
            update,
        )
        pods = self.sts_pods(sts)
        create, delete = plan(sts, pods, update_rev, current_rev)
        for pod in delete:
            await self.delete_pod(sts, pod)
        for ordinal in create:
            await self.create_pod(sts, ordinal, update, current, update_rev, current_rev)
        in_use = {revision_of(p) for p in pods.values()} | {current_rev, update_rev}
        await truncate_history(self.client, others, in_use, int(spec.get("revisionHistoryLimit") or 10))
        await self.update_status(sts, pods, update_rev, current_rev)
        return None

    def revision_for(self, sts: Obj, ordinal: int, update_rev: str, current_rev: str) -> str:
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
            return current_rev if ordinal < partition else update_rev
        # OnDelete: replacements of deleted pods get the new template
        return update_rev

    async def create_pod(
        self, sts: Obj, ordinal: int, update: Obj, current: Obj, update_rev: str, current_rev: str
    ) -> None:
        md = meta(sts)
        name = f"{md['name']}-{ordinal}"
        rev = self.revision_for(sts, ordinal, update_rev, current_rev)
        template = template_of_revision(update if rev == update_rev else current)
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels[POD_NAME_LABEL] = name
        labels[POD_INDEX_LABEL] = str(ordinal)
        labels[REVISION_HASH_LABEL] = rev
        pspec = template.setdefault("spec", {})
        pspec["hostname"] = name
        service = (sts.get("spec") or {}).get("serviceName")
        if service:
            pspec["subdomain"] = service
        await self.ensure_claims(sts, ordinal, pspec)
        ref = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": md["name"],
            "uid": md["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        pod = pod_from_template(template, sts, ref, name=name)
        try:
            await self.client.create(PODS, pod, md.get("namespace"))
        except StatusError as err:
            if err.code == 409:
                return  # created before (a stale cache): fine
            self.recorder.event(
                sts, "Warning", "FailedCreate", f"create Pod {name} in StatefulSet {md['name']} failed error: {err}"
            )
            raise
        self.recorder.event(
            sts, "Normal", "SuccessfulCreate", f"create Pod {name} in StatefulSet {md['name']} successful"
        )

    async def ensure_claims(self, sts: Obj, ordinal: int, pod_spec: Obj) -> None:
        templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
        if not templates:
            return
        md = meta(sts)
        pvcs = ref_for("v1", "PersistentVolumeClaim")
        volumes = pod_spec.setdefault("volumes", [])
        for tmpl in templates:
            cname = (tmpl.get("metadata") or {}).get("name", "")
            claim = f"{cname}-{md['name']}-{ordinal}"
            labels = dict(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
            obj = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": md.get("namespace"), "labels": labels},
                "spec": copy.deepcopy(tmpl.get("spec") or {}),
            }
            try:
                await self.client.create(pvcs, obj, md.get("namespace"))
            except StatusError as err:
                if err.code != 409:
                    self.recorder.event(
                        sts,
                        "Warning",
                        "FailedCreate",
                        f"create Claim {claim} for Pod {md['name']}-{ordinal} in StatefulSet {md['name']} failed error: {err}",
                    )
                    raise
            volumes[:] = [v for v in volumes if v.get("name") != cname]
            volumes.append({"name": cname, "persistentVolumeClaim": {"claimName": claim}})

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = meta(pod)["name"]
        try:
            await self.client.delete(
                PODS, name, meta(pod).get("namespace"), preconditions={"uid": meta(pod).get("uid")}
            )
        except StatusError as err:
            if err.code in (404, 409):
                return
            raise
        self.recorder.event(
            sts, "Normal", "SuccessfulDelete", f"delete Pod {name} in StatefulSet {meta(sts)['name']} successful"
        )

    async def update_status(self, sts: Obj, pods: dict[int, Obj], update_rev: str, current_rev: str) -> None:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        live = [p for p in pods.values() if not meta(p).get("deletionTimestamp")]
        replicas = len(live)
        ready = sum(1 for p in live if is_pod_ready(p))
        available = sum(1 for p in live if is_pod_available(p, min_ready))
        updated = sum(1 for p in live if revision_of(p) == update_rev)
        cur = sum(1 for p in live if revision_of(p) == current_rev)
        want = _replicas(spec)
        if updated == want and replicas == want and ready == want:
            current_rev, cur = update_rev, updated  # the rollout is complete
        old = sts.get("status") or {}
        status = {
            **old,
            "observedGeneration": meta(sts).get("generation") or 1,
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": available,
            "currentReplicas": cur,
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": int(old.get("collisionCount") or 0),
        }
        if status != old:
            new = copy.deepcopy(sts)
            new["status"] = status
            await self.client.update(STATEFULSETS, new, subresource="status")

    async def run(self) -> None:
        await self.controller.run([self.statefulsets, self.pods, self.revisions])


@register("statefulset")
async def start(ctx: ControllerContext) -> None:
    ctl = StatefulSetController(ctx)
    await ctx.informers.start()
    await ctl.run()
