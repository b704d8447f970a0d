"""Standard 5-field cron schedules (minute hour day-of-month month day-of-week), as CronJobs use.

Accepted, as upstream's parser (robfig/cron standard mode): ``*``, ``?`` (same as ``*``), lists
``a,b``, ranges ``a-b``, steps ``*/n`` and ``a-b/n`` and ``a/n`` (from a to the field's maximum),
month and weekday names (``JAN``, ``mon``), weekday 7 as Sunday, and the descriptors
``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``.
A schedule may start with ``TZ=<zone>`` or ``CRON_TZ=<zone>``; CronJob validation rejects that
(the zone belongs in ``spec.timeZone``), so :func:`parse` reports it.

As in classic cron, when both day-of-month and day-of-week are restricted, a day matches if
either does; when one of them is ``*`` only the other one counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """The schedule cannot be parsed."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # of the month, 1..31
    months: frozenset[int]  # 1..12
    weekdays: frozenset[int]  # 0 (Sunday)..6
    dom_star: bool  # day-of-month was "*" / "?"
    dow_star: bool
    time_zone: str | None = None  # from a TZ= prefix

    def day_matches(self, d: datetime) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: datetime, tz: tzinfo | None = None) -> datetime:
        """The first scheduled time strictly after ``t`` (whole minutes), in ``tz`` (else ``t``'s zone).

        Wall-clock times are matched in the zone; the result is an aware datetime when ``t`` is.
        """
        local = t.astimezone(tz) if tz is not None and t.tzinfo is not None else t
        # start at the next whole minute
        cur = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = cur.year + 5  # schedules like "0 0 30 2 *" never fire: give up after 5 years
        while cur.year <= limit:
            if cur.month not in self.months:
                year, month = (cur.year + 1, 1) if cur.month == 12 else (cur.year, cur.month + 1)
                cur = cur.replace(year=year, month=month, day=1, hour=0, minute=0)
                continue
            if not self.day_matches(cur):
                cur = _naive_add(cur, timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if cur.hour not in self.hours:
                cur = _naive_add(cur, timedelta(hours=1)).replace(minute=0)
                continue
            if cur.minute not in self.minutes:
                cur = _naive_add(cur, timedelta(minutes=1))
                continue
            return _normalize(cur)
        raise CronError("schedule never fires")

    def times_between(
        self, start: datetime, end: datetime, tz: tzinfo | None = None, limit: int = 101
    ) -> list[datetime]:
        """Scheduled times in (start, end], at most ``limit`` of them (the earliest)."""
        out: list[datetime] = []
        t = start
        while len(out) < limit:
            t = self.next_after(t, tz)
            if t > end:
                break
            out.append(t)
        return out


def _naive_add(d: datetime, delta: timedelta) -> datetime:
    # wall-clock arithmetic: keep the zone attached, ignore DST jumps while searching
    return d + delta


def _normalize(d: datetime) -> datetime:
    # A wall time that does not exist (spring forward) maps to the real instant after the gap.
    if d.tzinfo is None:
        return d
    from datetime import UTC

    return d.astimezone(UTC).astimezone(d.tzinfo)


def _value(tok: str, names: dict[str, int] | None, lo: int, hi: int, field: str) -> int:
    low = tok.lower()
    if names is not None and low in names:
        return names[low]
    if not tok.isdigit():
        raise CronError(f"failed to parse int from {tok}: invalid syntax" if not names else f"invalid {field} {tok!r}")
    v = int(tok)
    if v < lo or v > hi:
        raise CronError(
            f"end of range ({v}) above maximum ({hi}): {tok}"
            if v > hi
            else f"beginning of range ({v}) below minimum ({lo}): {tok}"
        )
    return v


def _field(expr: str, lo: int, hi: int, field: str, names: dict[str, int] | None = None) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in expr.split(","):
        if not part:
            raise CronError(f"empty element in {field} field")
        rng, _, step_s = part.partition("/")
        step = 1
        if step_s:
            if not step_s.isdigit() or int(step_s) == 0:
                raise CronError(f"invalid step {step_s!r} in {field} field")
            step = int(step_s)
        if rng in ("*", "?"):
            start, end = lo, hi
            star = star or not step_s
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start, end = _value(a, names, lo, hi, field), _value(b, names, lo, hi, field)
            if start > end:
                raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        else:
            start = _value(rng, names, lo, hi, field)
            end = hi if step_s else start
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def parse(spec: str) -> Schedule:
    """Parse a standard cron schedule (see the module doc); raises :class:`CronError`."""
    text = spec.strip()
    tz: str | None = None
    if text.startswith(("TZ=", "CRON_TZ=")):
        head, _, text = text.partition(" ")
        tz = head.split("=", 1)[1]
        text = text.strip()
    if text.startswith("@"):
        if text.lower() not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {text}")
        text = _DESCRIPTORS[text.lower()]
    parts = text.split()
    if len(parts) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: {spec}")
    minutes, _ = _field(parts[0], 0, 59, "minute")
    hours, _ = _field(parts[1], 0, 23, "hour")
    days, dom_star = _field(parts[2], 1, 31, "day-of-month")
    months, _ = _field(parts[3], 1, 12, "month", _MONTHS)
    weekdays_raw, dow_star = _field(parts[4], 0, 7, "day-of-week", _DAYS)
    weekdays = frozenset(d % 7 for d in weekdays_raw)  # 7 is Sunday too
    return Schedule(minutes, hours, days, months, weekdays, dom_star, dow_star, tz)
