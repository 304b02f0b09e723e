"""Replay a transactions file to Kafka in event-time order, with delayed labels.

Transactions go to the transactions topic keyed by customer; each one's label goes to
the labels topic keyed by terminal, ``label_delay`` of event time later (or at the
file's own ``label_time`` column). Both are merged into one event-time-ordered
sequence, labels first on equal times, and published by one producer: when a
transaction of time ``t`` is published, every label with label time ``<= t`` already
has been. Message timestamps are event times.

Speed: ``speed`` event seconds per wall second (``1000`` replays a day in 86 s), or
``None`` for as fast as the broker takes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from producers.frames import load_transactions
from producers.simulation.emit import parse_delay
from streams import metrics
from streams.codec import encode
from streams.events import Label, Transaction
from streams.kafka import KafkaConnection
from streams.publish import BatchPublisher

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ReplayConfig:
    """What to replay and how fast.

    ``label_delay`` is a delay spec (``7d``, ``1d..14d``, ``5d+exp:1d``; see
    :func:`producers.simulation.parse_delay`), drawn per event with ``seed``; None
    publishes no labels. A frame with its own ``label_time`` column keeps it.
    """

    transactions_topic: str = "transactions"
    labels_topic: str = "labels"
    label_delay: str | None = "7d"
    seed: int = 0
    speed: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    linger_ms: int = 20


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay published."""

    transactions: int
    labels: int
    wall_s: float
    first_event: datetime | None
    last_event: datetime | None

    @property
    def messages_per_s(self) -> float:
        """Published messages (transactions and labels) per wall second."""
        return (self.transactions + self.labels) / self.wall_s if self.wall_s > 0 else 0.0


def with_label_times(frame: pd.DataFrame, label_delay: str | None, seed: int = 0) -> pd.DataFrame:
    """The frame with a ``label_time`` column (kept if present; none without labels)."""
    if "label_time" in frame or label_delay is None or "is_fraud" not in frame:
        return frame
    model = parse_delay(label_delay)
    rng = np.random.default_rng(seed)
    delays = np.asarray(model(rng, frame["is_fraud"].to_numpy(dtype=bool)), dtype=np.float64)
    seconds = np.maximum(np.rint(delays), 0).astype("int64")
    out = frame.copy()
    out["label_time"] = frame["event_time"] + pd.to_timedelta(seconds, unit="s")
    return out


def schedule(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Publication order of a frame's transactions and labels.

    Returns ``(kinds, rows)``: kind 0 is a label, 1 a transaction, in event-time order
    with labels first on equal times. Rows without a label time publish no label.
    """
    tx_ns = frame["event_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    n = len(frame)
    if "label_time" in frame:
        label_ns = frame["label_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        has_label = ~pd.isna(frame["label_time"]).to_numpy()
    else:
        label_ns = np.zeros(n, dtype=np.int64)
        has_label = np.zeros(n, dtype=bool)
    label_rows = np.flatnonzero(has_label)
    times = np.concatenate([label_ns[label_rows], tx_ns])
    kinds = np.concatenate([np.zeros(len(label_rows), np.int8), np.ones(n, np.int8)])
    rows = np.concatenate([label_rows, np.arange(n)])
    order = np.lexsort((kinds, times))
    return kinds[order], rows[order]


def _count(counted: tuple[int, int], n_tx: int, n_label: int, when: datetime) -> tuple[int, int]:
    """Add what was published since the last call to the producer metrics."""
    metrics.PRODUCED.labels("transaction").inc(n_tx - counted[0])
    metrics.PRODUCED.labels("label").inc(n_label - counted[1])
    if n_tx:
        metrics.PRODUCER_EVENT_TIME.set(when.timestamp())
    return n_tx, n_label


async def replay(
    conn: KafkaConnection,
    source: Path | pd.DataFrame,
    config: ReplayConfig,
    progress: ProgressFn | None = None,
) -> ReplaySummary:
    """Publish a transactions file (or frame) and its delayed labels."""
    frame = (
        source
        if isinstance(source, pd.DataFrame)
        else load_transactions(source, config.start, config.end)
    )
    frame = with_label_times(frame, config.label_delay, config.seed)
    kinds, rows = schedule(frame)
    ids = frame["transaction_id"].tolist()
    times = frame["event_time"].tolist()
    customers = frame["customer_id"].tolist()
    terminals = frame["terminal_id"].tolist()
    amounts = frame["amount"].tolist()
    frauds = frame["is_fraud"].tolist() if "is_fraud" in frame else None
    label_times = frame["label_time"].tolist() if "label_time" in frame else []
    event_ns = frame["event_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)

    producer = conn.bulk_producer("-replay", linger_ms=config.linger_ms)
    await producer.start()
    publisher = BatchPublisher(producer)
    n_tx = n_label = 0
    counted = (0, 0)
    last_tx = times[0] if times else datetime.now(UTC)
    total = len(kinds)
    started = time.monotonic()
    t0_ns = int(event_ns.min()) if len(event_ns) else 0
    try:
        for i, (kind, row) in enumerate(zip(kinds.tolist(), rows.tolist(), strict=True)):
            if kind == 1:
                tx = Transaction(
                    transaction_id=ids[row],
                    event_time=times[row],
                    customer_id=customers[row],
                    terminal_id=terminals[row],
                    amount=amounts[row],
                )
                when = last_tx = times[row]
                await publisher.publish(
                    config.transactions_topic,
                    customers[row].encode(),
                    encode(tx),
                    int(when.timestamp() * 1000),
                )
                n_tx += 1
            else:
                assert frauds is not None
                when = label_times[row]
                label = Label(
                    transaction_id=ids[row],
                    customer_id=customers[row],
                    terminal_id=terminals[row],
                    is_fraud=bool(frauds[row]),
                    transaction_time=times[row],
                    label_time=when,
                )
                await publisher.publish(
                    config.labels_topic,
                    terminals[row].encode(),
                    encode(label),
                    int(when.timestamp() * 1000),
                )
                n_label += 1
            if config.speed is not None:
                due = (when.value - t0_ns) / 1e9 / config.speed
                lag = due - (time.monotonic() - started)
                if lag > 0.005:
                    await publisher.flush()
                    await asyncio.sleep(lag)
            if (i & 0x3FF) == 0:
                counted = _count(counted, n_tx, n_label, last_tx)
                if progress is not None and (i & 0x3FFF) == 0:
                    progress(i, total)
        await publisher.flush()
    finally:
        await producer.stop()
        _count(counted, n_tx, n_label, last_tx)
    if progress is not None:
        progress(total, total)
    return ReplaySummary(
        transactions=n_tx,
        labels=n_label,
        wall_s=time.monotonic() - started,
        first_event=times[0] if times else None,
        last_event=times[-1] if times else None,
    )
