"""Simulated customers and terminals: profiles in their ranges, neighbourhoods exact."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.simulation.config import SimulationConfig
from producers.simulation.profiles import _neighbourhoods, make_profiles


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_customers=st.integers(0, 60),
    n_terminals=st.integers(0, 300),
    radius=st.floats(0.01, 150.0),
)
def test_neighbourhoods_are_exactly_the_terminals_within_the_radius(
    seed: int, n_customers: int, n_terminals: int, radius: float
) -> None:
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0, 100, n_customers), rng.uniform(0, 100, n_customers)
    tx, ty = rng.uniform(0, 100, n_terminals), rng.uniform(0, 100, n_terminals)
    start, members = _neighbourhoods(cx, cy, tx, ty, radius)
    near = (cx[:, None] - tx[None, :]) ** 2 + (cy[:, None] - ty[None, :]) ** 2 <= radius**2
    assert start.tolist() == [0, *np.cumsum(near.sum(axis=1)).tolist()]
    for c in range(n_customers):
        np.testing.assert_array_equal(members[start[c] : start[c + 1]], np.flatnonzero(near[c]))


def test_profiles_follow_the_handbook_ranges() -> None:
    customers, terminals = make_profiles(SimulationConfig(), np.random.default_rng(0))
    assert len(customers) == 5_000 and len(terminals) == 10_000
    assert 5 <= customers.mean_amount.min() and customers.mean_amount.max() <= 100
    np.testing.assert_allclose(customers.std_amount, customers.mean_amount / 2)
    assert 0 <= customers.mean_daily_count.min() and customers.mean_daily_count.max() <= 4
    # About pi * 5^2 terminals of density 1 per unit area, fewer near the edges.
    assert 65 < customers.terminal_counts.mean() < 80
    assert 0.1 < (terminals.channel == 1).mean() < 0.2
