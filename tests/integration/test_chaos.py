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
from streams.chaos.suite import BROKER_FAULTS, QUICK, ZERO_COUNTS
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
    "broker": ["broker stopped (1 s)", "broker restarted"],
}


@pytest.mark.parametrize("scenario", QUICK, ids=[s.name for s in QUICK])
def test_quick_fault_leaves_one_outcome_per_input_and_learns_each_label_once(
    kafka_conn: KafkaConnection, scenario: Scenario, tmp_path: Path
) -> None:
    if scenario.fault in BROKER_FAULTS:
        # A broker of its own, on S3 storage, that the fault stops and starts again.
        with s3_store() as endpoint, s3_broker(endpoint, tmp_path / "broker.log") as broker:
            conn = KafkaConnection.from_settings(
                StreamsSettings().kafka, broker.bootstrap, embedded=True
            )
            result = asyncio.run(
                run_scenario(
                    StreamsSettings(), conn, scenario, seed=1, log_dir=tmp_path, broker=broker
                )
            )
    else:
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
    # The fault's events happened (a broker outage may also make a worker exit without
    # committing, to be restarted by the run's supervisor: that is allowed).
    events = [what for what, _ in result.events if "exited with" not in what]
    assert events == EXPECTED_EVENTS[scenario.name]
    assert result.crashed == []
    assert counts.learned == counts.labeled > 0
    if scenario.poison_per_valid:
        # Every kind of poison, each record dead-lettered once with its own reason.
        assert counts.poison > len(POISON_KINDS)
        assert set(counts.dead_lettered_kinds) == set(POISON_KINDS)
        assert sum(counts.dead_lettered_kinds.values()) == counts.poison
