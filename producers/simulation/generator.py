"""Day-by-day generation of the stream: genuine spending, three fraud scenarios, drifts."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from producers.simulation.batch import Batch
from producers.simulation.config import DAY_SECONDS, Scenario, SimulationConfig
from producers.simulation.drift import AmountShift, CardTesting, Drift, FraudSurge, format_drift
from producers.simulation.profiles import CHANNELS, Customers, Terminals, make_profiles

# Genuine transactions happen around midday with this spread (seconds).
_MIDDAY = DAY_SECONDS / 2
_TIME_SPREAD = 20_000.0
# Card-testing bursts: mean gap between attempts (seconds), smallest amount.
_BURST_GAP = 90.0
_MIN_TEST_AMOUNT = 0.5

# Independent random streams, so that adding a drift leaves the rest untouched.
_PROFILES, _GENUINE, _FRAUD, _DRIFT = 0, 1, 2, 3


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _drift_key(drift: Drift) -> int:
    return zlib.crc32(format_drift(drift).encode("utf-8"))


@dataclass(slots=True)
class _Columns:
    """Transactions of one day under construction (unsorted)."""

    seconds: NDArray[np.int64]
    customer: NDArray[np.int64]
    terminal: NDArray[np.int64]
    amount: NDArray[np.float64]
    scenario: NDArray[np.int8]


@dataclass(slots=True)
class _State:
    """What carries over from one day to the next."""

    terminal_until: NDArray[np.int64]
    customer_until: NDArray[np.int64]
    seen: NDArray[np.int64]
    next_id: int = 0
    pools: dict[int, NDArray[np.int64]] = field(default_factory=dict)


class Simulator:
    """Seeded generator of a card-transaction stream with labelled fraud and scripted drift.

    Profiles are drawn once, when the simulator is built; :meth:`batches` replays
    the same stream each time it is called.

    Parameters
    ----------
    config
        The size, calendar, scenarios and drifts of the stream.

    Examples
    --------
    >>> sim = Simulator(SimulationConfig(n_customers=200, n_terminals=400, days=2, seed=7))
    >>> [len(b) for b in sim.batches()]
    [338, 358]
    >>> b = next(sim.batches())
    >>> bool((b.time_seconds[1:] >= b.time_seconds[:-1]).all())
    True
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.customers: Customers
        self.terminals: Terminals
        self.customers, self.terminals = make_profiles(config, _rng(config.seed, _PROFILES))

    def batches(self) -> Iterator[Batch]:
        """Yield one :class:`Batch` per day, in event-time order, from day 0."""
        cfg = self.config
        state = _State(
            terminal_until=np.zeros(cfg.n_terminals, np.int64),
            customer_until=np.zeros(cfg.n_customers, np.int64),
            seen=np.zeros(cfg.n_customers, np.int64),
        )
        for day in range(cfg.days):
            yield self._day(day, state)

    def __iter__(self) -> Iterator[Batch]:
        return self.batches()

    def _day(self, day: int, state: _State) -> Batch:
        cfg = self.config
        active = [d for d in cfg.drifts if d.active(day)]
        shift = [d for d in active if isinstance(d, AmountShift)]
        factor = float(np.prod([d.factor for d in shift]))
        threshold = cfg.amount_threshold * float(
            np.prod([d.factor for d in shift if d.threshold == "scale"])
        )
        surge = float(np.prod([d.factor for d in active if isinstance(d, FraudSurge)]))

        cols = self._genuine(_rng(cfg.seed, _GENUINE, day), factor)
        self._fraud(_rng(cfg.seed, _FRAUD, day), day, state, cols, threshold, surge)
        parts = [cols]
        for drift in active:
            if isinstance(drift, CardTesting):
                parts.append(self._card_testing(drift, day, state))
        return self._assemble(day, state, parts)

    def _genuine(self, rng: np.random.Generator, factor: float) -> _Columns:
        """Each customer's Poisson count, times around midday, amounts around their mean."""
        c = self.customers
        counts = c.terminal_counts
        rate = np.where(counts > 0, c.mean_daily_count, 0.0)
        cust = np.repeat(np.arange(len(c), dtype=np.int64), rng.poisson(rate))
        n = cust.size
        # All draws are made for every candidate before any is dropped, so the draws
        # of a day do not depend on which candidates survive.
        when = rng.normal(_MIDDAY, _TIME_SPREAD, n)
        z = rng.standard_normal(n)
        u_terminal = rng.random(n)
        u_fallback = rng.random(n)
        keep = (when >= 0) & (when < DAY_SECONDS)
        cust, when, z = cust[keep], when[keep], z[keep]
        u_terminal, u_fallback = u_terminal[keep], u_fallback[keep]

        mean = c.mean_amount[cust] * factor
        amount = mean + c.std_amount[cust] * factor * z
        negative = amount < 0
        amount[negative] = u_fallback[negative] * 2.0 * mean[negative]
        pick = c.terminal_start[cust] + (u_terminal * counts[cust]).astype(np.int64)
        return _Columns(
            seconds=when.astype(np.int64),
            customer=cust,
            terminal=c.terminals[pick],
            amount=np.round(amount, 2),
            scenario=np.zeros(cust.size, np.int8),
        )

    def _fraud(
        self,
        rng: np.random.Generator,
        day: int,
        state: _State,
        cols: _Columns,
        threshold: float,
        surge: float,
    ) -> None:
        """Mark scenarios 1-3 in place; later scenarios take precedence."""
        cfg = self.config
        n_terms = min(cfg.n_terminals, round(cfg.terminals_per_day * surge))
        n_custs = min(cfg.n_customers, round(cfg.customers_per_day * surge))
        hit_t = rng.choice(cfg.n_terminals, size=n_terms, replace=False)
        state.terminal_until[hit_t] = np.maximum(
            state.terminal_until[hit_t], day + cfg.terminal_days
        )
        hit_c = rng.choice(cfg.n_customers, size=n_custs, replace=False)
        state.customer_until[hit_c] = np.maximum(
            state.customer_until[hit_c], day + cfg.customer_days
        )
        u_share = rng.random(cols.customer.size)

        cols.scenario[cols.amount > threshold] = Scenario.LARGE_AMOUNT
        cols.scenario[state.terminal_until[cols.terminal] > day] = Scenario.COMPROMISED_TERMINAL
        leaked = (state.customer_until[cols.customer] > day) & (u_share < cfg.customer_share)
        cols.scenario[leaked] = Scenario.COMPROMISED_CUSTOMER
        cols.amount[leaked] = np.round(cols.amount[leaked] * cfg.customer_multiplier, 2)

    def _card_testing(self, drift: CardTesting, day: int, state: _State) -> _Columns:
        """Night bursts of small amounts by a few cards on the pattern's terminal pool."""
        cfg = self.config
        key = _drift_key(drift)
        pool = state.pools.get(key)
        if pool is None:
            ecom = np.flatnonzero(self.terminals.channel == CHANNELS.index("ecom"))
            candidates = ecom if ecom.size else np.arange(cfg.n_terminals)
            size = min(drift.terminals, candidates.size)
            pool = np.sort(_rng(cfg.seed, _DRIFT, key, 0).choice(candidates, size, replace=False))
            state.pools[key] = pool
        rng = _rng(cfg.seed, _DRIFT, key, 1, day)
        victims = rng.choice(
            cfg.n_customers, size=min(drift.customers, cfg.n_customers), replace=False
        )
        sizes = np.maximum(rng.poisson(drift.burst, victims.size), 1)
        begin = rng.uniform(0.0, drift.night_hour * 3600.0, victims.size)
        cust = np.repeat(victims.astype(np.int64), sizes)
        gaps = rng.exponential(_BURST_GAP, cust.size)
        # Within a burst, attempts follow its beginning by cumulative gaps.
        starts = np.cumsum(sizes) - sizes
        before = np.cumsum(gaps) - gaps
        offset = before - np.repeat(before[starts], sizes)
        when = np.minimum(np.repeat(begin, sizes) + offset, DAY_SECONDS - 1)
        amount = np.round(rng.uniform(_MIN_TEST_AMOUNT, drift.max_amount, cust.size), 2)
        return _Columns(
            seconds=when.astype(np.int64),
            customer=cust,
            terminal=pool[rng.integers(0, pool.size, cust.size)],
            amount=amount,
            scenario=np.full(cust.size, Scenario.CARD_TESTING, np.int8),
        )

    def _assemble(self, day: int, state: _State, parts: list[_Columns]) -> Batch:
        """Sort the day by time (then customer), number it, and attach terminal attributes."""
        seconds = np.concatenate([p.seconds for p in parts])
        customer = np.concatenate([p.customer for p in parts])
        order = np.lexsort((customer, seconds))
        seconds, customer = seconds[order], customer[order]
        terminal = np.concatenate([p.terminal for p in parts])[order]
        scenario = np.concatenate([p.scenario for p in parts])[order]
        n = seconds.size
        ids = np.arange(state.next_id, state.next_id + n, dtype=np.int64)
        state.next_id += n
        return Batch(
            start=self.config.start,
            day=day,
            transaction_id=ids,
            time_seconds=seconds + day * DAY_SECONDS,
            customer_id=customer,
            terminal_id=terminal,
            amount=np.concatenate([p.amount for p in parts])[order],
            is_fraud=scenario != Scenario.GENUINE,
            scenario=scenario,
            channel=self.terminals.channel[terminal],
            merchant_category=self.terminals.merchant_category[terminal],
            sequence=_number_per_customer(customer, state.seen),
        )


