"""The deployment controller: rolls Deployments out through ReplicaSets (upstream
``pkg/controller/deployment`` semantics).

Each distinct pod template gets one ReplicaSet named ``<deployment>-<hash>`` whose selector and
template carry ``pod-template-hash: <hash>``. The ReplicaSet whose template equals the
Deployment's (ignoring that label) is the "new" one; every other owned ReplicaSet is "old".
RollingUpdate scales the new one up within ``maxSurge`` and old ones down within
``maxUnavailable``; Recreate scales old ones to zero first. ``kubectl rollout undo`` copies an old
template back, which makes that old ReplicaSet the new one again with the next revision number.
Scaling a Deployment mid-rollout spreads the change over its ReplicaSets in proportion to their
sizes. Conditions and status are what ``kubectl rollout status`` reads.

The pure rollout math lives in module-level functions (unit tested); the controller class wires
informers, queue and API writes around them.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import orjson

from kubeha.api.apps.v1 import selector_matches
from kubeha.api.errors import StatusError
from kubeha.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubeha.controllers.context import ControllerContext, register
from kubeha.controllers.podcontrol import claim, format_time, meta, owner_reference, parse_time
from kubeha.machinery.controller import Controller, Requeue, controller_ref, object_of
from kubeha.machinery.indexer import NAMESPACE_INDEX, meta_namespace_key
from kubeha.machinery.workqueue import RateLimitingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "Deployment"
COMPONENT = "deployment-controller"

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# deployment annotations never copied onto its ReplicaSets
SKIP_COPY = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
# upstream rand.SafeEncodeString's alphabet: no vowels, no look-alikes
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_INT32 = 2**31 - 1

# condition types and reasons (upstream names)
AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"
NEW_RS_CREATED, FOUND_NEW_RS, RS_UPDATED = "NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetUpdated"
NEW_RS_AVAILABLE, TIMED_OUT, FAILED_RS_CREATE = "NewReplicaSetAvailable", "ProgressDeadlineExceeded", "FailedRSCreate"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"


# -- small accessors ------------------------------------------------------------------------------


def _spec(obj: Obj | None) -> Obj:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Obj | None) -> Obj:
    st = (obj or {}).get("status")
    return st if isinstance(st, dict) else {}


def replicas_of(obj: Obj | None) -> int:
    """``spec.replicas`` (1 when unset, as defaulted)."""
    if obj is None:
        return 0
    value = _spec(obj).get("replicas")
    return 1 if value is None else int(value)


def _annotation_int(obj: Obj, key: str) -> int | None:
    raw = (meta(obj).get("annotations") or {}).get(key)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def revision_of(obj: Obj) -> int:
    return _annotation_int(obj, REVISION) or 0


def _created(obj: Obj) -> float:
    return parse_time(meta(obj).get("creationTimestamp")) or 0.0


# -- hashing and template comparison -------------------------------------------------------------


def safe_encode(text: str) -> str:
    """upstream rand.SafeEncodeString: each byte mapped into a vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _canonical(obj: Any) -> Any:
    """Drop empty values (Go's nil and empty are semantically equal), recursively."""
    if isinstance(obj, dict):
        out = {k: _canonical(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "")}
    if isinstance(obj, list):
        return [_canonical(v) for v in obj]
    return obj


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash: fnv32a over the canonical JSON of the template (plus the collision
    count, little endian), printed in decimal and safe-encoded, as upstream does with its own
    printer. Stable across processes and releases of this code."""
    data = orjson.dumps(_canonical(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += int(collision_count).to_bytes(4, "little", signed=False)
    return safe_encode(str(fnv32a(data)))


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _canonical(t)  # type: ignore[no-any-return]


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Templates equal apart from the pod-template-hash label (and empty vs absent fields)."""
    return _without_hash(a) == _without_hash(b)


