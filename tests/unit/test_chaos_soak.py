"""Soak trends: slopes, warm-up, task counts read back from metric snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Gauge

from streams.chaos.soak import (
    TASKS_METRIC,
    slope_per_hour,
    soak_trends,
    task_counts,
    trend,
)
from streams.codec import encode
from streams.snapshots import MetricsSnapshotter


def test_slope_is_per_hour_and_zero_for_flat_or_single_samples() -> None:
    assert slope_per_hour([0.0, 60.0, 120.0], [1.0, 2.0, 3.0]) == pytest.approx(60.0)
    assert slope_per_hour([0.0, 3600.0], [5.0, 5.0]) == 0.0
    assert slope_per_hour([10.0], [5.0]) == 0.0
    assert slope_per_hour([10.0, 10.0], [1.0, 2.0]) == 0.0


def test_a_leak_shows_as_a_positive_slope_after_warm_up() -> None:
    # 1 MiB a minute for an hour, after a start-up jump of 100 MiB.
    points = [(0.0, 0.0)] + [(60.0 * m, 100.0 + m) for m in range(1, 61)]
    t = trend("w", points)
    assert t.slope_per_h == pytest.approx(60.0)
    assert (t.first, t.last, t.low, t.high) == (0.0, 160.0, 0.0, 160.0)
    assert t.samples == 61
    assert t.span_s == 3600.0


def test_trend_of_nothing_is_empty() -> None:
    assert trend("w", []).samples == 0


def _snapshots(tasks: list[float], instance: str) -> list[bytes]:
    registry = CollectorRegistry()
    gauge = Gauge(TASKS_METRIC, "tasks", registry=registry)
    snapper = MetricsSnapshotter(registry, "worker", instance=instance)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i, n in enumerate(tasks):
        gauge.set(n)
        out.extend(encode(s) for s in snapper.take(start + timedelta(seconds=15 * i)))
    return out


def test_task_counts_come_back_per_instance_in_time_order() -> None:
    raw = _snapshots([40, 41, 40], "host:101") + _snapshots([38, 39], "host:202")
    counts = task_counts(list(reversed(raw)))
    assert [v for _, v in counts["host:101"]] == [40, 41, 40]
    assert [v for _, v in counts["host:202"]] == [38, 39]
    t0, t1 = counts["host:101"][0][0], counts["host:101"][1][0]
    assert t1 - t0 == 15.0


def test_soak_trends_keep_the_named_workers_tasks_and_every_sampled_series() -> None:
    tasks = task_counts(_snapshots([40, 40, 40], "host:101") + _snapshots([9], "host:202"))
    mib = 2**20
    series = {
        "worker-0": [
            (0.0, 300 * mib, 20, 8),
            (1800.0, 300 * mib, 20, 8),
            (3600.0, 300 * mib, 21, 8),
        ]
    }
    trends = soak_trends(series, tasks, {101: "worker-0"})
    assert [t.name for t in trends.tasks] == ["worker-0"]
    assert trends.tasks[0].high == 40
    assert trends.rss[0].slope_per_h == 0.0
    assert trends.open_files[0].slope_per_h == pytest.approx(2.0)  # the first sample is warm-up
    table = trends.table()
    assert "| worker-0 | RSS MiB | 3 | 60 | 300.0 -> 300.0 (300.0-300.0), +0.0/h |" in table
    assert "| worker-0 | asyncio tasks | 3 |" in table
    assert len(soak_trends(series, tasks).tasks) == 2
