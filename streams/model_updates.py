"""``ModelUpdate`` events: build them from registry manifests, send, read and follow them.

The ``model-updates`` topic is compacted. Keys: the model name for pointer changes
(``publish``, ``promote``, ``rollback``), so the latest of those survives compaction,
and ``<model name>:retrain`` for retrain requests, so a request never compacts away
a publication. Messages carry the signed manifest and a pointer to the registry,
never model bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from models.registry import Registry
from streams.codec import EventDecodeError, decode, encode, encode_key
from streams.events import ModelUpdate, ModelUpdateAction
from streams.kafka import KafkaConnection

logger = logging.getLogger(__name__)

__all__ = [
    "ModelUpdatesReader",
    "read_updates",
    "send_updates",
    "update_for",
    "update_key",
]

RETRAIN_SUFFIX = ":retrain"


def update_key(update: ModelUpdate) -> str:
    """The compaction key of an update.

    Examples
    --------
    >>> update_key(ModelUpdate(model_name="deep", action="retrain_request",
    ...     issued_time=datetime(2018, 5, 1, tzinfo=UTC)))
    'deep:retrain'
    """
    if update.action == ModelUpdateAction.RETRAIN_REQUEST:
        return update.model_name + RETRAIN_SUFFIX
    return update.model_name


def update_for(
    registry: Registry,
    action: ModelUpdateAction,
    version: str,
    *,
    uri: str,
    reason: str | None = None,
) -> ModelUpdate:
    """An update about ``version`` carrying its signed manifest (checked on the way)."""
    signed = registry.get(version)
    return ModelUpdate(
        model_name=signed.manifest.model_name,
        action=action,
        version=version,
        uri=uri,
        manifest=signed.manifest.payload(),
        signature=signed.signature,
        reason=reason,
        issued_time=datetime.now(UTC),
    )


async def send_updates(conn: KafkaConnection, topic: str, updates: Sequence[ModelUpdate]) -> None:
    """Send updates in order and wait until the broker has them."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs("-model-updates"), acks="all")
    await producer.start()
    try:
        for update in updates:
            await producer.send_and_wait(
                topic, key=encode_key(update_key(update)), value=encode(update)
            )
            logger.info(
                "model update sent",
                extra={"action": update.action.value, "model_version": update.version},
            )
    finally:
        await producer.stop()


async def read_updates(
    conn: KafkaConnection, topic: str, idle_s: float = 1.0, timeout_s: float = 30.0
) -> list[ModelUpdate]:
    """Every decodable update on the topic now, in offset order (for tools and tests)."""
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs("-model-updates-reader"), group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[ModelUpdate] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            done = all([await consumer.position(tp) >= ends[tp] for tp in partitions])
            if done:
                break
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000))
            for records in batch.values():
                for record in records:
                    try:
                        found.append(decode(ModelUpdate, record.value))
                    except EventDecodeError as exc:
                        logger.warning("undecodable model update: %s", exc)
        return found
    finally:
        await consumer.stop()


UpdateHandler = Callable[[ModelUpdate], Awaitable[None]]


class ModelUpdatesReader:
    """Background task reading `model-updates` into a handler."""

    def __init__(self, conn: KafkaConnection, topic: str, handler: UpdateHandler) -> None:
        self.conn = conn
        self.topic = topic
        self.handler = handler
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="model-updates")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.conn.aiokafka_kwargs("-model-updates"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            tps = await self._partitions(consumer)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                fetched = await consumer.getmany(timeout_ms=500)
                for records in fetched.values():
                    for record in records:
                        await self._handle(record.value)
                if not fetched and not self.caught_up.is_set():
                    self.caught_up.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("model-updates reader failed")
            raise
        finally:
            await consumer.stop()

    async def _handle(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            update = decode(ModelUpdate, raw)
        except EventDecodeError as exc:
            logger.warning("undecodable model update skipped", extra={"reason": exc.reason.value})
            return
        try:
            await self.handler(update)
        except Exception:
            logger.exception("model update handler failed", extra={"model": update.model_name})

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        for _ in range(100):
            parts = consumer.partitions_for_topic(self.topic)
            if parts:
                return [TopicPartition(self.topic, p) for p in sorted(parts)]
            await consumer.topics()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"topic {self.topic!r} does not exist")
