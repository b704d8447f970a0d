"""Leader election on ``coordination.k8s.io/v1`` Leases (client-go ``tools/leaderelection`` semantics).

How it stays safe:

- A candidate never compares the lease's timestamps with its own clock (clocks of different hosts
  disagree). It notes, on its LOCAL monotonic clock, when it last saw the lease record change; the
  lease counts as expired once it has not changed for ``leaseDurationSeconds`` of local time.
- Every write is an update carrying the resourceVersion that was read (a 409 means someone else
  wrote first: the next attempt re-reads), so two candidates can never both succeed.
- The leader renews every ``retry_period``. If no renewal has succeeded for ``renew_deadline``
  (measured from the start of the last successful request), it stops leading at once: the leader
  task is cancelled and ``on_stopped_leading`` runs. Because ``renew_deadline < lease_duration``
  it has stopped before any standby can consider the lease expired.

Timing (the project's defaults, chosen for takeover within 5 s of a SIGKILL):

- A standby sees the last renewal at most ``retry_period`` after it was written (it polls), and
  tries again exactly when the lease expires (it sleeps until then rather than a whole period), so
  after the leader dies the standby holds the lease within ``lease_duration + retry_period`` plus
  one API round trip.
- Defaults ``lease_duration=4 s``, ``renew_deadline=3 s``, ``retry_period=0.5 s``: worst case
  4.5 s + round trip, typically ~4.25 s. A leader gets 6 renewal tries inside its deadline, and
  stops ≥ 1 s before anyone could take over. Upstream's 15/10/2 s allow up to ~17 s.
- ``release_on_cancel``: a leader that is stopped gracefully writes an empty holderIdentity and
  ``leaseDurationSeconds: 1`` so a standby takes over at its next poll (≤ ``retry_period``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kubeha.api.errors import StatusError
from kubeha.client.resources import LEASES
from kubeha.machinery.process import parse_bool, parse_duration

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_LEASE_DURATION = 4.0
DEFAULT_RENEW_DEADLINE = 3.0
DEFAULT_RETRY_PERIOD = 0.5
DEFAULT_NAMESPACE = "kube-system"
# Standbys wait between (1 - JITTER) and 1 times retry_period, so candidates started together
# spread out without ever polling less often than retry_period (that would break the bound above).
JITTER = 0.2


class LeaseClient(Protocol):
    """The part of ``kubeha.client.rest.ApiClient`` leader election uses."""

    async def get(self, res: Any, name: str, namespace: str | None = None) -> Obj: ...

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj: ...

    async def update(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj: ...


def format_microtime(dt: datetime) -> str:
    """RFC 3339 with exactly 6 fractional digits, UTC (metav1.MicroTime's JSON form)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: Obj | None) -> tuple[Any, ...] | None:
    """The fields of a lease that make up the election record (what counts as 'changed')."""
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    return (
        spec.get("holderIdentity"),
        spec.get("leaseDurationSeconds"),
        spec.get("acquireTime"),
        spec.get("renewTime"),
        spec.get("leaseTransitions"),
    )


class LeaderElector:
    def __init__(
        self,
        client: LeaseClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        renew_deadline: float = DEFAULT_RENEW_DEADLINE,
        retry_period: float = DEFAULT_RETRY_PERIOD,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not identity:
            raise ValueError("leader election identity must not be empty")
        if lease_duration <= renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if renew_deadline <= retry_period or retry_period <= 0:
            raise ValueError("renew_deadline must be greater than retry_period, and retry_period positive")
        if lease_duration < 1:
            raise ValueError("lease_duration must be at least 1 second (leaseDurationSeconds is whole seconds)")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._lease: Obj | None = None  # last lease read or written
        self._observed_record: tuple[Any, ...] | None = None
        self._observed_time = 0.0  # local monotonic time the record last changed
        self._reported_leader: str | None = None
        self._leading = False
        self._leader_task: asyncio.Task[None] | None = None

    # -- public state ------------------------------------------------------------------------

    def get_leader(self) -> str:
        """The holder identity last observed ("" when none)."""
        if self._lease is None:
            return ""
        return str((self._lease.get("spec") or {}).get("holderIdentity") or "")

    def is_leader(self) -> bool:
        return self._leading and self.get_leader() == self.identity

    # -- one attempt ---------------------------------------------------------------------------

    def _lease_seconds(self) -> int:
        return max(1, round(self.lease_duration))

    def _observe(self, lease: Obj) -> None:
        self._lease = lease
        record = _record(lease)
        if record != self._observed_record:
            self._observed_record = record
            self._observed_time = self._clock()
        holder = self.get_leader()
        if holder != self._reported_leader:
            self._reported_leader = holder
            if holder:
                log.info("lease %s/%s: new leader %s", self.namespace, self.name, holder)
            if self.on_new_leader is not None and holder:
                try:
                    self.on_new_leader(holder)
                except Exception:
                    log.exception("on_new_leader callback failed")

    def expires_in(self) -> float:
        """Local seconds until the observed lease of another holder expires (≤ 0: expired/free)."""
        if self._lease is None:
            return 0.0
        spec = self._lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return 0.0
        duration = spec.get("leaseDurationSeconds") or 0
        return self._observed_time + float(duration) - self._clock()

    def _desired_spec(self, current: Obj | None) -> Obj:
        now = format_microtime(self._wall())
        spec = (current or {}).get("spec") or {}
        ours = spec.get("holderIdentity") == self.identity
        transitions = int(spec.get("leaseTransitions") or 0)
        if current is not None and not ours:
            transitions += 1  # upstream counts every change of holder, including from "" after a release
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._lease_seconds(),
            "acquireTime": spec.get("acquireTime") if ours and spec.get("acquireTime") else now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; True when we hold it afterwards."""
        # Fast path: a leader renews from its own last copy; a conflict falls back to a fresh read.
        if self._leading and self._lease is not None and self.get_leader() == self.identity:
            if await self._update(self._lease):
                return True
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except StatusError as err:
            if err.code != 404:
                log.warning("lease %s/%s: get failed: %s", self.namespace, self.name, err)
                return False
            return await self._create()
        self._observe(lease)
        if self.get_leader() not in ("", self.identity) and self.expires_in() > 0:
            return False  # held by someone else and not expired on our clock
        return await self._update(lease)

    async def _create(self) -> bool:
        lease: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._desired_spec(None),
        }
        try:
            created = await self.client.create(LEASES, lease, self.namespace)
        except StatusError as err:
            log.info("lease %s/%s: create failed: %s", self.namespace, self.name, err)
            return False
        self._observe(created)
        return True

    async def _update(self, lease: Obj) -> bool:
        new = copy.deepcopy(lease)
        new["spec"] = {**(lease.get("spec") or {}), **self._desired_spec(lease)}
        try:
            updated = await self.client.update(LEASES, new, self.namespace)
        except StatusError as err:
            # 409: someone wrote since our read; the next attempt reads again.
            log.info("lease %s/%s: update failed: %s", self.namespace, self.name, err)
            return False
        self._observe(updated)
        return True

    async def release(self) -> bool:
        """Give the lease up (holder "" and duration 1 s) if we hold it; True when written."""
        if self._lease is None or self.get_leader() != self.identity:
            return False
        new = copy.deepcopy(self._lease)
        now = format_microtime(self._wall())
        spec = new.setdefault("spec", {})
        spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now})
        try:
            self._observe(await self.client.update(LEASES, new, self.namespace))
        except StatusError as err:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, err)
            return False
        log.info("lease %s/%s: released by %s", self.namespace, self.name, self.identity)
        return True

    # -- loops -----------------------------------------------------------------------------------

    async def _attempt(self, timeout: float) -> bool:  # noqa: ASYNC109 - the per-attempt budget
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout=max(timeout, 0.001))
        except TimeoutError:
            log.warning("lease %s/%s: attempt timed out after %.2fs", self.namespace, self.name, timeout)
            return False
        except (OSError, ConnectionError) as err:  # api-server unreachable: just another failed try
            log.warning("lease %s/%s: attempt failed: %r", self.namespace, self.name, err)
            return False

    async def _acquire(self) -> float:
        """Try until we hold the lease; returns the local time the winning request started."""
        log.info("lease %s/%s: %s trying to acquire", self.namespace, self.name, self.identity)
        while True:
            started = self._clock()
            if await self._attempt(self.renew_deadline):
                return started
            wait = self.retry_period * (1 - JITTER * random.random())
            # Wake when the holder's lease runs out on our clock, not up to a whole period later.
            until_expiry = self.expires_in()
            if 0 < until_expiry < wait:
                wait = until_expiry + 0.001
            await self._sleep(wait)

    async def _renew(self, last_ok: float) -> None:
        """Renew every retry_period; return as soon as renewal is impossible or the lease is lost."""
        assert self._leader_task is not None
        while True:
            sleep = asyncio.ensure_future(self._sleep(self.retry_period))
            try:
                done, _ = await asyncio.wait({sleep, self._leader_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleep.cancel()  # also when run() itself is cancelled: leave no stray timer task
            if self._leader_task in done:
                return
            started = self._clock()
            remaining = self.renew_deadline - (started - last_ok)
            if remaining <= 0:
                log.error("lease %s/%s: renew deadline passed", self.namespace, self.name)
                return
            if await self._attempt(remaining):
                last_ok = started
                continue
            if self.get_leader() not in ("", self.identity):
                log.error("lease %s/%s: lost to %s", self.namespace, self.name, self.get_leader())
                return
            # Keep retrying at retry_period until the deadline (checked at the top of the loop).

    async def run(self) -> None:
        """Acquire, lead, renew; return when leadership ends (lost, or the leader task ended).

        Cancelling ``run`` while leading stops the leader task and, with ``release_on_cancel``,
        releases the lease. ``on_stopped_leading`` runs whenever leading ends; upstream components
        exit the process then, since their caches and work may no longer be trusted.
        """
        last_ok = await self._acquire()
        self._leading = True
        log.info("lease %s/%s: %s became leader", self.namespace, self.name, self.identity)
        self._leader_task = asyncio.get_running_loop().create_task(
            self._lead(), name=f"leader-{self.namespace}/{self.name}"
        )
        graceful = True
        try:
            await self._renew(last_ok)
            graceful = self._leader_task.done()  # the work ended by itself, not a lost lease
        finally:
            self._leading = False
            task, self._leader_task = self._leader_task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=self.renew_deadline)
            if graceful and self.release_on_cancel:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.release(), timeout=self.renew_deadline)
            log.info("lease %s/%s: %s stopped leading", self.namespace, self.name, self.identity)
            if self.on_stopped_leading is not None:
                try:
                    self.on_stopped_leading()
                except Exception:
                    log.exception("on_stopped_leading callback failed")

    async def _lead(self) -> None:
        try:
            await self.on_started_leading()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("lease %s/%s: leader work crashed", self.namespace, self.name)


# -- flags -------------------------------------------------------------------------------------


def default_identity() -> str:
    """Upstream's form: hostname + "_" + a random UUID, unique per process."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def add_leader_election_flags(parser: argparse.ArgumentParser, default_name: str) -> None:
    """The upstream ``--leader-elect*`` flags with this project's shorter defaults."""
    g = parser.add_argument_group("leader election")
    g.add_argument(
        "--leader-elect",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="run leader election; only the leader does work (default true; --leader-elect=false to disable)",
    )
    g.add_argument(
        "--leader-elect-lease-duration",
        type=parse_duration,
        default=DEFAULT_LEASE_DURATION,
        help=f"how long a standby waits after the last observed renewal before taking over (default {DEFAULT_LEASE_DURATION:g}s)",
    )
    g.add_argument(
        "--leader-elect-renew-deadline",
        type=parse_duration,
        default=DEFAULT_RENEW_DEADLINE,
        help=f"how long the leader keeps retrying a renewal before it stops leading (default {DEFAULT_RENEW_DEADLINE:g}s)",
    )
    g.add_argument(
        "--leader-elect-retry-period",
        type=parse_duration,
        default=DEFAULT_RETRY_PERIOD,
        help=f"time between acquire and renew attempts (default {DEFAULT_RETRY_PERIOD:g}s)",
    )
    g.add_argument("--leader-elect-resource-lock", choices=["leases"], default="leases", help="lock type (leases only)")
    g.add_argument("--leader-elect-resource-namespace", default=DEFAULT_NAMESPACE, help="namespace of the Lease")
    g.add_argument("--leader-elect-resource-name", default=default_name, help="name of the Lease")


@dataclass
class LeaderElectionConfig:
    enabled: bool = True
    lease_duration: float = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD
    namespace: str = DEFAULT_NAMESPACE
    name: str = ""
    identity: str = field(default_factory=default_identity)

    @classmethod
    def from_args(cls, args: argparse.Namespace, identity: str | None = None) -> LeaderElectionConfig:
        return cls(
            enabled=bool(args.leader_elect),
            lease_duration=float(args.leader_elect_lease_duration),
            renew_deadline=float(args.leader_elect_renew_deadline),
            retry_period=float(args.leader_elect_retry_period),
            namespace=str(args.leader_elect_resource_namespace),
            name=str(args.leader_elect_resource_name),
            identity=identity or default_identity(),
        )

    def elector(
        self,
        client: LeaseClient,
        on_started_leading: Callable[[], Awaitable[None]],
        *,
        on_stopped_leading: Callable[[], None] | None = None,
        on_new_leader: Callable[[str], None] | None = None,
        release_on_cancel: bool = True,
    ) -> LeaderElector:
        return LeaderElector(
            client,
            self.namespace,
            self.name,
            self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
            on_started_leading=on_started_leading,
            on_stopped_leading=on_stopped_leading,
            on_new_leader=on_new_leader,
            release_on_cancel=release_on_cancel,
        )
