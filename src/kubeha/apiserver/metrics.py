"""Prometheus metrics of one api-server app (a registry per app, so tests can build several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
