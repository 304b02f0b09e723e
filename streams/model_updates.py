"""Follow the `model-updates` topic in every worker.

Every worker must see every update (the topic is compacted, one partition), so this
reader does not join the worker's consumer group: it assigns the partitions itself,
reads from the beginning (the latest update per model) and then follows, handing each
decoded :class:`~streams.events.ModelUpdate` to a callback. A message that does not
decode is logged and skipped; the callback decides what a valid one means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.codec import EventDecodeError, decode
from streams.events import ModelUpdate
from streams.kafka import KafkaConnection

logger = logging.getLogger(__name__)

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
