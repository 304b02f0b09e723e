"""What a simulation is made of: its size, its calendar, its fraud scenarios, its drifts."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from producers.simulation.drift import Drift

#: Side of the square map on which customers and terminals live.
GRID_SIZE = 100.0
#: Seconds in a simulated day.
DAY_SECONDS = 86_400


class Scenario(enum.IntEnum):
    """Why a transaction is fraudulent (0 when it is genuine).

    The values are those of the handbook's ``TX_FRAUD_SCENARIO`` column, extended
    with the scripted patterns of :mod:`producers.simulation.drift`.
    """

    GENUINE = 0
    LARGE_AMOUNT = 1
    COMPROMISED_TERMINAL = 2
    COMPROMISED_CUSTOMER = 3
    CARD_TESTING = 4


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Everything that determines a simulated stream; the same config gives the same stream.

    Parameters
    ----------
    n_customers
        Number of card holders.
    n_terminals
        Number of terminals (merchant devices).
    days
        Length of the stream in days.
    start
        Event time of the start of day 0 (timezone-aware; midnight keeps the daily
        rhythm centred on midday).
    radius
        Customers use the terminals within this distance on the 100 x 100 map.
    seed
        Seed of every random draw.
    drifts
        Scripted changes, see :func:`producers.simulation.drift.parse_drifts`.
    amount_threshold
        Scenario 1: a transaction above this amount is fraudulent.
    terminals_per_day
        Scenario 2: terminals compromised each day.
    terminal_days
        Scenario 2: days a compromised terminal stays compromised (its first day included).
    customers_per_day
        Scenario 3: customers whose card details leak each day.
    customer_days
        Scenario 3: days a leaked card is abused (its first day included).
    customer_share
        Scenario 3: share of the customer's transactions in that period that are fraudulent.
    customer_multiplier
        Scenario 3: fraudulent transactions spend this multiple of the genuine amount.

    Examples
    --------
    >>> SimulationConfig(n_customers=100, n_terminals=200, days=3).start.isoformat()
    '2018-04-01T00:00:00+00:00'
    >>> SimulationConfig(start=datetime(2024, 1, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: start must be timezone-aware
    """

    n_customers: int = 5_000
    n_terminals: int = 10_000
    days: int = 183
    start: datetime = datetime(2018, 4, 1, tzinfo=UTC)
    radius: float = 5.0
    seed: int = 0
    drifts: tuple[Drift, ...] = ()
    amount_threshold: float = 220.0
    terminals_per_day: int = 2
    terminal_days: int = 28
    customers_per_day: int = 3
    customer_days: int = 14
    customer_share: float = 1 / 3
    customer_multiplier: float = 5.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        for name in ("n_customers", "n_terminals", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")
        if not 0 < self.radius <= GRID_SIZE * 2**0.5:
            raise ValueError(f"radius must be in (0, {GRID_SIZE * 2**0.5:.1f}]")
        if self.terminals_per_day > self.n_terminals or self.terminals_per_day < 0:
            raise ValueError("terminals_per_day must be in [0, n_terminals]")
        if self.customers_per_day > self.n_customers or self.customers_per_day < 0:
            raise ValueError("customers_per_day must be in [0, n_customers]")
        if not 0.0 <= self.customer_share <= 1.0:
            raise ValueError("customer_share must be in [0, 1]")
        if self.terminal_days < 1 or self.customer_days < 1:
            raise ValueError("compromise periods last at least one day")
        if self.amount_threshold <= 0 or self.customer_multiplier <= 0:
            raise ValueError("amount_threshold and customer_multiplier must be positive")
