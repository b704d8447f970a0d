"""Rate limiters: per-item exponential backoff, token bucket, max-of, the controller default."""

from __future__ import annotations

import pytest

from kubeha.machinery.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_exponential_doubles_per_item_and_caps() -> None:
    rl = ItemExponentialFailureRateLimiter(base=0.001, cap=0.01)
    assert [rl.when("a") for _ in range(6)] == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.01, 0.01])
    assert rl.num_requeues("a") == 6
    # Another item has its own history.
    assert rl.when("b") == pytest.approx(0.001)
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == pytest.approx(0.001)


def test_exponential_huge_failure_count_is_capped_not_overflowing() -> None:
    rl = ItemExponentialFailureRateLimiter(base=0.005, cap=1000.0)
    delays = [rl.when("x") for _ in range(1100)]
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0


def test_bucket_allows_burst_then_spaces_by_qps() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [rl.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    # Past the burst each call reserves a future token: 0.1 s, 0.2 s, ...
    assert rl.when("d") == pytest.approx(0.1)
    assert rl.when("e") == pytest.approx(0.2)
    # Time refills the bucket: 1 s later 10 tokens were earned (minus the 2 borrowed), capped at 3.
    clock.now += 1.0
    assert [rl.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert rl.when("f") == pytest.approx(0.1)
    assert rl.num_requeues("f") == 0


def test_bucket_rejects_nonpositive_settings() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=0, burst=1)


def test_max_of_takes_longest_and_forgets_everywhere() -> None:
    a = ItemExponentialFailureRateLimiter(base=1.0, cap=100.0)
    b = ItemExponentialFailureRateLimiter(base=3.0, cap=4.0)
    rl = MaxOfRateLimiter(a, b)
    assert rl.when("k") == 3.0
    assert rl.when("k") == 4.0  # a: 2, b: min(6, 4)
    assert rl.when("k") == 4.0  # a: 4, b: 4
    assert rl.when("k") == 8.0  # a: 8 wins
    assert rl.num_requeues("k") == 4
    rl.forget("k")
    assert a.num_requeues("k") == 0 and b.num_requeues("k") == 0


def test_default_controller_limiter_matches_client_go() -> None:
    clock = FakeClock()
    rl = default_controller_rate_limiter(clock=clock)
    assert rl.when("k") == pytest.approx(0.005)
    assert rl.when("k") == pytest.approx(0.010)
    # The bucket: 100 burst, then 10 qps. 98 tokens remain; exhaust them with other items.
    for i in range(98):
        rl.when(f"other-{i}")
    # A fresh item now waits for the bucket (0.1 s), more than its own 5 ms backoff.
    assert rl.when("fresh") == pytest.approx(0.1)


def test_bucket_try_take_never_borrows() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(qps=1, burst=2, clock=clock)
    assert [rl.try_take(), rl.try_take(), rl.try_take()] == [True, True, False]
    clock.now += 0.5
    assert not rl.try_take()
    clock.now += 0.5
    assert rl.try_take()
