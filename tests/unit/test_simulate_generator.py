"""The simulated stream: reproducible, in time order, with the handbook's world and fraud."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from producers.simulation.batch import Batch
from producers.simulation.config import DAY_SECONDS, Scenario, SimulationConfig
from producers.simulation.generator import Simulator, simulate, simulate_frame

# Handbook-sized world, 63 days: enough for the 28-day terminal compromises to reach
# their steady state, and quick (about a second).
HANDBOOK = SimulationConfig(days=63, seed=3)
SMALL = SimulationConfig(n_customers=300, n_terminals=600, days=10, seed=11)


def _columns(batch: Batch) -> dict[str, np.ndarray]:
    return {f.name: getattr(batch, f.name) for f in fields(batch) if f.name not in ("start", "day")}


def _concat(batches: list[Batch]) -> dict[str, np.ndarray]:
    cols = [_columns(b) for b in batches]
    return {k: np.concatenate([c[k] for c in cols]) for k in cols[0]}


@pytest.fixture(scope="module")
def handbook() -> tuple[Simulator, dict[str, np.ndarray]]:
    sim = Simulator(HANDBOOK)
    return sim, _concat(list(sim.batches()))


def test_same_seed_gives_identical_stream() -> None:
    first = _concat(list(simulate(SMALL)))
    second = _concat(list(simulate(SMALL)))
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_a_simulator_replays_the_same_stream_each_time() -> None:
    sim = Simulator(SMALL)
    once, twice = _concat(list(sim.batches())), _concat(list(iter(sim)))
    for name in once:
        np.testing.assert_array_equal(once[name], twice[name], err_msg=name)


def test_another_seed_gives_another_stream() -> None:
    base = _concat(list(simulate(SMALL)))
    other = _concat(list(simulate(SimulationConfig(n_customers=300, n_terminals=600, days=10))))
    assert base["amount"].size != other["amount"].size or not np.array_equal(
        base["amount"], other["amount"]
    )


def test_stream_is_in_event_time_order_with_increasing_ids(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    assert (np.diff(s["time_seconds"]) >= 0).all()
    np.testing.assert_array_equal(s["transaction_id"], np.arange(s["transaction_id"].size))


def test_each_batch_holds_exactly_its_day() -> None:
    for batch in simulate(SMALL):
        days = batch.time_seconds // DAY_SECONDS
        assert (days == batch.day).all()


def test_volume_and_fraud_rate_match_the_handbook_world(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    per_day = s["amount"].size / HANDBOOK.days
    # The handbook's stream: 1,754,155 transactions over 183 days, 0.84 % fraud.
    assert 1_754_155 / 183 * 0.9 < per_day < 1_754_155 / 183 * 1.1
    steady = s["time_seconds"] >= 28 * DAY_SECONDS
    rate = s["is_fraud"][steady].mean()
    assert 0.006 < rate < 0.012


def test_every_handbook_scenario_occurs_and_truth_matches_scenario(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    counts = np.bincount(s["scenario"], minlength=len(Scenario))
    assert counts[Scenario.LARGE_AMOUNT] > 100
    assert counts[Scenario.COMPROMISED_TERMINAL] > 1_000
    assert counts[Scenario.COMPROMISED_CUSTOMER] > 500
    assert counts[Scenario.CARD_TESTING] == 0  # only a drift brings it
    np.testing.assert_array_equal(s["is_fraud"], s["scenario"] != Scenario.GENUINE)


def test_large_amounts_are_fraud_and_genuine_amounts_stay_below_threshold(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    scenario1 = s["scenario"] == Scenario.LARGE_AMOUNT
    assert (s["amount"][scenario1] > HANDBOOK.amount_threshold).all()
    genuine = s["scenario"] == Scenario.GENUINE
    assert (s["amount"][genuine] <= HANDBOOK.amount_threshold).all()


def test_a_compromised_terminal_takes_only_fraud_that_day(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    day = s["time_seconds"] // DAY_SECONDS
    hit = s["scenario"] == Scenario.COMPROMISED_TERMINAL
    pairs = set(zip(s["terminal_id"][hit].tolist(), day[hit].tolist(), strict=True))
    on_hit = np.array(
        [(t, d) in pairs for t, d in zip(s["terminal_id"].tolist(), day.tolist(), strict=True)]
    )
    # Scenario 3 may override 2 on the same transaction; both are fraud.
    assert s["is_fraud"][on_hit].all()
    # And a compromise lasts: a terminal hit on day d is still hit while it is used
    # in the following days of its 28-day window (checked on the first terminal).
    terminal = s["terminal_id"][hit][0]
    first = day[hit][0]
    later = (s["terminal_id"] == terminal) & (day >= first) & (day < first + 28)
    assert s["is_fraud"][later].all()


def test_leaked_cards_spend_about_five_times_the_customer_mean(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    sim, s = handbook
    leaked = s["scenario"] == Scenario.COMPROMISED_CUSTOMER
    ratio = s["amount"][leaked].mean() / sim.customers.mean_amount[s["customer_id"][leaked]].mean()
    assert 4.0 < ratio < 6.0


def test_leaked_cards_defraud_about_a_third_of_their_transactions(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    day = s["time_seconds"] // DAY_SECONDS
    leaked = s["scenario"] == Scenario.COMPROMISED_CUSTOMER
    # Customers whose leak began (first scenario-3 fraud) in the first half; look at
    # the 14 days from that first fraud, where most of their window lies.
    shares = []
    for customer in np.unique(s["customer_id"][leaked])[:60]:
        mine = s["customer_id"] == customer
        first = day[mine & leaked].min()
        window = mine & (day > first) & (day < first + 10)
        if window.sum() >= 5:
            shares.append((s["scenario"][window] == Scenario.COMPROMISED_CUSTOMER).mean())
    assert 0.2 < float(np.mean(shares)) < 0.45


def test_customers_pay_only_at_terminals_within_the_radius(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    sim, s = handbook
    genuine = s["scenario"] != Scenario.CARD_TESTING
    c, t = s["customer_id"][genuine], s["terminal_id"][genuine]
    dist = np.hypot(
        sim.customers.x[c] - sim.terminals.x[t], sim.customers.y[c] - sim.terminals.y[t]
    )
    assert dist.max() <= HANDBOOK.radius


def test_transactions_cluster_around_midday(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    seconds_of_day = s["time_seconds"] % DAY_SECONDS
    assert abs(seconds_of_day.mean() - DAY_SECONDS / 2) < 600
    night = (seconds_of_day < 7 * 3600).mean()  # the handbook's night: hour <= 6
    assert 0.14 < night < 0.21


def test_amounts_are_non_negative_cents(handbook: tuple[Simulator, dict[str, np.ndarray]]) -> None:
    _, s = handbook
    assert (s["amount"] >= 0).all()
    np.testing.assert_allclose(s["amount"], np.round(s["amount"], 2), rtol=0, atol=1e-9)


def test_sequence_numbers_count_each_customers_transactions_from_zero(
    handbook: tuple[Simulator, dict[str, np.ndarray]],
) -> None:
    _, s = handbook
    for customer in (0, 17, 4_321):
        seq = s["sequence"][s["customer_id"] == customer]
        np.testing.assert_array_equal(seq, np.arange(seq.size))


def test_customers_without_terminal_in_reach_make_no_transactions() -> None:
    sim = Simulator(SimulationConfig(n_customers=400, n_terminals=50, days=5, radius=2.0, seed=5))
    isolated = np.flatnonzero(sim.customers.terminal_counts == 0)
    assert isolated.size > 0
    spent = np.concatenate([b.customer_id for b in sim.batches()])
    assert not np.isin(spent, isolated).any()


def test_frame_has_the_handbook_columns_and_dtypes() -> None:
    frame = simulate_frame(SMALL)
    handbook_columns = {
        "TRANSACTION_ID": "int64",
        "TX_DATETIME": "datetime64[ns]",
        "CUSTOMER_ID": "int64",
        "TERMINAL_ID": "int64",
        "TX_AMOUNT": "float64",
        "TX_TIME_SECONDS": "int64",
        "TX_TIME_DAYS": "int64",
        "TX_FRAUD": "int64",
        "TX_FRAUD_SCENARIO": "int64",
    }
    assert list(frame.columns[: len(handbook_columns)]) == list(handbook_columns)
    assert {c: str(frame[c].dtype) for c in handbook_columns} == handbook_columns
    assert frame["TX_DATETIME"].iloc[0] >= datetime(2018, 4, 1)  # noqa: DTZ001 - naive UTC
    assert (frame["TX_TIME_DAYS"] == frame["TX_TIME_SECONDS"] // DAY_SECONDS).all()
    assert set(frame["MERCHANT_CATEGORY"].str.len()) == {4}


def test_event_times_follow_the_start_in_any_timezone() -> None:
    plus_two = timezone(timedelta(hours=2))
    cfg = SimulationConfig(
        n_customers=50, n_terminals=100, days=1, start=datetime(2024, 1, 1, tzinfo=plus_two)
    )
    batch = next(simulate(cfg))
    origin = np.datetime64(datetime(2023, 12, 31, 22, tzinfo=UTC).replace(tzinfo=None), "s")
    assert batch.event_times()[0] == origin + np.timedelta64(int(batch.time_seconds[0]), "s")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": datetime(2018, 4, 1)}, "timezone-aware"),  # noqa: DTZ001 - the point
        ({"days": 0}, "days"),
        ({"radius": 0.0}, "radius"),
        ({"terminals_per_day": 20_000}, "terminals_per_day"),
        ({"customer_share": 1.5}, "customer_share"),
    ],
)
def test_config_rejects_impossible_worlds(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**kwargs)  # type: ignore[arg-type]
