"""Bounds for leader-election failover measurements.

The issue's goal is a standby taking over within 5 s of the leader's SIGKILL, with the project's
leader-election settings (lease 4 s, renew deadline 3 s, retry 500 ms: expiry alone is ~4.5 s).
Tests print every measured gap; they assert a looser bound so that a loaded 2-core CI machine
does not turn a slow-but-working handover into a failure. The goal itself is reported, not timed.
"""

FAILOVER_GOAL = 5.0  # seconds, reported beside the measured gap
FAILOVER_LIMIT = 10.0  # seconds, asserted: past this the handover is broken, not just slow
LEADER_ELECT_FLAGS = [
    "--leader-elect=true",
    "--leader-elect-lease-duration=4s",
    "--leader-elect-renew-deadline=3s",
    "--leader-elect-retry-period=500ms",
]


def report(component: str, gap: float) -> str:
    verdict = "within" if gap <= FAILOVER_GOAL else "OVER"
    return f"{component} failover gap: {gap:.2f}s ({verdict} the {FAILOVER_GOAL:.0f}s goal)"
