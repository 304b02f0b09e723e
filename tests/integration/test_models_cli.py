"""`streamscore models promote|rollback|retrain` tell the workers through model-updates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner

from models.verify import VerifyOptions, verify
from streams.cli import app
from streams.events import ModelUpdateAction
from streams.kafka import KafkaConnection
from streams.model_updates import read_updates
from tests.conftest import TopicFactory
from tests.unit.artifacts import CONTRACT, KEY, make_registry, publish_good

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _keys(conn: KafkaConnection, topic: str) -> list[bytes | None]:
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batch = await consumer.getmany(tp, timeout_ms=3000)
        return [r.key for r in batch.get(tp, [])]
    finally:
        await consumer.stop()


def test_promote_rollback_and_retrain_reach_the_topic(
    kafka_bootstrap: str,
    kafka_conn: KafkaConnection,
    topic_factory: TopicFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    updates = topic_factory(partitions=1, **{"cleanup.policy": "compact"})
    registry = make_registry(tmp_path / "registry")
    for v in ("m1", "m2"):
        publish_good(registry, v)
    (tmp_path / "key").write_bytes(KEY)
    monkeypatch.setenv("STREAMSCORE_REGISTRY__URI", str(registry.root))
    monkeypatch.setenv("STREAMSCORE_REGISTRY__SIGNING_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("STREAMSCORE_TOPICS__MODEL_UPDATES__NAME", updates)
    for args in (["promote", "m1"], ["promote", "m2"], ["rollback"], ["retrain"]):
        result = runner.invoke(app, ["--log-level", "WARNING", "models", *args])
        assert result.exit_code == 0, result.output

    sent = asyncio.run(read_updates(kafka_conn, updates))
    assert [(u.action, u.version) for u in sent] == [
        (ModelUpdateAction.PROMOTE, "m1"),
        (ModelUpdateAction.PROMOTE, "m2"),
        (ModelUpdateAction.ROLLBACK, "m1"),
        (ModelUpdateAction.RETRAIN_REQUEST, None),
    ]
    assert asyncio.run(_keys(kafka_conn, updates)) == [b"deep", b"deep", b"deep", b"deep:retrain"]
    rollback = sent[2]
    options = VerifyOptions(provider="cpu", warmup_batch_sizes=(1,))
    assert verify(rollback, registry, CONTRACT, options).version == "m1"
    assert rollback.reason == "operator withdrew m2"
