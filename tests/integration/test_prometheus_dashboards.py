"""A real Prometheus scrapes a worker during a replay; every dashboard query returns data.

One run for the module: a worker (the `streamscore worker` command, through the
pipeline harness) and this test process (the replay producer) both serve
``/metrics`` on loopback; Prometheus (Debian's 2.42 package) scrapes them every
second while a simulated stream, with a few malformed messages, goes through.
Then every query of every panel is run through Prometheus' HTTP API over the run's
time range and must return at least one non-NaN value.

The worker, the learner, the trainer (which trains a first model from the replay's
labels; the worker installs it) and the producer are all scraped. Queries that read
metrics no process of the run emits would be marked ``xfail(strict=True)`` in
:data:`PENDING` (empty now): when those metrics appear, the test fails until the entry
is removed.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.registry import Collector

from producers.frames import normalize
from producers.replay import ReplayConfig, replay
from producers.simulation import SimulationConfig, simulate_frame
from streams import metrics
from streams.codec import decode
from streams.events import MetricsSnapshot
from streams.exporter import start_metrics_server
from streams.harness import Harness, read_topics
from streams.kafka import KafkaConnection
from streams.parity import Accounting
from streams.settings import StreamsSettings
from tests.grafana_queries import PanelQuery, panel_queries, substitute
from tests.integration.prometheus_server import Prometheus, free_port

pytestmark = pytest.mark.integration

#: Metrics that no process of this run emits yet, and who will.
PENDING: dict[str, str] = {}

TRAINER_ENV = {
    "STREAMSCORE_TRAINER__MIN_EXAMPLES": "100",
    "STREAMSCORE_TRAINER__EVERY_DAYS": "1",
    "STREAMSCORE_TRAINER__EVAL_DAYS": "1",
    "STREAMSCORE_TRAINER__EPOCHS": "3",
}

MALFORMED = [b"{not json", b'{"transaction_id": "x"}', b"\xff\xfe"]


def _params() -> list[Any]:
    out = []
    for q in panel_queries():
        names = {re.sub(r"_(bucket|sum|count)$", "", m) for m in q.metrics} | q.metrics
        waits = sorted({PENDING[m] for m in names if m in PENDING})
        marks = [pytest.mark.xfail(strict=True, reason="needs " + ", ".join(waits))]
        out.append(pytest.param(q, id=q.id, marks=marks if waits else []))
    return out


class ProducerView(Collector):
    """The producer metrics of this process's registry (other tests leave other metrics)."""

    def collect(self) -> Iterator[Metric]:
        for family in metrics.REGISTRY.collect():
            if family.name.startswith(("streamscore_produced_", "streamscore_producer_")):
                yield family


@dataclass
class Run:
    """What the module's run left to query."""

    prometheus: Prometheus
    started: float
    accounting: Accounting
    snapshots: list[MetricsSnapshot]