def _number_per_customer(customer: NDArray[np.int64], seen: NDArray[np.int64]) -> NDArray[np.int64]:
    """Number each customer's transactions on from ``seen``, which is updated in place.

    Examples
    --------
    >>> seen = np.array([0, 5])
    >>> _number_per_customer(np.array([1, 0, 1, 1]), seen).tolist(), seen.tolist()
    ([5, 0, 6, 7], [1, 8])
    """
    order = np.argsort(customer, kind="stable")
    grouped = customer[order]
    idx = np.arange(grouped.size)
    is_first = np.ones(grouped.size, bool)
    is_first[1:] = grouped[1:] != grouped[:-1]
    rank = idx - np.maximum.accumulate(np.where(is_first, idx, 0))
    numbers = np.empty_like(customer)
    numbers[order] = seen[grouped] + rank
    seen += np.bincount(customer, minlength=seen.size)
    return numbers


def simulate(config: SimulationConfig) -> Iterator[Batch]:
    """Yield the stream of ``config`` day by day (see :class:`Simulator`)."""
    return Simulator(config).batches()


def simulate_frame(config: SimulationConfig) -> Any:
    """Return the whole stream as one ``pandas.DataFrame`` (columns of :meth:`Batch.to_frame`)."""
    import pandas as pd

    return pd.concat([b.to_frame() for b in simulate(config)], ignore_index=True)
