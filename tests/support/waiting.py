"""Polling for a condition that the cluster reaches eventually (controllers, kubelets, caches)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]],
    within: float = 20.0,
    every: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """Await ``check`` until it returns something truthy; exceptions in ``retry_on`` count as
    "not yet". Fails with the last result (or exception) after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            last = await check()
            if last:
                return last
        except retry_on as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {within}s (last: {last!r})")
        await asyncio.sleep(every)
