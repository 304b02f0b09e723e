"""The quick fault harness (`streamscore chaos --quick`), one fault per test.

Each test runs one scenario of :data:`streams.chaos.suite.QUICK` on the session's
broker (the broker restart on a broker of its own, with S3 storage): its own topics,
worker processes and online learner, a seeded workload published while the fault
happens, and the verifier's counts over what came out. Every count that must be zero
is, the fault really happened, and the learner's ``relearned = 0`` is not vacuous (it
learned every label it read).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.chaos.poison import POISON_KINDS
from streams.chaos.runner import Scenario, run_scenario
from streams.chaos.s3broker import s3_broker, s3_store
from streams.chaos.suite import QUICK, QUICK_BROKER, ZERO_COUNTS
from streams.kafka import KafkaConnection
from streams.settings import StreamsSettings

pytestmark = pytest.mark.integration

#: The process events each fault must have caused.
EXPECTED_EVENTS = {
    "kill": ["kill -9 worker", "worker restarted", "kill -9 learner", "learner restarted"],
    "term": ["SIGTERM worker", "worker restarted"],
    "rebalance": [
        "worker added",
        "worker removed (SIGTERM)",
        "worker added",
        "kill -9 worker (not replaced)",
    ],
    "poison": [],
    "join": ["worker added", "worker removed (SIGTERM)"] * 3,
}


@pytest.mark.parametrize("scenario", QUICK, ids=[s.name for s in QUICK])
def test_quick_fault_leaves_one_outcome_per_input_and_learns_each_label_once(
    kafka_conn: KafkaConnection, scenario: Scenario, tmp_path: Path
) -> None:
    result = asyncio.run(
        run_scenario(StreamsSettings(), kafka_conn, scenario, seed=1, log_dir=tmp_path)
    )
    counts = result.counts
    assert {name: getattr(counts, name) for name in ZERO_COUNTS} == dict.fromkeys(ZERO_COUNTS, 0), (
        counts.missing_ids,
        counts.misrouted_examples,
    )
    assert counts.line() == "missing=0 duplicates=0 state_violations=0 relearned=0"
    assert counts.inputs > 500 and counts.unacked == 0
    assert [what for what, _ in result.events] == EXPECTED_EVENTS[scenario.name]
    assert result.crashed == []
    learner_log = tmp_path / "learner.log"
    assert counts.learned == counts.labeled > 0, (
        counts.learned,
        counts.labeled,
        learner_log.read_text()[-3000:] if learner_log.exists() else "",
    )
    if scenario.poison_per_valid:
        # Every kind of poison, each record dead-lettered once with its own reason.
        assert counts.poison > len(POISON_KINDS)
        assert set(counts.dead_lettered_kinds) == set(POISON_KINDS)
        assert sum(counts.dead_lettered_kinds.values()) == counts.poison


def test_broker_restart_loses_nothing_and_never_scores_twice(tmp_path: Path) -> None:
    """Fault 2 on a broker of its own with S3 storage, stopped and started again.

    Nothing is lost, no state is off, no label is learned twice, and no transaction is
    scored twice. The embedded broker cannot give aiokafka an idempotent producer, so
    a batch whose acknowledgement was lost with the connection is sent again: those
    records are in the log twice, byte for byte (the same scoring time). That is the
    only duplication allowed here; on Apache Kafka an idempotent producer removes it.
    """
    with s3_store() as endpoint, s3_broker(endpoint, tmp_path / "broker.log") as broker:
        conn = KafkaConnection.from_settings(
            StreamsSettings().kafka, broker.bootstrap, embedded=True
        )
        result = asyncio.run(
            run_scenario(
                StreamsSettings(), conn, QUICK_BROKER, seed=1, log_dir=tmp_path, broker=broker
            )
        )
    counts = result.counts
    assert [w for w, _ in result.events if "exited with" not in w] == [
        "broker stopped (1 s)",
        "broker restarted",
    ]
    assert (counts.missing, counts.state_violations, counts.relearned) == (0, 0, 0)
    assert (counts.misrouted, counts.order_violations, counts.rescored) == (0, 0, 0)
    assert counts.inputs > 500 and counts.learned == counts.labeled > 0
