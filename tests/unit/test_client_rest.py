"""REST client pieces that need no server: rate limiting and error decoding."""

from __future__ import annotations

import orjson

from kubeha.client.rest import TokenBucket, status_error


def test_token_bucket_burst_then_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(10, 3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert abs(bucket.reserve() - 0.1) < 1e-9
    assert abs(bucket.reserve() - 0.2) < 1e-9  # callers queue up behind each other
    now[0] = 10.0
    assert bucket.reserve() == 0.0  # refilled (capped at burst)
    assert TokenBucket(5, 0).burst == 5


def test_status_error_from_status_body() -> None:
    body = orjson.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": 'pods "x" not found',
            "reason": "NotFound",
            "details": {"name": "x", "kind": "pods"},
            "code": 404,
        }
    )
    e = status_error(404, body)
    assert (e.code, e.reason, e.message, e.details) == (
        404,
        "NotFound",
        'pods "x" not found',
        {"name": "x", "kind": "pods"},
    )


def test_status_error_without_status_body() -> None:
    e = status_error(503, b"backend down\n", {"Retry-After": "2"})
    assert (e.code, e.reason, e.message) == (503, "ServiceUnavailable", "backend down")
    assert e.headers == {"Retry-After": "2"}
    assert status_error(418, b"").reason == "Unknown"
