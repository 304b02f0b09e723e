"""Measuring instruments: process CPU and peak memory, output arrival, worker metrics.

CPU time and peak RSS are read from ``/proc`` (Linux); elsewhere they read as None.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.harness import read_topics
from streams.kafka import KafkaConnection

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size of a process (``VmHWM``), MiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds of each named process (those that are gone are left out)."""
    out = {}
    for name, pid in pids.items():
        value = cpu_seconds(pid)
        if value is not None:
            out[name] = value
    return out


@dataclass
class Outputs:
    """Arrival of a run's outputs, read back by a consumer outside the pipeline."""

    expected: int
    times: list[float] = field(default_factory=list)
    duplicates: int = 0
    window_start: int = 0
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    crashed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every expected output arrived."""
        return len(self.times) >= self.expected

    @property
    def window_s(self) -> float:
        """Seconds from the start of the steady window to the last output."""
        if len(self.times) <= self.window_start + 1:
            return 0.0
        return self.times[-1] - self.times[self.window_start]

    @property
    def window_outputs(self) -> int:
        """Outputs that arrived after the first one of the window."""
        return max(0, len(self.times) - 1 - self.window_start)

    @property
    def rate(self) -> float | None:
        """Outputs per second over the steady window."""
        seconds = self.window_s
        return self.window_outputs / seconds if seconds > 0 else None

    @property
    def total_s(self) -> float:
        """Seconds from the consumers' start to the last output."""
        return self.times[-1] - self.started if self.times else 0.0

    def cpu_used(self) -> dict[str, float]:
        """CPU seconds each process used during the window."""
        return {
            name: self.cpu_end[name] - start
            for name, start in self.cpu_start.items()
            if name in self.cpu_end
        }


async def read_outputs(
    conn: KafkaConnection,
    topics: list[str],
    expected: int,
    *,
    pids: Callable[[], Mapping[str, int]],
    crashed: Callable[[], list[str]],
    distinct_keys: bool,
    started: float,
    skip: float = 0.1,
    idle_timeout_s: float = 60.0,
    total_timeout_s: float = 3600.0,
) -> Outputs:
    """Time the arrival of ``expected`` outputs on ``topics``.

    The steady window starts at output number ``skip * expected`` (start-up, group
    joins and model loading fall before it); the CPU each process of ``pids()`` used is
    measured over that window. With ``distinct_keys`` an output counts once per
    message key (a transaction id), repeats are counted as duplicates.
    """
    out = Outputs(expected=expected, started=started)
    first = max(0, min(expected - 2, int(skip * expected)))
    out.window_start = first
    seen: set[bytes] = set()
    clock = time.perf_counter

    def on_message(_topic: str, record: Any) -> None:
        if distinct_keys:
            key = record.key
            if key in seen:
                out.duplicates += 1
                return
            seen.add(key)
        out.times.append(clock())
        if len(out.times) == first + 1:
            out.cpu_start = cpu_snapshot(pids())

    def done() -> bool:
        if out.complete:
            return True
        failed = crashed()
        if failed:
            out.crashed = failed
            return True
        return False

    await read_topics(
        conn,
        topics,
        on_message,
        done,
        idle_timeout_s=idle_timeout_s,
        total_timeout_s=total_timeout_s,
    )
    out.cpu_end = cpu_snapshot(pids())
    return out


def scrape(url: str, timeout: float = 5.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus endpoint, by (name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
        text = response.read().decode("utf-8")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


@dataclass(frozen=True)
class StageCost:
    """A stage's own time in a worker, from its batch histograms."""

    stage: str
    events: float
    batches: float
    seconds: float

    @property
    def per_event_s(self) -> float | None:
        """Seconds per event taken in."""
        return self.seconds / self.events if self.events else None

    @property
    def mean_batch(self) -> float | None:
        """Mean events per batch."""
        return self.events / self.batches if self.batches else None


def stage_costs(
    samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float],
) -> list[StageCost]:
    """Per stage: events, batches and seconds (``streamscore_batch_*`` histograms)."""
    costs = []
    for stage in ("ingest", "labels", "terminal", "score"):
        labels = (("stage", stage),)
        events = samples.get(("streamscore_batch_size_events_sum", labels), 0.0)
        batches = samples.get(("streamscore_batch_size_events_count", labels), 0.0)
        seconds = samples.get(("streamscore_batch_duration_seconds_sum", labels), 0.0)
        if batches:
            costs.append(StageCost(stage, events, batches, seconds))
    return costs
