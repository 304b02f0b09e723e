"""Names, window lengths and horizons of the per-transaction features.

The order of :data:`FEATURE_NAMES` is the column order of every feature matrix the
system builds (trainer and stream alike); it never changes within a model family.
"""

from __future__ import annotations

from typing import Final

#: Seconds in a day; windows are whole days of event time.
DAY_S: Final = 86_400

#: Window lengths in days, shortest first.
WINDOW_DAYS: Final = (1, 7, 30)

#: Window lengths in seconds, in the order of :data:`WINDOW_DAYS`.
WINDOWS_S: Final = tuple(d * DAY_S for d in WINDOW_DAYS)

#: The handbook's label delay: terminal windows end this long before the transaction.
DEFAULT_DELAY_S: Final = 7 * DAY_S

#: How far back a customer window reaches (the longest window).
CUSTOMER_HORIZON_S: Final = WINDOWS_S[-1]

CUSTOMER_FEATURES: Final = tuple(
    name
    for days in WINDOW_DAYS
    for name in (f"CUSTOMER_ID_NB_TX_{days}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{days}DAY_WINDOW")
)
TERMINAL_FEATURES: Final = tuple(
    name
    for days in WINDOW_DAYS
    for name in (f"TERMINAL_ID_NB_TX_{days}DAY_WINDOW", f"TERMINAL_ID_RISK_{days}DAY_WINDOW")
)
TIME_FEATURES: Final = ("TX_DURING_WEEKEND", "TX_DURING_NIGHT")

#: The 15 features, in matrix column order.
FEATURE_NAMES: Final[tuple[str, ...]] = (
    "TX_AMOUNT",
    *TIME_FEATURES,
    *CUSTOMER_FEATURES,
    *TERMINAL_FEATURES,
)


def terminal_horizon_s(delay_s: float) -> float:
    """Return how far back a terminal window reaches for a given label delay.

    Examples
    --------
    >>> terminal_horizon_s(DEFAULT_DELAY_S) / DAY_S
    37.0
    """
    return float(delay_s + WINDOWS_S[-1])
