"""Frame featurization replays the streaming classes; flags and names are fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import (
    DEFAULT_DELAY_S,
    FEATURE_NAMES,
    CustomerWindows,
    TerminalWindows,
    featurize_frame,
    time_flags,
)
from models.features.clock import epoch_seconds
from models.features.handbook import from_handbook

START = pd.Timestamp("2018-04-01", tz="UTC")


def random_frame(seed: int, n: int = 400, days: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Whole half-hours: plenty of equal timestamps and exact window edges.
    offsets = np.sort(rng.integers(0, days * 48, n)) * 1800
    return pd.DataFrame(
        {
            "transaction_id": rng.permutation(n).astype(str),
            "event_time": START + pd.to_timedelta(offsets, unit="s"),
            "customer_id": rng.integers(0, 12, n),
            "terminal_id": rng.integers(0, 8, n),
            "amount": rng.gamma(2.0, 30.0, n).round(2),
            "is_fraud": rng.random(n) < 0.2,
        }
    )


def stream_by_hand(frame: pd.DataFrame, label_lag_s: float) -> np.ndarray:
    """What a worker computes, event by event, with the state classes."""
    customers: dict[int, CustomerWindows] = {}
    terminals: dict[int, TerminalWindows] = {}
    times = [epoch_seconds(t) for t in frame["event_time"]]
    events = [(t + label_lag_s, 0, i) for i, t in enumerate(times)]
    events += [(t, 1, i) for i, t in enumerate(times)]
    rows = np.zeros((len(frame), len(FEATURE_NAMES)))
    for _, kind, i in sorted(events):
        tx = frame.iloc[i]
        terminal = terminals.setdefault(int(tx.terminal_id), TerminalWindows())
        if kind == 0:
            terminal.add_label(tx.transaction_id, times[i], times[i] + label_lag_s, tx.is_fraud)
            continue
        customer = customers.setdefault(int(tx.customer_id), CustomerWindows())
        customer.add(tx.transaction_id, times[i], tx.amount, seq=i)
        terminal.add_transaction(tx.transaction_id, times[i])
        rows[i] = (
            tx.amount,
            *time_flags(times[i]),
            *customer.features(times[i], seq=i),
            *terminal.features(times[i], DEFAULT_DELAY_S),
        )
    return rows


def test_feature_names_are_the_fifteen_in_matrix_order() -> None:
    assert len(FEATURE_NAMES) == 15 == len(set(FEATURE_NAMES))
    assert FEATURE_NAMES[:3] == ("TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT")
    assert FEATURE_NAMES[3:5] == (
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
        "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    )
    assert FEATURE_NAMES[-1] == "TERMINAL_ID_RISK_30DAY_WINDOW"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_featurize_frame_equals_driving_the_classes_by_hand(seed: int) -> None:
    frame = random_frame(seed)
    got = featurize_frame(frame, timedelta(days=7))
    assert list(got.columns) == list(FEATURE_NAMES)
    assert got.index.tolist() == frame["transaction_id"].tolist()
    np.testing.assert_allclose(got.to_numpy(), stream_by_hand(frame, DEFAULT_DELAY_S), atol=1e-9)


def test_featurize_frame_takes_labels_as_a_frame_or_as_columns() -> None:
    frame = random_frame(4)
    by_delay = featurize_frame(frame, timedelta(days=3))
    label_time = frame["event_time"] + pd.Timedelta(days=3)
    labels = pd.DataFrame(
        {"transaction_id": frame["transaction_id"], "is_fraud": frame["is_fraud"]}
    ).assign(label_time=label_time)
    extra = pd.DataFrame({"transaction_id": ["unknown"], "is_fraud": [True], "label_time": [START]})
    by_frame = featurize_frame(frame, pd.concat([labels, extra]))
    by_columns = featurize_frame(frame.assign(label_time=label_time), None)
    pd.testing.assert_frame_equal(by_frame, by_delay)
    pd.testing.assert_frame_equal(by_columns, by_delay)
    assert by_delay["TERMINAL_ID_RISK_30DAY_WINDOW"].gt(0).any()


def test_featurize_frame_keeps_the_first_of_several_labels_as_the_stream_does() -> None:
    frame = random_frame(9).assign(is_fraud=False)
    first = frame.assign(label_time=frame["event_time"] + pd.Timedelta(days=1))
    later = first.assign(is_fraud=True, label_time=first["label_time"] + pd.Timedelta(hours=1))
    labels = pd.concat([first, later])[["transaction_id", "is_fraud", "label_time"]]
    got = featurize_frame(frame, labels)
    assert (got.filter(like="RISK") == 0).all().all()
    corrected = featurize_frame(frame, later[["transaction_id", "is_fraud", "label_time"]])
    assert corrected["TERMINAL_ID_RISK_30DAY_WINDOW"].gt(0).any()


def test_featurize_frame_without_labels_has_zero_risk() -> None:
    got = featurize_frame(random_frame(5).drop(columns="is_fraud"), None)
    assert (got.filter(like="RISK") == 0).all().all()
    assert got["TERMINAL_ID_NB_TX_30DAY_WINDOW"].gt(0).any()


def test_featurize_frame_breaks_time_ties_by_the_seq_column() -> None:
    frame = pd.DataFrame(
        {
            "transaction_id": ["a", "b"],
            "event_time": [START, START],
            "customer_id": [1, 1],
            "terminal_id": [1, 1],
            "amount": [10.0, 30.0],
        }
    )
    by_rows = featurize_frame(frame, None)["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]
    by_seq = featurize_frame(frame.assign(seq=[1, 0]), None)["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]
    assert by_rows.tolist() == [1.0, 2.0]
    assert by_seq.tolist() == [2.0, 1.0]


def test_featurize_frame_of_out_of_order_rows_equals_the_sorted_frame() -> None:
    frame = random_frame(6)
    shuffled = frame.assign(seq=np.arange(len(frame))).sample(frac=1.0, random_state=6)
    got = featurize_frame(shuffled).loc[frame["transaction_id"]]
    pd.testing.assert_frame_equal(got, featurize_frame(frame))


def test_featurize_frame_rejects_naive_times_missing_columns_and_repeated_ids() -> None:
    frame = random_frame(7, n=5)
    with pytest.raises(ValueError, match="timezone-aware"):
        featurize_frame(frame.assign(event_time=frame["event_time"].dt.tz_localize(None)))
    with pytest.raises(ValueError, match="amount"):
        featurize_frame(frame.drop(columns="amount"))
    with pytest.raises(ValueError, match="repeat"):
        featurize_frame(frame.assign(transaction_id="same"))
    with pytest.raises(ValueError, match="is_fraud"):
        featurize_frame(frame.drop(columns="is_fraud"), timedelta(days=7))


def test_featurize_frame_reports_progress_up_to_every_event() -> None:
    seen: list[int] = []
    frame = random_frame(8, n=50)
    featurize_frame(frame, progress=seen.append)
    assert seen[0] == 0
    assert seen[-1] == 50 + frame["is_fraud"].sum()  # transactions and fraud labels


def test_handbook_adapter_renames_and_localizes_to_utc() -> None:
    raw = pd.DataFrame(
        {
            "TRANSACTION_ID": [5],
            "TX_DATETIME": [pd.Timestamp("2018-04-07 06:59:59")],
            "CUSTOMER_ID": [1],
            "TERMINAL_ID": [2],
            "TX_AMOUNT": [3.5],
            "TX_FRAUD": [1],
            "TX_FRAUD_SCENARIO": [2],
        }
    )
    frame = from_handbook(raw, seq=np.array([9]))
    assert list(frame.columns) == [
        "transaction_id",
        "event_time",
        "customer_id",
        "terminal_id",
        "amount",
        "is_fraud",
        "seq",
    ]
    assert frame.loc[0, "event_time"] == pd.Timestamp("2018-04-07 06:59:59", tz="UTC")
    assert featurize_frame(frame).iloc[0, :3].tolist() == [3.5, 1.0, 1.0]


zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=zones,
    )
)
def test_time_flags_are_utc_weekend_and_hour_at_most_six(when: datetime) -> None:
    utc = when.astimezone(UTC)
    expected = (float(utc.weekday() >= 5), float(utc.hour <= 6))
    assert time_flags(when) == expected
    assert time_flags(epoch_seconds(when)) == expected


def test_time_flags_reject_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        time_flags(datetime(2018, 4, 1))  # noqa: DTZ001
