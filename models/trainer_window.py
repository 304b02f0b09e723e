"""The trainer's memory of labeled examples and its clock: a sliding window and a schedule.

Pure: the trainer process feeds decoded examples in and asks when to train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from models.trainer import LabeledData

__all__ = ["ExampleWindow", "TrainingSchedule"]

DAY_S = 86_400.0


class ExampleWindow:
    """Labeled examples of the last ``window_days`` of event time, one per transaction.

    Examples arrive from several partitions, each in roughly event-time order but not
    in step with the others. The window's :attr:`watermark` is the event time every
    partition still being read has reached (a partition with nothing left to read
    does not hold it back), and :meth:`data` cuts at it, so a run at watermark ``w``
    sees the same examples however the partitions were interleaved.

    Examples
    --------
    >>> w = ExampleWindow(("a", "b"), "fs", window_days=1.0)
    >>> w.add("t1", 0.0, [1.0, 2.0], False, "c1"), w.add("t1", 0.0, [1.0, 2.0], False, "c1")
    (True, False)
    >>> _ = w.add("t2", 2 * 86_400.0, [3.0, 4.0], True, "c2", partition=1)
    >>> w.set_pending({0})  # partition 0 has more to read: it holds the watermark at 0
    >>> w.watermark, len(w.data(until=w.watermark))
    (0.0, 1)
    >>> w.set_pending(set())
    >>> w.watermark, w.data().y.tolist()
    (172800.0, [True])
    """

    def __init__(self, feature_names: Sequence[str], feature_set: str, window_days: float) -> None:
        self.feature_names = tuple(feature_names)
        self.feature_set = feature_set
        self.window_s = window_days * DAY_S
        self._ids: dict[str, float] = {}
        self._rows: list[tuple[float, str, bool, str, np.ndarray[Any, Any]]] = []
        self._marks: dict[int, float] = {}
        self._pending: set[int] = set()
        self.rejected = 0
        """Examples dropped for another feature set or a wrong width."""

    def add(
        self,
        transaction_id: str,
        event_time_s: float,
        values: Sequence[float],
        is_fraud: bool,
        customer_id: str,
        feature_set: str | None = None,
        partition: int = 0,
    ) -> bool:
        """Keep one example; False for a duplicate, a foreign feature set or a bad width."""
        if (feature_set is not None and feature_set != self.feature_set) or len(values) != len(
            self.feature_names
        ):
            self.rejected += 1
            return False
        self._marks[partition] = max(self._marks.get(partition, float("-inf")), event_time_s)
        if transaction_id in self._ids:
            return False
        self._ids[transaction_id] = event_time_s
        row = np.asarray(values, dtype=np.float32)
        self._rows.append((event_time_s, transaction_id, is_fraud, customer_id, row))
        if len(self._rows) % 65_536 == 0:
            self.prune()
        return True

    def set_pending(self, partitions: set[int]) -> None:
        """Name the partitions that have more examples to read (they hold the watermark)."""
        self._pending = set(partitions)

    @property
    def watermark(self) -> float:
        """Event time (seconds) up to which every partition still being read has arrived."""
        held = [self._marks.get(p, float("-inf")) for p in self._pending]
        if held:
            return min(held)
        return max(self._marks.values(), default=float("-inf"))

    def prune(self) -> None:
        """Forget examples older than the window before the watermark."""
        cutoff = self.watermark - self.window_s
        kept = [row for row in self._rows if row[0] >= cutoff]
        if len(kept) != len(self._rows):
            self._rows = kept
            self._ids = {row[1]: row[0] for row in kept}

    def __len__(self) -> int:
        return len(self._rows)

    def data(self, until: float | None = None) -> LabeledData:
        """The examples of the window ending at ``until`` (default: all), in event-time order."""
        end = until if until is not None else max(self._marks.values(), default=0.0)
        start = end - self.window_s
        rows = sorted(
            (row for row in self._rows if start <= row[0] <= end), key=lambda r: (r[0], r[1])
        )
        n, width = len(rows), len(self.feature_names)
        return LabeledData(
            X=np.array([row[4] for row in rows], dtype=np.float32).reshape(n, width),
            y=np.array([row[2] for row in rows], dtype=bool),
            event_time=np.array([row[0] for row in rows], dtype=np.float64),
            customer_id=np.array([row[3] for row in rows], dtype=object),
            feature_names=self.feature_names,
            feature_set=self.feature_set,
        )


@dataclass
class TrainingSchedule:
    """When to train: every ``every_days`` of event time, every ``every_s`` wall seconds,
    or only on request.

    ``anchor`` is the event time (or wall time) of the last run; the first run of the
    ``event_time`` schedule comes ``every_days`` after it (after the first example
    when there is no anchor).

    Examples
    --------
    >>> s = TrainingSchedule("event_time", every_days=7.0, every_s=0.0)
    >>> s.due(watermark=0.0, now=0.0), s.due(watermark=7 * 86_400.0, now=0.0)
    (False, True)
    >>> s.ran(watermark=7 * 86_400.0, now=0.0)
    >>> s.due(watermark=8 * 86_400.0, now=0.0)
    False
    """

    mode: Literal["event_time", "wall_clock", "requests"]
    every_days: float
    every_s: float
    anchor: float | None = None
    """Event time of the last run (event_time) or wall time (wall_clock)."""

    def due(self, watermark: float, now: float) -> bool:
        """True when a scheduled run is due."""
        if self.mode == "requests":
            return False
        if self.mode == "wall_clock":
            if self.anchor is None:
                self.anchor = now
            return now - self.anchor >= self.every_s
        if watermark == float("-inf"):
            return False
        if self.anchor is None:
            self.anchor = watermark
        return watermark - self.anchor >= self.every_days * DAY_S

    def ran(self, watermark: float, now: float) -> None:
        """Record a run (scheduled or requested)."""
        self.anchor = now if self.mode == "wall_clock" else watermark