# -- maxSurge / maxUnavailable -------------------------------------------------------------------


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An int-or-percent against ``total`` (upstream GetScaledValueFromIntOrPercent)."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def is_rolling(d: Obj) -> bool:
    return ((_spec(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable down; both 0 would block: unavailable 1."""
    surge = scaled_value(max_surge if max_surge is not None else "25%", desired, True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else "25%", desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: Obj) -> Obj:
    return ((_spec(d).get("strategy") or {}).get("rollingUpdate")) or {}


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    ru = _rolling(d)
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas_of(d))[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    ru = _rolling(d)
    unavailable = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas_of(d))[1]
    return min(unavailable, replicas_of(d))


# -- sets of ReplicaSets --------------------------------------------------------------------------


def spec_sum(rss: Iterable[Obj | None]) -> int:
    return sum(replicas_of(rs) for rs in rss if rs is not None)


def status_sum(rss: Iterable[Obj | None], key: str) -> int:
    return sum(int(_status(rs).get(key) or 0) for rs in rss if rs is not None)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    return sorted(rss, key=lambda rs: (_created(rs), meta(rs).get("name", "")))


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the deployment's (upstream FindNewReplicaSet)."""
    template = _spec(d).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash(_spec(rs).get("template") or {}, template):
            return rs
    return None


def find_old_rss(d: Obj, rss: list[Obj], new_rs: Obj | None) -> list[Obj]:
    uid = meta(new_rs).get("uid") if new_rs is not None else None
    return [rs for rs in rss if meta(rs).get("uid") != uid]


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only ReplicaSet with replicas, or (none has) the new or the newest one; None when
    several have replicas (a rollout is in progress)."""
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=lambda rs: (_created(rs), meta(rs).get("name", "")), reverse=True)
    alive = active([*olds, new_rs])
    if not alive:
        return new_rs if new_rs is not None else olds[0]
    if len(alive) == 1:
        return alive[0]
    return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = _annotation_int(rs, DESIRED_REPLICAS)
    n = replicas_of(d)
    return desired == n and replicas_of(rs) == n and int(_status(rs).get("availableReplicas") or 0) == n


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    if replicas_of(d) == 0:
        return -replicas_of(rs)
    deployment_replicas = replicas_of(d) + max_surge(d)
    annotated = _annotation_int(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = int(_status(d).get("replicas") or 0)
    if annotated == 0:
        return 0  # nothing to scale against; upstream would divide by zero (never reached there)
    size = replicas_of(rs) * deployment_replicas / annotated
    # Go's math.Round: halves away from zero
    rounded = math.floor(size + 0.5) if size >= 0 else -math.floor(-size + 0.5)
    return int(rounded) - replicas_of(rs)


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, rss: list[Obj]) -> tuple[dict[str, int], str]:
    """New sizes for every active ReplicaSet when a rolling Deployment is resized mid-rollout
    (upstream ``scale``): the change is split by each ReplicaSet's share of the previous size
    (its max-replicas annotation), leftovers go to the largest. Returns (name → size, "up"/"down"/"")."""
    alive = active(rss)
    allowed = replicas_of(d) + max_surge(d) if replicas_of(d) > 0 else 0
    to_add = allowed - spec_sum(alive)
    op = ""
    if to_add > 0:  # largest first; newer first among equals
        alive.sort(key=lambda rs: (-replicas_of(rs), -_created(rs), meta(rs).get("name", "")))
        op = "up"
    elif to_add < 0:  # largest first; older first among equals
        alive.sort(key=lambda rs: (-replicas_of(rs), _created(rs), meta(rs).get("name", "")))
        op = "down"
    sizes: dict[str, int] = {}
    added = 0
    for rs in alive:
        name = meta(rs)["name"]
        if to_add != 0:
            p = proportion(rs, d, to_add, added)
            sizes[name] = replicas_of(rs) + p
            added += p
        else:
            sizes[name] = replicas_of(rs)
    if alive and to_add != 0:
        first = meta(alive[0])["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes, op


def new_rs_new_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> int:
    """How big the new ReplicaSet may be now (upstream NewRSNewReplicas)."""
    n = replicas_of(d)
    if not is_rolling(d):
        return n
    current_new = replicas_of(new_rs) if new_rs is not None else 0
    total = spec_sum(all_rss)
    max_total = n + max_surge(d)
    if total >= max_total:
        return current_new
    return current_new + min(max_total - total, n - current_new)


def old_scale_down_budget(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> int:
    """How many old replicas may go now (upstream reconcileOldReplicaSets' maxScaledDown)."""
    min_available = replicas_of(d) - max_unavailable(d)
    new_unavailable = (replicas_of(new_rs) - int(_status(new_rs).get("availableReplicas") or 0)) if new_rs else 0
    return spec_sum(all_rss) - min_available - new_unavailable


# -- status and conditions -----------------------------------------------------------------------


def get_condition(status: Obj, typ: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == typ), None)


def new_condition(typ: str, status: str, reason: str, message: str, now: float | None = None) -> Obj:
    stamp = format_time(now)
    return {
        "type": typ,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream SetDeploymentCondition: same status and reason → unchanged; same status →
    keep the transition time."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, typ: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != typ]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, now: float | None = None) -> Obj:
    """Replica counts from the ReplicaSets' statuses and the Available condition."""
    available = status_sum(all_rss, "availableReplicas")
    unavailable = max(0, spec_sum(all_rss) - available)
    old = _status(d)
    status: Obj = {
        "observedGeneration": int(meta(d).get("generation") or 0),
        "replicas": status_sum(all_rss, "replicas"),
        "updatedReplicas": status_sum([new_rs], "replicas"),
        "readyReplicas": status_sum(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= replicas_of(d) - max_unavailable(d):
        set_condition(
            status, new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
        )
    else:
        set_condition(
            status,
            new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", now),
        )
    return status


def has_progress_deadline(d: Obj) -> bool:
    pds = _spec(d).get("progressDeadlineSeconds")
    return pds is not None and int(pds) != MAX_INT32


def deployment_complete(d: Obj, status: Obj) -> bool:
    n = replicas_of(d)
    return (
        int(status.get("updatedReplicas") or 0) == n
        and int(status.get("replicas") or 0) == n
        and int(status.get("availableReplicas") or 0) == n
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 0)
    )


def deployment_progressing(d: Obj, status: Obj) -> bool:
    old = _status(d)

    def g(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(status, "replicas") - g(status, "updatedReplicas")
    return (
        g(status, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(status, "readyReplicas") > g(old, "readyReplicas")
        or g(status, "availableReplicas") > g(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Obj, now: float | None = None) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + int(_spec(d).get("progressDeadlineSeconds") or 0) < (time.time() if now is None else now)


def rollout_status(d: Obj, all_rss: list[Obj | None], new_rs: Obj | None, now: float | None = None) -> Obj:
    """The status ``syncRolloutStatus`` writes: counts plus the Progressing and ReplicaFailure
    conditions."""
    status = calculate_status(all_rss, new_rs, d, now)
    name = meta(d).get("name", "")
    rs_name = meta(new_rs).get("name") if new_rs is not None else None
    if not has_progress_deadline(d):
        remove_condition(status, PROGRESSING)
    current = get_condition(_status(d), PROGRESSING)
    complete = (
        status["replicas"] == status["updatedReplicas"]
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    if has_progress_deadline(d) and not complete:
        if deployment_complete(d, status):
            msg = (
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if rs_name
                else f'Deployment "{name}" has successfully progressed.'
            )
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now))
        elif deployment_progressing(d, status):
            msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name else f'Deployment "{name}" is progressing.'
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, msg, now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            status["conditions"] = [*(status.get("conditions") or []), cond]
        elif deployment_timed_out(d, status, now):
            msg = (
                f'ReplicaSet "{rs_name}" has timed out progressing.'
                if rs_name
                else f'Deployment "{name}" has timed out progressing.'
            )
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT, msg, now))
    failure = _replica_failure(all_rss, new_rs)
    if failure is not None:
        set_condition(status, failure)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def _replica_failure(all_rss: list[Obj | None], new_rs: Obj | None) -> Obj | None:
    """A ReplicaFailure of the new ReplicaSet (else of any) as a deployment condition."""
    ordered = ([new_rs] if new_rs is not None else []) + [rs for rs in all_rss if rs is not None and rs is not new_rs]
    for rs in ordered:
        for c in _status(rs).get("conditions") or []:
            if c.get("type") == REPLICA_FAILURE:
                stamp = c.get("lastTransitionTime")
                return {
                    "type": REPLICA_FAILURE,
                    "status": c.get("status", "True"),
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": c.get("reason", ""),
                    "message": c.get("message", ""),
                }
    return None


def requeue_after_for_deadline(d: Obj, status: Obj, now: float | None = None) -> float | None:
    """When to look again so a stuck rollout is reported as timed out (None: no need)."""
    cond = get_condition(status, PROGRESSING)
    if not has_progress_deadline(d) or cond is None:
        return None
    if deployment_complete(d, status) or cond.get("reason") == TIMED_OUT:
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    after = since + int(_spec(d).get("progressDeadlineSeconds") or 0) - (time.time() if now is None else now)
    return max(0.0, after) + 1.0


def _normalized(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if v not in (0, None, [], {})}


# -- annotations ------------------------------------------------------------------------------------


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the deployment's annotations onto ``rs`` (in place) and record the revision;
    ``revision-history`` keeps the revisions a reused ReplicaSet had before. True if changed."""
    md = rs.setdefault("metadata", {})
    ann = md.setdefault("annotations", {})
    before = dict(ann)
    for k, v in (meta(d).get("annotations") or {}).items():
        if k not in SKIP_COPY:
            ann[k] = v
    old_rev = ann.get(REVISION, "")
    try:
        old_num = int(old_rev) if old_rev else 0
    except ValueError:
        old_num = 0
    if old_num < new_revision:
        ann[REVISION] = str(new_revision)
        if old_rev:
            history = ann.get(REVISION_HISTORY, "")
            ann[REVISION_HISTORY] = f"{history},{old_rev}" if history else old_rev
    if not exists:
        set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d))
    return ann != before


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    want = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(max_replicas)}
    changed = any(ann.get(k) != v for k, v in want.items())
    ann.update(want)
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = meta(rs).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def rss_to_clean(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """Old ReplicaSets beyond ``revisionHistoryLimit`` that are empty and settled, oldest revision first."""
    limit = _spec(d).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not meta(rs).get("deletionTimestamp")]
    diff = len(alive) - int(limit)
    if diff <= 0:
        return []
    alive.sort(key=lambda rs: (revision_of(rs), _created(rs), meta(rs).get("name", "")))
    out = []
    for rs in alive[:diff]:
        st = _status(rs)
        if int(st.get("replicas") or 0) != 0 or replicas_of(rs) != 0:
            continue
        if int(meta(rs).get("generation") or 0) > int(st.get("observedGeneration") or 0):
            continue
        out.append(rs)
    return out


# -- the controller ------------------------------------------------------------------------------


class DeploymentController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.informers = ctx.informers
        self.d_informer = ctx.informers.informer_for(DEPLOYMENTS)
        self.rs_informer = ctx.informers.informer_for(REPLICASETS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        self.recorder = ctx.recorder(COMPONENT)
        self.queue = RateLimitingQueue(name="deployment")
        self.controller = Controller("deployment", self.sync, self.queue, ctx.options.concurrent_deployment_syncs)
        self.d_informer.add_event_handler(
            on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new), on_delete=self._on_delete
        )
        self.rs_informer.add_event_handler(on_add=self._add_rs, on_update=self._update_rs, on_delete=self._delete_rs)
        self.pod_informer.add_event_handler(on_delete=self._delete_pod)

    async def run(self) -> None:
        await self.informers.start()
        await self.controller.run([self.d_informer, self.rs_informer, self.pod_informer])

    # -- handlers ---------------------------------------------------------------------------------

    def _enqueue(self, d: Obj) -> None:
        self.queue.add(meta_namespace_key(d))

    def _on_delete(self, obj: Any) -> None:
        d = object_of(obj)
        if d is not None:
            self._enqueue(d)

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != KIND:
            return None
        d = self.d_informer.indexer.get(f"{namespace}/{ref.get('name', '')}")
        if d is None or meta(d).get("uid") != ref.get("uid"):
            return None
        return d

    def _matching_deployments(self, rs: Obj) -> list[Obj]:
        labels = meta(rs).get("labels") or {}
        out = []
        for d in self.d_informer.indexer.by_index(NAMESPACE_INDEX, meta(rs).get("namespace", "")):
            sel = _spec(d).get("selector") or {}
            if (sel.get("matchLabels") or sel.get("matchExpressions")) and selector_matches(sel, labels):
                out.append(d)
        return out

    def _add_rs(self, rs: Obj) -> None:
        ns = meta(rs).get("namespace", "")
        ref = controller_ref(rs)
        if ref is not None:
            d = self._resolve(ns, ref)
            if d is not None:
                self._enqueue(d)
            return
        for d in self._matching_deployments(rs):
            self._enqueue(d)

    def _update_rs(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        ns = meta(new).get("namespace", "")
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        if new_ref != old_ref and old_ref is not None:
            d = self._resolve(ns, old_ref)
            if d is not None:
                self._enqueue(d)
        if new_ref is not None:
            d = self._resolve(ns, new_ref)
            if d is not None:
                self._enqueue(d)
            return
        if meta(old).get("labels") != meta(new).get("labels") or new_ref != old_ref:
            for d in self._matching_deployments(new):
                self._enqueue(d)

    def _delete_rs(self, obj: Any) -> None:
        rs = object_of(obj)
        if rs is not None:
            d = self._resolve(meta(rs).get("namespace", ""), controller_ref(rs))
            if d is not None:
                self._enqueue(d)

    def _delete_pod(self, obj: Any) -> None:
        # Recreate waits for old pods to be gone before it scales the new ReplicaSet up
        pod = object_of(obj)
        if pod is None:
            return
        ns = meta(pod).get("namespace", "")
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_informer.indexer.get(f"{ns}/{ref.get('name', '')}")
        if rs is None:
            return
        d = self._resolve(ns, controller_ref(rs))
        if d is not None and not is_rolling(d):
            self._enqueue(d)

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, key: str) -> Requeue | None:
        d = self.d_informer.indexer.get(key)
        if d is None:
            return None
        d = copy.deepcopy(d)  # the cache's objects are shared: work on our own copy
        sel = _spec(d).get("selector") or {}
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            self.recorder.event(
                d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required."
            )
            if int(_status(d).get("observedGeneration") or 0) < int(meta(d).get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = meta(d).get("generation")
                await self.client.update(DEPLOYMENTS, d, subresource="status")
            return None
        rss = await self._claim_replicasets(d)
        if meta(d).get("deletionTimestamp"):
            return await self._sync_status_only(d, rss)
        d = await self._check_paused_conditions(d)
        if _spec(d).get("paused") or self._is_scaling_event(d, rss):
            return await self._sync_scale(d, rss)
        if is_rolling(d):
            return await self._rollout_rolling(d, rss)
        return await self._rollout_recreate(d, rss)

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        ns = meta(d).get("namespace", "")
        sel = _spec(d).get("selector") or {}
        candidates = self.rs_informer.indexer.by_index(NAMESPACE_INDEX, ns)
        ref = owner_reference(d, API_VERSION, KIND)
        owned = await claim(
            self.client, REPLICASETS, d, ref, candidates, lambda rs: selector_matches(sel, meta(rs).get("labels") or {})
        )
        return [copy.deepcopy(rs) for rs in owned]

    def _split(self, d: Obj, rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        new_rs = find_new_rs(d, rss)
        return new_rs, find_old_rss(d, rss, new_rs)

    def _is_scaling_event(self, d: Obj, rss: list[Obj]) -> bool:
        new_rs, old_rss = self._split(d, rss)
        for rs in active([*old_rss, new_rs]):
            desired = _annotation_int(rs, DESIRED_REPLICAS)
            if desired is not None and desired != replicas_of(d):
                return True
        return False

    async def _check_paused_conditions(self, d: Obj) -> Obj:
        if not has_progress_deadline(d):
            return d
        cond = get_condition(_status(d), PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return d  # a timed out rollout stays reported as such
        paused = bool(_spec(d).get("paused"))
        reason = cond.get("reason") if cond is not None else None
        if paused and reason != PAUSED:
            new = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused")
        elif not paused and reason == PAUSED:
            new = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed")
        else:
            return d
        status = d.setdefault("status", {})
        set_condition(status, new)
        return await self.client.update(DEPLOYMENTS, d, subresource="status")

    # -- finding / creating the new ReplicaSet -------------------------------------------------------

    async def _get_all(self, d: Obj, rss: list[Obj], create: bool) -> tuple[Obj, Obj | None, list[Obj]]:
        """(deployment, new ReplicaSet or None, old ReplicaSets), syncing revision annotations;
        creates the new ReplicaSet when ``create``."""
        new_rs, old_rss = self._split(d, rss)
        max_old = max((revision_of(rs) for rs in old_rss), default=0)
        new_revision = max_old + 1
        if new_rs is not None:
            rs_copy = copy.deepcopy(new_rs)
            changed = set_new_rs_annotations(d, rs_copy, new_revision, True)
            min_ready = _spec(d).get("minReadySeconds") or 0
            if (_spec(rs_copy).get("minReadySeconds") or 0) != min_ready:
                rs_copy["spec"]["minReadySeconds"] = min_ready
                changed = True
            if changed:
                new_rs = await self.client.update(REPLICASETS, rs_copy)
            d = await self._set_deployment_revision(d, (meta(new_rs).get("annotations") or {}).get(REVISION, ""))
            if has_progress_deadline(d) and get_condition(_status(d), PROGRESSING) is None:
                msg = f'Found new replica set "{meta(new_rs)["name"]}"'
                set_condition(d.setdefault("status", {}), new_condition(PROGRESSING, "True", FOUND_NEW_RS, msg))
                d = await self.client.update(DEPLOYMENTS, d, subresource="status")
            return d, new_rs, old_rss
        if not create:
            return d, None, old_rss
        return await self._create_new_rs(d, old_rss, new_revision)

    async def _set_deployment_revision(self, d: Obj, revision: str) -> Obj:
        ann = meta(d).get("annotations") or {}
        if not revision or ann.get(REVISION) == revision:
            return d
        d.setdefault("metadata", {}).setdefault("annotations", {})[REVISION] = revision
        # annotations are metadata: a main-resource write (no spec change, so no new generation)
        updated = await self.client.update(DEPLOYMENTS, d)
        return updated

    async def _create_new_rs(self, d: Obj, old_rss: list[Obj], new_revision: int) -> tuple[Obj, Obj | None, list[Obj]]:
        template = copy.deepcopy(_spec(d).get("template") or {})
        collision = _status(d).get("collisionCount")
        pod_hash = compute_hash(template, collision)
        tmeta = template.setdefault("metadata", {})
        tmeta.setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(_spec(d).get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        name = f"{meta(d)['name']}-{pod_hash}"
        rs: Obj = {
            "apiVersion": API_VERSION,
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta(d).get("namespace"),
                "labels": dict(tmeta["labels"]),
                "ownerReferences": [owner_reference(d, API_VERSION, KIND)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": _spec(d).get("minReadySeconds") or 0,
                "selector": selector,
                "template": template,
            },
        }
        all_rss: list[Obj | None] = [*old_rss, rs]
        rs["spec"]["replicas"] = new_rs_new_replicas(d, all_rss, rs)
        set_new_rs_annotations(d, rs, new_revision, False)
        created_now = False
        try:
            created = await self.client.create(REPLICASETS, rs)
            created_now = True
        except StatusError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                existing = await self.client.get(REPLICASETS, name, meta(d).get("namespace"))
                ref = controller_ref(existing)
                same_owner = ref is not None and ref.get("uid") == meta(d).get("uid")
                if same_owner and equal_ignore_hash(
                    _spec(existing).get("template") or {}, _spec(d).get("template") or {}
                ):
                    created = existing  # our earlier create whose answer we missed
                else:
                    # a hash collision: bump collisionCount so the next hash differs
                    st = d.setdefault("status", {})
                    st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
                    log.info(
                        "deployment %s: hash collision on %s, collisionCount now %d",
                        name,
                        pod_hash,
                        st["collisionCount"],
                    )
                    await self.client.update(DEPLOYMENTS, d, subresource="status")
                    raise
            else:
                if has_progress_deadline(d):
                    msg = f'Failed to create new replica set "{name}": {err}'
                    set_condition(
                        d.setdefault("status", {}), new_condition(PROGRESSING, "False", FAILED_RS_CREATE, msg)
                    )
                    self.recorder.event(d, "Warning", FAILED_RS_CREATE, msg)
                    await self.client.update(DEPLOYMENTS, d, subresource="status")
                raise
        if created_now and replicas_of(created) > 0:
            self.recorder.event(
                d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} to {replicas_of(created)}"
            )
        d = await self._set_deployment_revision(d, str(new_revision))
        if created_now and has_progress_deadline(d):
            msg = f'Created new replica set "{name}"'
            set_condition(d.setdefault("status", {}), new_condition(PROGRESSING, "True", NEW_RS_CREATED, msg))
            d = await self.client.update(DEPLOYMENTS, d, subresource="status")
        return d, created, old_rss

    # -- scaling ReplicaSets ------------------------------------------------------------------------

    async def _scale_rs(self, rs: Obj, size: int, d: Obj, operation: str = "") -> Obj:
        """Set a ReplicaSet's size (and the desired/max annotations); records ScalingReplicaSet."""
        size_changed = replicas_of(rs) != size
        surge_total = replicas_of(d) + max_surge(d)
        if not size_changed and not replicas_annotations_need_update(rs, replicas_of(d), surge_total):
            return rs
        op = operation or ("up" if replicas_of(rs) < size else "down")
        new = copy.deepcopy(rs)
        new.setdefault("spec", {})["replicas"] = size
        set_replicas_annotations(new, replicas_of(d), surge_total)
        updated = await self.client.update(REPLICASETS, new)
        if size_changed:
            self.recorder.event(
                d, "Normal", "ScalingReplicaSet", f"Scaled {op} replica set {meta(rs)['name']} to {size}"
            )
        return updated

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """Upstream ``scale``: resize for a changed spec.replicas; returns the updated sets."""
        only = find_active_or_latest(new_rs, old_rss)
        if only is not None:
            if replicas_of(only) != replicas_of(d):
                updated = await self._scale_rs(only, replicas_of(d), d)
                return self._replace(new_rs, old_rss, updated)
            return new_rs, old_rss
        if is_saturated(d, new_rs):
            for rs in active(old_rss):
                updated = await self._scale_rs(rs, 0, d)
                new_rs, old_rss = self._replace(new_rs, old_rss, updated)
            return new_rs, old_rss
        if is_rolling(d):
            alive = active([*old_rss, new_rs])
            sizes, op = proportional_sizes(d, alive)
            for rs in alive:
                updated = await self._scale_rs(rs, sizes[meta(rs)["name"]], d, op)
                new_rs, old_rss = self._replace(new_rs, old_rss, updated)
        return new_rs, old_rss

    @staticmethod
    def _replace(new_rs: Obj | None, old_rss: list[Obj], updated: Obj) -> tuple[Obj | None, list[Obj]]:
        uid = meta(updated).get("uid")
        if new_rs is not None and meta(new_rs).get("uid") == uid:
            return updated, old_rss
        return new_rs, [updated if meta(rs).get("uid") == uid else rs for rs in old_rss]

    # -- strategies ---------------------------------------------------------------------------------

    async def _sync_scale(self, d: Obj, rss: list[Obj]) -> Requeue | None:
        """Paused deployments and scaling events: resize only, no rollout."""
        d, new_rs, old_rss = await self._get_all(d, rss, create=False)
        new_rs, old_rss = await self._scale(d, new_rs, old_rss)
        if _spec(d).get("paused"):
            await self._cleanup(d, old_rss)
        await self._write_status(d, calculate_status([*old_rss, new_rs], new_rs, d))
        return None

    async def _sync_status_only(self, d: Obj, rss: list[Obj]) -> Requeue | None:
        d, new_rs, old_rss = await self._get_all(d, rss, create=False)
        await self._write_status(d, calculate_status([*old_rss, new_rs], new_rs, d))
        return None

    async def _rollout_rolling(self, d: Obj, rss: list[Obj]) -> Requeue | None:
        d, new_rs, old_rss = await self._get_all(d, rss, create=True)
        assert new_rs is not None
        all_rss: list[Obj | None] = [*old_rss, new_rs]
        # scale the new ReplicaSet up
        n = replicas_of(d)
        if replicas_of(new_rs) != n:
            target = n if replicas_of(new_rs) > n else new_rs_new_replicas(d, all_rss, new_rs)
            if target != replicas_of(new_rs):
                new_rs = await self._scale_rs(new_rs, target, d)
                return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)
        # scale old ones down
        scaled, old_rss = await self._reconcile_old(d, new_rs, old_rss)
        if scaled:
            return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)
        if deployment_complete(d, _status(d)):
            await self._cleanup(d, old_rss)
        return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)

    async def _reconcile_old(self, d: Obj, new_rs: Obj, old_rss: list[Obj]) -> tuple[bool, list[Obj]]:
        if spec_sum(old_rss) == 0:
            return False, old_rss
        budget = old_scale_down_budget(d, [*old_rss, new_rs], new_rs)
        if budget <= 0:
            return False, old_rss
        total = 0
        # first the unhealthy replicas of old sets: removing them costs no availability
        olds = by_creation(old_rss)
        for i, rs in enumerate(olds):
            if total >= budget:
                break
            unhealthy = replicas_of(rs) - int(_status(rs).get("availableReplicas") or 0)
            if replicas_of(rs) == 0 or unhealthy <= 0:
                continue
            count = min(budget - total, unhealthy)
            olds[i] = await self._scale_rs(rs, replicas_of(rs) - count, d)
            total += count
        # then available ones, down to minAvailable. A set's status lags its spec (the ReplicaSet
        # controller has yet to delete the pods of an earlier scale-down), so count no more
        # available pods than a set will keep, and never go past this sync's budget.
        min_available = replicas_of(d) - max_unavailable(d)
        available = sum(min(int(_status(rs).get("availableReplicas") or 0), replicas_of(rs)) for rs in [*olds, new_rs])
        if available > min_available and total < budget:
            to_remove = min(available - min_available, budget - total)
            removed = 0
            for i, rs in enumerate(olds):
                if removed >= to_remove:
                    break
                if replicas_of(rs) == 0:
                    continue
                count = min(replicas_of(rs), to_remove - removed)
                olds[i] = await self._scale_rs(rs, replicas_of(rs) - count, d)
                removed += count
            total += removed
        return total > 0, olds

    async def _rollout_recreate(self, d: Obj, rss: list[Obj]) -> Requeue | None:
        d, new_rs, old_rss = await self._get_all(d, rss, create=False)
        scaled = False
        for rs in active(old_rss):
            updated = await self._scale_rs(rs, 0, d)
            new_rs, old_rss = self._replace(new_rs, old_rss, updated)
            scaled = True
        if scaled or self._old_pods_running(new_rs, old_rss):
            return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)
        if new_rs is None:
            d, new_rs, old_rss = await self._get_all(d, rss, create=True)
        assert new_rs is not None
        if replicas_of(new_rs) != replicas_of(d):
            new_rs = await self._scale_rs(new_rs, replicas_of(d), d)
        if deployment_complete(d, _status(d)):
            await self._cleanup(d, old_rss)
        return await self._sync_rollout_status(d, [*old_rss, new_rs], new_rs)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        if status_sum(old_rss, "replicas") > 0:
            return True
        old_uids = {meta(rs).get("uid") for rs in old_rss}
        if new_rs is not None:
            old_uids.discard(meta(new_rs).get("uid"))
        ns = meta(new_rs or (old_rss[0] if old_rss else {})).get("namespace", "")
        for pod in self.pod_informer.indexer.by_index(NAMESPACE_INDEX, ns):
            if (controller_ref(pod) or {}).get("uid") in old_uids:
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        for rs in rss_to_clean(d, old_rss):
            log.info("deployment %s: deleting old replica set %s", meta(d).get("name"), meta(rs).get("name"))
            try:
                await self.client.delete(REPLICASETS, meta(rs)["name"], meta(rs).get("namespace"))
            except StatusError as err:
                if err.code != 404:
                    raise

    # -- status -------------------------------------------------------------------------------------

    async def _sync_rollout_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> Requeue | None:
        status = rollout_status(d, all_rss, new_rs)
        if not await self._write_status(d, status):
            after = requeue_after_for_deadline(d, status)
            if after is not None:
                return Requeue(after=after)
        return None

    async def _write_status(self, d: Obj, status: Obj) -> bool:
        if _normalized(_status(d)) == _normalized(status):
            return False
        new = {**d, "status": status}
        await self.client.update(DEPLOYMENTS, new, subresource="status")
        return True


@register("deployment")
async def start(ctx: ControllerContext) -> None:
    await DeploymentController(ctx).run()
