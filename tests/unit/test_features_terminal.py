"""Terminal windows: (t - d - w, t - d], frauds known at t, labels in any order."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import TerminalWindows

DAY = 86_400.0
DELAY = 7 * DAY
WINDOWS = (DAY, 7 * DAY, 30 * DAY)


def test_terminal_window_is_shifted_by_the_delay_with_both_edges_as_the_handbook() -> None:
    tw = TerminalWindows()
    tw.add_transaction("at_end", 3 * DAY)  # exactly t - d for a query at 10 days
    tw.add_transaction("at_start", 2 * DAY)  # exactly t - d - 1d
    tw.add_transaction("inside", 2.5 * DAY)
    tw.add_transaction("too_recent", 3 * DAY + 1)
    assert tw.features(10 * DAY, DELAY)[0::2] == (2.0, 3.0, 3.0)


def test_terminal_risk_counts_frauds_known_at_t() -> None:
    tw = TerminalWindows()
    tw.add_transaction("a", 0.0)
    tw.add_transaction("b", 1.0)
    tw.add_label("a", 0.0, label_time_s=DELAY, is_fraud=True)
    tw.add_label("b", 1.0, label_time_s=DELAY + 1.0, is_fraud=False)
    assert tw.features(DELAY + 1.0, DELAY) == (2.0, 0.5, 2.0, 0.5, 2.0, 0.5)
    assert tw.features(2.0, 0.0)[:2] == (2.0, 0.0)  # the fraud label is not known yet


def test_terminal_label_before_its_transaction_counts_once_both_are_here() -> None:
    tw = TerminalWindows()
    tw.add_transaction("x", DAY)
    assert tw.add_label("a", 2 * DAY, label_time_s=3 * DAY, is_fraud=True)
    assert tw.features(9.5 * DAY, DELAY)[2:4] == (1.0, 0.0)
    assert tw.add_transaction("a", 2 * DAY)
    assert tw.features(9.5 * DAY, DELAY)[2:4] == (2.0, 0.5)


def test_terminal_empty_window_has_zero_risk() -> None:
    tw = TerminalWindows()
    tw.add_label("a", 0.0, label_time_s=0.0, is_fraud=True)
    assert tw.features(20 * DAY, DELAY) == (0.0,) * 6


def test_terminal_readds_are_no_ops_and_the_first_label_wins() -> None:
    tw = TerminalWindows()
    assert tw.add_transaction("a", 0.0)
    assert not tw.add_transaction("a", 0.0)
    assert tw.add_label("a", 0.0, DELAY, is_fraud=True)
    assert not tw.add_label("a", 0.0, DELAY, is_fraud=False)
    assert len(tw) == 1
    assert tw.features(DELAY, DELAY)[:2] == (1.0, 1.0)


def test_terminal_out_of_order_transactions_are_sorted_in() -> None:
    tw = TerminalWindows()
    for tx, t in [("c", 3 * DAY), ("a", DAY), ("b", 2 * DAY)]:
        tw.add_transaction(tx, t)
    assert tw.features(10.5 * DAY, DELAY)[0::2] == (1.0, 3.0, 3.0)


def test_terminal_expire_keeps_later_features_and_refuses_old_arrivals() -> None:
    tw = TerminalWindows()
    for i in range(50):
        tw.add_transaction(i, i * DAY)
        tw.add_label(i, i * DAY, i * DAY + DELAY, is_fraud=i % 3 == 0)
    queries = [45 * DAY + k * DAY / 3 for k in range(20)]
    before = [tw.features(q, DELAY) for q in queries]
    assert len(tw.expire(45 * DAY, DELAY)[0]) == 9  # days 0..8 are at or before 45 - 37
    assert [tw.features(q, DELAY) for q in queries] == before
    assert tw.horizon_s == 8 * DAY and 8 not in tw and 9 in tw
    assert not tw.add_transaction("late", 8 * DAY)
    assert not tw.add_label("late", 8 * DAY, 20 * DAY, is_fraud=True)


def test_terminal_state_survives_json() -> None:
    tw = TerminalWindows()
    tw.add_transaction("a", DAY)
    tw.add_transaction(7, 2 * DAY)
    tw.add_label("a", DAY, 8 * DAY, is_fraud=True)
    tw.add_label(7, 2 * DAY, 9 * DAY, is_fraud=False)
    tw.add_label("future", 3 * DAY, 10 * DAY, is_fraud=True)
    restored = TerminalWindows.from_state(json.loads(json.dumps(tw.to_state())))
    assert restored.to_state() == tw.to_state()
    assert restored.features(10 * DAY, DELAY) == tw.features(10 * DAY, DELAY)
    assert not restored.add_label(7, 2 * DAY, 9 * DAY, is_fraud=True)


def test_terminal_state_of_another_version_is_rejected() -> None:
    state = TerminalWindows().to_state()
    state["v"] = 0
    with pytest.raises(ValueError, match="version"):
        TerminalWindows.from_state(state)


half_days = st.integers(min_value=0, max_value=100).map(lambda k: k * DAY / 2)
# (time, is_fraud, label delay or None for no label)
terminal_events = st.lists(
    st.tuples(half_days, st.booleans(), st.none() | half_days.map(lambda t: t / 4)),
    max_size=40,
)


def brute_force(
    txs: dict[str, float],
    labels: dict[str, tuple[float, float, bool]],
    time_s: float,
    delay_s: float,
) -> tuple[float, ...]:
    end = time_s - delay_s
    out: list[float] = []
    for w in WINDOWS:
        inside = [tx for tx, t in txs.items() if end - w < t <= end]
        frauds = [tx for tx in inside if tx in labels and labels[tx][2] and labels[tx][1] <= time_s]
        out += [float(len(inside)), len(frauds) / len(inside) if inside else 0.0]
    return tuple(out)


@settings(max_examples=120, deadline=None)
@given(events=terminal_events, data=st.data())
def test_terminal_streaming_equals_brute_force_in_any_arrival_order(
    events: list[tuple[float, bool, float | None]], data: st.DataObject
) -> None:
    # Each transaction and its label arrive independently, in any order.
    arrivals = [("tx", k) for k in range(len(events))]
    arrivals += [("label", k) for k, e in enumerate(events) if e[2] is not None]
    arrivals = data.draw(st.permutations(arrivals))
    delay_s = data.draw(st.sampled_from([0.0, DAY, DELAY]))
    tw = TerminalWindows()
    txs: dict[str, float] = {}
    labels: dict[str, tuple[float, float, bool]] = {}
    for kind, k in arrivals:
        time_s, is_fraud, lag = events[k]
        tx = f"tx{k}"
        if kind == "tx":
            assert tw.add_transaction(tx, time_s)
            txs[tx] = time_s
            got = tw.features(time_s, delay_s)
            assert got == pytest.approx(brute_force(txs, labels, time_s, delay_s))
        else:
            assert lag is not None
            assert tw.add_label(tx, time_s, time_s + lag, is_fraud)
            labels[tx] = (time_s, time_s + lag, is_fraud)
    query = data.draw(half_days)
    assert tw.features(query, delay_s) == pytest.approx(brute_force(txs, labels, query, delay_s))
    restored = TerminalWindows.from_state(json.loads(json.dumps(tw.to_state())))
    assert restored.features(query, delay_s) == tw.features(query, delay_s)
