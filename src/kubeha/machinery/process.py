"""How every component process starts: its logging and its event loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Coroutine
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def parse_bool(text: str) -> bool:
    """A boolean flag value as Go's strconv.ParseBool reads it (1/t/true, 0/f/false; any case),
    plus yes/no; anything else is a usage error rather than a silent false."""
    low = text.lower()
    if low in ("1", "t", "true", "yes"):
        return True
    if low in ("0", "f", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float:
    """A Go duration ("15s", "1m30s", "500ms") or a plain number of seconds, in seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    return total


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
