"""Transactions the terminal stage holds back until their features are final.

A transaction at event time ``t`` waits for two things (see :mod:`streams.terminal`):

1. **Arrivals**: every source partition's watermark has reached ``t - delay``, so all
   the transactions its terminal windows count are here. This is a bound per
   partition that only grows: the transactions it lets through are the oldest ones,
   so they wait in a heap by event time and a release pops only what passed.
2. **Labels**: no label still in flight can change the windows. Few wait for this
   (labels trail transactions by a steady delay), and for a short time.

Each waits a bounded wall-clock time: ``label_wait_s`` for labels (the labels of the
windows are late: the features count what has arrived), ``source_wait_s`` for
arrivals (a source partition has not progressed for that long: its owner is down
or restoring, and the features would miss what it has not sent yet). Both are
released then anyway, and counted by cause: an exact pipeline forces nothing.

The cost of a release is what it releases plus what waits for labels, not everything
held: a worker whose sources lag for minutes may hold hundreds of thousands of
transactions, and it releases after every batch.

Examples
--------
>>> q = HeldQueue()
>>> q.add(Held(None, None, None, 0, 100.0, 0.0))
>>> q.add(Held(None, None, None, 0, 50.0, 0.0))
>>> len(q), q.oldest()
(2, {0: 50.0})
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Held:
    """A transaction waiting to be featurized."""

    message: Any
    record: Any
    enriched: Any
    partition: int
    time_s: float
    #: When it arrived (monotonic seconds).
    since: float
    #: When its arrivals were complete and it began to wait for labels.
    settled_at: float | None = None
    taken: bool = False


@dataclass
class Taken:
    """What one release takes: in order of event time per partition."""

    ready: list[Held] = field(default_factory=list)
    #: Released after ``label_wait_s`` with labels of their windows still in flight.
    forced_labels: int = 0
    #: Released after ``source_wait_s`` with a source partition still behind.
    forced_sources: int = 0


class HeldQueue:
    """Held transactions: per partition, a heap by event time, then a label wait."""

    def __init__(self) -> None:
        self._arriving: dict[int, list[tuple[float, int, Held]]] = {}
        self._by_arrival: deque[Held] = deque()  # lazily cleared of taken entries
        self._labels: dict[int, deque[Held]] = {}
        self._seq = itertools.count()
        self._n = 0
        self._more = False  # the last take stopped at its limit

    def __len__(self) -> int:
        return self._n

    def add(self, held: Held) -> None:
        """Hold one more transaction."""
        heap = self._arriving.setdefault(held.partition, [])
        heapq.heappush(heap, (held.time_s, next(self._seq), held))
        self._by_arrival.append(held)
        self._n += 1

    def keep(self, partitions: set[int]) -> None:
        """Forget what is held for partitions not in ``partitions`` (a rebalance)."""
        for p in [p for p in self._arriving if p not in partitions]:
            for _, _, held in self._arriving.pop(p):
                self._forget(held)
        for p in [p for p in self._labels if p not in partitions]:
            for held in self._labels.pop(p):
                self._forget(held)
        self._trim()

    def oldest(self) -> dict[int, float]:
        """Per partition, the oldest event time held."""
        oldest: dict[int, float] = {}
        for p, heap in self._arriving.items():
            while heap and heap[0][2].taken:
                heapq.heappop(heap)
            if heap:
                oldest[p] = heap[0][0]
        for p, waiting in self._labels.items():
            for held in waiting:
                if held.time_s < oldest.get(p, float("inf")):
                    oldest[p] = held.time_s
        return oldest

    def due(self, now: float, label_wait_s: float, source_wait_s: float) -> bool:
        """True when something has waited out its time (the release timer's test)."""
        if self._more:
            return True
        self._trim()
        if self._by_arrival and now - self._by_arrival[0].since >= source_wait_s:
            return True
        return any(
            waiting and now - _settled_at(waiting[0], now) >= label_wait_s
            for waiting in self._labels.values()
        )

    def take(
        self,
        bound: Callable[[int], float | None],
        settled: Callable[[Held], bool],
        now: float,
        label_wait_s: float,
        source_wait_s: float,
        limit: int | None = None,
    ) -> Taken:
        """Take what may be featurized now, at most ``limit`` transactions.

        ``bound(partition)`` is the newest event time whose arrivals are complete (None:
        not yet known); ``settled(held)`` says no label in flight can change its
        features. What the limit leaves is taken next time (:meth:`due` says so), so a
        source that comes back after minutes does not release everything it held back
        in one go: one release blocks the event loop for a bounded time.
        """
        taken = Taken()
        room = float("inf") if limit is None else limit
        for p, heap in self._arriving.items():
            upto = bound(p)
            waiting = self._labels.setdefault(p, deque())
            while heap and (heap[0][2].taken or (upto is not None and heap[0][0] <= upto)):
                _, _, held = heapq.heappop(heap)
                if not held.taken:
                    held.settled_at = now
                    waiting.append(held)
        # Waited out their arrivals: out now, oldest arrival first.
        self._trim()
        while (
            len(taken.ready) < room
            and self._by_arrival
            and now - self._by_arrival[0].since >= source_wait_s
        ):
            held = self._by_arrival.popleft()
            held.taken = True
            taken.ready.append(held)
            taken.forced_sources += 1
            self._trim()
        for waiting in self._labels.values():
            still: deque[Held] = deque()
            for held in waiting:
                if len(taken.ready) >= room:
                    still.append(held)
                    continue
                if settled(held):
                    taken.ready.append(held)
                elif now - _settled_at(held, now) >= label_wait_s:
                    taken.ready.append(held)
                    taken.forced_labels += 1
                else:
                    still.append(held)
                    continue
                held.taken = True
            waiting.clear()
            waiting.extend(still)
        self._n -= len(taken.ready)
        self._more = len(taken.ready) >= room
        taken.ready.sort(key=lambda h: (h.partition, h.time_s))
        return taken

    def _forget(self, held: Held) -> None:
        if not held.taken:
            held.taken = True
            self._n -= 1

    def _trim(self) -> None:
        """Drop from the arrival queue what was taken or waits for labels now."""
        queue = self._by_arrival
        while queue and (queue[0].taken or queue[0].settled_at is not None):
            queue.popleft()


def _settled_at(held: Held, now: float) -> float:
    return now if held.settled_at is None else held.settled_at
