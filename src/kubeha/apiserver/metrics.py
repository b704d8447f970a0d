"""Prometheus metrics of one api-server app (a registry per app, so tests can build several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)


class Children:
    """A metric's labelled children, memoized: ``labels()`` takes a lock and builds tuples on every
    call, and the hot path asks for the same few label sets on every request."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._cache.get(labels)
        if child is None:
            child = self._cache[labels] = self.metric.labels(*labels)
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("verb", "group", "version", "resource", "subresource", "scope", "code")
        self.requests = Counter(
            "apiserver_request_total", "Requests by verb, resource and HTTP code.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency by verb and resource (watches excluded).",
            ("verb", "group", "version", "resource", "subresource", "scope"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.inflight = Gauge(
            "apiserver_current_inflight_requests",
            "Requests being served now.",
            ("request_kind",),
            registry=self.registry,
        )
        self.watches = Gauge(
            "apiserver_longrunning_requests",
            "Open long-running requests (watches).",
            ("verb",),
            registry=self.registry,
        )

        self.requests_for = Children(self.requests)
        self.latency_for = Children(self.latency)
        self.inflight_for = Children(self.inflight)
        self.watches_for = Children(self.watches)

    def render(self) -> bytes:
        return generate_latest(self.registry)
