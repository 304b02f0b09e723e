"""The customer and terminal stages: cleaning rules, watermarks, readiness, recovery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from models.features import FEATURE_NAMES
from streams.codec import Reason, decode, encode
from streams.events import EnrichedTransaction, Label, Transaction, Watermark
from streams.ingest import CUSTOMER_TABLE, WATERMARK_KEY, CustomerStage, IngestConfig
from streams.records import Record
from streams.terminal import TerminalConfig, TerminalStage

T0 = datetime(2018, 4, 2, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def tx(i: int, when: datetime, customer: str = "c1", terminal: str = "t1", amount: float = 10.0):
    return Transaction(
        transaction_id=str(i),
        event_time=when,
        customer_id=customer,
        terminal_id=terminal,
        amount=amount,
    )


def rec(value: bytes, offset: int, partition: int = 0, topic: str = "transactions") -> Record:
    return Record(topic, partition, offset, b"k", value)


def enriched_of(result_outputs: list) -> list[EnrichedTransaction]:
    return [
        decode(EnrichedTransaction, o.value)
        for o in result_outputs
        if o.topic == "txn-by-terminal" and o.key != WATERMARK_KEY
    ]


def test_valid_transactions_leave_enriched_with_customer_features_and_watermarks() -> None:
    stage = CustomerStage(IngestConfig(enriched_partitions=2, max_lateness_s=60))
    result = stage.process(
        [
            rec(encode(tx(1, T0, amount=10.0)), 0),
            rec(encode(tx(2, T0 + timedelta(hours=1), amount=30.0)), 1),
        ]
    )
    enriched = enriched_of(result.outputs)
    assert [e.transaction.transaction_id for e in enriched] == ["1", "2"]
    # amount, weekend, night, then (n, mean) over 1, 7, 30 days
    assert enriched[1].customer_features[3:] == [2.0, 20.0, 2.0, 20.0, 2.0, 20.0]
    marks = [o for o in result.outputs if o.key == WATERMARK_KEY]
    assert sorted(o.partition for o in marks) == [0, 1]
    mark = decode(Watermark, marks[0].value)
    assert mark.event_time == T0 + timedelta(hours=1) - timedelta(seconds=60)
    assert [w.table for w in result.writes] == [CUSTOMER_TABLE, CUSTOMER_TABLE]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff", Reason.INVALID_UTF8),
        (b"{", Reason.INVALID_JSON),
        (json.dumps({"transaction_id": "1"}).encode(), Reason.MISSING_FIELD),
    ],
)
def test_bad_input_goes_to_the_dead_letter_topic_with_its_reason(
    raw: bytes, reason: Reason
) -> None:
    result = CustomerStage().process([rec(raw, 7)])
    (letter,) = [json.loads(o.value) for o in result.outputs if o.topic == "dead-letters"]
    assert letter["reason"] == reason.value
    assert letter["source_offset"] == 7
    assert result.dead[reason.value] == 1


def test_duplicate_id_at_another_offset_is_dead_lettered_but_a_redelivery_is_not() -> None:
    stage = CustomerStage()
    first = stage.process([rec(encode(tx(1, T0)), 0)])
    assert len(enriched_of(first.outputs)) == 1
    again = stage.process([rec(encode(tx(1, T0)), 0)])  # same offset: a redelivery
    assert [e.transaction.transaction_id for e in enriched_of(again.outputs)] == ["1"]
    assert not again.writes  # state already holds it
    dup = stage.process([rec(encode(tx(1, T0)), 5)])
    assert enriched_of(dup.outputs) == []
    assert dup.dead[Reason.DUPLICATE.value] == 1


def test_events_far_behind_the_partition_watermark_are_too_late() -> None:
    stage = CustomerStage(IngestConfig(max_lateness_s=3600))
    stage.process([rec(encode(tx(1, T0 + DAY)), 0)])
    within = stage.process([rec(encode(tx(2, T0 + DAY - timedelta(minutes=30))), 1)])
    late = stage.process([rec(encode(tx(3, T0, customer="c2")), 2)])
    assert len(enriched_of(within.outputs)) == 1
    assert late.dead[Reason.TOO_LATE.value] == 1


def test_customer_state_restored_from_its_changelog_gives_the_same_features() -> None:
    live = CustomerStage()
    writes = []
    for i in range(20):
        writes += live.process([rec(encode(tx(i, T0 + i * timedelta(hours=7))), i)]).writes
    restored = CustomerStage()
    for w in writes:
        restored.restore(w.partition, w.key, w.value)
    restored.drop_partitions({0})
    probe = rec(encode(tx(99, T0 + 20 * timedelta(hours=7))), 20)
    (ours,) = enriched_of(restored.process([probe]).outputs)
    (theirs,) = enriched_of(live.process([probe]).outputs)
    assert ours.customer_features == theirs.customer_features


def enriched(i: int, when: datetime, terminal: str = "t1") -> EnrichedTransaction:
    return EnrichedTransaction(
        transaction=tx(i, when, terminal=terminal),
        customer_features=[10.0, 0.0, 0.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0],
        source_partition=0,
        source_offset=i,
        ingest_time=when,
    )


def label(i: int, when: datetime, fraud: bool, terminal: str = "t1") -> bytes:
    return encode(
        Label(
            transaction_id=str(i),
            customer_id="c1",
            terminal_id=terminal,
            is_fraud=fraud,
            transaction_time=when,
            label_time=when + 7 * DAY,
        )
    )


def watermark(source: int, when: datetime) -> Watermark:
    return Watermark(source_partition=source, event_time=when)


def test_a_transaction_waits_for_every_source_watermark_and_for_labels_in_flight() -> None:
    stage = TerminalStage(TerminalConfig(upstream_partitions=2))
    old = enriched(1, T0)
    stage.featurize([(rec(encode(old), 0, topic="txn-by-terminal"), old)])
    now = enriched(2, T0 + 8 * DAY)
    assert not stage.ready(0, now)  # no watermark from either source yet
    stage.apply_watermark(0, watermark(0, T0 + 8 * DAY))
    assert not stage.ready(0, now)  # source 1 unknown
    stage.apply_watermark(0, watermark(1, T0 + 8 * DAY))
    assert not stage.ready(0, now)  # tx 1 sits in the window without a label
    stage.apply_labels([rec(label(1, T0, fraud=True), 0, topic="labels")])
    assert stage.ready(0, now)
    row = stage.featurize([(rec(encode(now), 1, topic="txn-by-terminal"), now)]).rows[0]
    assert row.values[FEATURE_NAMES.index("TERMINAL_ID_RISK_7DAY_WINDOW")] == 1.0
    assert len(row.values) == len(FEATURE_NAMES)


def test_label_watermark_past_the_transaction_makes_it_ready() -> None:
    stage = TerminalStage(TerminalConfig(upstream_partitions=1))
    old = enriched(1, T0)
    stage.featurize([(rec(encode(old), 0, topic="txn-by-terminal"), old)])
    stage.apply_watermark(0, watermark(0, T0 + 9 * DAY))
    now = enriched(2, T0 + 8 * DAY)
    assert not stage.ready(0, now)
    # A label of another terminal, later than the transaction: every earlier one is in.
    stage.apply_labels([rec(label(5, T0 + 1.5 * DAY, False, "t9"), 0, topic="labels")])
    assert stage.ready(0, now)


def test_bad_labels_are_dead_lettered() -> None:
    stage = TerminalStage()
    result = stage.apply_labels([rec(b"not json", 3, topic="labels")])
    assert result.dead[Reason.INVALID_JSON.value] == 1
    assert json.loads(result.outputs[0].value)["source_topic"] == "labels"


def test_a_late_copy_of_an_id_still_held_is_a_duplicate_not_too_late() -> None:
    stage = CustomerStage(IngestConfig(max_lateness_s=3600))
    stage.process([rec(encode(tx(1, T0)), 0)])
    stage.process([rec(encode(tx(2, T0 + 3 * DAY)), 1)])
    copy = stage.process([rec(encode(tx(1, T0)), 2)])
    assert copy.dead == {Reason.DUPLICATE.value: 1}


def test_a_transaction_featurized_once_is_not_featurized_again_after_a_restart() -> None:
    config = TerminalConfig(upstream_partitions=1)
    live = TerminalStage(config)
    first = enriched(1, T0)
    result = live.featurize([(rec(encode(first), 0, topic="txn-by-terminal"), first)])
    assert [r.enriched.transaction.transaction_id for r in result.rows] == ["1"]
    assert any(w.key == "s|t1|1" for w in result.writes)
    # The same id again in this process (a second copy in one batch included): dropped.
    again = live.featurize(
        [(rec(encode(first), 5, topic="txn-by-terminal"), first)] * 2
        + [(rec(encode(enriched(2, T0)), 6, topic="txn-by-terminal"), enriched(2, T0))]
    )
    assert [r.enriched.transaction.transaction_id for r in again.rows] == ["2"]
    assert again.repeats == 2
    # A new owner restored from the changelog drops it too.
    restored = TerminalStage(config)
    for w in [*result.writes, *again.writes]:
        restored.restore(w.partition, w.key, w.value)
    restored.drop_partitions({0})
    copy = restored.featurize([(rec(encode(first), 9, topic="txn-by-terminal"), first)])
    assert copy.rows == [] and copy.repeats == 1
    assert not [o for o in copy.outputs if o.topic == "features"]


def test_featurized_ids_are_forgotten_once_older_than_the_dedup_horizon() -> None:
    stage = TerminalStage(TerminalConfig(upstream_partitions=1, dedup_s=2 * 86_400.0))
    old = enriched(1, T0)
    stage.featurize([(rec(encode(old), 0, topic="txn-by-terminal"), old)])
    stage.apply_watermark(0, watermark(0, T0 + 10 * DAY))
    later = enriched(2, T0 + 10 * DAY)
    result = stage.featurize([(rec(encode(later), 1, topic="txn-by-terminal"), later)])
    assert "1" not in stage.scored and "2" in stage.scored
    assert any(w.key == "s|t1|1" and w.value is None for w in result.writes)


def test_customer_restore_from_a_long_changelog_holds_no_more_than_the_live_state() -> None:
    # A changelog that is never compacted keeps every entry ever written, deletions
    # included: a restore that expires only at the end would rebuild all of it first.
    config = IngestConfig(max_lateness_s=3600)
    live = CustomerStage(config)
    writes, live_peak = [], 0
    for i in range(400):
        writes += live.process([rec(encode(tx(i, T0 + i * timedelta(hours=12))), i)]).writes
        live_peak = max(live_peak, len(live.customers["c1"]))
    assert any(w.value is None for w in writes)
    restored, peak = CustomerStage(config), 0
    for w in writes:
        restored.restore(w.partition, w.key, w.value)
        peak = max(peak, len(restored.customers["c1"]))
    assert peak <= live_peak < 100
    restored.drop_partitions({0})
    assert restored.customers["c1"].to_state() == live.customers["c1"].to_state()
    probe = rec(encode(tx(999, T0 + 400 * timedelta(hours=12))), 400)
    (ours,) = enriched_of(restored.process([probe]).outputs)
    (theirs,) = enriched_of(live.process([probe]).outputs)
    assert ours.customer_features == theirs.customer_features


def test_terminal_restore_from_a_long_changelog_holds_no_more_than_the_live_state() -> None:
    config = TerminalConfig(upstream_partitions=1, dedup_s=10 * 86_400.0)
    live = TerminalStage(config)
    writes: list = []
    live_peak = 0
    for day in range(200):
        when = T0 + day * DAY
        live.apply_watermark(0, watermark(0, when))
        if day >= 8:
            labels = live.apply_labels(
                [rec(label(day - 8, T0 + (day - 8) * DAY, day % 5 == 0), day, topic="labels")]
            )
            writes += labels.writes
        item = enriched(day, when)
        writes += live.featurize([(rec(encode(item), day, topic="txn-by-terminal"), item)]).writes
        live_peak = max(live_peak, len(live.terminals["t1"]) + len(live.scored))
    assert any(w.value is None for w in writes)
    restored, peak = TerminalStage(config), 0
    for w in writes:
        restored.restore(w.partition, w.key, w.value)
        peak = max(peak, len(restored.terminals["t1"]) + len(restored.scored))
    # Restored state keeps the label delay and a day more than live expiry (one entry a
    # day, twice: transactions and featurized ids), until live expiry trims it.
    assert peak <= live_peak + 2 * 9 and live_peak < 100
    restored.drop_partitions({0})
    restored.apply_watermark(0, watermark(0, T0 + 200 * DAY))
    probe = enriched(999, T0 + 200 * DAY)
    ours = restored.featurize([(rec(encode(probe), 999, topic="txn-by-terminal"), probe)])
    theirs = live.featurize([(rec(encode(probe), 999, topic="txn-by-terminal"), probe)])
    assert ours.rows[0].values == theirs.rows[0].values


def test_terminal_restore_keeps_what_transactions_still_waiting_can_see() -> None:
    # Source 1 lags: transactions from source 0 arrive (and are changelogged) weeks
    # ahead of what can be featurized. The restored watermark must follow what was
    # featurized, not what arrived, or it expires windows the waiting ones need.
    config = TerminalConfig(upstream_partitions=2)
    live = TerminalStage(config)
    writes: list = []
    for day in range(60):
        when = T0 + day * DAY
        for source in (0, 1):
            live.apply_watermark(0, watermark(source, when))
        item = enriched(day, when)
        writes += live.featurize([(rec(encode(item), day, topic="txn-by-terminal"), item)]).writes
    waiting = [enriched(day, T0 + day * DAY) for day in range(60, 90)]
    for offset, item in enumerate(waiting, start=60):
        writes += live.accept(rec(encode(item), offset, topic="txn-by-terminal"), item)
    restored = TerminalStage(config)
    for w in writes:
        restored.restore(w.partition, w.key, w.value)
    restored.drop_partitions({0})
    for stage in (live, restored):
        for source in (0, 1):
            stage.apply_watermark(0, watermark(source, T0 + 60 * DAY))
    probe = waiting[0]
    batch = [(rec(encode(probe), 60, topic="txn-by-terminal"), probe)]
    theirs = live.featurize(batch).rows[0].values
    ours = restored.featurize(batch).rows[0].values
    assert theirs[-6::2] == [1.0, 7.0, 30.0]  # one transaction a day in each window
    assert ours == theirs
