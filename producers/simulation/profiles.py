"""Customers and terminals on a 100 x 100 map, and who can pay where."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from producers.simulation.config import GRID_SIZE, SimulationConfig

#: Terminal channels (codes into :data:`CHANNELS`) and how common they are.
CHANNELS = ("pos", "ecom")
CHANNEL_SHARES = (0.85, 0.15)
#: ISO 18245 merchant category codes a terminal of each channel may carry.
MERCHANT_CATEGORIES: tuple[tuple[str, ...], ...] = (
    ("5411", "5812", "5541", "5311", "5912", "5651", "5814", "7230"),
    ("5969", "5732", "5818", "5999", "4814", "5942", "4722", "5734"),
)
#: Rows of customer-terminal pairs the neighbourhood search holds at once.
_PAIRS_PER_CHUNK = 4_000_000


@dataclass(frozen=True, slots=True)
class Customers:
    """Customer profiles, indexed by customer id (0 .. n-1)."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    mean_amount: NDArray[np.float64]
    std_amount: NDArray[np.float64]
    mean_daily_count: NDArray[np.float64]
    terminal_start: NDArray[np.int64]
    """CSR row pointers: the terminals of customer c are ``terminals[start[c]:start[c+1]]``."""
    terminals: NDArray[np.int64]
    """Terminal ids, grouped by customer, ascending within a customer."""

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def terminal_counts(self) -> NDArray[np.int64]:
        """Number of terminals each customer can use."""
        return np.diff(self.terminal_start)


@dataclass(frozen=True, slots=True)
class Terminals:
    """Terminal profiles, indexed by terminal id (0 .. n-1)."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    channel: NDArray[np.int8]
    """Index into :data:`CHANNELS`."""
    merchant_category: NDArray[np.int16]
    """Merchant category code as an integer (written with four digits)."""

    def __len__(self) -> int:
        return int(self.x.size)


def make_terminals(n: int, rng: np.random.Generator) -> Terminals:
    """Draw ``n`` terminals uniformly on the map, each with a channel and a category."""
    xy = rng.uniform(0.0, GRID_SIZE, size=(n, 2))
    channel = (rng.random(n) >= CHANNEL_SHARES[0]).astype(np.int8)
    pick = rng.integers(0, len(MERCHANT_CATEGORIES[0]), size=n)
    codes = np.array([[int(c) for c in cats] for cats in MERCHANT_CATEGORIES], dtype=np.int16)
    return Terminals(
        x=xy[:, 0].copy(),
        y=xy[:, 1].copy(),
        channel=channel,
        merchant_category=codes[channel, pick],
    )


def make_customers(
    n: int, terminals: Terminals, radius: float, rng: np.random.Generator
) -> Customers:
    """Draw ``n`` customers and find the terminals within ``radius`` of each.

    A customer spends on average between 5 and 100 (standard deviation half the
    mean) and makes on average between 0 and 4 transactions a day.
    """
    xy = rng.uniform(0.0, GRID_SIZE, size=(n, 2))
    mean_amount = rng.uniform(5.0, 100.0, size=n)
    mean_daily_count = rng.uniform(0.0, 4.0, size=n)
    start, members = _neighbourhoods(xy[:, 0], xy[:, 1], terminals.x, terminals.y, radius)
    return Customers(
        x=xy[:, 0].copy(),
        y=xy[:, 1].copy(),
        mean_amount=mean_amount,
        std_amount=mean_amount / 2.0,
        mean_daily_count=mean_daily_count,
        terminal_start=start,
        terminals=members,
    )


def make_profiles(
    config: SimulationConfig, rng: np.random.Generator
) -> tuple[Customers, Terminals]:
    """Draw the terminals, then the customers, of a simulation."""
    terminals = make_terminals(config.n_terminals, rng)
    return make_customers(config.n_customers, terminals, config.radius, rng), terminals


def _neighbourhoods(
    cx: NDArray[np.float64],
    cy: NDArray[np.float64],
    tx: NDArray[np.float64],
    ty: NDArray[np.float64],
    radius: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """CSR lists of the terminals within ``radius`` of each customer (distance inclusive).

    Examples
    --------
    >>> start, members = _neighbourhoods(
    ...     np.array([0.0, 50.0]), np.array([0.0, 50.0]),
    ...     np.array([1.0, 60.0, 3.0]), np.array([1.0, 50.0, 4.0]), 5.0)
    >>> start.tolist(), members.tolist()
    ([0, 2, 2], [0, 2])
    """
    # Terminals sorted by x: each customer only compares the band |x - cx| <= radius.
    order = np.argsort(tx, kind="stable")
    sx, sy = tx[order], ty[order]
    lo = np.searchsorted(sx, cx - radius, side="left")
    hi = np.searchsorted(sx, cx + radius, side="right")
    r2 = radius * radius
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    band = hi - lo
    first = 0
    while first < cx.size:
        # As many customers as fit the chunk's pair budget (at least one).
        cum = np.cumsum(band[first:])
        last = first + max(1, int(np.searchsorted(cum, _PAIRS_PER_CHUNK, side="right")))
        c = np.repeat(np.arange(first, last), band[first:last])
        offsets = np.arange(c.size) - np.repeat(
            np.cumsum(band[first:last]) - band[first:last], band[first:last]
        )
        pos = lo[c] + offsets
        near = (sx[pos] - cx[c]) ** 2 + (sy[pos] - cy[c]) ** 2 <= r2
        rows.append(c[near])
        cols.append(order[pos[near]])
        first = last
    row = np.concatenate(rows) if rows else np.empty(0, np.int64)
    col = np.concatenate(cols) if cols else np.empty(0, np.int64)
    # Group by customer, terminal ids ascending within each customer.
    by = np.lexsort((col, row))
    counts = np.bincount(row, minlength=cx.size)
    start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return start, col[by].astype(np.int64)
