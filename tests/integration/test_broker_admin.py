"""Admin operations and log cleanup on the embedded broker.

Supported: CreateTopics (with configs), DeleteTopics, DescribeConfigs (only the
configs set on the topic), IncrementalAlterConfigs. Not supported: AlterConfigs,
CreatePartitions, DeleteRecords; no compaction, no retention.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource as AIOConfigResource
from aiokafka.admin.config_resource import ConfigResourceType as AIOConfigResourceType
from aiokafka.errors import IncompatibleBrokerVersion as AIOIncompatibleBrokerVersion
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import (
    IncompatibleBrokerVersion,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from streams.broker import metadata_answers
from streams.kafka import KafkaConnection
from tests.integration.brokerkit import new_topic, read_from, send_each

pytestmark = pytest.mark.integration

DEFAULT_CONFIG_SOURCE = 5  # ConfigSource.DEFAULT_CONFIG; Kafka says 1 (DYNAMIC_TOPIC_CONFIG)


def _admin(conn: KafkaConnection) -> KafkaAdminClient:
    return KafkaAdminClient(**conn.kafka_python_kwargs("-admin"), request_timeout_ms=10_000)


def _configs(admin: KafkaAdminClient, topic: str) -> dict[str, str]:
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
    )
    return {name: entry["value"] for name, entry in described["topic"][topic].items()}


def test_topics_are_created_with_their_configs_and_deleted(tansu_conn: KafkaConnection) -> None:
    topic = new_topic(tansu_conn, partitions=3, **{"cleanup.policy": "compact"})
    admin = _admin(tansu_conn)
    try:
        (described,) = admin.describe_topics([topic])
        assert len(described["partitions"]) == 3
        assert _configs(admin, topic) == {"cleanup.policy": "compact"}
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, 3, 1)])
        admin.delete_topics([topic])
        assert topic not in admin.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([topic])
    finally:
        admin.close()


def test_describe_configs_lists_only_the_configs_set_on_the_topic_as_defaults(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, **{"retention.ms": "60000"})

    async def describe() -> list[tuple[str, str, int]]:
        admin = AIOKafkaAdminClient(**tansu_conn.aiokafka_kwargs("-admin"))
        await admin.start()
        try:
            (response,) = await admin.describe_configs(
                [AIOConfigResource(AIOConfigResourceType.TOPIC, topic)]
            )
        finally:
            await admin.close()
        (resource,) = response.resources
        return [(entry[0], entry[1], entry[3]) for entry in resource[4]]

    # Kafka lists every topic config, ours with source DYNAMIC_TOPIC_CONFIG.
    assert asyncio.run(describe()) == [("retention.ms", "60000", DEFAULT_CONFIG_SOURCE)]
    admin = _admin(tansu_conn)
    try:
        # kafka-python's default filter keeps only dynamic sources: it sees nothing.
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        assert described == {"topic": {topic: {}}}
    finally:
        admin.close()


def test_incremental_alter_configs_changes_a_topic_but_legacy_alter_configs_is_missing(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, **{"cleanup.policy": "compact"})
    admin = _admin(tansu_conn)
    try:
        change = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "1000"})
        # raise_on_unknown=False: kafka-python's check needs configs Tansu does not list.
        assert admin.alter_configs([change], raise_on_unknown=False) == {"topic": {topic: "OK"}}
        assert _configs(admin, topic) == {"cleanup.policy": "compact", "retention.ms": "1000"}
        with pytest.raises(IncompatibleBrokerVersion):
            admin.alter_configs([change], raise_on_unknown=False, incremental=False)
    finally:
        admin.close()


def test_partitions_cannot_be_added_to_a_topic(tansu_conn: KafkaConnection) -> None:
    topic = new_topic(tansu_conn, partitions=2)

    async def add() -> None:
        admin = AIOKafkaAdminClient(**tansu_conn.aiokafka_kwargs("-admin"))
        await admin.start()
        try:
            await admin.create_partitions({topic: NewPartitions(4)})
        finally:
            await admin.close()

    with pytest.raises(AIOIncompatibleBrokerVersion):
        asyncio.run(add())


def test_delete_records_drops_the_connection_and_the_broker_lives_on(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn)
    asyncio.run(send_each(tansu_conn, topic, [(None, b"v", None)] * 3))

    async def delete() -> None:
        admin = AIOKafkaAdminClient(**tansu_conn.aiokafka_kwargs("-admin"))
        await admin.start()
        try:
            await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(2)}, 5000)
        finally:
            await admin.close()

    # The handler panics ("not yet implemented"), which closes the connection.
    with pytest.raises(KafkaConnectionError):
        asyncio.run(delete())
    host, port = tansu_conn.bootstrap_servers.rsplit(":", 1)
    assert metadata_answers(host, int(port))
    assert len(asyncio.run(read_from(tansu_conn, topic))) == 3


def test_topic_creation_accepts_what_kafka_rejects(tansu_conn: KafkaConnection) -> None:
    name = f"compat-{uuid.uuid4().hex[:12]}"
    admin = _admin(tansu_conn)
    try:
        # Kafka: InvalidReplicationFactor (one broker), InvalidConfig, InvalidPartitions.
        admin.create_topics([NewTopic(f"{name}-rf3", 1, 3)])
        admin.create_topics([NewTopic(f"{name}-cfg", 1, 1, topic_configs={"no.such": "x"})])
        admin.create_topics([NewTopic(f"{name}-p0", 0, 1)])
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
    finally:
        admin.close()
    assert described[f"{name}-rf3"] == 1 and described[f"{name}-p0"] == 0
    assert f"{name}-cfg" in described


def test_compacted_and_expired_records_are_never_removed(tansu_conn: KafkaConnection) -> None:
    compacted = new_topic(
        tansu_conn,
        **{"cleanup.policy": "compact", "segment.ms": "1", "min.cleanable.dirty.ratio": "0"},
    )
    expiring = new_topic(tansu_conn, **{"retention.ms": "1", "segment.ms": "1"})
    updates = [(b"k%d" % (i % 2), b"v%d" % i, None) for i in range(6)] + [(b"k0", None, None)]
    asyncio.run(send_each(tansu_conn, compacted, updates))
    asyncio.run(send_each(tansu_conn, expiring, updates))
    time.sleep(2)
    # Kafka keeps [v5 for k1, the k0 tombstone] and eventually drops every expired record.
    # Tansu 0.6.0 has no log cleaner for its memory and S3 engines: both keep everything.
    for topic in (compacted, expiring):
        records = asyncio.run(read_from(tansu_conn, topic))
        assert [r.value for r in records] == [value for _, value, _ in updates]
        assert records[0].offset == 0
