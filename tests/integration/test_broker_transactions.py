"""Idempotent and transactional producers on the embedded broker.

Tansu needs InitProducerId v3+ (it reads the producer id and epoch fields): aiokafka
speaks v0 only and fails; kafka-python 3 and librdkafka work. Transactions commit
and fence read_committed readers at open transactions, but aborted records are
delivered to read_committed readers too.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import UnknownError
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition
from kafka.structs import OffsetAndMetadata

from streams.kafka import KafkaConnection
from tests.integration.brokerkit import new_topic, read_from

pytestmark = pytest.mark.integration


def _values(conn: KafkaConnection, topic: str, isolation_level: str) -> list[bytes | None]:
    records = asyncio.run(read_from(conn, topic, isolation_level=isolation_level))
    return [r.value for r in records]


@pytest.mark.parametrize(
    "options",
    [{"enable_idempotence": True}, {"transactional_id": "compat-aiokafka"}],
    ids=["idempotent", "transactional"],
)
def test_aiokafka_producers_that_need_a_producer_id_fail_to_start(
    tansu_conn: KafkaConnection, options: dict[str, object]
) -> None:
    async def start() -> None:
        producer = AIOKafkaProducer(**tansu_conn.aiokafka_kwargs(), **options)
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(UnknownError):
        asyncio.run(start())


def test_kafka_python_idempotent_producer_writes(tansu_conn: KafkaConnection) -> None:
    topic = new_topic(tansu_conn)
    producer = KafkaProducer(**tansu_conn.kafka_python_kwargs(), enable_idempotence=True)
    try:
        offsets = [producer.send(topic, b"v%d" % i).get(10).offset for i in range(3)]
    finally:
        producer.close()
    assert offsets == [0, 1, 2]


def _transactional(conn: KafkaConnection) -> KafkaProducer:
    producer = KafkaProducer(
        **conn.kafka_python_kwargs(), transactional_id=f"compat-{uuid.uuid4().hex}"
    )
    producer.init_transactions()
    return producer


def test_read_committed_readers_stop_at_an_open_transaction(tansu_conn: KafkaConnection) -> None:
    topic = new_topic(tansu_conn)
    producer = _transactional(tansu_conn)
    try:
        producer.begin_transaction()
        producer.send(topic, b"committed")
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, b"open")
        producer.flush()
        committed_view = _values(tansu_conn, topic, "read_committed")
        uncommitted_view = _values(tansu_conn, topic, "read_uncommitted")
        producer.commit_transaction()
        after_commit = _values(tansu_conn, topic, "read_committed")
    finally:
        producer.close()
    assert committed_view == [b"committed"]
    assert uncommitted_view == [b"committed", b"open"]
    assert after_commit == [b"committed", b"open"]


def test_aborted_records_reach_read_committed_readers(tansu_conn: KafkaConnection) -> None:
    topic = new_topic(tansu_conn)
    producer = _transactional(tansu_conn)
    try:
        producer.begin_transaction()
        producer.send(topic, b"aborted")
        producer.flush()
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(topic, b"committed")
        producer.commit_transaction()
    finally:
        producer.close()
    # Kafka: [b"committed"]. Tansu's Fetch lists no aborted transactions, so the
    # reader cannot drop them.
    assert _values(tansu_conn, topic, "read_committed") == [b"aborted", b"committed"]


def test_offsets_sent_in_a_transaction_are_committed_only_when_it_commits(
    tansu_conn: KafkaConnection,
) -> None:
    source, sink = new_topic(tansu_conn), new_topic(tansu_conn)
    group = f"g-{uuid.uuid4().hex}"
    tp = KafkaPythonTopicPartition(source, 0)
    producer = _transactional(tansu_conn)
    try:
        producer.begin_transaction()
        producer.send(sink, b"out-1")
        producer.send_offsets_to_transaction({tp: OffsetAndMetadata(7, "", -1)}, group)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(sink, b"out-2")
        producer.send_offsets_to_transaction({tp: OffsetAndMetadata(9, "", -1)}, group)
        producer.abort_transaction()
    finally:
        producer.close()
    consumer = KafkaConsumer(**tansu_conn.kafka_python_kwargs(), group_id=group)
    try:
        assert consumer.committed(tp) == 7
    finally:
        consumer.close()
