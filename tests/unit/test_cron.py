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


# -- the cronjob controller's decisions ---------------------------------------------------------

from kubeha.controllers import cronjob as cjc  # noqa: E402


def cj(**spec: object) -> dict[str, object]:
    return {
        "metadata": {
            "name": "hello",
            "namespace": "default",
            "uid": "cj-uid",
            "creationTimestamp": "2024-01-01T10:00:00Z",
        },
        "spec": {"schedule": "*/5 * * * *", **spec},
        "status": {},
    }


def test_job_name_is_minutes_since_epoch() -> None:
    assert cjc.job_name("hello", t("2024-01-01T10:05:00")) == f"hello-{int(t('2024-01-01T10:05:00').timestamp()) // 60}"


def test_most_recent_due_time() -> None:
    s = parse("*/5 * * * *")
    got, missed = cjc.most_recent(s, cj(), t("2024-01-01T10:12:00"), UTC)
    assert (got, missed) == (t("2024-01-01T10:10:00"), 2)
    # already scheduled at 10:10: nothing due until 10:15
    done = {**cj(), "status": {"lastScheduleTime": "2024-01-01T10:10:00Z"}}
    assert cjc.most_recent(s, done, t("2024-01-01T10:14:59"), UTC) == (None, 0)
    # startingDeadlineSeconds limits how far back we look
    late = cj(startingDeadlineSeconds=60)
    assert cjc.most_recent(s, late, t("2024-01-01T10:12:00"), UTC) == (None, 0)
    assert cjc.most_recent(s, late, t("2024-01-01T10:10:30"), UTC)[0] == t("2024-01-01T10:10:00")


def test_many_missed_times_still_find_the_latest() -> None:
    s = parse("* * * * *")
    got, missed = cjc.most_recent(s, cj(), t("2024-01-02T10:00:30"), UTC)
    assert got == t("2024-01-02T10:00:00") and missed > cjc.TOO_MANY_MISSED


def test_next_wakeup_sleeps_until_the_schedule() -> None:
    assert cjc.next_wakeup(parse("*/5 * * * *"), t("2024-01-01T10:12:00"), UTC) == 180.1


def test_history_limits_delete_oldest() -> None:
    def job(name: str, kind: str, start: str) -> dict[str, object]:
        return {
            "metadata": {"name": name},
            "status": {"startTime": start, "conditions": [{"type": kind, "status": "True"}]},
        }

    jobs = [
        job("a", "Complete", "2024-01-01T10:00:00Z"),
        job("b", "Complete", "2024-01-01T10:05:00Z"),
        job("c", "Failed", "2024-01-01T10:06:00Z"),
        job("d", "Complete", "2024-01-01T10:10:00Z"),
        job("e", "Failed", "2024-01-01T10:11:00Z"),
    ]
    names = [j["metadata"]["name"] for j in cjc.history_to_delete(jobs, 2, 1)]  # type: ignore[index]
    assert names == ["a", "c"]


def test_job_from_template_carries_owner_and_schedule() -> None:
    obj = cj(jobTemplate={"metadata": {"labels": {"app": "x"}}, "spec": {"template": {}}})
    job = cjc.job_from_template(obj, t("2024-01-01T10:05:00"), UTC)
    md = job["metadata"]
    assert md["name"] == cjc.job_name("hello", t("2024-01-01T10:05:00"))
    assert md["ownerReferences"][0]["kind"] == "CronJob" and md["ownerReferences"][0]["controller"] is True
    assert md["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == "2024-01-01T10:05:00+00:00"
    assert md["labels"] == {"app": "x"}
