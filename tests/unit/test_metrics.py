"""Metrics: names carry units, labels stay few, batch helpers equal per-event observes."""

from __future__ import annotations

import errno
import socket
import urllib.request
from collections import Counter as Tally
from dataclasses import dataclass

import faust
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from streams import metrics
from streams.exporter import (
    FAUST_PREFIX,
    install_faust_sensor,
    start_metrics_server,
    sync_faust_sensor,
)
from streams.metrics import ConsumerLagCollector, PartitionOffsets, observe_many, value

UNITS = ("_total", "_seconds", "_ratio", "_bytes", "_messages", "_events", "_info", "_tasks")
#: Every label name a streamscore metric may carry (none identifies a customer,
#: terminal or transaction).
ALLOWED_LABELS = {
    "stage",
    "reason",
    "role",
    "provider",
    "decision",
    "since",
    "kind",
    "detector",
    "feature",
    "label",
    "outcome",
    "model",
    "topic",
    "partition",
    "version",
    "le",
}


def _ours() -> list[tuple[str, str, set[str]]]:
    """(exposed name, type, label names) of every streamscore_* family."""
    out = []
    for family in metrics.REGISTRY.collect():
        if not family.name.startswith("streamscore_") or family.name.startswith(FAUST_PREFIX):
            continue
        exposed = family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        labels = {k for s in family.samples for k in s.labels}
        out.append((exposed, family.type, labels))
    return out


def test_every_metric_name_carries_its_unit() -> None:
    families = _ours()
    assert len(families) >= 30
    for name, _kind, _labels in families:
        assert name.endswith(UNITS), name


def test_metric_labels_are_few_and_never_identify_an_entity() -> None:
    described = {
        name: set(getattr(collector, "_labelnames", ()))
        for name, collector in metrics.REGISTRY._names_to_collectors.items()
        if name.startswith("streamscore_") and not name.startswith(FAUST_PREFIX)
    }
    for name, labels in described.items():
        assert labels <= ALLOWED_LABELS, (name, labels - ALLOWED_LABELS)
        assert len(labels) <= 3, name


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([1.0, 2.0]),
        max_size=200,
    )
)
def test_observe_many_equals_one_observe_per_value(values: list[float]) -> None:
    buckets = (0.5, 1.0, 2.0, 10.0)
    one = Histogram("one_seconds", "h", buckets=buckets, registry=None)
    many = Histogram("many_seconds", "h", buckets=buckets, registry=None)
    for v in values:
        if not np.isnan(v):
            one.observe(v)
    observe_many(many, values)
    assert [b.get() for b in many._buckets] == [b.get() for b in one._buckets]
    assert many._sum.get() == pytest.approx(one._sum.get(), nan_ok=True)


def test_observe_batch_counts_events_dead_letters_and_batch_size() -> None:
    before_in = value("streamscore_events_in_total", stage="unit")
    before_late = value("streamscore_dead_letters_total", stage="unit", reason="too_late")
    before_n = value("streamscore_batch_size_events_count", stage="unit")
    metrics.observe_batch("unit", 10, 7, Tally({"too_late": 2, "duplicate_transaction": 1}), 0.01)
    assert value("streamscore_events_in_total", stage="unit") - before_in == 10
    assert value("streamscore_dead_letters_total", stage="unit", reason="too_late") == (
        before_late + 2
    )
    assert value("streamscore_batch_size_events_count", stage="unit") == before_n + 1


def test_latency_is_observed_since_event_and_ingest_time() -> None:
    key = {"stage": "unit-latency", "since": "ingest_time"}
    metrics.observe_latency("unit-latency", 100.0, [10.0, 20.0], [99.0, 99.5])
    assert value("streamscore_end_to_end_latency_seconds_count", **key) == 2
    assert value("streamscore_end_to_end_latency_seconds_sum", **key) == pytest.approx(1.5)
    assert value(
        "streamscore_end_to_end_latency_seconds_sum", stage="unit-latency", since="event_time"
    ) == pytest.approx(170.0)


def test_decisions_are_counted_by_type() -> None:
    before = value("streamscore_decisions_total", decision="review")
    metrics.count_decisions(["approve", "review", "review", "decline"])
    assert value("streamscore_decisions_total", decision="review") == before + 2


def test_models_in_service_replace_the_versions_of_their_role() -> None:
    metrics.set_models_in_service({"deep": "v1", "challenger": "v2"})
    metrics.set_models_in_service({"deep": "v3"})
    assert value("streamscore_model_info", role="deep", version="v3") == 1
    assert (
        metrics.REGISTRY.get_sample_value(
            "streamscore_model_info", {"role": "deep", "version": "v1"}
        )
        is None
    )
    assert (
        metrics.REGISTRY.get_sample_value(
            "streamscore_model_info", {"role": "challenger", "version": "v2"}
        )
        is None
    )


