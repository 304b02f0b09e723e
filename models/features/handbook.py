"""The Fraud Detection Handbook's files, in the shapes the feature core takes.

The handbook computed its reference features with pandas: per customer, the rows
(in transaction-id order) are sorted by time with numpy's default quicksort and
rolled over time windows that end at the current row. The quicksort is not stable,
so between two transactions of one customer with the same timestamp, which one
"sees" the other is decided by the sort, not by the id or the file order.
:func:`handbook_arrival_order` recovers that order, so that replaying the file in
it reproduces the reference exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.features.names import FEATURE_NAMES

#: Handbook column -> feature-core column.
HANDBOOK_COLUMNS = {
    "TRANSACTION_ID": "transaction_id",
    "TX_DATETIME": "event_time",
    "CUSTOMER_ID": "customer_id",
    "TERMINAL_ID": "terminal_id",
    "TX_AMOUNT": "amount",
    "TX_FRAUD": "is_fraud",
}


def from_handbook(handbook: pd.DataFrame, *, seq: np.ndarray | None = None) -> pd.DataFrame:
    """Return handbook transactions with the feature core's column names.

    The handbook's naive datetimes are UTC. ``seq``, when given, becomes the
    arrival order column (see :func:`handbook_arrival_order`).

    Examples
    --------
    >>> raw = pd.DataFrame({"TRANSACTION_ID": [0], "CUSTOMER_ID": [3], "TERMINAL_ID": [9],
    ...                     "TX_DATETIME": [pd.Timestamp("2018-04-01 00:00:31")],
    ...                     "TX_AMOUNT": [57.16], "TX_FRAUD": [0]})
    >>> from_handbook(raw).iloc[0].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'transaction_id': 0, 'event_time': Timestamp('2018-04-01 00:00:31+0000', tz='UTC'),
     'customer_id': 3, 'terminal_id': 9, 'amount': 57.16, 'is_fraud': False}
    """
    present = [c for c in HANDBOOK_COLUMNS if c in handbook.columns]
    frame = handbook[present].rename(columns=HANDBOOK_COLUMNS)
    frame["event_time"] = frame["event_time"].dt.tz_localize("UTC")
    if "is_fraud" in frame.columns:
        frame["is_fraud"] = frame["is_fraud"].astype(bool)
    if seq is not None:
        frame["seq"] = seq
    return frame.reset_index(drop=True)


def handbook_arrival_order(handbook: pd.DataFrame) -> np.ndarray:
    """Return per row a sequence number that breaks time ties as the reference did.

    Rows are ordered by time; two rows of one customer with the same timestamp are
    ordered as numpy's quicksort (the order pandas' ``sort_values`` used when the
    reference was computed) left them among all that customer's rows taken in
    transaction-id order. Other ties are broken by transaction id.

    Parameters
    ----------
    handbook
        Columns ``TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID``.

    Returns
    -------
    numpy.ndarray
        int64, aligned with the rows of ``handbook``: the rank of each row in arrival.
    """
    by_id = np.argsort(handbook["TRANSACTION_ID"].to_numpy(), kind="stable")
    customers = handbook["CUSTOMER_ID"].to_numpy()[by_id]
    # The reference sorted datetime64 values: keep that dtype, as numpy picks the
    # sorting routine (and so the order of ties) by dtype.
    times = handbook["TX_DATETIME"].to_numpy("datetime64[ns]")[by_id]
    # Only customers with equal timestamps need the quicksort's order; the others
    # come out the same from any sort.
    grouped = np.lexsort((times, customers))
    c, t = customers[grouped], times[grouped]
    tied = np.unique(c[1:][(c[1:] == c[:-1]) & (t[1:] == t[:-1])])
    rank = np.zeros(len(by_id), dtype=np.int64)
    for customer in tied:
        members = np.flatnonzero(customers == customer)  # in transaction-id order
        rank[members[np.argsort(times[members], kind="quicksort")]] = np.arange(len(members))
    order = np.lexsort((rank, times))  # stable: other ties stay in id order
    seq = np.empty(len(by_id), dtype=np.int64)
    seq[by_id[order]] = np.arange(len(order))
    return seq


def reference_features(
    reference: pd.DataFrame, transactions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return the reference file as float columns indexed by ``transaction_id``.

    The reference does not hold ``TX_AMOUNT``; given the handbook transactions, it is
    taken from them.
    """
    frame = reference.set_index("TRANSACTION_ID")
    frame.index.name = "transaction_id"
    if transactions is not None and "TX_AMOUNT" not in frame.columns:
        amounts = transactions.set_index("TRANSACTION_ID")["TX_AMOUNT"]
        frame["TX_AMOUNT"] = amounts.reindex(frame.index)
    columns = [name for name in FEATURE_NAMES if name in frame.columns]
    return frame[columns].astype(np.float64)
