"""The whole pipeline on a real broker: worker and learner processes, replayed data.

Features computed in flight must equal the offline computation of the same code
(``featurize_frame``); every transaction ends as exactly one prediction or one dead
letter; a worker killed mid-stream and restarted recovers its state.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiokafka import AIOKafkaProducer

from models.features import FEATURE_NAMES, featurize_frame
from producers.frames import normalize
from producers.simulation import SimulationConfig, simulate_frame
from streams.codec import Reason
from streams.harness import Harness, read_topics
from streams.kafka import KafkaConnection
from streams.parity import replay_through_pipeline
from streams.publish import BatchPublisher
from streams.settings import StreamsSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_stream() -> pd.DataFrame:
    """Ten days of a small simulated world (about 3,000 transactions)."""
    config = SimulationConfig(n_customers=150, n_terminals=300, days=10, seed=11)
    return normalize(simulate_frame(config))


def offline_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The same features computed offline, labels 7 days late (the replay's default)."""
    ours = featurize_frame(frame)
    ours.index = ours.index.astype(str)
    return ours


def assert_features_equal(stream: pd.DataFrame, offline: pd.DataFrame) -> None:
    stream = stream.reindex(offline.index)
    diff = np.abs(stream[list(FEATURE_NAMES)].to_numpy() - offline[list(FEATURE_NAMES)].to_numpy())
    bad = np.flatnonzero(~(diff <= 1e-6).all(axis=1))
    assert len(bad) == 0, f"{len(bad)} rows differ, e.g. {offline.index[bad[:5]].tolist()}"


def test_every_transaction_is_scored_once_with_the_offline_features(
    kafka_conn: KafkaConnection, small_stream: pd.DataFrame, tmp_path: Path
) -> None:
    run = asyncio.run(
        replay_through_pipeline(
            StreamsSettings(), kafka_conn, small_stream, log_dir=tmp_path, idle_timeout_s=60
        )
    )
    acc = run.accounting
    assert not acc.missing and acc.duplicates == 0 and not acc.dead
    assert set(acc.predicted) == set(small_stream["transaction_id"])
    assert_features_equal(run.features, offline_features(small_stream))
    scores = [p["score"] for p in run.predictions]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert {p["decision"] for p in run.predictions} <= {"approve", "review", "decline"}


def malformed(i: int) -> tuple[bytes, Reason]:
    good = {
        "transaction_id": f"bad-{i}",
        "event_time": "2018-04-03T10:00:00Z",
        "customer_id": "c1",
        "terminal_id": "t1",
        "amount": 5.0,
    }
    kinds: list[tuple[bytes, Reason]] = [
        (b"\xff\xfe\x00", Reason.INVALID_UTF8),
        (b'{"transaction_id": ', Reason.INVALID_JSON),
        (json.dumps({**good, "amount": -3.0}).encode(), Reason.OUT_OF_RANGE),
        (json.dumps({**good, "amount": "5"}).encode(), Reason.WRONG_TYPE),
        (
            json.dumps({k: v for k, v in good.items() if k != "amount"}).encode(),
            Reason.MISSING_FIELD,
        ),
        (json.dumps({**good, "extra": 1}).encode(), Reason.EXTRA_FIELD),
        (json.dumps({**good, "schema_version": 9}).encode(), Reason.UNKNOWN_SCHEMA_VERSION),
        (json.dumps(good).replace("5.0", "NaN").encode(), Reason.NON_FINITE),
        (json.dumps({**good, "customer_id": "x" * 100}).encode(), Reason.OVERSIZED_FIELD),
        (b"{}" + b" " * 70_000, Reason.OVERSIZED),
    ]
    return kinds[i % len(kinds)]


def test_malformed_records_land_in_the_dead_letter_topic_with_their_reason(
    kafka_conn: KafkaConnection, small_stream: pd.DataFrame, tmp_path: Path
) -> None:
    bad = [malformed(i) for i in range(100)]
    expected = Counter(reason.value for _, reason in bad)

    async def inject(harness: Harness) -> None:
        producer = AIOKafkaProducer(**kafka_conn.aiokafka_kwargs(), max_request_size=200_000)
        await producer.start()
        try:
            publisher = BatchPublisher(producer)
            for i, (raw, _) in enumerate(bad):
                await publisher.publish(harness.topics.transactions.name, f"c{i}".encode(), raw)
            await publisher.flush()
            # The topic was empty: the acknowledged batches cover what was written.
            acked = {slot: sorted(ranges) for slot, ranges in publisher.acked.items()}
            assert sum(last - first + 1 for r in acked.values() for first, last in r) == len(bad)
            for ranges in acked.values():  # each partition's batches, back to back from 0
                assert [first for first, _ in ranges] == [0] + [last + 1 for _, last in ranges[:-1]]
        finally:
            await producer.stop()

    frame = small_stream.iloc[:1000]
    run = asyncio.run(
        replay_through_pipeline(
            StreamsSettings(), kafka_conn, frame, log_dir=tmp_path, before_replay=inject
        )
    )
    acc = run.accounting
    assert set(acc.predicted) == set(frame["transaction_id"]) and acc.duplicates == 0
    reasons: Counter[str] = Counter()

    def on_letter(topic: str, record: object) -> None:
        reasons[json.loads(record.value)["reason"]] += 1  # type: ignore[attr-defined]

    asyncio.run(
        read_topics(
            kafka_conn,
            [run.topics.dead_letters.name],
            on_letter,
            lambda: sum(reasons.values()) >= len(bad),
            idle_timeout_s=30,
        )
    )
    assert reasons == expected


def test_a_worker_killed_mid_stream_recovers_its_state(
    kafka_conn: KafkaConnection, small_stream: pd.DataFrame, tmp_path: Path
) -> None:
    async def kill_and_restart(harness: Harness) -> None:
        seen = 0

        def count(topic: str, record: object) -> None:
            nonlocal seen
            seen += 1

        await read_topics(
            kafka_conn, [harness.topics.predictions.name], count, lambda: seen >= 800, 60
        )
        worker = harness.workers.pop()
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        harness.start_worker()

    run = asyncio.run(
        replay_through_pipeline(
            StreamsSettings(), kafka_conn, small_stream, log_dir=tmp_path, between=kill_and_restart
        )
    )
    acc = run.accounting
    assert not acc.missing and not acc.dead
    # A redelivered transaction may be scored twice; its features must not change.
    assert_features_equal(run.features, offline_features(small_stream))
