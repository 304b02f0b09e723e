"""`streamscore learner`: read `labeled-examples`, learn, publish snapshots.

The Kafka edge of :mod:`streams.learner`. One instance per deployment: it reads
every partition (assign mode, no consumer group), starting from the offsets in its
checkpoint, and publishes to `model-updates` (key ``online``) a signed snapshot
every ``snapshot_every`` examples or ``snapshot_interval_s`` seconds, checkpointing
right after. Drift of the error stream is published to `drift-events`; the
configured actions follow (a ``retrain_request`` for the trainer, a blend shift).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from models.features import FEATURE_NAMES
from models.signing import Signer, Verifier
from streams import metrics
from streams.codec import EventDecodeError, decode, encode, encode_key
from streams.events import DriftEvent, LabeledExample, ModelUpdate, ModelUpdateAction
from streams.kafka import KafkaConnection
from streams.learner import LearnerConfig, OnlineTraining, write_atomic
from streams.model_updates import update_key

logger = logging.getLogger(__name__)

ONLINE_KEY = b"online"


@dataclass(frozen=True)
class LearnerServiceConfig:
    """Where the learner reads, writes and keeps its checkpoint."""

    labeled_examples_topic: str
    model_updates_topic: str
    drift_events_topic: str
    checkpoint: Path
    snapshot_every: int = 2000
    snapshot_interval_s: float = 5.0
    request_retrain_on_drift: bool = True


def snapshot_update(training: OnlineTraining, signer: Signer) -> ModelUpdate:
    """The signed ``ModelUpdate`` that carries the current online model."""
    snap = training.snapshot()
    return ModelUpdate(
        model_name="online",
        action=ModelUpdateAction.PUBLISH,
        version=snap.version,
        manifest=snap.to_dict(),
        signature=snap.sign(signer),
        issued_time=datetime.now(UTC),
    )


async def run_learner(
    conn: KafkaConnection,
    config: LearnerServiceConfig,
    signer: Signer,
    verifier: Verifier,
    learner_config: LearnerConfig | None = None,
    stop: asyncio.Event | None = None,
    on_batch: Callable[[OnlineTraining], None] | None = None,
) -> OnlineTraining:
    """Learn until ``stop`` is set (or SIGINT/SIGTERM); return the final state."""
    training = OnlineTraining(learner_config or LearnerConfig(tuple(FEATURE_NAMES)))
    if config.checkpoint.is_file():
        training.restore(config.checkpoint.read_bytes(), verifier)
        logger.info(
            "learner restored", extra={"offsets": training.offsets, "n": training.learner.n_learned}
        )
    stop = stop or _stop_on_signals()
    consumer = AIOKafkaConsumer(
        **conn.aiokafka_kwargs("-learner"), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs("-learner"), acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        tps = await _partitions(consumer, config.labeled_examples_topic)
        consumer.assign(tps)
        for tp in tps:
            offset = training.offsets.get(tp.partition)
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        since_snapshot, last_snapshot = 0, time.monotonic()
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=200, max_records=2000)
            batch: list[tuple[int, int, LabeledExample]] = []
            for tp, records in fetched.items():
                for record in records:
                    try:
                        example = decode(LabeledExample, record.value)
                    except EventDecodeError:
                        logger.warning(
                            "undecodable labeled example", extra={"offset": record.offset}
                        )
                        training.offsets[tp.partition] = record.offset + 1
                        continue
                    batch.append((tp.partition, record.offset, example))
            if batch:
                result = training.learn(batch)
                since_snapshot += result.learned
                metrics.ONLINE_EXAMPLES.labels("learned").inc(result.learned)
                metrics.ONLINE_EXAMPLES.labels("repeated").inc(result.repeated)
                metrics.ONLINE_EXAMPLES.labels("skipped").inc(result.skipped)
                for event in result.drift:
                    await _on_drift(producer, config, event)
                if on_batch is not None:
                    on_batch(training)
            due = time.monotonic() - last_snapshot >= config.snapshot_interval_s
            if since_snapshot and (since_snapshot >= config.snapshot_every or due):
                await _publish(producer, config, training, signer)
                since_snapshot, last_snapshot = 0, time.monotonic()
        if since_snapshot:
            await _publish(producer, config, training, signer)
    finally:
        await consumer.stop()
        await producer.stop()
    return training


async def _publish(
    producer: AIOKafkaProducer,
    config: LearnerServiceConfig,
    training: OnlineTraining,
    signer: Signer,
) -> None:
    update = snapshot_update(training, signer)
    await producer.send_and_wait(config.model_updates_topic, key=ONLINE_KEY, value=encode(update))
    write_atomic(config.checkpoint, training.checkpoint(signer))
    metrics.ONLINE_SNAPSHOTS.inc()


async def _on_drift(
    producer: AIOKafkaProducer, config: LearnerServiceConfig, event: DriftEvent
) -> None:
    actions = ["alert"]
    if config.request_retrain_on_drift:
        actions.append("request_retrain")
        request = ModelUpdate(
            model_name="deep",
            action=ModelUpdateAction.RETRAIN_REQUEST,
            reason=f"{event.kind.value} drift ({event.detector})",
            issued_time=datetime.now(UTC),
        )
        await producer.send(
            config.model_updates_topic, key=encode_key(update_key(request)), value=encode(request)
        )
    event = event.model_copy(update={"actions": actions})
    await producer.send(config.drift_events_topic, key=b"learner", value=encode(event))
    logger.warning("drift detected", extra={"detector": event.detector, "kind": event.kind.value})


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await consumer.topics()
        await asyncio.sleep(0.2)
    raise RuntimeError(f"topic {topic!r} does not exist")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
