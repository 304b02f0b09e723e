"""Metric snapshots for the `metrics` topic: the registry's values as events.

For consumers that read Kafka rather than Prometheus. Every ``interval_s`` a process
serializes its registry into :class:`~streams.events.MetricsSnapshot` events keyed by
its process name. A registry larger than one message (the codec refuses messages
over 64 KiB) is split into parts that share ``taken_time``.

Examples
--------
>>> from prometheus_client import CollectorRegistry, Counter
>>> registry = CollectorRegistry()
>>> Counter("demo_events", "Events.", ["stage"], registry=registry).labels("ingest").inc(3)
>>> snapshotter = MetricsSnapshotter(registry, process="worker", instance="host:1")
>>> [snap] = snapshotter.take()
>>> snapshot_values([snap])[("demo_events_total", (("stage", "ingest"),))]
3.0
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry

from streams.codec import MAX_MESSAGE_BYTES, encode, encode_key
from streams.events import MetricFamily, MetricSample, MetricsSnapshot
from streams.records import Output

SampleKey = tuple[str, tuple[tuple[str, str], ...]]
Kind = Literal["counter", "gauge", "histogram", "summary", "info", "stateset", "unknown"]
_KINDS: dict[str, Kind] = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "info": "info",
    "stateset": "stateset",
}


def default_instance() -> str:
    """Host name and process id, e.g. ``worker-1:4242``."""
    return f"{socket.gethostname()}:{os.getpid()}"[-64:]


class MetricsSnapshotter:
    """Serialize a registry's current values into snapshot events.

    Parameters
    ----------
    registry
        The registry to read (``streams.metrics.REGISTRY`` in a process).
    process
        The process role, also the Kafka key (`worker`, `learner`, `trainer`...).
    instance
        Which process (default: host name and pid).
    topic
        The topic :meth:`outputs` addresses.
    interval_s
        Seconds between snapshots in :meth:`run` (0: never).
    max_bytes
        Largest encoded message; a larger snapshot is split.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        process: str,
        instance: str | None = None,
        topic: str = "metrics",
        interval_s: float = 15.0,
        max_bytes: int = MAX_MESSAGE_BYTES - 4096,
    ) -> None:
        self.registry = registry
        self.process = process[:64]
        self.instance = (instance or default_instance())[:64]
        self.topic = topic
        self.interval_s = interval_s
        self.max_bytes = max_bytes

    def _samples(self) -> list[tuple[str, Kind, MetricSample, int]]:
        """(family, kind, sample, encoded size) of every finite sample, in order."""
        out = []
        for family in self.registry.collect():
            kind = _KINDS.get(family.type, "unknown")
            for s in family.samples:
                if s.name.endswith("_created") or not math.isfinite(s.value):
                    continue
                sample = MetricSample(name=s.name[:64], labels=dict(s.labels), value=s.value)
                out.append((family.name[:64], kind, sample, len(encode(sample)) + 1))
        return out

    def take(self, now: datetime | None = None) -> list[MetricsSnapshot]:
        """The registry's values now, as one or more snapshot events."""
        taken = now or datetime.now(UTC)
        header = len(
            encode(
                MetricsSnapshot(
                    process=self.process,
                    instance=self.instance,
                    taken_time=taken,
                    part=10**6,
                    parts=10**6,
                    families=[],
                )
            )
        )
        parts: list[list[tuple[str, Kind, list[MetricSample]]]] = [[]]
        size = header
        for name, kind, sample, n in self._samples():
            families = parts[-1]
            same = bool(families) and families[-1][0] == name
            # A new family costs its own envelope (and a comma) besides the sample.
            opening = len(encode(MetricFamily(name=name, kind=kind))) + 1
            extra = n if same else n + opening
            if size + extra > self.max_bytes and families:
                parts.append([])
                families, size, same, extra = parts[-1], header, False, n + opening
            if same:
                families[-1][2].append(sample)
            else:
                families.append((name, kind, [sample]))
            size += extra
        return [
            MetricsSnapshot(
                process=self.process,
                instance=self.instance,
                taken_time=taken,
                part=i,
                parts=len(parts),
                families=[
                    MetricFamily(name=name, kind=kind, samples=samples)
                    for name, kind, samples in families
                ],
            )
            for i, families in enumerate(parts)
        ]

    def outputs(self, now: datetime | None = None) -> list[Output]:
        """The snapshot messages for the metrics topic (key: the process name)."""
        key = encode_key(self.process)
        return [Output(self.topic, key, encode(s)) for s in self.take(now)]

    async def run(
        self,
        send: Callable[[Sequence[Output]], Awaitable[Any]],
        stop: asyncio.Event,
    ) -> None:
        """Send a snapshot every ``interval_s`` until ``stop`` is set, then a last one.

        For processes without Faust timers (learner, trainer, producers). An
        exception from ``send`` ends the loop and propagates.
        """
        if self.interval_s <= 0:
            await stop.wait()
            return
        next_at = time.monotonic()
        while not stop.is_set():
            next_at += self.interval_s
            try:
                await asyncio.wait_for(stop.wait(), max(next_at - time.monotonic(), 0.0))
            except TimeoutError:
                await send(self.outputs())
        await send(self.outputs())


def snapshot_values(snapshots: Iterable[MetricsSnapshot]) -> dict[SampleKey, float]:
    """Every sample of some snapshots by (sample name, sorted labels)."""
    out: dict[SampleKey, float] = {}
    for snap in snapshots:
        for family in snap.families:
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out
