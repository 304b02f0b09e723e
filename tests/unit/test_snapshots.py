"""Metric snapshots: the registry's values survive the codec, split under the size cap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from streams.codec import MAX_MESSAGE_BYTES, decode, encode
from streams.events import MetricsSnapshot
from streams.records import Output
from streams.snapshots import MetricsSnapshotter, snapshot_values


def _registry(series: int = 3) -> CollectorRegistry:
    registry = CollectorRegistry()
    c = Counter("snap_events", "Events.", ["stage"], registry=registry)
    h = Histogram("snap_seconds", "Time.", ["stage"], registry=registry)
    g = Gauge("snap_lag_messages", "Lag.", ["partition"], registry=registry)
    Info("snap_model", "Model.", ["role"], registry=registry).labels("deep").info({"version": "7"})
    for i in range(series):
        c.labels(f"s{i}").inc(i + 1)
        h.labels(f"s{i}").observe(0.01 * i)
        g.labels(str(i)).set(10 * i)
    g.labels("nan").set(float("nan"))
    return registry


def _registry_values(
    registry: CollectorRegistry,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created") and s.value == s.value
    }


def test_snapshot_round_trips_every_finite_sample_through_the_codec() -> None:
    registry = _registry()
    taken = datetime(2024, 5, 1, tzinfo=UTC)
    snaps = MetricsSnapshotter(registry, "worker", "host:1").take(taken)
    decoded = [decode(MetricsSnapshot, encode(s)) for s in snaps]
    assert decoded == snaps
    assert snapshot_values(decoded) == _registry_values(registry)
    assert {f.kind for s in decoded for f in s.families} == {
        "counter",
        "histogram",
        "gauge",
        "info",
    }
    assert all(s.taken_time == taken for s in decoded)


def test_large_registry_splits_into_parts_under_the_message_cap() -> None:
    registry = _registry(series=1500)
    snaps = MetricsSnapshotter(registry, "worker", "host:1").take()
    assert len(snaps) > 1
    assert [s.part for s in snaps] == list(range(len(snaps)))
    assert {s.parts for s in snaps} == {len(snaps)}
    assert all(len(encode(s)) <= MAX_MESSAGE_BYTES - 4096 for s in snaps)
    assert snapshot_values(snaps) == _registry_values(registry)


def test_snapshot_messages_are_keyed_by_process_name() -> None:
    outputs = MetricsSnapshotter(_registry(), "learner", topic="metrics.x").outputs()
    assert {(o.topic, o.key) for o in outputs} == {("metrics.x", b"learner")}


def test_run_sends_periodically_and_once_more_when_stopped() -> None:
    sent: list[list[Output]] = []
    snapshotter = MetricsSnapshotter(_registry(), "trainer", interval_s=0.05)

    async def send(outputs: Sequence[Output]) -> None:
        sent.append(list(outputs))

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(snapshotter.run(send, stop))
        while len(sent) < 2:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(main())
    assert len(sent) >= 3  # two on schedule, one on stop
    assert all(batch and batch[0].key == b"trainer" for batch in sent)
