"""Read transaction files into the frame layout every producer and tool uses.

Layout: ``transaction_id`` (str), ``event_time`` (tz-aware UTC), ``customer_id`` (str),
``terminal_id`` (str), ``amount`` (float), and when known ``is_fraud`` (bool) and
``label_time`` (tz-aware UTC). The handbook's column names (``TRANSACTION_ID``,
``TX_DATETIME``, ``CUSTOMER_ID``, ``TERMINAL_ID``, ``TX_AMOUNT``, ``TX_FRAUD``) are
mapped onto it; naive times are taken as UTC.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from models.features import handbook_arrival_order

HANDBOOK_COLUMNS = {
    "TRANSACTION_ID": "transaction_id",
    "TX_DATETIME": "event_time",
    "CUSTOMER_ID": "customer_id",
    "TERMINAL_ID": "terminal_id",
    "TX_AMOUNT": "amount",
    "TX_FRAUD": "is_fraud",
}
REQUIRED = ("transaction_id", "event_time", "customer_id", "terminal_id", "amount")


def _utc(series: pd.Series) -> pd.Series:
    times = pd.to_datetime(series)
    if times.dt.tz is None:
        return times.dt.tz_localize("UTC")
    return times.dt.tz_convert("UTC")


def normalize(raw: pd.DataFrame) -> pd.DataFrame:
    """Map a raw frame onto the common layout, in event-time order.

    Equal event times keep the file's order, except in a handbook file, where they
    follow the order its reference features were computed in (so that Kafka offsets
    break ties as the reference did; see :func:`models.features.handbook_arrival_order`).
    """
    order = None
    if {"TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID"} <= set(raw.columns):
        order = handbook_arrival_order(raw)
    frame = raw.rename(columns=HANDBOOK_COLUMNS)
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise ValueError(f"transactions file lacks columns: {', '.join(missing)}")
    out = pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].astype(str),
            "event_time": _utc(frame["event_time"]),
            "customer_id": frame["customer_id"].astype(str),
            "terminal_id": frame["terminal_id"].astype(str),
            "amount": frame["amount"].astype(float),
        }
    )
    if "is_fraud" in frame:
        out["is_fraud"] = frame["is_fraud"].astype(bool)
    if "label_time" in frame:
        out["label_time"] = _utc(frame["label_time"])
    if order is not None:
        return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    return out.sort_values("event_time", kind="stable").reset_index(drop=True)


def load_transactions(
    path: Path, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Read a Parquet or CSV transactions file, keeping ``start <= event_time < end``."""
    if path.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    elif path.suffix.lower() in (".csv", ".gz"):
        raw = pd.read_csv(path)
    else:
        raise ValueError(f"unsupported file type: {path.suffix} (use .parquet or .csv)")
    frame = normalize(raw)
    if start is not None:
        frame = frame[frame["event_time"] >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame["event_time"] < pd.Timestamp(end)]
    return frame.reset_index(drop=True)
