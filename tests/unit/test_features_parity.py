"""The parity checker counts matches per feature and explains mismatches."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.features import FEATURE_NAMES, featurize_frame
from models.features.parity import compare_features

START = pd.Timestamp("2018-04-02", tz="UTC")


def small_frame() -> pd.DataFrame:
    day = pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "transaction_id": [1, 2, 3, 4, 5, 6],
            "event_time": [
                START,
                START,
                START + 7 * day,
                START + 9 * day,
                START + 14 * day,
                START + 14 * day + pd.Timedelta(hours=1),
            ],
            "customer_id": [1, 1, 1, 2, 2, 2],
            "terminal_id": [7, 7, 8, 8, 7, 7],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "is_fraud": [True, False, False, False, False, False],
        }
    )


def test_identical_features_have_full_parity() -> None:
    ours = featurize_frame(small_frame())
    report = compare_features(ours, ours.copy())
    assert report.fraction == 1.0
    assert all(f.rate == 1.0 for f in report.features)
    assert [f.name for f in report.features] == list(FEATURE_NAMES)
    assert report.render().splitlines()[-1] == "parity: 1.000000"


def test_tolerance_decides_what_matches() -> None:
    ours = featurize_frame(small_frame())
    shifted = ours.copy()
    shifted["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] += 5e-7
    assert compare_features(shifted, ours, atol=1e-6).fraction == 1.0
    report = compare_features(shifted, ours, atol=1e-7)
    assert report.fraction == 0.0
    assert report.mismatches[0].hint.startswith("float tolerance")


def test_missing_and_extra_ids_and_one_sided_columns_are_reported() -> None:
    ours = featurize_frame(small_frame())
    reference = ours.drop(index=[2]).drop(columns="TX_AMOUNT")
    reference.loc[99] = 0.0
    report = compare_features(ours, reference)
    assert (report.n_missing, report.missing_ids) == (1, (99,))
    assert (report.n_extra, report.extra_ids) == (1, (2,))
    assert report.not_compared == ("TX_AMOUNT",)
    assert report.n_all_match == 5
    assert report.fraction == 5 / 6
    assert "missing ids (first): 99" in report.render()


def test_nan_matches_only_nan() -> None:
    ours = featurize_frame(small_frame())
    reference = ours.copy()
    ours.iloc[0, 4] = reference.iloc[0, 4] = np.nan
    ours.iloc[1, 4] = np.nan
    report = compare_features(ours, reference)
    assert report.features[4].matched == 5
    assert report.mismatches[0].hint.startswith("missing value")


def test_mismatch_hints_name_ties_edges_and_label_timing() -> None:
    frame = small_frame()
    ours = featurize_frame(frame).reset_index()
    reference = ours.copy()
    # Transaction 1 tied with 2: a reference that let it see its twin.
    reference.loc[0, "CUSTOMER_ID_NB_TX_1DAY_WINDOW"] = 2.0
    reference.loc[0, "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] = 15.0
    # Transaction 3 is exactly 7 days after 1 and 2: a reference with a closed left edge.
    reference.loc[2, "CUSTOMER_ID_NB_TX_7DAY_WINDOW"] += 2
    # Transaction 5 (terminal 7) sees 1 and 2 at exactly t - 7d - 7d.
    reference.loc[4, "TERMINAL_ID_NB_TX_7DAY_WINDOW"] += 2
    # Transaction 6: same count, the fraud known or not.
    reference.loc[5, "TERMINAL_ID_RISK_30DAY_WINDOW"] = 0.0
    report = compare_features(ours, reference, transactions=frame)
    hints = {(m.transaction_id, m.feature): m.hint for m in report.mismatches}
    assert hints[(1, "CUSTOMER_ID_NB_TX_1DAY_WINDOW")].startswith(
        "window membership: 1 fewer transaction in the window (tie: 1 other"
    )
    assert hints[(1, "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW")] == (
        "follows the count mismatch in CUSTOMER_ID_NB_TX_1DAY_WINDOW"
    )
    assert "boundary: a transaction at exactly t-7d" in hints[(3, "CUSTOMER_ID_NB_TX_7DAY_WINDOW")]
    assert "exactly t-delay-7d" in hints[(5, "TERMINAL_ID_NB_TX_7DAY_WINDOW")]
    assert hints[(6, "TERMINAL_ID_RISK_30DAY_WINDOW")].startswith("label timing")
    assert report.fraction == 2 / 6
    as_dict = report.to_dict()
    assert as_dict["fraction"] == 2 / 6 and len(as_dict["mismatches"]) == len(report.mismatches)
    assert json.loads(json.dumps(as_dict))["features"][3]["rate"] == 5 / 6
    rendered = report.render()
    assert "CUSTOMER_ID_NB_TX_1DAY_WINDOW" in rendered
    assert rendered.splitlines()[-1] == "parity: 0.333333"
