"""Storage engines of the embedded broker: memory forgets everything on restart.

The bundled binary is built with the ``dynostore`` engine only: ``memory://`` and
``s3://``. ``sqlite://`` and ``postgres://`` are not compiled in, ``file://`` is not
an engine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient

from streams.broker import BrokerConfig, BrokerError, EmbeddedBroker
from streams.kafka import KafkaConnection
from tests.integration.brokerkit import TansuProcess, new_topic, send_each

pytestmark = pytest.mark.integration


async def _commit(conn: KafkaConnection, topic: str, group: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), group_id=group)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def _committed(conn: KafkaConnection, topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), group_id=group)
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(TopicPartition(topic, 0))
        return committed
    finally:
        await consumer.stop()


def _topics(conn: KafkaConnection) -> set[str]:
    admin = KafkaAdminClient(**conn.kafka_python_kwargs())
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_a_memory_broker_restarted_on_the_same_port_has_forgotten_everything() -> None:
    first = EmbeddedBroker(BrokerConfig())
    conn = KafkaConnection(bootstrap_servers=first.start())
    try:
        topic = new_topic(conn)
        asyncio.run(send_each(conn, topic, [(None, b"v", None)] * 3))
        asyncio.run(_commit(conn, topic, "survivor", 2))
        assert topic in _topics(conn)
        assert asyncio.run(_committed(conn, topic, "survivor")) == 2
    finally:
        first.stop()
    with EmbeddedBroker(BrokerConfig(port=first.port)):
        assert _topics(conn) == set()
        assert asyncio.run(_committed(conn, topic, "survivor")) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://var/tansu.db", 'FeatureNotEnabled { feature: "libsql"'),
        ("postgres://tansu:secret@127.0.0.1:1/tansu", 'FeatureNotEnabled { feature: "postgres"'),
        ("file:///tmp/tansu/", "UnsupportedStorageUrl"),
    ],
)
def test_engines_that_are_not_compiled_in_stop_the_broker_at_start(
    tmp_path: Path, url: str, message: str
) -> None:
    log = tmp_path / "broker.log"
    with pytest.raises(BrokerError, match="exited with code 1 during start-up"):
        EmbeddedBroker(BrokerConfig(storage_engine=url, log_file=log)).start()
    assert message in log.read_text(encoding="utf-8")


def test_the_s3_engine_is_compiled_in(tmp_path: Path) -> None:
    # Points at a closed loopback port: the broker must start without reaching any store.
    env = {
        "AWS_ACCESS_KEY_ID": "none",
        "AWS_SECRET_ACCESS_KEY": "none",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": "http://127.0.0.1:9",
        "AWS_ALLOW_HTTP": "true",
    }
    broker = TansuProcess("--storage-engine", "s3://tansu/", log=tmp_path / "log", env=env)
    try:
        broker.wait_listening()
        assert broker.proc.poll() is None
    finally:
        broker.proc.kill()  # SIGINT would wait for the unreachable store
        broker.stop()
    assert 'storage: s3://tansu/ ["dynostore"]' in broker.output()
