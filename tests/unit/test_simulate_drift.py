"""Scripted drift: parsed from compact strings, absent before its day, visible after it."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.simulation.batch import Batch
from producers.simulation.config import DAY_SECONDS, Scenario, SimulationConfig
from producers.simulation.drift import (
    AmountShift,
    CardTesting,
    Drift,
    FraudSurge,
    format_drift,
    parse_drift,
    parse_drifts,
)
from producers.simulation.generator import Simulator, simulate

BASE = SimulationConfig(n_customers=2_000, n_terminals=4_000, days=40, seed=21)


def _columns(batches: list[Batch]) -> dict[str, np.ndarray]:
    names = [f.name for f in fields(Batch) if f.name not in ("start", "day")]
    return {n: np.concatenate([getattr(b, n) for b in batches]) for n in names}


def _run(*specs: str, config: SimulationConfig = BASE) -> dict[str, np.ndarray]:
    return _columns(list(simulate(replace(config, drifts=parse_drifts(list(specs))))))


def _days(cols: dict[str, np.ndarray], first: int, last: int) -> dict[str, np.ndarray]:
    day = cols["time_seconds"] // DAY_SECONDS
    keep = (day >= first) & (day < last)
    return {k: v[keep] for k, v in cols.items()}


@pytest.fixture(scope="module")
def base() -> dict[str, np.ndarray]:
    return _run()


# --- parsing -------------------------------------------------------------------------


def test_parses_the_documented_examples() -> None:
    assert parse_drifts("new-pattern@day=30") == (CardTesting(day=30),)
    assert parse_drifts("amount-shift@day=20,factor=1.5") == (AmountShift(day=20, factor=1.5),)
    assert parse_drift("fraud-surge@60") == FraudSurge(day=60)
    assert parse_drift(" Card-Testing@day=5, max-amount=2.5 ,until=9") == CardTesting(
        day=5, until=9, max_amount=2.5
    )


def test_several_drifts_combine_from_one_string_or_many() -> None:
    one = parse_drifts("amount-shift@20;new-pattern@30")
    many = parse_drifts(["amount-shift@20", "new-pattern@30"])
    assert one == many == (AmountShift(day=20), CardTesting(day=30))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wobble@day=3", "unknown drift kind 'wobble'"),
        ("amount-shift", "missing '@day=N'"),
        ("amount-shift@factor=2", "'day' is required"),
        ("amount-shift@day=2,factr=2", "unknown parameter 'factr'"),
        ("amount-shift@day=2,factor=big", "bad value 'big' for factor"),
        ("amount-shift@day=2,day=3", "given twice"),
        ("amount-shift@day=2,threshold=sliding", "threshold must be"),
        ("amount-shift@day=-1", "day must be non-negative"),
        ("new-pattern@day=10,until=10", "until .* must be after day"),
        ("new-pattern@day=10,night_hour=30", "night_hour"),
        ("fraud-surge@day=1,3", "expected key=value"),
    ],
)
def test_rejects_malformed_drifts_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_drift(text)


drifts: st.SearchStrategy[Drift] = st.one_of(
    st.builds(
        AmountShift,
        day=st.integers(0, 400),
        factor=st.floats(0.01, 100, allow_nan=False),
        threshold=st.sampled_from(["scale", "fixed"]),
    ),
    st.builds(
        CardTesting,
        day=st.integers(0, 400),
        customers=st.integers(0, 50),
        burst=st.floats(1, 1_000),
        max_amount=st.floats(0.51, 1_000),
        terminals=st.integers(1, 50),
        night_hour=st.integers(1, 23),
    ),
    st.builds(FraudSurge, day=st.integers(0, 400), factor=st.floats(0, 1_000)),
)


@given(drift=drifts, length=st.none() | st.integers(1, 100))
def test_format_and_parse_round_trip(drift: Drift, length: int | None) -> None:
    drift = replace(drift, until=None if length is None else drift.day + length)
    assert parse_drift(format_drift(drift)) == drift


# --- effects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["amount-shift@day=20,factor=1.5", "new-pattern@day=20", "fraud-surge@day=20"]
)
def test_days_before_a_drift_are_the_stream_without_it(
    base: dict[str, np.ndarray], spec: str
) -> None:
    drifted = _days(_run(spec), 0, 20)
    before = _days(base, 0, 20)
    for name, values in before.items():
        np.testing.assert_array_equal(drifted[name], values, err_msg=name)


def test_amount_shift_scales_genuine_amounts_of_the_same_transactions(
    base: dict[str, np.ndarray],
) -> None:
    shifted = _days(_run("amount-shift@day=20,factor=1.5"), 20, 40)
    plain = _days(base, 20, 40)
    # Same customers, times and terminals: only the amounts move.
    for name in ("customer_id", "terminal_id", "time_seconds"):
        np.testing.assert_array_equal(shifted[name], plain[name])
    genuine = (plain["scenario"] == Scenario.GENUINE) & (plain["amount"] > 1)
    ratio = shifted["amount"][genuine] / plain["amount"][genuine]
    assert np.median(ratio) == pytest.approx(1.5, abs=0.01)
    # The threshold moved with prices: the share of large-amount fraud stays put.
    large = (shifted["scenario"] == Scenario.LARGE_AMOUNT).sum()
    assert abs(large - (plain["scenario"] == Scenario.LARGE_AMOUNT).sum()) <= 5


def test_amount_shift_with_fixed_threshold_turns_big_spending_into_fraud(
    base: dict[str, np.ndarray],
) -> None:
    fixed = _days(_run("amount-shift@day=20,factor=1.5,threshold=fixed"), 20, 40)
    plain = _days(base, 20, 40)
    assert (fixed["scenario"] == Scenario.LARGE_AMOUNT).sum() > 5 * max(
        1, (plain["scenario"] == Scenario.LARGE_AMOUNT).sum()
    )


def test_a_drift_ends_on_its_until_day(base: dict[str, np.ndarray]) -> None:
    cols = _run("amount-shift@day=10,factor=2,until=20")
    during, after = _days(cols, 10, 20), _days(cols, 20, 40)
    assert during["amount"].mean() > 1.6 * _days(base, 10, 20)["amount"].mean()
    for name, values in _days(base, 20, 40).items():
        np.testing.assert_array_equal(after[name], values, err_msg=name)


def test_new_pattern_brings_night_bursts_of_small_amounts_from_its_day() -> None:
    drift = CardTesting(day=25, customers=4, burst=20, max_amount=4.0, terminals=3, night_hour=5)
    sim = Simulator(replace(BASE, drifts=(drift,)))
    cols = _columns(list(sim.batches()))
    testing = cols["scenario"] == Scenario.CARD_TESTING
    day = cols["time_seconds"] // DAY_SECONDS
    assert testing.any() and (day[testing] >= 25).all()
    assert cols["is_fraud"][testing].all()
    assert (cols["amount"][testing] >= 0.5).all() and (cols["amount"][testing] <= 4.0).all()
    # A pool of at most 3 e-commerce terminals takes all the attempts.
    pool = np.unique(cols["terminal_id"][testing])
    assert pool.size <= 3 and (sim.terminals.channel[pool] == 1).all()
    # Each burst starts at night and is many transactions by one card in one day.
    keys = cols["customer_id"][testing] * 1_000 + day[testing]
    _, first, sizes = np.unique(keys, return_index=True, return_counts=True)
    seconds_of_day = cols["time_seconds"][testing] % DAY_SECONDS
    assert (seconds_of_day[first] < 5 * 3600).all()
    assert sizes.mean() > 12


def test_new_pattern_shifts_the_night_share_of_fraud(base: dict[str, np.ndarray]) -> None:
    def night_share_of_fraud(cols: dict[str, np.ndarray]) -> float:
        fraud = cols["is_fraud"]
        night = cols["time_seconds"] % DAY_SECONDS < 7 * 3600
        return float(night[fraud].mean())

    after = _days(_run("new-pattern@day=20"), 20, 40)
    assert night_share_of_fraud(after) > night_share_of_fraud(_days(base, 20, 40)) + 0.15


def test_fraud_surge_multiplies_compromised_terminals_and_customers(
    base: dict[str, np.ndarray],
) -> None:
    config = replace(BASE, days=60)
    surged = _days(_run("fraud-surge@day=28,factor=3", config=config), 50, 60)
    plain = _days(_run(config=config), 50, 60)
    known = (Scenario.COMPROMISED_TERMINAL, Scenario.COMPROMISED_CUSTOMER)
    ratio = np.isin(surged["scenario"], known).mean() / np.isin(plain["scenario"], known).mean()
    assert 2.0 < ratio < 4.5
