"""Simulated batches become valid wire events; labels follow their transactions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from producers.simulation.config import SimulationConfig
from producers.simulation.drift import parse_drifts
from producers.simulation.emit import (
    label_for,
    parse_delay,
    parse_duration,
    simulated_events,
    transactions,
)
from producers.simulation.generator import Simulator, simulate
from streams.codec import decode, encode
from streams.events import Channel, Label, Transaction

CONFIG = SimulationConfig(
    n_customers=150, n_terminals=300, days=6, seed=4, drifts=parse_drifts("new-pattern@day=2")
)


def _time(event: Transaction | Label) -> datetime:
    return event.event_time if isinstance(event, Transaction) else event.label_time


def test_transactions_are_valid_events_that_match_the_batch() -> None:
    batch = next(simulate(CONFIG))
    events = list(transactions(batch))
    assert len(events) == len(batch)
    for i in (0, len(batch) // 2, len(batch) - 1):
        tx = events[i]
        assert decode(Transaction, encode(tx)) == tx
        assert tx.transaction_id == str(batch.transaction_id[i])
        assert tx.customer_id == str(batch.customer_id[i])
        assert tx.terminal_id == str(batch.terminal_id[i])
        assert tx.amount == batch.amount[i]
        assert tx.event_time == CONFIG.start + timedelta(seconds=int(batch.time_seconds[i]))
        assert tx.event_time.utcoffset() == timedelta(0)
        assert tx.sequence == batch.sequence[i]
    assert {tx.channel for tx in events} <= {Channel.POS, Channel.ECOM}
    assert all(tx.merchant_category is not None and len(tx.merchant_category) == 4 for tx in events)


def test_label_for_carries_the_truth_and_the_delay() -> None:
    tx = Transaction(
        transaction_id="10",
        customer_id="1",
        terminal_id="2",
        amount=3.0,
        event_time=datetime(2018, 4, 2, 3, tzinfo=UTC),
    )
    label = label_for(tx, True, timedelta(hours=36))
    assert (label.transaction_id, label.customer_id, label.terminal_id) == ("10", "1", "2")
    assert label.is_fraud
    assert label.label_time - label.transaction_time == timedelta(hours=36)
    assert decode(Label, encode(label)) == label
    with pytest.raises(ValidationError, match="earlier than transaction_time"):
        label_for(tx, False, timedelta(seconds=-1))


def test_stream_is_in_event_time_order_and_labels_every_transaction_once() -> None:
    events = list(simulated_events(simulate(CONFIG), "1d..3d", seed=9))
    times = [_time(e) for e in events]
    assert times == sorted(times)
    seen: dict[str, Transaction] = {}
    labels: Counter[str] = Counter()
    for event in events:
        if isinstance(event, Transaction):
            seen[event.transaction_id] = event
        else:
            # A label never comes before its transaction.
            assert event.transaction_id in seen
            assert event.transaction_time == seen[event.transaction_id].event_time
            labels[event.transaction_id] += 1
    assert set(labels) == set(seen) and set(labels.values()) == {1}


def test_labels_tell_the_simulated_truth() -> None:
    truth = {
        str(i): bool(f)
        for b in simulate(CONFIG)
        for i, f in zip(b.transaction_id, b.is_fraud, strict=True)
    }
    labels = [e for e in simulated_events(simulate(CONFIG), "7d") if isinstance(e, Label)]
    assert any(label.is_fraud for label in labels)
    assert {label.transaction_id: label.is_fraud for label in labels} == truth
    assert {label.label_time - label.transaction_time for label in labels} == {timedelta(days=7)}


def test_per_event_delays_can_depend_on_the_truth() -> None:
    def chargebacks_first(rng: np.random.Generator, is_fraud: np.ndarray) -> np.ndarray:
        return np.where(is_fraud, 3_600.0, 10 * 86_400.0)

    labels = [
        e for e in simulated_events(simulate(CONFIG), chargebacks_first) if isinstance(e, Label)
    ]
    delays = {(lab.is_fraud, lab.label_time - lab.transaction_time) for lab in labels}
    assert delays == {(True, timedelta(hours=1)), (False, timedelta(days=10))}


def test_zero_delay_labels_follow_their_transaction_immediately() -> None:
    events = list(simulated_events(simulate(CONFIG), timedelta(0)))
    for before, after in zip(events[:-1], events[1:], strict=True):
        if isinstance(after, Label):
            assert _time(before) == after.label_time


def test_without_flush_the_labels_due_after_the_last_day_are_dropped() -> None:
    end = CONFIG.start + timedelta(days=CONFIG.days)
    flushed = list(simulated_events(simulate(CONFIG), "2d"))
    kept = list(simulated_events(simulate(CONFIG), "2d", flush=False))
    due = [e for e in flushed if isinstance(e, Transaction) or e.label_time < end]
    assert kept == due
    assert len(kept) < len(flushed)


def test_same_seeds_give_the_same_events() -> None:
    first = [encode(e) for e in simulated_events(Simulator(CONFIG).batches(), "exp:2d", seed=3)]
    again = [encode(e) for e in simulated_events(Simulator(CONFIG).batches(), "exp:2d", seed=3)]
    other = [encode(e) for e in simulated_events(Simulator(CONFIG).batches(), "exp:2d", seed=4)]
    assert first == again
    assert first != other


def test_a_delay_model_must_give_one_finite_delay_per_transaction() -> None:
    def broken(rng: np.random.Generator, is_fraud: np.ndarray) -> np.ndarray:
        return np.array([1.0])

    with pytest.raises(ValueError, match="one finite delay per transaction"):
        list(simulated_events(simulate(CONFIG), broken))


def test_negative_timedelta_is_not_a_delay() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        list(simulated_events(simulate(CONFIG), timedelta(hours=-1)))


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    [("7d", 7.0, 7.0), ("36h", 1.5, 1.5), ("2d..4d", 2.0, 4.0), ("5d+exp:1d", 5.0, 30.0)],
)
def test_delay_specs_draw_within_their_range(spec: str, low: float, high: float) -> None:
    days = parse_delay(spec)(np.random.default_rng(0), np.zeros(2_000, bool)) / 86_400
    assert days.min() >= low and days.max() <= high


def test_exponential_delay_has_the_given_mean() -> None:
    days = parse_delay("exp:2d")(np.random.default_rng(1), np.zeros(20_000, bool)) / 86_400
    assert days.mean() == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("bad", ["", "7", "7 days", "d7", "3w", "4d..2d", "exp:"])
def test_malformed_delay_specs_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_delay(bad)


@given(
    days=st.integers(0, 400),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
)
def test_durations_parse_from_their_compact_form(
    days: int, hours: int, minutes: int, seconds: int
) -> None:
    text = f"{days}d{hours}h{minutes}m{seconds}s"
    assert parse_duration(text) == timedelta(
        days=days, hours=hours, minutes=minutes, seconds=seconds
    )
