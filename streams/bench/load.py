"""Benchmark input: the transactions, their labels, encoded once, published fast or paced.

Messages are encoded before any clock starts (the same :mod:`streams.codec` the
producers use), so publishing costs only the client's own work. Order and keys are
those of :mod:`producers.replay`: event-time order, labels ``label_delay`` after
their transaction, transactions keyed by customer and labels by terminal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from aiokafka import AIOKafkaProducer

from producers.frames import load_transactions
from producers.replay import schedule, with_label_times
from producers.simulation import SimulationConfig, simulate_frame
from streams.codec import encode
from streams.events import Label, Transaction
from streams.kafka import KafkaConnection
from streams.publish import BatchPublisher, KeyPartitioner


@dataclass
class Messages:
    """Encoded messages in publication order.

    ``kinds[i]`` is 1 for a transaction and 0 for a label; ``ids[i]`` is the
    transaction id either way.
    """

    topics: tuple[str, str]
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def transactions(self) -> int:
        """How many of the messages are transactions."""
        return sum(self.kinds)

    def transaction_ids(self) -> list[str]:
        """Ids of the transactions, in publication order."""
        return [i for i, k in zip(self.ids, self.kinds, strict=True) if k == 1]


def load_frame(path: Path | None, rows: int | None = None) -> tuple[pd.DataFrame, str]:
    """The benchmark's transactions (the first ``rows`` in event time) and where from.

    ``path`` None means a synthetic stream (seeded), for machines without the
    handbook file.
    """
    if path is not None:
        frame = load_transactions(path)
        source = f"{path.name} ({len(frame):,} rows)"
    else:
        days = 30 if rows is None else max(2, min(183, rows // 9000 + 2))
        config = SimulationConfig(n_customers=5000, n_terminals=10000, days=days, seed=0)
        from producers.frames import normalize

        frame = normalize(simulate_frame(config))
        source = f"synthetic stream (seed 0, {days} days, {len(frame):,} rows)"
    if rows is not None:
        frame = frame.iloc[:rows].reset_index(drop=True)
    return frame, source


def encode_messages(
    frame: pd.DataFrame,
    transactions_topic: str,
    labels_topic: str,
    label_delay: str | None = "7d",
    seed: int = 0,
) -> Messages:
    """Encode a frame's transactions and labels in publication order."""
    frame = with_label_times(frame, label_delay, seed)
    kinds, rows = schedule(frame)
    ids = frame["transaction_id"].tolist()
    times = frame["event_time"].tolist()
    customers = frame["customer_id"].tolist()
    terminals = frame["terminal_id"].tolist()
    amounts = frame["amount"].tolist()
    frauds = frame["is_fraud"].tolist() if "is_fraud" in frame else None
    label_times = frame["label_time"].tolist() if "label_time" in frame else []
    out = Messages((transactions_topic, labels_topic))
    for kind, row in zip(kinds.tolist(), rows.tolist(), strict=True):
        if kind == 1:
            when = times[row]
            value = encode(
                Transaction(
                    transaction_id=ids[row],
                    event_time=when,
                    customer_id=customers[row],
                    terminal_id=terminals[row],
                    amount=amounts[row],
                )
            )
            key = customers[row].encode()
        else:
            assert frauds is not None
            when = label_times[row]
            value = encode(
                Label(
                    transaction_id=ids[row],
                    customer_id=customers[row],
                    terminal_id=terminals[row],
                    is_fraud=bool(frauds[row]),
                    transaction_time=times[row],
                    label_time=when,
                )
            )
            key = terminals[row].encode()
        out.keys.append(key)
        out.values.append(value)
        out.timestamps.append(int(when.timestamp() * 1000))
        out.kinds.append(kind)
        out.ids.append(ids[row])
    return out


def _producer(conn: KafkaConnection, linger_ms: int) -> AIOKafkaProducer:
    return conn.bulk_producer("-bench", linger_ms=linger_ms)


async def publish_all(conn: KafkaConnection, messages: Messages) -> float:
    """Publish every message as fast as the broker takes them; return the seconds taken."""
    producer = _producer(conn, linger_ms=20)
    await producer.start()
    started = time.perf_counter()
    try:
        publisher = BatchPublisher(producer)
        tx_topic, label_topic = messages.topics
        for key, value, ts, kind in zip(
            messages.keys, messages.values, messages.timestamps, messages.kinds, strict=True
        ):
            await publisher.publish(tx_topic if kind == 1 else label_topic, key, value, ts)
        await publisher.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


@dataclass
class PacedResult:
    """What a paced publication did."""

    sent_at: dict[str, float]
    """Wall-clock time (``time.time()``) each transaction was handed to the broker client."""
    offered_rate: float
    achieved_rate: float
    seconds: float


async def publish_paced(
    conn: KafkaConnection,
    messages: Messages,
    rate: float,
    tick_s: float = 0.001,
    should_stop: Callable[[], bool] | None = None,
) -> PacedResult:
    """Publish transactions at ``rate`` per second (labels ride along in order).

    Every ``tick_s`` the messages that are due are appended to per-partition batches
    and those batches are sent at once (acknowledgements are awaited in the
    background), so the time a transaction is sent is its due time plus at most a tick,
    unless the client cannot keep up. Returns when all are sent and acknowledged.
    """
    producer = _producer(conn, linger_ms=0)
    await producer.start()
    partitioner = KeyPartitioner()
    counts: dict[str, int] = {}
    for topic in messages.topics:
        counts[topic] = len(await producer.partitions_for(topic))
    sent_at: dict[str, float] = {}
    pending: list[asyncio.Future[object]] = []
    tx_topic, label_topic = messages.topics
    n = len(messages)
    i = tx_done = 0
    started = time.perf_counter()
    try:
        while i < n:
            if should_stop is not None and should_stop():
                break
            due_tx = int((time.perf_counter() - started) * rate) + 1
            batches: dict[tuple[str, int], object] = {}
            ids_now: list[str] = []
            while i < n and (tx_done < due_tx or messages.kinds[i] == 0):
                kind = messages.kinds[i]
                topic = tx_topic if kind == 1 else label_topic
                key = messages.keys[i]
                partition = partitioner(key, counts[topic])
                batch = batches.get((topic, partition))
                if batch is None:
                    batch = batches[(topic, partition)] = producer.create_batch()
                if (
                    batch.append(  # type: ignore[attr-defined]
                        key=key, value=messages.values[i], timestamp=messages.timestamps[i]
                    )
                    is None
                ):
                    break  # full: send what we have, the rest goes next tick
                if kind == 1:
                    ids_now.append(messages.ids[i])
                    tx_done += 1
                i += 1
            now = time.time()
            for (topic, partition), batch in batches.items():
                batch.close()  # type: ignore[attr-defined]
                pending.append(await producer.send_batch(batch, topic, partition=partition))
            for tx_id in ids_now:
                sent_at[tx_id] = now
            if len(pending) > 256:
                done = [f for f in pending if f.done()]
                for f in done:
                    f.result()
                pending = [f for f in pending if not f.done()]
            await asyncio.sleep(tick_s)
        seconds = time.perf_counter() - started
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return PacedResult(sent_at, rate, tx_done / seconds if seconds > 0 else 0.0, seconds)
