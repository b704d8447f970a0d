"""Shared helpers for controllers that create and delete pods from a template.

Used by the replicaset, daemonset, job and statefulset controllers. The pieces, all upstream
(``pkg/controller/controller_utils.go``) semantics:

- :func:`owner_reference` / :func:`pod_from_template`: a pod for an owner, named
  ``<owner>-<random>`` by the server (``generateName``), carrying the controller reference.
- :class:`Expectations`: after creating or deleting pods, a controller must not act on the same
  key again until its informer has seen those creates/deletes, or it would create twice.
- :func:`slow_start_batch`: create in batches 1, 2, 4, ... and stop at the first failing batch, so
  a quota or admission error costs one request, not hundreds.
- :func:`pods_to_delete`: which pods to remove when scaling down (least valuable first).
- :class:`PodControl`: create/delete through the API, recording the upstream events.
- Pod state predicates: :func:`is_pod_active`, :func:`is_pod_ready`, :func:`is_pod_available`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kubeha.api.errors import StatusError
from kubeha.client.resources import PODS

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Upstream: how long expectations may stay unmet before a controller acts anyway (a lost watch
# event must not wedge a controller forever).
EXPECTATIONS_TIMEOUT = 5 * 60.0
SLOW_START_INITIAL_BATCH = 1
# Upstream's burstReplicas for the replicaset controller: most pods created/deleted per sync.
BURST_REPLICAS = 500


# -- small object helpers ---------------------------------------------------------------------


def meta(obj: Obj) -> Obj:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def parse_time(value: Any) -> float | None:
    """An RFC 3339 timestamp as Unix seconds (None when absent or unparsable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_time(ts: float | None = None) -> str:
    """metav1.Time's JSON form (seconds precision, UTC)."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(owner: Obj, api_version: str | None = None, kind: str | None = None) -> Obj:
    """The controller ownerReference a dependent of ``owner`` carries."""
    md = meta(owner)
    return {
        "apiVersion": api_version or owner.get("apiVersion", ""),
        "kind": kind or owner.get("kind", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from_template(template: Obj, owner: Obj, controller_ref: Obj | None = None, *, name: str = "") -> Obj:
    """A pod to create for ``owner`` from its pod template.

    Labels, annotations and finalizers come from the template; the pod is named by the server from
    ``<owner name>-`` unless ``name`` is given (StatefulSets name their pods).
    """
    tmeta = template.get("metadata") or {}
    omd = meta(owner)
    md: Obj = {"namespace": omd.get("namespace", "")}
    if name:
        md["name"] = name
    else:
        # upstream: the owner's name plus "-", shortened so the server's 5 random characters fit
        prefix = f"{omd.get('name', '')}-"
        md["generateName"] = prefix if len(prefix) <= 58 else prefix[:58]
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            md[key] = copy.deepcopy(tmeta[key])
    if controller_ref is not None:
        md["ownerReferences"] = [dict(controller_ref)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}


# -- pod state ----------------------------------------------------------------------------------


def is_pod_active(pod: Obj) -> bool:
    """Not finished and not being deleted (upstream ``IsPodActive``)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not meta(pod).get("deletionTimestamp")


def pod_condition(pod: Obj, typ: str) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == typ:
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float | None = None) -> bool:
    """Ready for at least ``min_ready_seconds`` (upstream ``IsPodAvailable``)."""
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(cond.get("lastTransitionTime"))
    if since is None:
        return False
    return since + min_ready_seconds <= (time.time() if now is None else now)


# -- expectations -------------------------------------------------------------------------------


@dataclass
class _Expectation:
    adds: int = 0
    dels: int = 0
    # keys of pods we asked to delete and whose deletion we have not observed yet
    del_keys: set[str] = field(default_factory=set)
    stamp: float = 0.0

    def fulfilled(self) -> bool:
        return self.adds <= 0 and self.dels <= 0


