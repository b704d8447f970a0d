"""rfc3339 reuses the last formatted second without ever returning a stale string."""

from __future__ import annotations

import datetime as dt

from kubeha.apiserver import objmeta


def test_same_second_reuses_and_next_second_changes() -> None:
    t = dt.datetime(2024, 1, 2, 3, 4, 5, 600_000, tzinfo=dt.UTC)
    assert objmeta.rfc3339(t) == "2024-01-02T03:04:05Z"
    assert objmeta.rfc3339(t.replace(microsecond=1)) == "2024-01-02T03:04:05Z"
    assert objmeta.rfc3339(t.replace(second=6)) == "2024-01-02T03:04:06Z"
    assert objmeta.rfc3339(t) == "2024-01-02T03:04:05Z"


def test_other_zones_are_converted_to_utc() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert objmeta.rfc3339(dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus2)) == "2024-01-02T03:04:05Z"
    assert objmeta.rfc3339(dt.datetime(1960, 1, 1, 0, 0, 0, 500_000, tzinfo=dt.UTC)) == "1960-01-01T00:00:00Z"
