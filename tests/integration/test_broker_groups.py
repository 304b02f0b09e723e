"""Consumer groups on the embedded broker: join, assignment, rebalance, commits.

Tansu holds every JoinGroup for about half the session timeout before it answers, and
keeps a member that left until its session expires. The tests use a 2 s session
(1 s joins); docs/broker.md has the timings for the clients' defaults.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPythonTopicPartition

from streams.kafka import KafkaConnection
from tests.integration.brokerkit import new_topic, send_batch, send_each

pytestmark = pytest.mark.integration

# Short enough for a quick suite on Tansu; Apache Kafka would refuse < 6 s
# (group.min.session.timeout.ms) with InvalidSessionTimeout.
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}


def _member(conn: KafkaConnection, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        **conn.aiokafka_kwargs(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )


async def _until_assigned(*members: AIOKafkaConsumer, sizes: tuple[int, ...]) -> None:
    """Poll every member until each holds the given number of partitions."""

    async def spin(member: AIOKafkaConsumer, size: int) -> None:
        while len(member.assignment()) != size:
            await member.getmany(timeout_ms=100)

    await asyncio.wait_for(
        asyncio.gather(*(spin(m, s) for m, s in zip(members, sizes, strict=True))), 60
    )


def test_group_members_split_the_partitions_and_take_them_back_when_one_leaves(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, partitions=4)
    group = f"g-{uuid.uuid4().hex}"

    async def scenario() -> tuple[set[int], set[int], set[int], set[int]]:
        first, second = _member(tansu_conn, topic, group), _member(tansu_conn, topic, group)
        await first.start()
        try:
            await _until_assigned(first, sizes=(4,))
            alone = {tp.partition for tp in first.assignment()}
            await second.start()
            try:
                await _until_assigned(first, second, sizes=(2, 2))
                split = (
                    {tp.partition for tp in first.assignment()},
                    {tp.partition for tp in second.assignment()},
                )
            finally:
                await second.stop()
            await _until_assigned(first, sizes=(4,))
            return alone, *split, {tp.partition for tp in first.assignment()}
        finally:
            await first.stop()

    alone, mine, theirs, after = asyncio.run(scenario())
    assert alone == after == {0, 1, 2, 3}
    assert mine | theirs == {0, 1, 2, 3} and not mine & theirs


def test_a_new_member_resumes_at_the_offsets_the_group_committed_inside_a_batch(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn)
    group = f"g-{uuid.uuid4().hex}"
    asyncio.run(send_batch(tansu_conn, topic, [(None, b"v%d" % i, None) for i in range(6)]))
    tp = TopicPartition(topic, 0)

    async def commit_then_resume() -> tuple[int | None, list[int]]:
        first = _member(tansu_conn, topic, group)
        await first.start()
        try:
            await _until_assigned(first, sizes=(1,))
            await first.commit({tp: OffsetAndMetadata(4, "")})
        finally:
            await first.stop()
        second = _member(tansu_conn, topic, group)
        await second.start()
        try:
            committed = await second.committed(tp)
            got: list[int] = []
            while len(got) < 2:
                batch = await asyncio.wait_for(second.getmany(timeout_ms=500), 30)
                got += [r.offset for records in batch.values() for r in records]
            return committed, got
        finally:
            await second.stop()

    assert asyncio.run(commit_then_resume()) == (4, [4, 5])


def test_kafka_python_group_consumer_is_assigned_and_commits_with_a_short_session(
    tansu_conn: KafkaConnection,
) -> None:
    topic = new_topic(tansu_conn, partitions=2)
    asyncio.run(send_each(tansu_conn, topic, [(b"k", b"v%d" % i, None) for i in range(3)]))
    consumer = KafkaConsumer(
        topic,
        **tansu_conn.kafka_python_kwargs(),
        group_id=f"g-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )
    try:
        values: list[bytes] = []
        for _ in range(60):
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
            if len(values) == 3:
                break
        consumer.commit()
        assignment = {tp.partition for tp in consumer.assignment()}
        committed = consumer.committed(KafkaPythonTopicPartition(topic, 0))
    finally:
        consumer.close()
    assert sorted(values) == [b"v0", b"v1", b"v2"]
    assert assignment == {0, 1}
    assert committed == 3  # all three keyed b"k" landed on partition 0


def test_kafka_python_asks_for_a_45_second_session_by_default() -> None:
    # Tansu holds the JoinGroup for half of it: a default kafka-python group consumer
    # gets its first assignment after ~23 s, which reads as "never assigned".
    assert KafkaConsumer.DEFAULT_CONFIG["session_timeout_ms"] == 45_000


def test_a_commit_from_outside_an_active_group_is_refused(tansu_conn: KafkaConnection) -> None:
    topic = new_topic(tansu_conn)
    group = f"g-{uuid.uuid4().hex}"
    tp = TopicPartition(topic, 0)

    async def outsider_commits() -> None:
        member = _member(tansu_conn, topic, group)
        await member.start()
        try:
            await _until_assigned(member, sizes=(1,))
            outsider = AIOKafkaConsumer(
                **tansu_conn.aiokafka_kwargs(), group_id=group, enable_auto_commit=False
            )
            await outsider.start()
            try:
                outsider.assign([tp])
                await outsider.commit({tp: OffsetAndMetadata(42, "")})
            finally:
                await outsider.stop()
        finally:
            await member.stop()

    # The broker answers UnknownMemberId, as Kafka does: a fenced member cannot commit.
    with pytest.raises(CommitFailedError):
        asyncio.run(outsider_commits())
