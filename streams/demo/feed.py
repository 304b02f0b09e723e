"""Publish a demo's stream at a steady pace, with a few malformed messages mixed in.

Transactions go out at ``rate`` a wall second (event-time order, each label at its
label time, like :mod:`producers.replay`), in small chunks: every chunk is flushed to
the broker and the moment it was handed over is recorded for its transactions, so the
dashboard measures latency from there. When the pipeline falls behind by more than
``max_behind_s`` seconds of traffic, publishing waits: the demo then runs at the
pipeline's own pace instead of queueing without bound.

Every ``bad_every`` transactions, one malformed message (broken JSON, a negative
amount, a missing field...) goes to the transactions topic too; the worker must
dead-letter each with its reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.codec import encode
from streams.demo.state import DemoState
from streams.demo.stream import DemoStream
from streams.events import Label, Transaction
from streams.kafka import KafkaConnection
from streams.publish import BatchPublisher

#: Seconds between chunks.
TICK_S = 0.02


def malformed(n: int, event_time: str) -> bytes:
    """The ``n``-th malformed message: one of several kinds, in turn.

    Examples
    --------
    >>> malformed(0, "2018-04-01T10:00:00Z")[-12:]  # cut short: not JSON
    b'r-0", "termi'
    >>> json.loads(malformed(1, "2018-04-01T10:00:00Z"))["amount"]
    -12.5
    """
    good = {
        "transaction_id": f"bad-{n}",
        "event_time": event_time,
        "customer_id": f"bad-customer-{n % 7}",
        "terminal_id": "bad-terminal",
        "amount": 12.5,
    }
    kind = n % 5
    if kind == 0:
        return json.dumps(good).encode()[:-40]
    if kind == 1:
        return json.dumps({**good, "amount": -12.5}).encode()
    if kind == 2:
        return json.dumps({k: v for k, v in good.items() if k != "terminal_id"}).encode()
    if kind == 3:
        return json.dumps({**good, "schema_version": 7}).encode()
    return json.dumps({**good, "currency": "euros"}).encode()


@dataclass
class Feed:
    """The demo's producer; :meth:`run` publishes the whole stream or stops early."""

    conn: KafkaConnection
    stream: DemoStream
    state: DemoState
    transactions_topic: str
    labels_topic: str
    rate: float
    bad_every: int = 1000
    max_behind_s: float = 1.0
    clock: Callable[[], float] = time.monotonic

    async def run(self, stop: asyncio.Event, first_timeout_s: float = 180.0) -> bool:
        """Publish until the stream ends (True) or ``stop`` is set (False).

        The first transaction goes out alone and the rest wait for its prediction, so
        the pipeline's start-up (group join, model loading) is not counted as latency
        of the whole first burst.
        """
        producer = self.conn.bulk_producer("-demo")
        await producer.start()
        try:
            publisher = BatchPublisher(producer)
            return await self._publish(publisher, stop, first_timeout_s)
        finally:
            await producer.stop()

    async def _publish(
        self, publisher: BatchPublisher, stop: asyncio.Event, first_timeout_s: float
    ) -> bool:
        kinds, rows = self.stream.kinds.tolist(), self.stream.rows.tolist()
        frame = self.stream.frame
        ids = frame["transaction_id"].tolist()
        times = frame["event_time"].tolist()
        customers = frame["customer_id"].tolist()
        terminals = frame["terminal_id"].tolist()
        amounts = frame["amount"].tolist()
        frauds = frame["is_fraud"].tolist() if self.stream.labeled else []
        label_times = frame["label_time"].tolist() if "label_time" in frame else []
        i, n = 0, len(kinds)
        budget = 1.0  # transactions allowed now: one, then wait for its prediction
        last = self.clock()
        burst = max(self.rate * 0.1, 20.0)
        waiting_first = True
        first_deadline = last + first_timeout_s
        while i < n and not stop.is_set():
            if waiting_first and self.state.sent:
                if self.state.predicted == 0:
                    if self.clock() > first_deadline:
                        raise TimeoutError("no prediction came back: see the worker's log")
                    await asyncio.sleep(TICK_S)
                    continue
                waiting_first = False
                last = self.clock()
                self.state.started = last
                self.state.step("streaming", last)
            now = self.clock()
            if not waiting_first:
                budget = min(budget + (now - last) * self.rate, burst)
            last = now
            behind = self.state.sent - self.state.predicted
            if budget < 1.0 or behind > self.rate * self.max_behind_s:
                await asyncio.sleep(TICK_S)
                continue
            sent: list[int] = []
            labels: list[int] = []
            while i < n and budget >= 1.0:
                row = rows[i]
                if kinds[i] == 1:
                    tx = Transaction(
                        transaction_id=ids[row],
                        event_time=times[row],
                        customer_id=customers[row],
                        terminal_id=terminals[row],
                        amount=amounts[row],
                    )
                    await publisher.publish(
                        self.transactions_topic,
                        customers[row].encode(),
                        encode(tx),
                        int(times[row].timestamp() * 1000),
                    )
                    sent.append(row)
                    budget -= 1.0
                    if self.bad_every and (self.state.sent + len(sent)) % self.bad_every == 0:
                        await publisher.publish(
                            self.transactions_topic,
                            f"bad-{self.state.bad_sent}".encode(),
                            malformed(self.state.bad_sent, times[row].isoformat()),
                        )
                        self.state.bad_sent += 1
                else:
                    label = Label(
                        transaction_id=ids[row],
                        customer_id=customers[row],
                        terminal_id=terminals[row],
                        is_fraud=bool(frauds[row]),
                        transaction_time=times[row],
                        label_time=label_times[row],
                    )
                    await publisher.publish(
                        self.labels_topic,
                        terminals[row].encode(),
                        encode(label),
                        int(label_times[row].timestamp() * 1000),
                    )
                    labels.append(row)
                i += 1
            # Recorded before the flush: a prediction may come back before the acks do.
            self.state.on_sent(sent, self.clock())
            self.state.on_labels_sent(labels)
            await publisher.flush()
        await publisher.flush()
        return i >= n
