"""Event-to-prediction latency at fixed offered rates: through the broker, and in process.

**End to end** (a worker process, the broker): a paced producer hands each
transaction to the client at its due time and notes the wall-clock time; a reader
notes when its prediction arrives. From the events themselves the time is split:
``in`` (sent -> the worker's ``ingest_time``: the broker hop and the wait for a
fetch), ``worker`` (``ingest_time`` -> the prediction's ``scored_time``: both stages,
*including* the repartition hop through `txn-by-terminal`), ``out`` (``scored_time``
-> read back: encoding, the send and the broker hop). ``terminal`` is ``scored_time``
minus the time the enriched transaction became readable on `txn-by-terminal` (read
by the same reader): the terminal side without the repartition hop.

**In process** (no broker): the worker's stages
(:class:`~streams.bench.inprocess.InProcessWorker`) take arrivals paced on the wall
clock in micro-batches (everything arrived, up to the batch size, after a linger from
the first); latency is the time a transaction's prediction is encoded minus its
arrival. This is the time spent in our code, queueing for it included, without
broker hops or the Faust runtime.

Labels ride along in event-time order (offered messages are about twice the rate).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from streams.bench.inprocess import InProcessWorker
from streams.bench.load import Messages, publish_paced
from streams.bench.report import Table, ms, percentiles, rate
from streams.harness import Harness, read_topics
from streams.ingest import WATERMARK_KEY
from streams.kafka import KafkaConnection
from streams.scoring import ModelSet
from streams.settings import StreamsSettings

QS = (50, 99, 99.9)


def take(messages: Messages, start: int, transactions: int) -> tuple[Messages, int]:
    """The next ``transactions`` transactions from ``start`` (with their labels)."""
    out = Messages(messages.topics)
    i, n_tx = start, 0
    while i < len(messages) and n_tx < transactions:
        out.keys.append(messages.keys[i])
        out.values.append(messages.values[i])
        out.timestamps.append(messages.timestamps[i])
        out.kinds.append(messages.kinds[i])
        out.ids.append(messages.ids[i])
        n_tx += messages.kinds[i]
        i += 1
    return out, i


@dataclass
class LatencyRun:
    """Latencies (seconds) of one offered rate."""

    where: str
    offered: float
    achieved: float
    transactions: int
    e2e: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    late_s: float = 0.0
    note: str = ""

    @property
    def predicted(self) -> int:
        """Transactions whose prediction was seen."""
        return len(self.e2e)

    @property
    def sustained(self) -> bool:
        """Every prediction came, the rate was offered, and no backlog was left."""
        return (
            self.predicted >= self.transactions
            and self.achieved >= 0.95 * self.offered
            and self.late_s <= max(1.0, 0.1 * self.transactions / self.offered)
        )


@dataclass
class _Seen:
    arrival: dict[str, float] = field(default_factory=dict)
    scored: dict[str, float] = field(default_factory=dict)
    ingest: dict[str, float] = field(default_factory=dict)
    enriched_arrival: dict[str, float] = field(default_factory=dict)
    stop: bool = False


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def worker_latency(
    conn: KafkaConnection,
    harness: Harness,
    messages: Messages,
    rates: list[float],
    seconds: float,
    drain_s: float,
    start: int = 0,
    should_skip: Callable[[float, list[LatencyRun]], str | None] | None = None,
) -> list[LatencyRun]:
    """Offer each rate for ``seconds`` to the harness's running worker, in order.

    ``should_skip(rate, done)`` may return a reason to leave a rate out (e.g. a lower
    rate was not sustained).
    """
    topics = harness.topics
    seen = _Seen()
    pred_topic, enriched_topic = topics.predictions.name, topics.txn_by_terminal.name

    def on_message(topic: str, record: Any) -> None:
        now = time.time()
        if topic == pred_topic:
            tx_id = record.key.decode()
            if tx_id not in seen.arrival:
                seen.arrival[tx_id] = now
                seen.scored[tx_id] = _ts(json.loads(record.value)["scored_time"])
        elif record.key != WATERMARK_KEY:
            event = json.loads(record.value)
            tx_id = event["transaction"]["transaction_id"]
            if tx_id not in seen.ingest:
                seen.ingest[tx_id] = _ts(event["ingest_time"])
                seen.enriched_arrival[tx_id] = now

    reader = asyncio.create_task(
        read_topics(
            conn,
            [pred_topic, enriched_topic],
            on_message,
            lambda: seen.stop,
            idle_timeout_s=3600.0,
        )
    )
    runs: list[LatencyRun] = []
    try:
        for offered in rates:
            reason = should_skip(offered, runs) if should_skip is not None else None
            if reason is not None:
                runs.append(LatencyRun("worker", offered, 0.0, 0, note=reason))
                continue
            part, start = take(messages, start, int(offered * seconds))
            if part.transactions == 0:
                break
            paced = await publish_paced(
                conn, part, offered, should_stop=lambda: bool(harness.crashed())
            )
            ids = part.transaction_ids()
            last_sent = max(paced.sent_at.values(), default=time.time())
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline and not harness.crashed():
                if all(i in seen.arrival for i in ids):
                    break
                await asyncio.sleep(0.05)
            runs.append(
                _worker_run(offered, paced.achieved_rate, ids, paced.sent_at, seen, last_sent)
            )
            if harness.crashed():
                break
    finally:
        seen.stop = True
        await reader
    return runs


def _worker_run(
    offered: float,
    achieved: float,
    ids: list[str],
    sent_at: dict[str, float],
    seen: _Seen,
    last_sent: float,
) -> LatencyRun:
    run = LatencyRun("worker", offered, achieved, len(ids))
    parts: dict[str, list[float]] = {"in": [], "worker": [], "out": [], "terminal": []}
    last_arrival = last_sent
    for tx_id in ids:
        arrival, sent = seen.arrival.get(tx_id), sent_at.get(tx_id)
        if arrival is None or sent is None:
            continue
        last_arrival = max(last_arrival, arrival)
        run.e2e.append(arrival - sent)
        scored, ingest = seen.scored.get(tx_id), seen.ingest.get(tx_id)
        visible = seen.enriched_arrival.get(tx_id)
        if scored is not None:
            parts["out"].append(arrival - scored)
        if ingest is not None:
            parts["in"].append(ingest - sent)
            if scored is not None:
                parts["worker"].append(scored - ingest)
        if visible is not None and scored is not None:
            parts["terminal"].append(scored - visible)
    run.parts = parts
    run.late_s = last_arrival - last_sent
    if run.predicted < run.transactions:
        run.note = f"{run.transactions - run.predicted:,} predictions missing after the drain wait"
    return run


def inprocess_latency(
    settings: StreamsSettings,
    models: ModelSet,
    messages: Messages,
    offered: float,
    seconds: float,
    linger_s: float = 0.001,
    max_batch: int = 500,
    give_up_s: float = 5.0,
) -> LatencyRun:
    """Offer ``offered`` transactions per second to the stages in this process."""
    part, _ = take(messages, 0, int(offered * seconds))
    worker = InProcessWorker(settings, models)
    n = len(part)
    tx_index = np.cumsum(part.kinds) - np.asarray(part.kinds)  # transactions before each
    arrivals = (tx_index / offered).tolist()  # a label arrives with the next transaction
    due = {tx_id: arrivals[i] for i, tx_id in enumerate(part.ids) if part.kinds[i] == 1}
    latencies: list[float] = []
    clock = time.perf_counter
    t0 = clock()
    i = 0
    behind = 0.0
    while i < n:
        now = clock() - t0
        first = arrivals[i]
        if now < first + linger_s:
            time.sleep(min(first + linger_s - now, 0.0005))
            continue
        j = bisect.bisect_right(arrivals, now, lo=i)
        # at most max_batch transactions per batch
        limit = i
        count = 0
        while limit < j and count < max_batch:
            count += part.kinds[limit]
            limit += 1
        records = worker.records(part, i, limit)
        labels = [r for r in records if r.topic == part.topics[1]]
        txs = [r for r in records if r.topic == part.topics[0]]
        outputs = worker.process(labels, txs)
        done = clock() - t0
        for o in outputs:
            latencies.append(done - due[(o.key or b"").decode()])
        behind = done - arrivals[limit - 1]
        i = limit
        if behind > give_up_s:
            break
    for o in worker.release():
        latencies.append(clock() - t0 - due[(o.key or b"").decode()])
    elapsed = clock() - t0
    achieved = (part.transactions if i >= n else int(tx_index[i])) / max(elapsed, 1e-9)
    run = LatencyRun("in process", offered, min(achieved, offered), part.transactions, latencies)
    run.late_s = max(0.0, behind)
    if i < n:
        run.note = f"stopped: {behind:.1f} s behind the arrivals"
    return run


def latency_table(runs: list[LatencyRun]) -> Table:
    """Percentiles per run, with the split of the end-to-end time."""
    table = Table(
        "Event-to-prediction latency at fixed offered rates",
        [
            "where",
            "offered tx/s",
            "achieved",
            "predicted",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "in p50/p99",
            "worker p50/p99",
            "terminal p50/p99",
            "out p50/p99",
            "sustained",
        ],
    )
    for run in runs:
        p = percentiles(run.e2e, QS)

        def split(name: str, run: LatencyRun = run) -> str:
            values = run.parts.get(name)
            if not values:
                return "-"
            a, b = percentiles(values, (50, 99))
            return f"{ms(a)} / {ms(b)}"

        sustained = "yes" if run.sustained else ("-" if not run.transactions else "no")
        if run.note:
            sustained += f" ({run.note})"
        table.add(
            run.where,
            rate(run.offered),
            rate(run.achieved) if run.transactions else "-",
            f"{run.predicted:,}/{run.transactions:,}",
            ms(p[0]),
            ms(p[1]),
            ms(p[2]),
            split("in"),
            split("worker"),
            split("terminal"),
            split("out"),
            sustained,
        )
    return table
