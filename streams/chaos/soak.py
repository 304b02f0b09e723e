"""Trends of a soak run: does anything grow that should stay flat?

A soak (fault 6) runs the pipeline for an hour at half load while a second worker is
added and removed over and over. One worker and the learner live through all of it;
their resident memory, open files and threads are sampled once a second from
``/proc`` (:class:`~streams.chaos.observe.Sampler`), and the workers' asyncio task
counts come from their metric snapshots on the `metrics` topic
(``streamscore_event_loop_tasks``). Each series is summed up as its first, last,
lowest and highest value and a least-squares slope per hour over the part of the run
after a warm-up (start-up, the first table restores and the first model loads
allocate memory that is not a leak).

Examples
--------
>>> slope_per_hour([0.0, 1800.0, 3600.0], [100.0, 101.0, 102.0])
2.0
>>> points = [(0.0, 50.0), (300.0, 90.0), (400.0, 100.0), (1800.0, 100.0), (3600.0, 100.0)]
>>> t = trend("worker-0", points)
>>> t.first, t.high, t.slope_per_h  # the start-up climb is left out of the slope
(50.0, 100.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streams.codec import decode
from streams.events import MetricsSnapshot

#: Share of a series (by time) left out of its slope: start-up and first restores.
WARM_UP_SHARE = 0.1

#: The gauge the workers' task counts come from.
TASKS_METRIC = "streamscore_event_loop_tasks"


def slope_per_hour(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against ``times`` (seconds), per hour."""
    if len(times) < 2 or max(times) == min(times):
        return 0.0
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    dt = t - t.mean()
    return float(np.dot(dt, v - v.mean()) / np.dot(dt, dt) * 3600.0)


@dataclass(frozen=True)
class Trend:
    """One series of one process, summed up."""

    name: str
    samples: int
    span_s: float
    first: float
    last: float
    low: float
    high: float
    slope_per_h: float

    def row(self, scale: float = 1.0, digits: int = 0) -> str:
        """``first -> last (low-high), slope/h`` with values divided by ``scale``."""

        def f(x: float) -> str:
            return f"{x / scale:.{digits}f}"

        return (
            f"{f(self.first)} -> {f(self.last)} ({f(self.low)}-{f(self.high)}), "
            f"{self.slope_per_h / scale:+.{max(digits, 1)}f}/h"
        )


def trend(
    name: str, points: Sequence[tuple[float, float]], warm_up: float = WARM_UP_SHARE
) -> Trend:
    """Sum up ``points`` (time, value); the slope leaves out the first ``warm_up`` share."""
    if not points:
        return Trend(name, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    times = [t for t, _ in points]
    values = [v for _, v in points]
    start = times[0] + (times[-1] - times[0]) * warm_up
    kept = [(t, v) for t, v in points if t >= start]
    return Trend(
        name,
        len(points),
        times[-1] - times[0],
        values[0],
        values[-1],
        min(values),
        max(values),
        slope_per_hour([t for t, _ in kept], [v for _, v in kept]),
    )


def task_counts(records: Sequence[bytes]) -> dict[str, list[tuple[float, float]]]:
    """Per process instance, (time, asyncio tasks) from encoded metric snapshots."""
    out: dict[str, list[tuple[float, float]]] = {}
    for raw in records:
        snap = decode(MetricsSnapshot, raw)
        for family in snap.families:
            for sample in family.samples:
                if sample.name == TASKS_METRIC:
                    at = snap.taken_time.timestamp()
                    out.setdefault(snap.instance, []).append((at, sample.value))
    for points in out.values():
        points.sort()
    return out


@dataclass(frozen=True)
class SoakTrends:
    """The soak's long-lived processes: memory, files, threads and tasks."""

    rss: list[Trend]
    open_files: list[Trend]
    threads: list[Trend]
    tasks: list[Trend]

    def table(self) -> str:
        """A Markdown table, one row per series."""
        rows = [
            "| process | series | samples | span min | first -> last (low-high), slope |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, trends, scale, digits in (
            ("RSS MiB", self.rss, 2**20, 1),
            ("open files", self.open_files, 1.0, 0),
            ("threads", self.threads, 1.0, 0),
            ("asyncio tasks", self.tasks, 1.0, 0),
        ):
            for t in trends:
                rows.append(
                    f"| {t.name} | {label} | {t.samples} | {t.span_s / 60:.0f} "
                    f"| {t.row(scale, digits)} |"
                )
        return "\n".join(rows)


def soak_trends(
    series: dict[str, list[tuple[float, int, int, int]]],
    tasks: dict[str, list[tuple[float, float]]],
    pids: dict[int, str] | None = None,
) -> SoakTrends:
    """Trends of the sampled processes (``Sampler.series``) and of the task counts.

    ``pids`` names the processes whose task counts to keep (by pid; the instance of a
    snapshot ends with ``:<pid>``); None keeps every instance under its own name.
    """
    kept: dict[str, list[tuple[float, float]]] = {}
    for instance, points in tasks.items():
        pid = instance.rsplit(":", 1)[-1]
        if pids is None:
            kept[instance] = points
        elif pid.isdigit() and int(pid) in pids:
            kept[pids[int(pid)]] = points
    return SoakTrends(
        rss=[trend(n, [(t, float(r)) for t, r, _, _ in pts]) for n, pts in series.items()],
        open_files=[trend(n, [(t, float(f)) for t, _, f, _ in pts]) for n, pts in series.items()],
        threads=[trend(n, [(t, float(h)) for t, _, _, h in pts]) for n, pts in series.items()],
        tasks=[trend(n, pts) for n, pts in kept.items()],
    )
