"""One simulated day as columns: the fast form of the stream, and its handbook-shaped frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from producers.simulation.profiles import CHANNELS


@dataclass(frozen=True, slots=True)
class Batch:
    """The transactions of one simulated day, in event-time order, with their truth.

    Every array has one entry per transaction. Times are whole seconds after
    ``start``; ties keep a stable order (by customer, then generation order).
    """

    start: datetime
    """Event time of the start of the simulation (day 0, timezone-aware)."""
    day: int
    """Day of this batch, counted from 0."""
    transaction_id: NDArray[np.int64]
    """Unique and increasing over the whole stream."""
    time_seconds: NDArray[np.int64]
    """Seconds from ``start`` to the transaction (the handbook's ``TX_TIME_SECONDS``)."""
    customer_id: NDArray[np.int64]
    terminal_id: NDArray[np.int64]
    amount: NDArray[np.float64]
    """Amount, rounded to cents."""
    is_fraud: NDArray[np.bool_]
    scenario: NDArray[np.int8]
    """Values of :class:`producers.simulation.config.Scenario`."""
    channel: NDArray[np.int8]
    """Index into :data:`producers.simulation.profiles.CHANNELS`."""
    merchant_category: NDArray[np.int16]
    """Merchant category code of the terminal (four digits when written)."""
    sequence: NDArray[np.int64]
    """Per-customer number of the transaction over the whole stream, from 0."""

    def __len__(self) -> int:
        return int(self.transaction_id.size)

    def event_times(self) -> NDArray[np.datetime64]:
        """Event times as UTC ``datetime64[s]`` (naive values, UTC by convention)."""
        origin = np.datetime64(int(self.start.timestamp()), "s")
        return origin + self.time_seconds.astype("timedelta64[s]")

    def to_frame(self) -> Any:
        """Return a pandas DataFrame with the columns of the handbook's transactions file.

        ``TRANSACTION_ID``, ``TX_DATETIME`` (UTC, naive like the handbook file),
        ``CUSTOMER_ID``, ``TERMINAL_ID``, ``TX_AMOUNT``, ``TX_TIME_SECONDS``,
        ``TX_TIME_DAYS``, ``TX_FRAUD``, ``TX_FRAUD_SCENARIO``, then ``CHANNEL``,
        ``MERCHANT_CATEGORY`` and ``SEQUENCE``, which the handbook does not have.
        The returned value is a ``pandas.DataFrame``.
        """
        import pandas as pd

        return pd.DataFrame(
            {
                "TRANSACTION_ID": self.transaction_id,
                "TX_DATETIME": self.event_times().astype("datetime64[ns]"),
                "CUSTOMER_ID": self.customer_id,
                "TERMINAL_ID": self.terminal_id,
                "TX_AMOUNT": self.amount,
                "TX_TIME_SECONDS": self.time_seconds,
                "TX_TIME_DAYS": self.time_seconds // 86_400,
                "TX_FRAUD": self.is_fraud.astype(np.int64),
                "TX_FRAUD_SCENARIO": self.scenario.astype(np.int64),
                "CHANNEL": pd.Categorical.from_codes(self.channel, categories=list(CHANNELS)),
                "MERCHANT_CATEGORY": np.char.zfill(self.merchant_category.astype("U4"), 4),
                "SEQUENCE": self.sequence,
            }
        )
