"""How every component process starts: its logging and its event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbosity: int, debug_from: int = 4) -> None:
    """Log to stderr; ``-v`` at or above ``debug_from`` turns on debug logging."""
    logging.basicConfig(
        level=logging.DEBUG if verbosity >= debug_from else logging.INFO, format=LOG_FORMAT, stream=sys.stderr
    )


def run(main: Coroutine[Any, Any, int], *, use_uvloop: bool = True) -> int:
    """Run a component's main coroutine to its exit code, on uvloop unless told otherwise."""
    runner: Any = asyncio.run
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
            pass
        else:
            runner = uvloop.run
    try:
        return runner(main)
    except KeyboardInterrupt:
        return 0
