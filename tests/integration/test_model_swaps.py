"""Hot swaps while a worker scores: no prediction lost or doubled, none mislabelled.

A worker scores a paced replay while `promote` updates alternate between two models
many times. Every transaction gets exactly one prediction; every prediction names the
deep version whose output its `deep_score` is (re-scored here from the feature vector
the worker emitted); all predictions of one batch (one `scored_time`) name one version.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.features import FEATURE_NAMES
from models.registry import Registry
from models.serving import OnnxScorer
from producers.frames import normalize
from producers.replay import ReplayConfig, replay
from producers.simulation import SimulationConfig, simulate_frame
from streams.events import ModelUpdate, ModelUpdateAction
from streams.harness import Harness, read_topics
from streams.kafka import KafkaConnection
from streams.model_updates import send_updates, update_for
from streams.settings import StreamsSettings
from tests.integration.prometheus_server import free_port
from tests.integration.registry_kit import (
    harness_registry,
    logistic_model,
    publish_logistic,
    scrape,
)
from tests.unit.onnx_builders import logistic_onnx

pytestmark = pytest.mark.integration

MODELS = {
    "swap-a": {"TX_AMOUNT": 0.02, "TERMINAL_ID_RISK_7DAY_WINDOW": 6.0},
    "swap-b": {"TX_AMOUNT": 0.01, "TX_DURING_NIGHT": 2.0},
}
SWAPS = 40


def test_swaps_under_load_lose_nothing_and_every_prediction_names_its_model(
    kafka_conn: KafkaConnection, tmp_path: Path
) -> None:
    frame = normalize(
        simulate_frame(SimulationConfig(n_customers=150, n_terminals=300, days=10, seed=21))
    )
    start = pd.Timestamp(frame["event_time"].min()).to_pydatetime()
    env = {"STREAMSCORE_WORKER__LABEL_WAIT_S": "1", "STREAMSCORE_SCORING__MODEL_WAIT_S": "0"}
    with Harness(StreamsSettings(), kafka_conn, extra_env=env, log_dir=tmp_path) as harness:
        harness.create_topics()
        topics = harness.topics
        registry = harness_registry(harness)
        for version, weights in MODELS.items():
            publish_logistic(registry, version, weights, start - timedelta(days=1))
        registry.promote("swap-a")
        harness.start_worker()
        uri = str(harness.registry_dir)

        async def swap() -> None:
            for i in range(SWAPS):
                version = "swap-b" if i % 2 == 0 else "swap-a"
                update = update_for(registry, ModelUpdateAction.PROMOTE, version, uri=uri)
                await send_updates(kafka_conn, topics.model_updates.name, [update])
                await asyncio.sleep(0.3)

        async def drive() -> None:
            # Ten days in about 15 s, swaps every 0.3 s meanwhile.
            config = ReplayConfig(
                transactions_topic=topics.transactions.name, label_delay=None, speed=57_600.0
            )
            await asyncio.gather(replay(kafka_conn, frame, config), swap())

        asyncio.run(drive())
        expected = set(frame["transaction_id"].astype(str))
        predictions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        features: dict[str, list[float]] = {}

        def on_message(topic: str, record: Any) -> None:
            event = json.loads(record.value)
            if topic == topics.predictions.name:
                predictions[str(event["transaction_id"])].append(event)
            else:
                features[str(event["transaction_id"])] = event["values"]

        asyncio.run(
            read_topics(
                kafka_conn,
                [topics.predictions.name, topics.features.name],
                on_message,
                lambda: expected <= predictions.keys() and expected <= features.keys(),
                idle_timeout_s=90,
                total_timeout_s=300,
            )
        )
    assert set(predictions) == expected
    assert all(len(p) == 1 for p in predictions.values()), "a transaction scored twice"
    rows = [(tx, p[0]) for tx, p in predictions.items()]
    versions = [p["model_versions"]["deep"] for _, p in rows]
    assert set(versions) == set(MODELS), "both models should have scored"
    # Each prediction's deep score is the output of the model it names.
    scorers = {
        v: OnnxScorer(logistic_model(v, w), feature_names=FEATURE_NAMES, provider="cpu")
        for v, w in MODELS.items()
    }
    for version, scorer in scorers.items():
        mine = [(tx, p) for tx, p in rows if p["model_versions"]["deep"] == version]
        X = np.asarray([features[tx] for tx, _ in mine], dtype=np.float32)
        recorded = np.asarray([p["deep_score"] for _, p in mine], dtype=np.float64)
        assert np.allclose(scorer.score_batch(X), recorded, atol=1e-5), version
    # One batch, one version.
    by_batch: dict[str, set[str]] = defaultdict(set)
    for _, p in rows:
        by_batch[p["scored_time"]].add(p["model_versions"]["deep"])
    assert len(by_batch) > SWAPS // 4, "too few batches to see swaps between them"
    assert all(len(v) == 1 for v in by_batch.values())


def _bad_updates(registry: Registry, start: datetime, uri: str) -> dict[str, ModelUpdate]:
    """One signed-but-broken or tampered artifact per reason code, as workers receive them."""
    end = start - timedelta(days=1)
    weights = MODELS["swap-b"]
    out: dict[str, ModelUpdate] = {}

    def publish(version: str, model: bytes | None = None) -> ModelUpdate:
        publish_logistic(registry, version, weights, end, model=model)
        return update_for(registry, ModelUpdateAction.PUBLISH, version, uri=uri)

    good = logistic_model("bad-trunc", weights)
    out["onnx_invalid"] = publish("bad-trunc", good[: len(good) // 2])
    out["contract_mismatch"] = publish(
        "bad-input",
        logistic_onnx(
            FEATURE_NAMES, [0.0] * len(FEATURE_NAMES), version="bad-input", input_name="x"
        ),
    )
    nan = [math.nan] + [0.0] * (len(FEATURE_NAMES) - 1)
    out["golden_failed"] = publish("bad-nan", logistic_onnx(FEATURE_NAMES, nan, version="bad-nan"))
    signed = publish("bad-sig")
    flipped = ("0" if signed.signature[0] != "0" else "1") + signed.signature[1:]
    out["bad_signature"] = signed.model_copy(update={"signature": flipped})
    hashed = publish("bad-hash")
    manifest = registry.get("bad-hash").manifest
    path = registry.model_path(manifest)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    out["hash_mismatch"] = hashed
    return out


def test_bad_artifacts_while_scoring_are_rejected_and_the_champion_keeps_serving(
    kafka_conn: KafkaConnection, tmp_path: Path
) -> None:
    frame = normalize(
        simulate_frame(SimulationConfig(n_customers=100, n_terminals=200, days=8, seed=22))
    )
    start = pd.Timestamp(frame["event_time"].min()).to_pydatetime()
    port = free_port()
    env = {
        "STREAMSCORE_WORKER__LABEL_WAIT_S": "1",
        "STREAMSCORE_METRICS__PORT": str(port),
    }
    with Harness(StreamsSettings(), kafka_conn, extra_env=env, log_dir=tmp_path) as harness:
        harness.create_topics()
        topics = harness.topics
        registry = harness_registry(harness)
        publish_logistic(registry, "swap-a", MODELS["swap-a"], start - timedelta(days=1))
        registry.promote("swap-a")
        bad = _bad_updates(registry, start, str(harness.registry_dir))
        harness.start_worker()

        async def drive() -> None:
            config = ReplayConfig(
                transactions_topic=topics.transactions.name, label_delay=None, speed=57_600.0
            )

            async def send_bad() -> None:
                for update in bad.values():
                    await asyncio.sleep(1.0)
                    await send_updates(kafka_conn, topics.model_updates.name, [update])

            await asyncio.gather(replay(kafka_conn, frame, config), send_bad())

        asyncio.run(drive())
        expected = set(frame["transaction_id"].astype(str))
        versions: dict[str, str] = {}

        def on_prediction(_topic: str, record: Any) -> None:
            event = json.loads(record.value)
            versions[str(event["transaction_id"])] = event["model_versions"].get("deep", "")

        asyncio.run(
            read_topics(
                kafka_conn,
                [topics.predictions.name],
                on_prediction,
                lambda: expected <= versions.keys(),
                idle_timeout_s=90,
                total_timeout_s=300,
            )
        )
        rejected: dict[str, float] = {}
        for family in text_string_to_metric_families(scrape(port)):
            if family.name == "streamscore_model_rejections":
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.value > 0:
                        rejected[sample.labels["reason"]] = sample.value
    assert set(versions) == expected
    assert set(versions.values()) == {"swap-a"}, "a rejected model scored"
    assert rejected == dict.fromkeys(bad, 1.0)
