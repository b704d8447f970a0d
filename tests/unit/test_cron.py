"""Cron schedule parsing and next-time computation (batch CronJobs)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from kubeha.api.batch.cron import CronError, parse


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_every_minute_and_steps() -> None:
    assert parse("* * * * *").next_after(t("2024-01-01T10:00:30")) == t("2024-01-01T10:01:00")
    s = parse("*/15 * * * *")
    assert s.minutes == frozenset({0, 15, 30, 45})
    assert s.next_after(t("2024-01-01T10:15:00")) == t("2024-01-01T10:30:00")
    assert parse("5/20 * * * *").minutes == frozenset({5, 25, 45})
    assert parse("10-20/5 * * * *").minutes == frozenset({10, 15, 20})


def test_descriptors() -> None:
    assert parse("@hourly").next_after(t("2024-01-01T10:59:59")) == t("2024-01-01T11:00:00")
    assert parse("@daily").next_after(t("2024-01-01T10:00:00")) == t("2024-01-02T00:00:00")
    assert parse("@monthly").next_after(t("2024-01-31T10:00:00")) == t("2024-02-01T00:00:00")
    assert parse("@yearly").next_after(t("2024-06-01T00:00:00")) == t("2025-01-01T00:00:00")
    # 2024-01-03 is a Wednesday: the next Sunday midnight is the 7th
    assert parse("@weekly").next_after(t("2024-01-03T00:00:00")) == t("2024-01-07T00:00:00")


def test_names_and_sunday_seven() -> None:
    s = parse("0 9 * JAN-mar MON,fri")
    assert s.months == frozenset({1, 2, 3})
    assert s.weekdays == frozenset({1, 5})
    assert parse("0 0 * * 7").weekdays == frozenset({0})


def test_day_of_month_or_day_of_week() -> None:
    # both restricted: either matches (the 15th, or any Monday)
    s = parse("0 0 15 * 1")
    assert s.next_after(t("2024-01-02T00:00:00")) == t("2024-01-08T00:00:00")  # Monday
    assert s.next_after(t("2024-01-13T00:00:00")) == t("2024-01-15T00:00:00")
    # only day-of-month restricted
    assert parse("0 0 31 * *").next_after(t("2024-02-01T00:00:00")) == t("2024-03-31T00:00:00")


def test_time_zone() -> None:
    ny = ZoneInfo("America/New_York")
    got = parse("0 9 * * *").next_after(t("2024-07-01T12:00:00"), ny)
    assert got.astimezone(UTC) == t("2024-07-01T13:00:00")  # 09:00 EDT = 13:00 UTC
    assert parse("TZ=Europe/Berlin 0 0 * * *").time_zone == "Europe/Berlin"


def test_times_between() -> None:
    s = parse("*/10 * * * *")
    assert s.times_between(t("2024-01-01T10:00:00"), t("2024-01-01T10:35:00")) == [
        t("2024-01-01T10:10:00"),
        t("2024-01-01T10:20:00"),
        t("2024-01-01T10:30:00"),
    ]


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "@every", "5-1 * * * *", "x * * * *"]
)
def test_invalid(bad: str) -> None:
    with pytest.raises(CronError):
        parse(bad)


def test_never_fires() -> None:
    with pytest.raises(CronError):
        parse("0 0 30 2 *").next_after(t("2024-01-01T00:00:00"))
