"""AUC ROC, average precision and card precision@k agree with scikit-learn and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from models.metrics import average_precision, card_precision_at_k, roc_auc


@st.composite
def labeled_scores(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    """Both classes present; scores drawn from few values so that ties are common."""
    n = draw(st.integers(min_value=2, max_value=60))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    y[0], y[1] = 0, 1
    levels = draw(st.integers(min_value=1, max_value=8))
    scores = draw(st.lists(st.integers(0, levels), min_size=n, max_size=n))
    return y, [s / levels for s in scores]


@given(labeled_scores())
@settings(max_examples=300, deadline=None)
def test_roc_auc_equals_sklearn_with_ties(data: tuple[list[int], list[float]]) -> None:
    y, s = data
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@given(labeled_scores())
@settings(max_examples=300, deadline=None)
def test_average_precision_equals_sklearn_with_ties(data: tuple[list[int], list[float]]) -> None:
    y, s = data
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_metrics_equal_sklearn_on_large_imbalanced_random_data() -> None:
    rng = np.random.default_rng(7)
    y = rng.random(200_000) < 0.01
    s = np.round(rng.normal(size=y.size) + 1.5 * y, 2)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_perfect_and_reversed_rankings_give_one_and_zero() -> None:
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.8, 0.9]
    assert roc_auc(y, s) == 1.0
    assert average_precision(y, s) == 1.0
    assert roc_auc(y, [-v for v in s]) == 0.0
    # Reversed: the positives come last, at ranks 4 and 5 -> AP = (1/4 + 2/5) / 2.
    assert average_precision(y, [-v for v in s]) == pytest.approx((1 / 4 + 2 / 5) / 2)


def test_all_tied_scores_give_half_auc_and_prevalence_ap() -> None:
    y = [0, 1, 0, 0]
    assert roc_auc(y, [3.0] * 4) == 0.5
    assert average_precision(y, [3.0] * 4) == 0.25


def test_tie_between_a_positive_and_a_negative_counts_one_half() -> None:
    # Pairs: (0.9 vs 0.5) wins, (0.5 vs 0.5) ties -> (1 + 0.5) / 2.
    assert roc_auc([1, 1, 0], [0.9, 0.5, 0.5]) == 0.75
    # The tied pair enters AP together: precision 2/3 at the threshold 0.5.
    assert average_precision([1, 1, 0], [0.9, 0.5, 0.5]) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_one_class_inputs_are_handled_explicitly() -> None:
    assert math.isnan(roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))
    assert math.isnan(average_precision([0, 0, 0], [0.1, 0.2, 0.3]))
    assert average_precision([1, 1], [0.1, 0.2]) == 1.0
    assert math.isnan(roc_auc([], []))


def test_boolean_labels_are_accepted() -> None:
    assert roc_auc(np.array([False, True]), [0.2, 0.4]) == 1.0


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        ([0, 1], [0.2, float("nan")], "finite"),
        ([0, 1], [0.2, float("inf")], "finite"),
        ([0, 2], [0.2, 0.3], "0/1"),
        ([0, 1, 1], [0.2, 0.3], "labels but"),
        ([[0, 1]], [[0.2, 0.3]], "one-dimensional"),
    ],
)
def test_invalid_inputs_are_rejected(y: object, s: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        roc_auc(y, s)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        average_precision(y, s)  # type: ignore[arg-type]


def test_card_precision_ranks_customers_by_their_highest_score_of_the_day() -> None:
    # a: one weak fraud, one strong genuine -> card score 0.9, compromised.
    cp = card_precision_at_k(
        day=[0, 0, 0, 0],
        customer_id=["a", "a", "b", "c"],
        score=[0.1, 0.9, 0.8, 0.7],
        is_fraud=[1, 0, 0, 1],
        k=1,
    )
    assert cp.per_day == (1.0,)
    assert cp.detected == (1,)


def test_card_precision_divides_by_k_even_with_fewer_customers() -> None:
    cp = card_precision_at_k([5, 5], ["a", "b"], [0.3, 0.2], [1, 1], k=100)
    assert cp.per_day == (0.02,)
    assert cp.days == (5,)


def test_card_precision_breaks_score_ties_by_customer_id() -> None:
    cp = card_precision_at_k([0, 0, 0], [3, 1, 2], [0.5, 0.5, 0.5], [1, 0, 0], k=2)
    assert cp.per_day == (0.0,)  # customers 1 and 2 are checked, 3 (the fraud) is not
    cp = card_precision_at_k([0, 0, 0], [3, 1, 2], [0.5, 0.5, 0.5], [0, 1, 0], k=2)
    assert cp.per_day == (0.5,)


def test_detected_card_is_left_out_of_every_later_day_by_default() -> None:
    days = [0, 1, 2, 2]
    cp = card_precision_at_k(days, ["a", "a", "a", "b"], [0.9, 0.9, 0.9, 0.1], [1, 1, 1, 1], k=1)
    # Day 0 finds a; a is gone on day 1 (no card left) and on day 2 (b is found).
    assert cp.per_day == (1.0, 0.0, 1.0)
    assert cp.days == (0, 1, 2)
    assert cp.mean == pytest.approx(2 / 3)


def test_carry_days_bounds_how_long_a_detected_card_stays_out() -> None:
    days = [0, 1, 2]
    cp = card_precision_at_k(days, ["a", "a", "a"], [0.9] * 3, [1] * 3, k=1, carry_days=1)
    # Detected on day 0, out on day 1, back (and detected again) on day 2.
    assert cp.per_day == (1.0, 0.0, 1.0)
    cp = card_precision_at_k(days, ["a", "a", "a"], [0.9] * 3, [1] * 3, k=1, carry_days=0)
    assert cp.per_day == (1.0, 1.0, 1.0)


def test_genuine_card_in_the_top_k_is_not_carried_over() -> None:
    cp = card_precision_at_k([0, 1], ["a", "a"], [0.9, 0.9], [0, 1], k=1)
    assert cp.per_day == (0.0, 1.0)


def _card_precision_oracle(frame: pd.DataFrame, k: int) -> list[float]:
    """Day by day as the handbook describes it, written as a plain loop."""
    detected: set[object] = set()
    out = []
    for day in sorted(frame["day"].unique()):
        cards: dict[object, tuple[float, int]] = {}
        for row in frame[frame["day"] == day].itertuples():
            if row.customer in detected:
                continue
            best, fraud = cards.get(row.customer, (-math.inf, 0))
            cards[row.customer] = (max(best, row.score), max(fraud, row.fraud))
        ranked = sorted(cards.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        hits = [c for c, (_, fraud) in ranked if fraud == 1]
        detected.update(hits)
        out.append(len(hits) / k)
    return out


@given(st.integers(0, 2**31 - 1), st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_card_precision_matches_a_plain_loop_oracle(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    frame = pd.DataFrame(
        {
            "day": rng.integers(0, 4, n),
            "customer": rng.integers(0, 12, n),
            "score": rng.integers(0, 5, n) / 4,
            "fraud": (rng.random(n) < 0.3).astype(int),
        }
    )
    cp = card_precision_at_k(frame["day"], frame["customer"], frame["score"], frame["fraud"], k=k)
    assert list(cp.per_day) == pytest.approx(_card_precision_oracle(frame, k))


def test_card_precision_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must"):
        card_precision_at_k([0], [1], [0.5], [1], k=0)
