"""Features of a whole frame of transactions, computed by the streaming state classes.

The batch trainer and the parity checks get their features here, from the very
classes a stream worker holds per customer and per terminal: the frame is replayed
as a stream in event-time order, fraud labels entering at their label time (before
the transactions of the same instant), so the two paths cannot drift apart. A
transaction's only label, when genuine, is left out of the replay: an unlabelled
transaction counts as genuine, so it would change no feature.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pandas as pd

from models.features.clock import time_flags
from models.features.customer import CustomerWindows
from models.features.names import DAY_S, DEFAULT_DELAY_S, FEATURE_NAMES
from models.features.terminal import TerminalWindows

#: The handbook's label delay, as a timedelta.
DEFAULT_DELAY = timedelta(seconds=DEFAULT_DELAY_S)

#: Columns a transactions frame must have.
TRANSACTION_COLUMNS = ("transaction_id", "event_time", "customer_id", "terminal_id", "amount")

#: Event time between two expiry sweeps over all windows (bounds memory, not results).
EXPIRE_EVERY_S = 7 * DAY_S

#: How many events pass between two calls of the progress callback.
PROGRESS_EVERY = 1 << 15

_LABEL, _TRANSACTION = 0, 1


def featurize_frame(
    transactions: pd.DataFrame,
    labels: pd.DataFrame | timedelta | None = DEFAULT_DELAY,
    *,
    delay: timedelta = DEFAULT_DELAY,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Compute the 15 features of every transaction, as the stream would.

    Parameters
    ----------
    transactions
        Columns ``transaction_id, event_time`` (timezone-aware), ``customer_id,
        terminal_id, amount``; optionally ``seq`` (arrival order, which breaks ties
        between equal event times; the row order otherwise), ``is_fraud`` and
        ``label_time``.
    labels
        Where the labels come from: a timedelta makes each transaction's
        ``is_fraud`` known that long after it; a frame with ``transaction_id,
        is_fraud, label_time`` gives them explicitly (labels of transactions not in
        ``transactions`` are ignored); None takes the ``is_fraud`` and ``label_time``
        columns if there are, and no labels otherwise.
    delay
        The label delay of the terminal windows (the features' parameter, which
        need not be the data's actual delay).
    progress
        Called now and then with the number of events processed so far.

    Returns
    -------
    pandas.DataFrame
        Float64 columns :data:`FEATURE_NAMES`, indexed by ``transaction_id`` in the
        order of ``transactions``.

    Raises
    ------
    ValueError
        If a column is missing, event times are naive, or ids repeat.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> monday = pd.Timestamp("2018-04-02 05:00", tz="UTC")
    >>> frame = pd.DataFrame({
    ...     "transaction_id": range(6),
    ...     "event_time": monday + pd.to_timedelta(np.arange(6) * 2, unit="D"),
    ...     "customer_id": [1, 2, 1, 2, 1, 1],
    ...     "terminal_id": [5, 5, 5, 6, 5, 5],
    ...     "amount": rng.integers(10, 50, 6).astype(float),
    ...     "is_fraud": [True, False, False, False, False, False],
    ... })
    >>> features = featurize_frame(frame)  # labels known 7 days later
    >>> features.loc[:, "TX_AMOUNT":"TX_DURING_NIGHT"].T
    transaction_id        0     1     2     3     4     5
    TX_AMOUNT          47.0  35.0  37.0  45.0  33.0  41.0
    TX_DURING_WEEKEND   0.0   0.0   0.0   1.0   0.0   0.0
    TX_DURING_NIGHT     1.0   1.0   1.0   1.0   1.0   1.0
    >>> customer = ["CUSTOMER_ID_NB_TX_7DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW"]
    >>> features.loc[[0, 2, 4, 5], customer]  # doctest: +NORMALIZE_WHITESPACE
                    CUSTOMER_ID_NB_TX_7DAY_WINDOW  CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW
    transaction_id
    0                                         1.0                                47.0
    2                                         2.0                                42.0
    4                                         2.0                                35.0
    5                                         3.0                                37.0
    >>> terminal = ["TERMINAL_ID_NB_TX_7DAY_WINDOW", "TERMINAL_ID_RISK_7DAY_WINDOW"]
    >>> features.loc[[2, 4, 5], terminal]  # doctest: +NORMALIZE_WHITESPACE
                    TERMINAL_ID_NB_TX_7DAY_WINDOW  TERMINAL_ID_RISK_7DAY_WINDOW
    transaction_id
    2                                         0.0                           0.0
    4                                         1.0                           1.0
    5                                         2.0                           0.5
    """
    missing = [c for c in TRANSACTION_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack columns {missing}")
    if not transactions["transaction_id"].is_unique:
        raise ValueError("transaction ids repeat")
    n = len(transactions)
    times = _seconds(transactions["event_time"])
    seqs = (
        transactions["seq"].to_numpy(np.int64)
        if "seq" in transactions.columns
        else np.arange(n, dtype=np.int64)
    )
    label_rows, label_times, label_frauds = _labels(transactions, labels, times)
    if len(np.unique(label_rows)) == len(label_rows):
        # A lone genuine label changes no feature (an unlabelled transaction counts as
        # genuine): replay the fraud labels only. With several labels per transaction
        # the first one wins, so all of them are replayed.
        label_rows, label_times = label_rows[label_frauds], label_times[label_frauds]
        label_frauds = label_frauds[label_frauds]

    # Labels first at equal instants, then transactions by (time, seq).
    n_labels = len(label_rows)
    kinds = np.concatenate([np.full(n_labels, _LABEL, np.int8), np.full(n, _TRANSACTION, np.int8)])
    order = np.lexsort(
        (np.concatenate([label_rows, seqs]), kinds, np.concatenate([label_times, times]))
    )
    rows = np.concatenate([label_rows, np.arange(n, dtype=np.int64)])[order]
    # One column per field, in processing order: read a chunk at a time, in sequence.
    columns = (
        kinds[order],
        rows,
        transactions["transaction_id"].to_numpy()[rows],
        transactions["customer_id"].to_numpy()[rows],
        transactions["terminal_id"].to_numpy()[rows],
        times[rows],
        transactions["amount"].to_numpy(np.float64)[rows],
        seqs[rows],
        np.concatenate([label_times, np.zeros(n)])[order],
        np.concatenate([label_frauds, np.zeros(n, bool)])[order],
    )
    done_rows, flat = _replay(columns, delay.total_seconds(), progress)
    matrix = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    matrix[np.frombuffer(done_rows, dtype=np.int64)] = np.frombuffer(flat).reshape(n, -1)
    index = pd.Index(transactions["transaction_id"], name="transaction_id")
    return pd.DataFrame(matrix, index=index, columns=list(FEATURE_NAMES))


def _replay(
    columns: tuple[np.ndarray, ...],
    delay_s: float,
    progress: Callable[[int], None] | None,
) -> tuple[array[int], array[float]]:
    """Feed the events to the window classes; return rows and features as computed."""
    customers: dict[object, CustomerWindows] = {}
    terminals: dict[object, TerminalWindows] = {}
    next_expiry = float("-inf")
    # Rows in processing order and their features, flat: no object per value.
    done_rows = array("q")
    flat = array("d")
    mark_done, put, put_all = done_rows.append, flat.append, flat.extend
    total = len(columns[0])
    for start in range(0, total, PROGRESS_EVERY):
        if progress is not None:
            progress(start)
        chunk = (column[start : start + PROGRESS_EVERY].tolist() for column in columns)
        for kind, row, tx_id, cust, term, t, amount, seq, label_time, fraud in zip(
            *chunk, strict=True
        ):
            terminal = terminals.get(term)
            if terminal is None:
                terminal = terminals[term] = TerminalWindows()
            if kind == _LABEL:
                terminal.add_label(tx_id, t, label_time, fraud)
                continue
            customer = customers.get(cust)
            if customer is None:
                customer = customers[cust] = CustomerWindows()
            if t >= next_expiry:
                # Nothing earlier than now is asked for again: let all windows shed.
                for c in customers.values():
                    c.expire(t)
                for w in terminals.values():
                    w.expire(t, delay_s)
                next_expiry = t + EXPIRE_EVERY_S
            terminal.add_transaction(tx_id, t)
            mark_done(row)
            put(amount)
            put_all(time_flags(t))
            put_all(customer.observe(tx_id, t, amount, seq))
            put_all(terminal.features(t, delay_s))
    if progress is not None:
        progress(total)
    return done_rows, flat


def _seconds(event_time: pd.Series) -> np.ndarray:
    """Epoch seconds of a timezone-aware column, as :func:`clock.epoch_seconds` gives."""
    if not isinstance(event_time.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"event_time must be timezone-aware, not {event_time.dtype}")
    micros = event_time.dt.tz_convert("UTC").dt.as_unit("us").astype("int64").to_numpy()
    seconds: np.ndarray = micros / 1e6
    return seconds


def _labels(
    transactions: pd.DataFrame,
    labels: pd.DataFrame | timedelta | None,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the labels as (transaction row, label time in seconds, is fraud)."""
    if isinstance(labels, timedelta):
        if "is_fraud" not in transactions.columns:
            raise ValueError("a label delay needs an is_fraud column")
        frauds = transactions["is_fraud"].to_numpy(bool)
        return np.arange(len(transactions)), times + labels.total_seconds(), frauds
    if labels is None:
        if not {"is_fraud", "label_time"} <= set(transactions.columns):
            empty = np.zeros(0, np.int64)
            return empty, empty.astype(np.float64), empty.astype(bool)
        known = transactions["label_time"].notna().to_numpy()
        rows = np.flatnonzero(known)
        return (
            rows,
            _seconds(transactions["label_time"].iloc[rows]),
            transactions["is_fraud"].to_numpy(bool)[rows],
        )
    missing = [c for c in ("transaction_id", "is_fraud", "label_time") if c not in labels]
    if missing:
        raise ValueError(f"labels lack columns {missing}")
    position = pd.Series(np.arange(len(transactions)), index=transactions["transaction_id"])
    found = labels["transaction_id"].isin(position.index).to_numpy()
    kept = labels[found]
    return (
        position.loc[kept["transaction_id"]].to_numpy(np.int64),
        _seconds(kept["label_time"]),
        kept["is_fraud"].to_numpy(bool),
    )
