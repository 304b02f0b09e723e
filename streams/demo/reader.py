"""Read what the system publishes, as it arrives, into the demo's state.

One assign()-mode consumer (no consumer group, so the pipeline's groups never see
it) over `predictions`, `dead-letters`, `drift-events`, `model-updates` and `metrics`,
from the beginning of each. Fetches wait at most 50 ms for data, so arrival times
are close to when the broker had the message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.demo.state import DemoState
from streams.kafka import KafkaConnection
from streams.settings import TopicsSettings

Handler = Callable[[dict[str, Any], float], None]


def handlers(topics: TopicsSettings, state: DemoState) -> dict[str, Handler]:
    """What to do with a message of each topic read."""
    return {
        topics.predictions.name: state.on_prediction,
        topics.dead_letters.name: state.on_dead_letter,
        topics.drift_events.name: lambda event, _at: state.on_drift(event),
        topics.model_updates.name: state.on_model_update,
        topics.metrics.name: lambda event, _at: state.on_metrics(event),
    }


async def read_outputs(
    conn: KafkaConnection,
    topics: TopicsSettings,
    state: DemoState,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Feed every output message to ``state`` until ``stop`` is set."""
    route = handlers(topics, state)
    consumer = AIOKafkaConsumer(
        **conn.aiokafka_kwargs("-demo-reader"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()
        tps = [
            TopicPartition(topic, p)
            for topic in route
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=5_000)
            at = clock()
            for tp, records in batch.items():
                handle = route[tp.topic]
                for record in records:
                    if record.value is not None:
                        handle(json.loads(record.value), at)
    finally:
        await consumer.stop()