class Expectations:
    """client-go's (UID-tracking) ControllerExpectations, keyed by the controller's key.

    Protocol: before creating N pods call :meth:`expect_creations`; the pod informer's add handler
    calls :meth:`creation_observed`; a failed create calls :meth:`creation_observed` too (the
    pod will never arrive). Deletions likewise with the pods' keys. A sync only acts when
    :meth:`satisfied` (or when the expectations are older than ``timeout``).
    """

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True  # never set (new controller, or after a restart): sync
        if exp.fulfilled():
            return True
        if self._clock() - exp.stamp > self.timeout:
            log.info("expectations of %s timed out (adds %d, dels %d)", key, exp.adds, exp.dels)
            return True
        return False

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(adds=count, stamp=self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        keys = set(pod_keys)
        self._items[key] = _Expectation(dels=len(keys), del_keys=keys, stamp=self._clock())

    def creation_observed(self, key: str, count: int = 1) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.adds -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None and pod_key in exp.del_keys:
            exp.del_keys.discard(pod_key)
            exp.dels -= 1

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected."""
        exp = self._items.get(key)
        return (exp.adds, exp.dels) if exp is not None else (0, 0)

    def delete(self, key: str) -> None:
        self._items.pop(key, None)


# -- batch creation -----------------------------------------------------------------------------


async def slow_start_batch(
    count: int, fn: Callable[[], Awaitable[object]], initial_batch: int = SLOW_START_INITIAL_BATCH
) -> tuple[int, BaseException | None]:
    """Call ``fn`` ``count`` times in concurrent batches of 1, 2, 4, ...; stop after the first
    batch with a failure. Returns (successful calls, first error or None); calls never made are
    ``count - successes - failures in the last batch``, see :func:`skipped_after`."""
    remaining = count
    done = 0
    batch = min(remaining, initial_batch)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in errors:
            if isinstance(r, asyncio.CancelledError):
                raise r
        done += batch - len(errors)
        if errors:
            return done, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return done, None


def batches(count: int, initial_batch: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """The batch sizes :func:`slow_start_batch` uses for ``count`` calls (1, 2, 4, ..., rest)."""
    out: list[int] = []
    batch = min(count, initial_batch)
    remaining = count
    while batch > 0:
        out.append(batch)
        remaining -= batch
        batch = min(2 * batch, remaining)
    return out


# -- choosing pods to delete --------------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _ready_since(pod: Obj) -> float:
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return 0.0
    return parse_time(cond.get("lastTransitionTime")) or 0.0


def _restarts(pod: Obj) -> int:
    return max(
        (int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []),
        default=0,
    )


def deletion_cost(pod: Obj) -> int:
    """The ``controller.kubernetes.io/pod-deletion-cost`` annotation (0 when absent or invalid)."""
    raw = (meta(pod).get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost")
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def deletion_rank_key(pod: Obj, colocated: int = 0) -> tuple[Any, ...]:
    """Sort key: pods that sort first are deleted first (upstream ``ActivePodsWithRanks``).

    In order: unscheduled before scheduled; Pending before Unknown before Running; not ready
    before ready; lower deletion cost first; more pods of the same owner on the node first;
    ready for less time first; more container restarts first; newer before older.
    """
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    phase = _PHASE_RANK.get(str((pod.get("status") or {}).get("phase") or "Pending"), 0)
    ready = is_pod_ready(pod)
    # a pod without a creation time sorts first, as upstream
    created = parse_time(meta(pod).get("creationTimestamp")) or float("inf")
    return (
        scheduled,
        phase,
        ready,
        deletion_cost(pod),
        -colocated,
        -_ready_since(pod) if ready else 0.0,
        -_restarts(pod),
        -created,
    )


def pods_to_delete(pods: Sequence[Obj], related: Sequence[Obj] | None, count: int) -> list[Obj]:
    """The ``count`` pods of ``pods`` to delete first. ``related`` (pods of the owner's siblings,
    e.g. every ReplicaSet of one Deployment) counts how crowded each node is; None = ``pods``."""
    if count <= 0:
        return []
    per_node: dict[str, int] = {}
    for p in related if related is not None else pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and is_pod_active(p):
            per_node[node] = per_node.get(node, 0) + 1

    def key(p: Obj) -> tuple[Any, ...]:
        node = (p.get("spec") or {}).get("nodeName")
        return deletion_rank_key(p, per_node.get(node, 0) if node else 0)

    return sorted(pods, key=key)[:count]


# -- the API side -------------------------------------------------------------------------------


class PodClient(Protocol):
    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj: ...

    async def delete(self, res: Any, name: str, namespace: str | None = None) -> Obj: ...


class Recorder(Protocol):
    def event(self, obj: Obj, type: str, reason: str, message: str) -> None: ...


class PodControl:
    """Creates and deletes pods for a controller object, recording upstream's events on it:
    ``SuccessfulCreate`` "Created pod: x", ``FailedCreate`` "Error creating: ...",
    ``SuccessfulDelete`` "Deleted pod: x", ``FailedDelete`` "Error deleting: ..."."""

    def __init__(self, client: PodClient, recorder: Recorder) -> None:
        self.client = client
        self.recorder = recorder

    async def create_pod(self, template: Obj, owner: Obj, controller_ref: Obj | None, *, name: str = "") -> Obj:
        pod = pod_from_template(template, owner, controller_ref, name=name)
        if not (pod["metadata"].get("labels") or {}):
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.client.create(PODS, pod, meta(owner).get("namespace"))
        except StatusError as err:
            # a namespace being deleted refuses creates: expected, not worth an event
            if not (err.code == 403 and "being terminated" in str(err)):
                self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {err}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {meta(created).get('name', '')}")
        return created

    async def delete_pod(self, namespace: str, name: str, owner: Obj) -> None:
        try:
            await self.client.delete(PODS, name, namespace)
        except StatusError as err:
            if err.code == 404:
                return  # already gone: what we wanted
            self.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {err}")
            raise
        self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")


# -- adoption and release (upstream ControllerRefManager) -----------------------------------------


def claim_decision(obj: Obj, owner: Obj, matches: bool) -> str:
    """What ``owner`` (with a selector that ``matches`` ``obj`` or not) should do with ``obj``:
    ``"own"`` (already ours and still matching), ``"adopt"`` (an orphan that matches), ``"release"``
    (ours but no longer matching) or ``"ignore"`` (someone else's, or not for us)."""
    omd = meta(owner)
    owner_deleting = bool(omd.get("deletionTimestamp"))
    ref = next((r for r in meta(obj).get("ownerReferences") or [] if isinstance(r, dict) and r.get("controller")), None)
    if ref is not None:
        if ref.get("uid") != omd.get("uid"):
            return "ignore"
        if matches:
            return "own"
        return "ignore" if owner_deleting else "release"
    if owner_deleting or not matches or meta(obj).get("deletionTimestamp"):
        return "ignore"
    return "adopt"


def adopt_patch(controller_ref: Obj, uid: str) -> Obj:
    """Strategic merge patch adding our controller reference; ``uid`` guards against a
    same-named replacement of the object."""
    return {"metadata": {"ownerReferences": [controller_ref], "uid": uid}}


def release_patch(owner_uid: str, uid: str) -> Obj:
    """Strategic merge patch removing the owner reference with ``owner_uid``."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": uid}}


class PatchClient(Protocol):
    async def patch(
        self, res: Any, name: str, patch: Any, namespace: str | None = None, *, patch_type: str = "merge"
    ) -> Obj: ...


async def claim(
    client: PatchClient,
    res: Any,
    owner: Obj,
    controller_ref: Obj,
    objs: Iterable[Obj],
    matches: Callable[[Obj], bool],
) -> list[Obj]:
    """Adopt matching orphans and release non-matching dependents of ``owner``; returns the
    objects it owns afterwards. A dependent that vanished meanwhile is skipped; other API errors
    are raised after every object was handled."""
    owned: list[Obj] = []
    first_error: StatusError | None = None
    uid = str(meta(owner).get("uid", ""))
    for obj in objs:
        decision = claim_decision(obj, owner, matches(obj))
        md = meta(obj)
        if decision == "own":
            owned.append(obj)
            continue
        if decision == "ignore":
            continue
        try:
            if decision == "adopt":
                patched = await client.patch(
                    res,
                    md["name"],
                    adopt_patch(controller_ref, md.get("uid", "")),
                    md.get("namespace"),
                    patch_type="strategic",
                )
                owned.append(patched)
            else:
                await client.patch(
                    res, md["name"], release_patch(uid, md.get("uid", "")), md.get("namespace"), patch_type="strategic"
                )
        except StatusError as err:
            # gone (404) or replaced by a same-named object (uid precondition: 409/422): nothing to do
            if err.code in (404, 409, 422):
                continue
            first_error = first_error or err
    if first_error is not None:
        raise first_error
    return owned
