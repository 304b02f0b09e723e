"""Customer windows: (t - w, t] in event time, ties by arrival, replay-stable, expirable."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import CustomerWindows

DAY = 86_400.0
WINDOWS = (DAY, 7 * DAY, 30 * DAY)


def brute_force(
    events: list[tuple[str, float, float, int]], time_s: float, seq: int | None
) -> tuple[float, ...]:
    """Count and mean of the amounts that arrived by ``seq`` with time in (t - w, t]."""
    out: list[float] = []
    for w in WINDOWS:
        amounts = [
            a for _, t, a, s in events if time_s - w < t <= time_s and (seq is None or s <= seq)
        ]
        out += [float(len(amounts)), sum(amounts) / len(amounts) if amounts else 0.0]
    return tuple(out)


def assert_close(got: tuple[float, ...], want: tuple[float, ...]) -> None:
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_customer_window_excludes_exactly_t_minus_w_and_includes_t() -> None:
    cw = CustomerWindows()
    cw.add("old", 0.0, 100.0, seq=0)
    cw.add("edge", 23 * DAY, 10.0, seq=1)  # exactly 7 days before the query
    cw.add("now", 30 * DAY, 20.0, seq=2)  # exactly 30 days after "old"
    assert cw.features(30 * DAY, seq=2) == (1.0, 20.0, 1.0, 20.0, 2.0, 15.0)
    # One second earlier, "old" is still inside the 30-day window and "edge" in the 7-day one.
    assert cw.features(30 * DAY - 1, seq=1) == (0.0, 0.0, 1.0, 10.0, 2.0, 55.0)


def test_customer_equal_timestamps_only_see_earlier_arrivals() -> None:
    cw = CustomerWindows()
    for seq, (tx, amount) in enumerate([("a", 10.0), ("b", 20.0), ("c", 60.0)]):
        cw.add(tx, 5 * DAY, amount, seq)
    assert cw.features(5 * DAY, seq=0)[:2] == (1.0, 10.0)
    assert cw.features(5 * DAY, seq=1)[:2] == (2.0, 15.0)
    assert cw.features(5 * DAY, seq=2)[:2] == (3.0, 30.0)
    assert cw.features(5 * DAY)[:2] == (3.0, 30.0)  # no arrival cut-off


def test_customer_tie_added_out_of_arrival_order_still_orders_by_seq() -> None:
    cw = CustomerWindows()
    cw.add("b", 5 * DAY, 20.0, seq=7)
    cw.add("a", 5 * DAY, 10.0, seq=3)
    assert cw.features(5 * DAY, seq=3)[:2] == (1.0, 10.0)
    assert cw.features(5 * DAY, seq=7)[:2] == (2.0, 15.0)


def test_customer_empty_windows_give_zero_counts_and_means() -> None:
    cw = CustomerWindows()
    assert cw.features(DAY, seq=0) == (0.0,) * 6
    cw.add("a", 0.0, 10.0, seq=0)
    assert cw.features(100 * DAY, seq=1) == (0.0,) * 6


def test_customer_readding_a_transaction_is_a_no_op() -> None:
    cw = CustomerWindows()
    assert cw.add("a", DAY, 10.0, seq=0)
    assert not cw.add("a", DAY, 99.0, seq=5)
    assert len(cw) == 1
    assert cw.features(DAY, seq=5)[:2] == (1.0, 10.0)


def test_customer_late_arrival_is_counted_by_later_arrivals_only() -> None:
    cw = CustomerWindows()
    assert cw.observe("a", 10 * DAY, 10.0, seq=0)[:2] == (1.0, 10.0)
    assert cw.observe("b", 12 * DAY, 20.0, seq=1)[2:4] == (2.0, 15.0)
    # "late" happened before "b" but arrived after it.
    assert cw.observe("late", 11 * DAY, 30.0, seq=2)[2:4] == (2.0, 20.0)
    assert cw.observe("c", 12.5 * DAY, 40.0, seq=3)[2:4] == (4.0, 25.0)
    # Replaying "b" with everything in the state gives what it gave the first time.
    assert cw.features(12 * DAY, seq=1)[2:4] == (2.0, 15.0)
    assert cw.features(12 * DAY)[2:4] == (3.0, 20.0)


def test_customer_expire_drops_only_what_no_later_window_needs() -> None:
    cw = CustomerWindows()
    for i in range(40):
        cw.add(f"t{i}", i * DAY, float(i), seq=i)
    before = cw.features(39 * DAY, seq=39)
    dropped = cw.expire(35 * DAY)
    assert dropped == [f"t{i}" for i in range(6)]  # days 0..5 are at or before 35 - 30
    assert len(cw) == 34
    assert cw.features(39 * DAY, seq=39) == pytest.approx(before)
    # Too old to matter any more: refused, and a re-add of an expired id stays refused.
    assert cw.horizon_s == 5 * DAY
    assert "t0" not in cw and "t6" in cw
    assert not cw.add("t0", 0.0, 0.0, seq=100)
    assert not cw.add("older", 5 * DAY, 1.0, seq=101)
    assert cw.add("fresh", 5 * DAY + 1, 1.0, seq=102)


def test_customer_state_survives_json() -> None:
    cw = CustomerWindows()
    cw.add("a", DAY, 10.0, seq=0)
    cw.add(2, 3 * DAY, 20.0, seq=1)
    cw.add("late", 2 * DAY, 30.0, seq=2)
    cw.expire(0.5 * DAY)
    restored = CustomerWindows.from_state(json.loads(json.dumps(cw.to_state())))
    assert restored.to_state() == cw.to_state()
    assert restored.features(3 * DAY, seq=1) == cw.features(3 * DAY, seq=1)
    assert not restored.add(2, 3 * DAY, 20.0, seq=3)


def test_customer_state_of_another_version_is_rejected() -> None:
    state = CustomerWindows().to_state()
    state["v"] = 99
    with pytest.raises(ValueError, match="version"):
        CustomerWindows.from_state(state)


# Times on a half-day grid make ties and exact window edges common.
event_lists = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=80).map(lambda k: k * DAY / 2),
        st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
    ),
    max_size=40,
)


@settings(max_examples=120, deadline=None)
@given(events=event_lists, data=st.data())
def test_customer_streaming_equals_brute_force_in_any_arrival_order(
    events: list[tuple[float, float]], data: st.DataObject
) -> None:
    arrival = data.draw(st.permutations(range(len(events))))
    cw = CustomerWindows()
    seen: list[tuple[str, float, float, int]] = []
    first: dict[str, tuple[float, ...]] = {}
    for seq, k in enumerate(arrival):
        time_s, amount = events[k]
        tx = f"tx{k}"
        seen.append((tx, time_s, amount, seq))
        first[tx] = cw.observe(tx, time_s, amount, seq)
        assert_close(first[tx], brute_force(seen, time_s, seq))
    # A replay finds everything in the state and still computes the same features.
    for tx, time_s, amount, seq in seen:
        assert not cw.add(tx, time_s, amount, seq)
        assert_close(cw.features(time_s, seq), first[tx])
    query = data.draw(st.integers(min_value=0, max_value=90).map(lambda k: k * DAY / 2))
    assert_close(cw.features(query), brute_force(seen, query, None))


@settings(max_examples=60, deadline=None)
@given(events=event_lists, data=st.data())
def test_customer_expiry_and_json_round_trip_keep_later_features(
    events: list[tuple[float, float]], data: st.DataObject
) -> None:
    arrival = data.draw(st.permutations(range(len(events))))
    cw = CustomerWindows()
    for seq, k in enumerate(arrival):
        cw.add(f"tx{k}", events[k][0], events[k][1], seq)
    watermark = data.draw(st.integers(min_value=0, max_value=90).map(lambda k: k * DAY / 2))
    queries = [watermark + k * DAY / 4 for k in range(8)]
    expected = [cw.features(q, seq) for q in queries for seq in (None, len(events) // 2)]
    cw.expire(watermark)
    restored = CustomerWindows.from_state(json.loads(json.dumps(cw.to_state())))
    for windows in (cw, restored):
        got = [windows.features(q, seq) for q in queries for seq in (None, len(events) // 2)]
        for g, e in zip(got, expected, strict=True):
            assert_close(g, e)
