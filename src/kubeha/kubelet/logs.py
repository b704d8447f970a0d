"""Container log files in the CRI format: one line per record, ``<RFC3339Nano> <stream> <P|F> <text>``.

``F`` marks the end of a line, ``P`` a partial line (a record that was split because it was too
long or the output ended without a newline). The same files serve ``kubectl logs`` with
``--timestamps``, ``--since`` and ``--tail`` without keeping anything in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_RECORD = 16 * 1024  # longer lines are split into partial records, as the CRI runtimes do
_LINE = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) (.*)$", re.S)
_FRACTION = re.compile(r"\.(\d+)")


def format_timestamp(dt: datetime) -> str:
    """RFC 3339 with nanoseconds, UTC (``2026-01-02T03:04:05.123456000Z``)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 with any number of fractional digits (Python keeps microseconds)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = _FRACTION.search(text)
    if m:
        text = text[: m.start()] + "." + (m.group(1) + "000000")[:6] + text[m.end() :]
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def format_records(stream: str, data: bytes, now: datetime) -> bytes:
    """CRI records for ``data`` (one or more lines of output); a trailing piece without a newline
    becomes a ``P`` record."""
    ts = format_timestamp(now).encode()
    tag = stream.encode()
    out = bytearray()
    lines = data.split(b"\n")
    last = lines.pop()  # text after the final newline ("" when data ended with one)
    for line in lines:
        for i in range(0, max(len(line), 1), MAX_RECORD):
            chunk = line[i : i + MAX_RECORD]
            full = i + MAX_RECORD >= len(line)
            out += ts + b" " + tag + (b" F " if full else b" P ") + chunk + b"\n"
    if last:
        out += ts + b" " + tag + b" P " + last + b"\n"
    return bytes(out)


@dataclass(frozen=True)
class Record:
    time: datetime
    stream: str
    partial: bool
    text: bytes


def parse_line(line: bytes) -> Record | None:
    """One CRI record (without its newline); None for a malformed line."""
    m = _LINE.match(line.rstrip(b"\n"))
    if not m:
        return None
    try:
        ts = parse_timestamp(m.group(1).decode())
    except ValueError:
        return None
    return Record(ts, m.group(2).decode(), m.group(3) == b"P", m.group(4))


def render(
    records: Iterable[Record], *, timestamps: bool = False, since: datetime | None = None, tail: int | None = None
) -> Iterator[bytes]:
    """Records joined back into the program's output (partials glued to their line), the way
    ``kubectl logs`` shows it: ``since`` drops older lines, ``tail`` keeps only the last lines,
    ``timestamps`` prefixes each line with its time."""
    lines: list[bytes] = []
    pending = bytearray()
    first: datetime | None = None

    def emit(rec_time: datetime, text: bytes) -> None:
        if since is not None and rec_time < since:
            return
        prefix = (format_timestamp(rec_time) + " ").encode() if timestamps else b""
        lines.append(prefix + text)

    for rec in records:
        if first is None:
            first = rec.time
        pending += rec.text
        if not rec.partial:
            emit(first, bytes(pending) + b"\n")
            pending.clear()
            first = None
    if pending and first is not None:
        emit(first, bytes(pending))
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    yield from lines


def read_records(data: bytes) -> list[Record]:
    return [r for r in (parse_line(line) for line in data.split(b"\n") if line) if r is not None]
