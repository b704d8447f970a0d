"""The api-server's /metrics text: upstream's metric names, labels and histogram buckets."""

from __future__ import annotations

from kubeha.apiserver.metrics import Metrics


def test_render_counts_gauges_and_histograms() -> None:
    m = Metrics()
    labels = ("GET", "", "v1", "configmaps", "", "namespace")
    for seconds in (0.001, 0.03, 0.03, 7.0):
        m.request_started("readOnly")
        m.count_request((*labels, "200"))
        m.observe_latency(labels, seconds)
        m.request_ended("readOnly")
    m.request_started("mutating")
    m.watch_started()
    text = m.render().decode()
    lines = set(text.splitlines())
    sel = 'group="",resource="configmaps",scope="namespace",subresource="",verb="GET",version="v1"'

    def bucket(le: str) -> str:  # labels come sorted, le among them
        return (
            f'apiserver_request_duration_seconds_bucket{{group="",le="{le}",resource="configmaps",'
            'scope="namespace",subresource="",verb="GET",version="v1"}'
        )

    assert "# TYPE apiserver_request_total counter" in lines
    assert f'apiserver_request_total{{code="200",{sel}}} 4.0' in lines
    assert "# TYPE apiserver_request_duration_seconds histogram" in lines
    # cumulative buckets
    assert bucket("0.005") + " 1.0" in lines
    assert bucket("0.025") + " 1.0" in lines
    assert bucket("0.05") + " 3.0" in lines
    assert bucket("6.0") + " 3.0" in lines
    assert bucket("8.0") + " 4.0" in lines
    assert bucket("+Inf") + " 4.0" in lines
    assert f"apiserver_request_duration_seconds_count{{{sel}}} 4.0" in lines
    assert f"apiserver_request_duration_seconds_sum{{{sel}}} 7.061" in lines
    assert 'apiserver_current_inflight_requests{request_kind="mutating"} 1.0' in lines
    assert 'apiserver_current_inflight_requests{request_kind="readOnly"} 0.0' in lines
    assert 'apiserver_longrunning_requests{verb="WATCH"} 1.0' in lines
