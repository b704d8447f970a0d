"""Container restart back-off: 10 s doubling to 5 min, forgotten after 10 min of good running
(upstream's CrashLoopBackOff timing)."""

from __future__ import annotations

import time
from collections.abc import Callable

INITIAL = 10.0
CAP = 300.0
RESET_AFTER = 600.0


class RestartBackoff:
    def __init__(
        self,
        initial: float = INITIAL,
        cap: float = CAP,
        reset_after: float = RESET_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial, self.cap, self.reset_after, self.clock = initial, cap, reset_after, clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (current delay, last restart time)

    def restarted(self, key: str, ran_for: float = 0.0) -> float:
        """Record a restart of ``key`` now; returns the window during which the next restart must
        wait (10 s, 20 s, ... 5 min). The first restart is immediate, as upstream's. ``ran_for``:
        how long the container ran before it exited: a long healthy run starts over."""
        now = self.clock()
        delay, last = self._entries.get(key, (0.0, now))
        if delay and (now - last > 2 * self.cap or ran_for >= self.reset_after):
            delay = 0.0
        delay = self.initial if delay == 0.0 else min(self.cap, delay * 2)
        self._entries[key] = (delay, now)
        return delay

    def remaining(self, key: str) -> float:
        """Seconds until ``key`` may restart (0: now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        delay, last = entry
        return max(0.0, last + delay - self.clock())

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
