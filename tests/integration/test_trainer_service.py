"""The trainer process on a real broker: scheduled runs in event time, retrain requests,
signed updates that a worker's verification accepts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from models.lifecycle import ModelLifecycle
from models.promotion import PromotionRule
from models.registry import Registry
from models.settings import TrainerSettings
from models.slots import ModelSlots
from models.trainer import WEIGHTS_FILE, TrainerConfig
from models.verify import FeatureContract, VerifyOptions, verify
from streams.codec import encode, encode_key
from streams.events import LabeledExample, ModelUpdate, ModelUpdateAction
from streams.kafka import KafkaConnection
from streams.model_updates import read_updates, send_updates
from streams.trainer_service import TrainerService
from tests.conftest import TopicFactory
from tests.unit.artifacts import make_registry

pytestmark = pytest.mark.integration

NAMES = ("amount", "night", "velocity")
CONTRACT = FeatureContract("synthetic-v1", NAMES)
T0 = datetime(2018, 4, 1, tzinfo=UTC)
SETTINGS = TrainerSettings(every_days=7.0, window_days=28.0, eval_days=3.0, min_examples=100)
CONFIG = TrainerConfig(
    hidden=(8,),
    epochs=2,
    lr=1e-2,
    eval_days=3.0,
    min_examples=100,
    publish_rule="always",
    rule=PromotionRule(min_labels=100, min_positives=5),
)


def _examples(n: int, days: float, seed: int = 0) -> list[LabeledExample]:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 40.0, n)
    velocity = rng.poisson(3.0, n)
    fraud = rng.random(n) < 1 / (1 + np.exp(-(0.03 * amount + 0.6 * velocity - 7.0)))
    offsets = np.sort(rng.random(n)) * days
    return [
        LabeledExample(
            transaction_id=f"t{i}",
            customer_id=f"c{i % 100}",
            terminal_id=f"k{i % 37}",
            event_time=T0 + timedelta(days=float(offsets[i])),
            label_time=T0 + timedelta(days=float(offsets[i]) + 7),
            is_fraud=bool(fraud[i]),
            feature_set="synthetic-v1",
            values=[float(amount[i]), float(rng.random() < 0.2), float(velocity[i])],
        )
        for i in range(n)
    ]


async def _produce(conn: KafkaConnection, topic: str, examples: list[LabeledExample]) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), linger_ms=5)
    await producer.start()
    try:
        for ex in examples:
            await producer.send(topic, key=encode_key(ex.terminal_id), value=encode(ex))
        await producer.flush()
    finally:
        await producer.stop()


def _service(
    conn: KafkaConnection, examples: str, updates: str, registry: Registry
) -> TrainerService:
    return TrainerService(
        conn=conn,
        examples_topic=examples,
        updates_topic=updates,
        registry=registry,
        registry_uri=str(registry.root),
        contract=CONTRACT,
        settings=SETTINGS,
        config=CONFIG,
    )


def test_trainer_publishes_on_schedule_and_on_request(
    kafka_conn: KafkaConnection, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    examples = topic_factory(partitions=2)
    updates = topic_factory(partitions=1, **{"cleanup.policy": "compact"})
    registry = make_registry(tmp_path / "registry")
    produced = _examples(2400, days=22.0)
    asyncio.run(_produce(kafka_conn, examples, produced))

    service = _service(kafka_conn, examples, updates, registry)
    asyncio.run(asyncio.wait_for(service.run(max_runs=3), timeout=240))
    runs = service.outcomes
    assert [o.trigger for o in runs] == ["schedule"] * 3
    published = [o.published for o in runs]
    assert all(m is not None for m in published)
    versions = [m.version for m in published if m is not None]
    assert len(set(versions)) == 3
    # Runs fire every 7 days of event time; each window ends later than the one before.
    ends = [m.training_window.end for m in published if m and m.training_window]
    assert ends == sorted(ends) and (ends[1] - ends[0]).days in (6, 7)
    # Partitions are read out of step, yet each run saw every example up to its end.
    assert [o.examples for o in runs] == [
        sum(ex.event_time <= end for ex in produced) for end in ends
    ]
    assert runs[0].promoted and not runs[1].promoted and runs[1].run is not None
    # The first run trains from scratch; scheduled runs after it fine-tune the champion's
    # published weights on the whole window and leave the verdict to the workers.
    assert runs[0].run is not None and runs[0].run.mode == "scratch"
    assert runs[1].run.mode == "finetune" and runs[1].run.verdict is None
    assert runs[1].run.parent_version == versions[0] and runs[1].run.n_eval == 0
    assert all(m is not None and WEIGHTS_FILE in m.files for m in published)
    assert registry.pointers().champion == versions[0]

    sent = asyncio.run(read_updates(kafka_conn, updates))
    assert [(u.action, u.version) for u in sent] == [
        (ModelUpdateAction.PUBLISH, versions[0]),
        (ModelUpdateAction.PROMOTE, versions[0]),
        (ModelUpdateAction.PUBLISH, versions[1]),
        (ModelUpdateAction.PUBLISH, versions[2]),
    ]
    # What the trainer sends, a worker accepts: verify each, and follow them in order.
    worker = Registry(registry.root, registry.verifier)
    options = VerifyOptions(provider="cpu", warmup_batch_sizes=(1,))
    assert verify(sent[2], worker, CONTRACT, options).version == versions[1]
    lifecycle = ModelLifecycle(ModelSlots(), worker, CONTRACT, options)
    outcomes = [lifecycle.handle(u).outcome for u in sent]
    assert outcomes == ["installed", "ignored", "staged", "staged"]
    assert lifecycle.slots.snapshot().challenger_version == versions[2]

    # A worker's shadow judge promotes the last one; a restarted trainer moves the
    # registry's champion to it (older promotions replayed from the topic do not undo
    # it), does not redo past runs, and trains from scratch on a retrain request.
    judged = ModelUpdate(
        model_name="deep",
        action=ModelUpdateAction.PROMOTE,
        version=versions[2],
        reason="shadow judge",
        issued_time=datetime.now(UTC),
    )
    request = ModelUpdate(
        model_name="deep",
        action=ModelUpdateAction.RETRAIN_REQUEST,
        reason="drift on amount",
        issued_time=datetime.now(UTC),
    )
    asyncio.run(send_updates(kafka_conn, updates, [judged, request]))
    again = _service(kafka_conn, examples, updates, registry)
    asyncio.run(asyncio.wait_for(again.run(max_runs=1), timeout=240))
    assert [o.trigger for o in again.outcomes] == ["request"]
    assert again.outcomes[0].examples == 2400
    assert registry.pointers().champion == versions[2]
    retrained = again.outcomes[0].run
    assert retrained is not None and retrained.mode == "scratch"
    assert retrained.parent_version == versions[2]