@dataclass(frozen=True)
class _Firing:
    detector: str
    kind: str
    feature: str | None
    statistic: float
    threshold: float


def test_drift_firings_count_and_set_the_detector_state() -> None:
    labels = {"kind": "feature", "detector": "cusum", "feature": "amount"}
    before = value("streamscore_drift_events_total", **labels)
    metrics.observe_drift([_Firing("cusum", "feature", "amount", -18.0, 12.0)])
    assert value("streamscore_drift_events_total", **labels) == before + 1
    assert value("streamscore_drift_statistic_ratio", **labels) == pytest.approx(1.5)


def test_lag_collector_reports_only_the_partitions_fed_last() -> None:
    lag = ConsumerLagCollector()
    registry = CollectorRegistry()
    registry.register(lag)
    lag.update(
        [
            PartitionOffsets("t", 0, end=50, committed=40),
            PartitionOffsets("t", 1, end=50, committed=None, position=45),
            PartitionOffsets("t", 2, end=50),
        ]
    )
    name = "streamscore_consumer_lag_messages"
    assert registry.get_sample_value(name, {"topic": "t", "partition": "0"}) == 10
    assert registry.get_sample_value(name, {"topic": "t", "partition": "1"}) == 5
    assert registry.get_sample_value(name, {"topic": "t", "partition": "2"}) is None
    lag.update([PartitionOffsets("t", 1, end=60, committed=60)])
    assert registry.get_sample_value(name, {"topic": "t", "partition": "0"}) is None
    assert registry.get_sample_value(name, {"topic": "t", "partition": "1"}) == 0


def test_metrics_server_binds_loopback_and_serves_the_registry() -> None:
    registry = CollectorRegistry()
    Histogram("served_seconds", "h", registry=registry).observe(0.2)
    server = start_metrics_server("127.0.0.1", 0, registry)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=5) as r:
            body = r.read().decode()
        assert "served_seconds_count 1.0" in body
    finally:
        server.close()


def test_metrics_server_moves_to_a_free_port_when_its_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start_metrics_server("127.0.0.1", port, CollectorRegistry())
        try:
            assert server.port not in (port, 0)
        finally:
            server.close()


def test_metrics_server_refuses_an_address_it_cannot_bind() -> None:
    with pytest.raises(OSError) as info:
        start_metrics_server("192.0.2.1", 0, CollectorRegistry())  # TEST-NET: never local
    assert info.value.errno == errno.EADDRNOTAVAIL


def test_faust_sensor_records_into_the_given_registry() -> None:
    from faust.sensors.prometheus import PrometheusMonitor
    from faust.types import TP

    registry = CollectorRegistry()
    app = faust.App("unit-sensor", broker="kafka://127.0.0.1:1", autodiscover=False)
    install_faust_sensor(app, registry)
    other = faust.App("unit-sensor-2", broker="kafka://127.0.0.1:1", autodiscover=False)
    install_faust_sensor(other, registry)  # a second app shares the families
    assert isinstance(app.monitor, PrometheusMonitor)
    names = set(registry._names_to_collectors)
    assert {
        "streamscore_faust_messages_received_total",
        "streamscore_faust_events_runtime_ms_bucket",
        "streamscore_faust_topic_partition_end_offset",
        "streamscore_faust_topic_partition_offset_commited",
    } <= names

    class Msg:
        time_in: float | None = None

    tp = TP("tx", 3)
    for offset in range(5):
        app.monitor.on_message_in(tp, offset, Msg())
    assert registry.get_sample_value("streamscore_faust_messages_received_total") == 0
    sync_faust_sensor(app)
    sync_faust_sensor(app)  # idempotent: copies differences
    assert registry.get_sample_value("streamscore_faust_messages_received_total") == 5
    labels = {"topic": "tx"}
    assert (
        registry.get_sample_value("streamscore_faust_messages_received_per_topic_total", labels)
        == 5
    )
    assert (
        registry.get_sample_value(
            "streamscore_faust_messages_received_per_topics_partition", {**labels, "partition": "3"}
        )
        == 4
    )


def test_serve_metrics_follows_the_settings() -> None:
    from streams.exporter import serve_metrics
    from streams.settings import MetricsSettings

    assert serve_metrics(MetricsSettings(enabled=False)) is None
    server = serve_metrics(MetricsSettings(port=0))
    assert server is not None
    try:
        assert server.host == "127.0.0.1" and server.port > 0
    finally:
        server.close()
