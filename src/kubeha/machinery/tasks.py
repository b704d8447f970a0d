"""Long-lived background tasks that never die silently.

``guarded`` runs a coroutine function forever in the kopf style: a crash is logged with its
traceback and the function is started again after a capped exponential backoff; cancellation
stops it. ``TaskSet`` owns a component's tasks so one ``stop()`` cancels and awaits all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Delays ``initial * factor**n`` capped at ``cap``; a run longer than ``reset_after`` starts over."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.cap, self.initial * self.factor ** min(failures - 1, 64)))


async def guarded(
    name: str,
    coro_fn: Callable[[], Awaitable[object]],
    *,
    backoff: Backoff = Backoff(),
    restart_on_return: bool = False,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    logger: logging.Logger = log,
) -> None:
    """Run ``coro_fn()`` until cancelled, restarting it after crashes.

    A normal return ends the guard unless ``restart_on_return`` (for loops that must never end:
    then an early return is logged as a warning and treated like a crash).
    """
    failures = 0
    while True:
        started = clock()
        try:
            await coro_fn()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("task %s crashed", name)
        else:
            if not restart_on_return:
                logger.debug("task %s finished", name)
                return
            logger.warning("task %s returned unexpectedly; restarting", name)
        if clock() - started >= backoff.reset_after:
            failures = 0  # it ran healthily for a while: this is a fresh failure, not a crash loop
        failures += 1
        delay = backoff.delay(failures)
        logger.info("task %s restarting in %.2fs (failure %d)", name, delay, failures)
        await sleep(delay)


class TaskSet:
    """A component's background tasks: spawned by name, logged when they fail, stopped together."""

    def __init__(self, name: str = "", logger: logging.Logger = log) -> None:
        self.name = name
        self._log = logger
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start ``coro`` as a task; an exception it ends with is logged, never lost."""
        if self._stopping:
            coro.close()
            raise RuntimeError(f"task set {self.name} is stopping")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def guard(
        self, name: str, coro_fn: Callable[[], Awaitable[object]], *, backoff: Backoff = Backoff(), **kwargs: Any
    ) -> asyncio.Task[Any]:
        """Spawn ``guarded(name, coro_fn, ...)``: restarted after crashes until stopped."""
        return self.spawn(name, guarded(name, coro_fn, backoff=backoff, logger=self._log, **kwargs))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - a grace period, not a deadline
        """Cancel every task and wait for them (up to ``timeout`` seconds)."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                self._log.warning("task %s did not stop within %ss", task.get_name(), timeout)

    async def wait(self) -> None:
        """Wait until every task has ended (for example a component's main loop)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def __aenter__(self) -> TaskSet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
