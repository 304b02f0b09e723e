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

    Terminals are bucketed in square cells at least ``radius`` wide, so each customer
    only measures the terminals of the 3 x 3 cells around its own.

    Examples
    --------
    >>> start, members = _neighbourhoods(
    ...     np.array([0.0, 50.0]), np.array([0.0, 50.0]),
    ...     np.array([1.0, 60.0, 3.0]), np.array([1.0, 50.0, 4.0]), 5.0)
    >>> start.tolist(), members.tolist()
    ([0, 2, 2], [0, 2])
    """
    side = max(radius, GRID_SIZE / 1_000)
    n_cells = max(1, int(np.ceil(GRID_SIZE / side)))

    def cell(v: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.clip((v // side).astype(np.int64), 0, n_cells - 1)

    order = np.argsort(cell(tx) * n_cells + cell(ty), kind="stable")
    per_cell = np.bincount(cell(tx) * n_cells + cell(ty), minlength=n_cells * n_cells)
    cell_start = np.concatenate(([0], np.cumsum(per_cell)))
    ccx, ccy = cell(cx), cell(cy)
    # One candidate range of sorted terminals per customer and neighbouring cell.
    who, lo, hi = [], [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            nx, ny = ccx + dx, ccy + dy
            inside = np.flatnonzero((nx >= 0) & (nx < n_cells) & (ny >= 0) & (ny < n_cells))
            key = nx[inside] * n_cells + ny[inside]
            who.append(inside)
            lo.append(cell_start[key])
            hi.append(cell_start[key + 1])
    owner, first, last = np.concatenate(who), np.concatenate(lo), np.concatenate(hi)
    size = last - first
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    r2 = radius * radius
    begin = 0
    while begin < owner.size:
        # As many ranges as fit the chunk's pair budget (at least one).
        cum = np.cumsum(size[begin:])
        end = begin + max(1, int(np.searchsorted(cum, _PAIRS_PER_CHUNK, side="right")))
        span = size[begin:end]
        c = np.repeat(owner[begin:end], span)
        pos = np.repeat(first[begin:end], span) + (
            np.arange(c.size) - np.repeat(np.cumsum(span) - span, span)
        )
        t = order[pos]
        near = (tx[t] - cx[c]) ** 2 + (ty[t] - cy[c]) ** 2 <= r2
        rows.append(c[near])
        cols.append(t[near])
        begin = end
    row = np.concatenate(rows) if rows else np.empty(0, np.int64)
    col = np.concatenate(cols) if cols else np.empty(0, np.int64)
    # Group by customer, terminal ids ascending within each customer.
    by = np.lexsort((col, row))
    counts = np.bincount(row, minlength=cx.size)
    start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return start, col[by].astype(np.int64)
