"""Typed events over a real socket; consumer-group offsets; topic creation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka.admin import KafkaAdminClient

from streams.codec import decode, encode, encode_key
from streams.events import Transaction
from streams.kafka import KafkaConnection
from streams.settings import TopicsSettings
from streams.topics import create_topics, topic_specs
from tests.conftest import TopicFactory

pytestmark = pytest.mark.integration


def _transactions(n: int) -> list[Transaction]:
    t0 = datetime(2018, 4, 1, tzinfo=UTC)
    return [
        Transaction(
            transaction_id=str(i),
            event_time=t0 + timedelta(seconds=i),
            customer_id=str(i % 5),
            terminal_id=str(i % 7),
            amount=float(i) + 0.25,
        )
        for i in range(n)
    ]


async def _produce(conn: KafkaConnection, topic: str, events: list[Transaction]) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), linger_ms=5)
    await producer.start()
    try:
        for tx in events:
            await producer.send(
                topic,
                key=encode_key(tx.customer_id),
                value=encode(tx),
                timestamp_ms=int(tx.event_time.timestamp() * 1000),
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(
    conn: KafkaConnection, topic: str, group: str, want: int, commit: bool
) -> list[Transaction]:
    consumer = AIOKafkaConsumer(
        topic,
        **conn.aiokafka_kwargs(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    got: list[Transaction] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(got) < want and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=want - len(got))
            for records in batch.values():
                got.extend(decode(Transaction, r.value) for r in records)
        if commit:
            await consumer.commit()
    finally:
        await consumer.stop()
    return got


def test_typed_events_round_trip_over_the_broker(
    kafka_conn: KafkaConnection, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=3)
    sent = _transactions(200)
    asyncio.run(_produce(kafka_conn, topic, sent))
    got = asyncio.run(_consume(kafka_conn, topic, f"g-{uuid.uuid4().hex}", 200, commit=False))
    assert sorted(got, key=lambda t: int(t.transaction_id)) == sent


def test_committed_group_offsets_survive_a_consumer_restart(
    kafka_conn: KafkaConnection, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=2)
    group = f"g-{uuid.uuid4().hex}"
    sent = _transactions(100)
    asyncio.run(_produce(kafka_conn, topic, sent[:60]))
    first = asyncio.run(_consume(kafka_conn, topic, group, 60, commit=True))
    asyncio.run(_produce(kafka_conn, topic, sent[60:]))
    second = asyncio.run(_consume(kafka_conn, topic, group, 40, commit=True))
    assert {t.transaction_id for t in first} == {str(i) for i in range(60)}
    assert {t.transaction_id for t in second} == {str(i) for i in range(60, 100)}


def test_topics_are_created_with_configured_partitions_idempotently(
    kafka_conn: KafkaConnection,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    layout = TopicsSettings.model_validate(
        {
            "partitions": 3,
            "transactions": {"name": f"transactions-{suffix}"},
            "labels": {"name": f"labels-{suffix}"},
            "predictions": {"name": f"predictions-{suffix}", "partitions": 2},
            "dead_letters": {"name": f"dead-letters-{suffix}"},
            "drift_events": {"name": f"drift-events-{suffix}", "partitions": 1},
            "model_updates": {
                "name": f"model-updates-{suffix}",
                "partitions": 1,
                "compacted": True,
            },
            "labeled_examples": {"name": f"labeled-examples-{suffix}"},
            "metrics": {"name": f"metrics-{suffix}", "partitions": 1},
            "txn_by_terminal": {"name": f"txn-by-terminal-{suffix}"},
            "features": {"name": f"features-{suffix}"},
        }
    )
    specs = topic_specs(layout)
    first = create_topics(kafka_conn, specs)
    again = create_topics(kafka_conn, specs)
    assert [r.status for r in first] == ["created"] * len(specs)
    assert [r.status for r in again] == ["exists"] * len(specs)
    admin = KafkaAdminClient(**kafka_conn.kafka_python_kwargs())
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
    finally:
        admin.close()
    assert described[f"transactions-{suffix}"] == 3
    assert described[f"predictions-{suffix}"] == 2
    assert described[f"model-updates-{suffix}"] == 1


def test_cli_topics_create_uses_the_configured_broker(kafka_bootstrap: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = dict(
        os.environ,
        STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS=kafka_bootstrap,
        STREAMSCORE_TOPICS__TRANSACTIONS__NAME=f"tx-cli-{suffix}",
        STREAMSCORE_TOPICS__TRANSACTIONS__PARTITIONS="5",
    )
    exe = os.path.join(os.path.dirname(sys.executable), "streamscore")
    out = subprocess.run(
        [exe, "--no-json-logs", "topics", "create"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"tx-cli-{suffix}" in out
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        (desc,) = admin.describe_topics([f"tx-cli-{suffix}"])
    finally:
        admin.close()
    assert len(desc["partitions"]) == 5
