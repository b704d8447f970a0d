"""Prometheus metrics of one api-server app (a registry per app, so tests can build several).

Requests only bump plain counters in dicts; the Prometheus families are built from them when
/metrics is scraped. prometheus_client's own metric objects take a lock on every increment,
and each request made four of them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)
REQUEST_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "code")
LATENCY_LABELS = REQUEST_LABELS[:-1]


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(_BUCKETS) + 1)  # per bucket (not cumulative); the last is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.buckets[bisect.bisect_left(_BUCKETS, value)] += 1
        self.sum += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, ...], int] = {}
        self.latency: dict[tuple[str, ...], _Histogram] = {}
        self.inflight: dict[str, int] = {"mutating": 0, "readOnly": 0}
        self.watches: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))  # type: ignore[arg-type]

    # -- the hot path --------------------------------------------------------------------------

    def request_started(self, kind: str) -> None:
        self.inflight[kind] = self.inflight.get(kind, 0) + 1

    def request_ended(self, kind: str) -> None:
        self.inflight[kind] -= 1

    def watch_started(self, verb: str = "WATCH") -> None:
        self.watches[verb] = self.watches.get(verb, 0) + 1

    def watch_ended(self, verb: str = "WATCH") -> None:
        self.watches[verb] -= 1

    def count_request(self, labels: tuple[str, ...]) -> None:
        """``labels``: REQUEST_LABELS' values."""
        self.requests[labels] = self.requests.get(labels, 0) + 1

    def observe_latency(self, labels: tuple[str, ...], seconds: float) -> None:
        """``labels``: LATENCY_LABELS' values."""
        h = self.latency.get(labels)
        if h is None:
            h = self.latency[labels] = _Histogram()
        h.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        requests = CounterMetricFamily(
            "apiserver_request", "Requests by verb, resource and HTTP code.", labels=REQUEST_LABELS
        )
        for labels, n in list(m.requests.items()):
            requests.add_metric(labels, n)
        yield requests
        latency = HistogramMetricFamily(
            "apiserver_request_duration_seconds",
            "Response latency by verb and resource (watches excluded).",
            labels=LATENCY_LABELS,
        )
        for labels, h in list(m.latency.items()):
            cumulative, acc = [], 0
            for bound, n in zip([*(str(float(b)) for b in _BUCKETS), "+Inf"], h.buckets, strict=True):
                acc += n
                cumulative.append((bound, acc))
            latency.add_metric(labels, cumulative, h.sum)
        yield latency
        inflight = GaugeMetricFamily(
            "apiserver_current_inflight_requests", "Requests being served now.", labels=("request_kind",)
        )
        for kind, n in list(m.inflight.items()):
            inflight.add_metric((kind,), n)
        yield inflight
        watches = GaugeMetricFamily(
            "apiserver_longrunning_requests", "Open long-running requests (watches).", labels=("verb",)
        )
        for verb, n in list(m.watches.items()):
            watches.add_metric((verb,), n)
        yield watches
