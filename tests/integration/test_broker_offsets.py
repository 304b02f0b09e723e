"""Offsets on the embedded broker: ListOffsets, Fetch high watermarks, timestamps, headers.

Tansu 0.6.0 answers ``ListOffsets(latest)`` with the base offset of the last record
batch plus one; the ``Fetch`` high watermark is right. ``streams.compat`` reads end
offsets from ``Fetch``. See docs/broker.md.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndTimestamp, TopicPartition

from streams.compat import fetch_end_offsets
from streams.harness import read_topics
from streams.kafka import KafkaConnection
from tests.integration.brokerkit import new_topic, read_from, send_batch, send_each

pytestmark = pytest.mark.integration

T0_MS = 1_522_540_800_000  # 2018-04-01T00:00:00Z, an event time in the handbook data


def _records(start: int, stop: int) -> list[tuple[bytes, bytes, int]]:
    return [(b"k%d" % i, b"v%d" % i, T0_MS + i * 1000) for i in range(start, stop)]


async def _offsets(
    conn: KafkaConnection, tp: TopicPartition, isolation_level: str = "read_uncommitted"
) -> tuple[int, int, int | None]:
    """(beginning, ListOffsets latest, Fetch high watermark) of one partition."""
    consumer = AIOKafkaConsumer(
        **conn.aiokafka_kwargs(), isolation_level=isolation_level, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, 0)
        await consumer.getmany(tp, timeout_ms=1000)
        return begin, end, consumer.highwater(tp)
    finally:
        await consumer.stop()


def test_list_offsets_latest_is_last_batch_base_plus_one_but_fetch_highwater_is_true_end(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn)
    tp = TopicPartition(topic, 0)
    singles = asyncio.run(send_each(tansu_conn, topic, _records(0, 5)))
    base = asyncio.run(send_batch(tansu_conn, topic, _records(5, 12)))
    assert singles == [0, 1, 2, 3, 4] and base == 5
    # Apache Kafka: (0, 12, 12). Tansu: latest = 5 + 1.
    assert asyncio.run(_offsets(tansu_conn, tp)) == (0, 6, 12)
    assert asyncio.run(_offsets(tansu_conn, tp, "read_committed")) == (0, 6, 12)


def test_list_offsets_latest_is_right_while_every_batch_holds_one_record(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn)
    asyncio.run(send_each(tansu_conn, topic, _records(0, 5)))
    assert asyncio.run(_offsets(tansu_conn, TopicPartition(topic, 0))) == (0, 5, 5)


def test_fetch_end_offsets_returns_the_true_end_of_each_partition(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, partitions=3)
    asyncio.run(send_batch(tansu_conn, topic, _records(0, 7), partition=0))
    asyncio.run(send_batch(tansu_conn, topic, _records(0, 3), partition=1))
    asyncio.run(send_batch(tansu_conn, topic, _records(3, 5), partition=1))
    tps = [TopicPartition(topic, p) for p in range(3)]
    ends = asyncio.run(fetch_end_offsets(tansu_conn.aiokafka_kwargs(), tps))
    assert ends == {tps[0]: 7, tps[1]: 5, tps[2]: 0}


def test_fetch_end_offsets_agrees_with_list_offsets_where_list_offsets_is_right(
    kafka_conn: KafkaConnection,
) -> None:
    # Runs on the configured broker too: on Apache Kafka the two always agree.
    topic = new_topic(kafka_conn, partitions=2)
    asyncio.run(send_each(kafka_conn, topic, _records(0, 4), partition=1))

    async def both() -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer = AIOKafkaConsumer(**kafka_conn.aiokafka_kwargs())
        await consumer.start()
        try:
            listed = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return listed, await fetch_end_offsets(kafka_conn.aiokafka_kwargs(), tps)

    listed, fetched = asyncio.run(both())
    assert listed == fetched == {TopicPartition(topic, 0): 0, TopicPartition(topic, 1): 4}


def test_a_consumer_reset_to_latest_starts_inside_the_last_batch(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn)
    asyncio.run(send_batch(tansu_conn, topic, _records(0, 4)))

    async def first_after_reset() -> list[int]:
        consumer = AIOKafkaConsumer(
            topic, **tansu_conn.aiokafka_kwargs(), auto_offset_reset="latest"
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=1500)
            return [r.offset for records in batch.values() for r in records]
        finally:
            await consumer.stop()

    # Apache Kafka: [] (the consumer waits for new records). Tansu: the tail of the
    # batch that was already there.
    assert asyncio.run(first_after_reset()) == [1, 2, 3]


def test_a_fetch_from_inside_a_batch_returns_the_rest_of_it(tansu_conn: KafkaConnection) -> None:
    # Committed offsets usually point inside a batch: resuming must not skip records.
    topic = new_topic(tansu_conn)
    asyncio.run(send_batch(tansu_conn, topic, _records(0, 5)))
    asyncio.run(send_batch(tansu_conn, topic, _records(5, 10)))
    got = asyncio.run(read_from(tansu_conn, topic, offset=7))
    assert [r.offset for r in got] == [7, 8, 9]
    got = asyncio.run(read_from(tansu_conn, topic, offset=2))
    assert [r.offset for r in got] == [2, 3, 4, 5, 6, 7, 8, 9]


def test_offsets_for_times_indexes_append_time_not_record_timestamps(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn)
    tp = TopicPartition(topic, 0)
    before_ms = int(time.time() * 1000) - 1
    asyncio.run(send_each(tansu_conn, topic, _records(0, 4)))

    async def lookup(ts: int) -> OffsetAndTimestamp | None:
        consumer = AIOKafkaConsumer(**tansu_conn.aiokafka_kwargs())
        await consumer.start()
        try:
            return (await consumer.offsets_for_times({tp: ts}))[tp]
        finally:
            await consumer.stop()

    # Event time of record 2: Kafka answers offset 2 (first record with CreateTime >=).
    # Tansu answers offset 0, stamped with the time the broker appended it.
    found = asyncio.run(lookup(T0_MS + 2000))
    assert found is not None and found.offset == 0 and found.timestamp >= before_ms
    # Later than every append: Kafka answers "none" (None); Tansu offset 0, timestamp -1.
    assert asyncio.run(lookup(int(time.time() * 1000) + 60_000)) == OffsetAndTimestamp(0, -1)


def test_records_keep_producer_timestamps_headers_keys_and_null_values(
    kafka_conn: KafkaConnection,
) -> None:
    topic = new_topic(kafka_conn)

    async def produce() -> None:
        producer = AIOKafkaProducer(**kafka_conn.aiokafka_kwargs(), linger_ms=5)
        await producer.start()
        try:
            await producer.send(
                topic, b"v0", key=b"k0", timestamp_ms=T0_MS, headers=[("trace", b"abc")]
            )
            await producer.send(topic, None, key=b"k1", timestamp_ms=T0_MS + 1)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
    got = asyncio.run(read_from(kafka_conn, topic))
    assert [(r.key, r.value, r.timestamp, r.timestamp_type) for r in got] == [
        (b"k0", b"v0", T0_MS, 0),  # 0 = CreateTime: the event time survives
        (b"k1", None, T0_MS + 1, 0),
    ]
    assert list(got[0].headers) == [("trace", b"abc")]


def test_read_topics_to_end_reads_past_the_first_record_of_the_last_batch(
    tansu_conn: KafkaConnection,
) -> None:
    # 23 batches of 450: ListOffsets says 9,901 (the last batch's base + 1), and the
    # reader's first poll returns 10,000 records: a read stopping at the listed end
    # would miss the last 350.
    topic = new_topic(tansu_conn)
    for start in range(0, 23 * 450, 450):
        asyncio.run(send_batch(tansu_conn, topic, _records(start, start + 450)))
    seen: list[int] = []
    asyncio.run(
        read_topics(
            tansu_conn, [topic], lambda _, r: seen.append(r.offset), lambda: False, to_end=True
        )
    )
    assert seen == list(range(23 * 450))
