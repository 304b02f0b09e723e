"""A worker judges a challenger on matured labels and announces its verdict.

The challenger arrives after every transaction was scored by the champion alone, so
it shadow-scores nothing live: all its evidence is matured labels of transactions
newer than its training window, re-scored from the feature vectors the label join
holds. A worker process on the embedded broker, a registry signed like the
trainer's, hand-built models with known weights.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiokafka import AIOKafkaProducer

from producers.frames import normalize
from producers.replay import ReplayConfig, replay
from producers.simulation import SimulationConfig, simulate_frame
from streams.codec import encode, encode_key
from streams.events import Label, ModelUpdateAction
from streams.harness import Harness, read_topics
from streams.kafka import KafkaConnection
from streams.model_updates import read_updates, send_updates, update_for
from streams.settings import StreamsSettings
from tests.integration.prometheus_server import free_port
from tests.integration.registry_kit import harness_registry, publish_logistic, scrape

pytestmark = pytest.mark.integration

#: The champion looks at the weekend flag only; the challenger at amounts and terminal
#: risk, which is how the simulated fraud shows.
CHAMPION = {"TX_DURING_WEEKEND": 1.0}
CHALLENGER = {"TX_AMOUNT": 0.02, "TERMINAL_ID_RISK_7DAY_WINDOW": 6.0}


async def _send_labels(conn: KafkaConnection, topic: str, frame: pd.DataFrame) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs("-labels"), linger_ms=5)
    await producer.start()
    try:
        for row in frame.itertuples():
            label = Label(
                transaction_id=str(row.transaction_id),
                customer_id=str(row.customer_id),
                terminal_id=str(row.terminal_id),
                is_fraud=bool(row.is_fraud),
                transaction_time=row.event_time,
                label_time=row.event_time + timedelta(days=7),
            )
            await producer.send(topic, encode(label), key=encode_key(label.terminal_id))
        await producer.flush()
    finally:
        await producer.stop()


def _wait_for(what: str, check: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_challenger_is_judged_on_labels_that_matured_after_its_window(
    kafka_conn: KafkaConnection, tmp_path: Path
) -> None:
    frame = normalize(
        simulate_frame(SimulationConfig(n_customers=150, n_terminals=300, days=15, seed=5))
    )
    start = pd.Timestamp(frame["event_time"].min()).to_pydatetime()
    port = free_port()
    env = {
        "STREAMSCORE_METRICS__PORT": str(port),
        "STREAMSCORE_WORKER__LABEL_WAIT_S": "1",
        "STREAMSCORE_PROMOTION__MIN_LABELS": "500",
        "STREAMSCORE_PROMOTION__MIN_POSITIVES": "20",
    }
    with Harness(StreamsSettings(), kafka_conn, extra_env=env, log_dir=tmp_path) as harness:
        harness.create_topics()
        topics = harness.topics
        registry = harness_registry(harness)
        # Both were "trained" on data before the stream: every label of it is unseen.
        publish_logistic(registry, "champion-1", CHAMPION, start - timedelta(days=1))
        publish_logistic(registry, "challenger-1", CHALLENGER, start - timedelta(days=1))
        registry.promote("champion-1")
        harness.start_worker()

        # 1. Transactions only: the champion alone scores them.
        asyncio.run(
            replay(
                kafka_conn,
                frame,
                ReplayConfig(transactions_topic=topics.transactions.name, label_delay=None),
            )
        )
        expected = set(frame["transaction_id"].astype(str))
        scored: dict[str, dict[str, str]] = {}

        def on_prediction(_topic: str, record: Any) -> None:
            event = json.loads(record.value)
            scored[str(event["transaction_id"])] = event["model_versions"]

        asyncio.run(
            read_topics(
                kafka_conn,
                [topics.predictions.name],
                on_prediction,
                lambda: expected <= scored.keys(),
                idle_timeout_s=90,
                total_timeout_s=240,
            )
        )
        assert expected <= scored.keys()
        assert {v.get("deep") for v in scored.values()} == {"champion-1"}

        # 2. The challenger arrives; the worker verifies and stages it.
        update = update_for(
            registry, ModelUpdateAction.PUBLISH, "challenger-1", uri=str(harness.registry_dir)
        )
        asyncio.run(send_updates(kafka_conn, topics.model_updates.name, [update]))
        staged = re.compile(r'streamscore_model_info\{[^}]*role="challenger"[^}]*challenger-1')
        _wait_for("the challenger to be staged", lambda: bool(staged.search(scrape(port))))

        # 3. The labels mature: judged on them alone, the challenger is promoted.
        asyncio.run(_send_labels(kafka_conn, topics.labels.name, frame))

        def verdict() -> bool:
            sent = asyncio.run(read_updates(kafka_conn, topics.model_updates.name))
            return any(u.action == ModelUpdateAction.PROMOTE for u in sent)

        _wait_for("the worker's verdict", verdict)
        sent = asyncio.run(read_updates(kafka_conn, topics.model_updates.name))
        promoted = [u for u in sent if u.action == ModelUpdateAction.PROMOTE]
        assert [u.version for u in promoted] == ["challenger-1"]
        assert promoted[0].reason is not None and "labels" in promoted[0].reason
        champion = re.compile(r'streamscore_model_info\{[^}]*role="deep"[^}]*challenger-1')
        _wait_for("the challenger to serve", lambda: bool(champion.search(scrape(port))))