async def _publish_raw(conn: KafkaConnection, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs("-malformed"))
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send_and_wait(topic, value, key=f"bad-{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _drive(harness: Harness, conn: KafkaConnection) -> tuple[Accounting, list[Any]]:
    topics = harness.topics
    frame = normalize(
        simulate_frame(SimulationConfig(n_customers=100, n_terminals=200, days=10, seed=3))
    )
    # Malformed records first: the dead-letter series then exists for the whole replay
    # and every scrape sees it (sent last, it could appear in one scrape only).
    await _publish_raw(conn, topics.transactions.name, MALFORMED)
    await replay(
        conn,
        frame,
        ReplayConfig(
            transactions_topic=topics.transactions.name,
            labels_topic=topics.labels.name,
            label_delay="7d",
            speed=50_000.0,  # ten days in about 17 seconds: many scrapes see it
        ),
    )
    accounting = Accounting(expected=set(frame["transaction_id"]), want_predictions=False)
    bad = 0
    snapshots: list[Any] = []

    def on_message(topic: str, record: Any) -> None:
        nonlocal bad
        if topic == topics.metrics.name:
            snapshots.append(record.value)
            return
        event = json.loads(record.value)
        if topic == topics.features.name:
            accounting.featurized[event["transaction_id"]] += 1
        elif event.get("transaction_id") in accounting.expected:
            accounting.dead[event["transaction_id"]] += 1
        else:
            bad += 1

    def done() -> bool:
        return accounting.done() and bad >= len(MALFORMED) and bool(snapshots)

    await read_topics(
        conn,
        [topics.features.name, topics.dead_letters.name, topics.metrics.name],
        on_message,
        done,
        idle_timeout_s=60,
        total_timeout_s=120,
    )
    return accounting, snapshots


@pytest.fixture(scope="module")
def run(kafka_conn: KafkaConnection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Replay through a scraped worker; Prometheus and the worker stay up for queries."""
    metrics_port, learner_port, trainer_port = free_port(), free_port(), free_port()
    producer_registry = CollectorRegistry()
    producer_registry.register(ProducerView())
    # This process replays: it plays the producer.
    producer_metrics = start_metrics_server("127.0.0.1", 0, producer_registry)
    env = {
        "STREAMSCORE_METRICS__PORT": str(metrics_port),
        "STREAMSCORE_METRICS__SNAPSHOT_INTERVAL_S": "2",
        "STREAMSCORE_WORKER__LABEL_WAIT_S": "1",
        # Score from the first batch (no model to wait for here), so scoring spreads
        # over the replay's scrapes instead of one burst between two of them.
        "STREAMSCORE_SCORING__MODEL_WAIT_S": "0",
    }
    workdir = tmp_path_factory.mktemp("prometheus")
    with Harness(StreamsSettings(), kafka_conn, extra_env=env, log_dir=workdir) as harness:
        harness.create_topics()
        prometheus = Prometheus(
            {
                "worker": [f"127.0.0.1:{metrics_port}"],
                "learner": [f"127.0.0.1:{learner_port}"],
                "trainer": [f"127.0.0.1:{trainer_port}"],
                "producer": [f"127.0.0.1:{producer_metrics.port}"],
            },
            workdir,
        )
        try:
            started = time.time()
            harness.start_worker()
            harness.start_process(
                "learner", "learner", env={"STREAMSCORE_METRICS__PORT": str(learner_port)}
            )
            # The trainer trains from scratch once the first days' labels are in (the
            # first model: its held-out AUC is the trainer panel's figure).
            harness.start_process(
                "trainer",
                "trainer",
                env=TRAINER_ENV | {"STREAMSCORE_METRICS__PORT": str(trainer_port)},
            )
            accounting, raw = asyncio.run(_drive(harness, kafka_conn))
            assert accounting.done(), f"{len(accounting.missing)} transactions without outcome"
            # Wait for a scrape that saw the last batch.
            featurized = len(accounting.featurized)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got = prometheus.query('sum(streamscore_events_out_total{stage="terminal"})')
                if got and float(got[0]["value"][1]) >= featurized:
                    break
                time.sleep(0.5)
            # The trainer's first run, and its promotion reaching the worker.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                auc = prometheus.query("streamscore_trainer_validation_auc_ratio")
                swaps = prometheus.query('sum(streamscore_model_swaps_total{role="deep"})')
                if auc and swaps and float(swaps[0]["value"][1]) >= 1:
                    break
                time.sleep(1)
            time.sleep(2)  # two more scrapes: rates over the tail have two points
            snapshots = [decode(MetricsSnapshot, value) for value in raw]
            yield Run(prometheus, started, accounting, snapshots)
        finally:
            prometheus.close()
            producer_metrics.close()


def test_prometheus_scrapes_every_process(run: Run) -> None:
    targets = run.prometheus.api("targets")["activeTargets"]
    assert {t["labels"]["job"]: t["health"] for t in targets} == {
        "worker": "up",
        "learner": "up",
        "trainer": "up",
        "producer": "up",
    }


def test_worker_counts_every_transaction_and_dead_letter(run: Run) -> None:
    def total(expr: str) -> float:
        return sum(float(r["value"][1]) for r in run.prometheus.query(expr))

    n = len(run.accounting.expected)
    assert total('streamscore_events_in_total{stage="ingest"}') == n + len(MALFORMED)
    dead = total('streamscore_dead_letters_total{stage="ingest"}')
    assert dead == len(MALFORMED) + sum(run.accounting.dead.values())
    assert total('streamscore_events_out_total{stage="terminal"}') == len(run.accounting.featurized)


def test_worker_sends_metric_snapshots_to_the_metrics_topic(run: Run) -> None:
    families = {f.name for s in run.snapshots for f in s.families}
    assert {"streamscore_events_in", "streamscore_faust_messages_received"} <= families
    assert {s.process for s in run.snapshots} == {"worker"}


@pytest.mark.parametrize("query", _params())
def test_dashboard_query_returns_data(run: Run, query: PanelQuery) -> None:
    prom = run.prometheus
    for metric in sorted(query.metrics):
        assert prom.api("series", **{"match[]": metric}), f"{metric} is not exported"
    end = time.time()
    expr = substitute(query.expr, end - run.started)
    series = prom.query_range(expr, run.started, end)
    if query.annotation:
        return  # fires only on drift: the query must run and its metrics exist
    values = [float(v) for s in series for _, v in s["values"]]
    assert any(not math.isnan(v) for v in values), f"no data for {expr}"
