"""Watch a fault run from outside: its outputs as they arrive, and its processes.

:class:`Outputs` collects every prediction, feature vector and dead letter read back
(each copy, with the wall time it was read), and is fed by :func:`read_topics` while
the run goes on. :class:`Sampler` reads the resident memory, open files and threads of
the run's processes from ``/proc`` once a second, with the backlog at that moment.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.features import FEATURE_NAMES

#: Positions of the count features in a feature vector.
COUNT_FEATURES = tuple(i for i, name in enumerate(FEATURE_NAMES) if "_NB_TX_" in name)


@dataclass
class Outputs:
    """What the pipeline wrote, as read back."""

    predictions_topic: str
    features_topic: str
    dead_letters_topic: str
    predictions: Counter[str] = field(default_factory=Counter)
    first_prediction_at: dict[str, float] = field(default_factory=dict)
    #: Distinct scoring times of each id's prediction copies: copies that share one
    #: are the same record written twice (a producer retry), not a second scoring.
    scored_times: dict[str, set[str]] = field(default_factory=dict)
    #: Count features of every feature vector copy, by transaction id.
    counts: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)
    #: Dead letters by (source topic, partition, offset): reasons of every copy.
    dead: dict[tuple[str, int, int], list[str]] = field(default_factory=dict)
    first_dead_at: dict[tuple[str, int, int], float] = field(default_factory=dict)
    dead_ids: dict[str, list[str]] = field(default_factory=dict)

    def on_message(self, topic: str, record: Any) -> None:
        """Take one record read from an output topic."""
        now = time.time()
        event = json.loads(record.value)
        if topic == self.predictions_topic:
            tx_id = event["transaction_id"]
            self.predictions[tx_id] += 1
            self.first_prediction_at.setdefault(tx_id, now)
            self.scored_times.setdefault(tx_id, set()).add(str(event.get("scored_time")))
        elif topic == self.features_topic:
            values = event["values"]
            copies = self.counts.setdefault(event["transaction_id"], [])
            copies.append(tuple(values[i] for i in COUNT_FEATURES))
        elif topic == self.dead_letters_topic:
            where = (event["source_topic"], event["source_partition"], event["source_offset"])
            self.dead.setdefault(where, []).append(event["reason"])
            self.first_dead_at.setdefault(where, now)
            tx_id = event.get("transaction_id")
            if tx_id:
                self.dead_ids.setdefault(tx_id, []).append(event["reason"])

    def outcomes(self) -> int:
        """Predicted ids plus dead-lettered input records."""
        return len(self.predictions) + len(self.dead)


@dataclass
class Sample:
    """One look at the run's processes."""

    at: float
    rss_bytes: int
    open_files: int
    threads: int
    backlog: int


def proc_stats(pid: int) -> tuple[int, int, int] | None:
    """(resident bytes, open files, threads) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            status = fh.read()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    rss = threads = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, fds, threads


@dataclass
class Sampler:
    """Samples of the worker processes: the largest one's RSS, files and threads.

    Processes named in ``watch`` are also followed one by one (for the soak's trends).
    """

    samples: list[Sample] = field(default_factory=list)
    #: Per watched process: (time, RSS bytes, open files, threads) samples.
    series: dict[str, list[tuple[float, int, int, int]]] = field(default_factory=dict)

    def sample(self, pids: list[int], backlog: int, watch: Mapping[str, int] | None = None) -> None:
        """Record the largest RSS, files and threads among ``pids`` right now."""
        for name, pid in (watch or {}).items():
            one = proc_stats(pid)
            if one is not None:
                self.series.setdefault(name, []).append((time.time(), *one))
        stats = [s for s in (proc_stats(pid) for pid in pids) if s is not None]
        if not stats:
            self.samples.append(Sample(time.time(), 0, 0, 0, backlog))
            return
        self.samples.append(
            Sample(
                time.time(),
                max(s[0] for s in stats),
                max(s[1] for s in stats),
                max(s[2] for s in stats),
                backlog,
            )
        )

    @property
    def peak_rss_bytes(self) -> int:
        """Largest resident memory of one worker seen."""
        return max((s.rss_bytes for s in self.samples), default=0)

    @property
    def max_backlog(self) -> int:
        """Most acknowledged inputs without an outcome at one time."""
        return max((s.backlog for s in self.samples), default=0)
