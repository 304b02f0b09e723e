"""Clients other than aiokafka against the embedded broker: librdkafka and kafka-python.

confluent-kafka's wheel bundles a recent librdkafka, which works as producer
(every compression codec, idempotence) and as group consumer. Debian's kcat
(librdkafka 2.0.2) cannot parse Tansu's ApiVersions response; see docs/broker.md.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as RdTopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPythonTopicPartition

from streams.kafka import KafkaConnection
from tests.integration.brokerkit import new_topic

pytestmark = pytest.mark.integration

T0_MS = 1_522_540_800_000


def _produce(
    bootstrap: str, topic: str, options: dict[str, object], n: int, partitions: int = 1
) -> None:
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, **options})
    for i in range(n):
        producer.produce(
            topic,
            value=b"v%d" % i,
            key=b"k%d" % i,
            partition=i % partitions,
            timestamp=T0_MS + i,
            headers=[("n", str(i).encode())],
            on_delivery=delivered,
        )
    assert producer.flush(15) == 0
    assert errors == []


def _read_assigned(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, int, object]]:
    """Read partition 0 from the start with a librdkafka consumer outside any group."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    try:
        consumer.assign([RdTopicPartition(topic, 0, 0)])
        got: list[tuple[bytes, int, object]] = []
        deadline = time.monotonic() + 20
        while len(got) < n and time.monotonic() < deadline:
            msg = consumer.poll(0.3)
            if msg is not None and msg.error() is None:
                got.append((msg.value(), msg.timestamp()[1], msg.headers()))
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_producer_and_consumer_work_with_every_codec(
    tansu_conn: KafkaConnection, codec: str
) -> None:
    topic = new_topic(tansu_conn)
    _produce(tansu_conn.bootstrap_servers, topic, {"compression.type": codec}, 5)
    got = _read_assigned(tansu_conn.bootstrap_servers, topic, 5)
    assert got == [(b"v%d" % i, T0_MS + i, [("n", str(i).encode())]) for i in range(5)]


def test_librdkafka_group_consumer_reads_commits_and_sees_list_offsets_defect(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, partitions=2)
    _produce(tansu_conn.bootstrap_servers, topic, {"enable.idempotence": True}, 12, 2)
    consumer = Consumer(
        {
            "bootstrap.servers": tansu_conn.bootstrap_servers,
            "group.id": f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # librdkafka asks for 45 s by default: a ~23 s first join on Tansu.
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 300,
        }
    )
    try:
        consumer.subscribe([topic])
        got: dict[int, list[bytes]] = {0: [], 1: []}
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < 12 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got[msg.partition()].append(msg.value())
        consumer.commit(asynchronous=False)
        tps = [RdTopicPartition(topic, p) for p in (0, 1)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        listed = {p: consumer.get_watermark_offsets(tps[p], timeout=10)[1] for p in (0, 1)}
    finally:
        consumer.close()
    assert sorted(got[0] + got[1]) == sorted(b"v%d" % i for i in range(12))
    assert committed == {0: 6, 1: 6}
    # One batch per partition (linger): ListOffsets answers its base offset 0, plus 1.
    assert listed == {0: 1, 1: 1}


def test_kafka_python_assigned_consumer_reads_every_partition(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, partitions=3)
    _produce(tansu_conn.bootstrap_servers, topic, {}, 9, 3)
    consumer = KafkaConsumer(**tansu_conn.kafka_python_kwargs())
    try:
        consumer.assign([KafkaPythonTopicPartition(topic, p) for p in range(3)])
        consumer.seek_to_beginning()
        values: list[bytes] = []
        for _ in range(20):
            for batch in consumer.poll(timeout_ms=300).values():
                values += [r.value for r in batch]
            if len(values) == 9:
                break
    finally:
        consumer.close()
    assert sorted(values) == sorted(b"v%d" % i for i in range(9))
