"""Publish a planned workload at a chosen pace, recording each record's acknowledgement.

Records go out in per-partition batches (murmur2 of the key, like every producer of
the system); when the broker acknowledges a batch, each of its records is entered in
the :class:`~streams.chaos.truth.GroundTruth` with its offset (the batch's base offset
plus its place in the batch). A batch whose send fails is sent again, so a broker
that comes back gets every record eventually; a record sent twice that way is a
duplicate input, which the pipeline must dead-letter (the first copy is the one owed
a prediction).

The pace is records per second and may change while publishing (overload runs
double it for a while); ``None`` publishes as fast as the broker takes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.chaos.plan import Planned
from streams.chaos.truth import GroundTruth
from streams.kafka import KafkaConnection
from streams.publish import KeyPartitioner

logger = logging.getLogger(__name__)

#: Seconds between two sends of the open batches.
TICK_S = 0.05


@dataclass
class Pace:
    """Records per second (None: unpaced); faults may change it while publishing."""

    rate: float | None
    published: int = 0
    retried: int = 0
    failures: list[str] = field(default_factory=list)


async def publish_plan(
    conn: KafkaConnection,
    truth: GroundTruth,
    records: list[Planned],
    pace: Pace,
    on_tick: Callable[[int], None] | None = None,
    max_attempts: int = 20,
    gate: tuple[int, asyncio.Event] | None = None,
) -> None:
    """Publish ``records`` in order at ``pace``; return once every batch is settled.

    ``gate`` ``(n, event)`` holds publishing after the first ``n`` records until
    ``event`` is set (a run waits for its workers to be up before loading them).
    """
    producer = conn.bulk_producer("-chaos", max_request_size=1024 * 1024, request_timeout_ms=10_000)
    await producer.start()
    partitioner = KeyPartitioner()
    counts: dict[str, int] = {}
    for topic in truth.topics.values():
        counts[topic] = len(await producer.partitions_for(topic))
    in_flight: set[asyncio.Future[Any]] = set()
    retry: list[tuple[Planned, int]] = []

    async def send(slot: tuple[str, int], items: list[tuple[Planned, int]]) -> None:
        batch = producer.create_batch()
        sent: list[tuple[Planned, int]] = []
        for planned, attempt in items:
            if batch.append(key=planned.key, value=planned.value, timestamp=planned.timestamp_ms):
                sent.append((planned, attempt))
                continue
            await flush_one(slot, batch, sent)
            batch, sent = producer.create_batch(), [(planned, attempt)]
            if batch.append(key=planned.key, value=planned.value, timestamp=planned.timestamp_ms):
                continue
            raise ValueError(f"record {planned.index} does not fit in a batch")
        await flush_one(slot, batch, sent)

    async def flush_one(slot: tuple[str, int], batch: Any, sent: list[tuple[Planned, int]]) -> None:
        if not sent:
            return
        batch.close()
        try:
            fut = await producer.send_batch(batch, slot[0], partition=slot[1])
        except Exception as exc:  # the producer could not even queue it: try again later
            pace.failures.append(repr(exc))
            retry.extend((p, a + 1) for p, a in sent)
            return
        in_flight.add(fut)
        fut.add_done_callback(lambda f: settle(f, slot, sent))

    def settle(
        fut: asyncio.Future[Any], slot: tuple[str, int], sent: list[tuple[Planned, int]]
    ) -> None:
        in_flight.discard(fut)
        now = time.time()
        if fut.cancelled() or fut.exception() is not None:
            pace.failures.append(repr(None if fut.cancelled() else fut.exception()))
            retry.extend((p, a + 1) for p, a in sent if a + 1 < max_attempts)
            pace.retried += len(sent)
            return
        base = fut.result().offset
        for i, (planned, _) in enumerate(sent):
            truth.ack(planned, slot[1], base + i, now)

    def slot_of(planned: Planned) -> tuple[str, int]:
        topic = truth.topics[planned.role]
        n = counts[topic]
        return topic, (0 if planned.key is None else partitioner(planned.key, n))

    try:
        i, carry = 0, 0.0
        last = time.monotonic()
        while i < len(records) or retry or in_flight:
            now = time.monotonic()
            if pace.rate is None:
                allowed = len(records) - i
            else:
                carry += (now - last) * pace.rate
                allowed = int(carry)
                carry -= allowed
            last = now
            if gate is not None and not gate[1].is_set():
                allowed = min(allowed, max(gate[0] - i, 0))
                carry = 0.0
            open_batches: dict[tuple[str, int], list[tuple[Planned, int]]] = {}
            again, retry[:] = list(retry), []
            for planned, attempt in again:
                open_batches.setdefault(slot_of(planned), []).append((planned, attempt))
            for planned in records[i : i + allowed]:
                open_batches.setdefault(slot_of(planned), []).append((planned, 0))
            i = min(i + allowed, len(records))
            pace.published = i
            for slot, items in open_batches.items():
                await send(slot, items)
            if on_tick is not None:
                on_tick(i)
            if pace.rate is None and in_flight:
                await asyncio.wait(set(in_flight), return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(TICK_S)
    finally:
        await producer.stop()
