"""The handbook protocol: blocks, left-out customers, card carry-over, report, daily metrics."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from models.evaluation import (
    HANDBOOK_TEST_STARTS,
    PUBLISHED,
    Block,
    BlockResult,
    HandbookReport,
    daily_metrics,
    event_days,
    handbook_report,
    protocol_test_set,
)

TEST_START = date(2018, 8, 8)
TRAIN_START = date(2018, 7, 25)


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _frames(rows: list[tuple[int, datetime, str, int, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(id, time, customer, fraud, score) rows -> (labeled, scored)."""
    ids, times, customers, frauds, scores = zip(*rows, strict=True)
    labeled = pd.DataFrame(
        {
            "transaction_id": ids,
            "event_time": pd.to_datetime(list(times)),
            "customer_id": customers,
            "is_fraud": frauds,
        }
    )
    scored = pd.DataFrame({"transaction_id": ids, "score": scores})
    return labeled, scored


def _one_block(scored: pd.DataFrame, labeled: pd.DataFrame, k: int = 100) -> BlockResult:
    return handbook_report(scored, labeled, test_starts=[TEST_START], k=k).blocks[0]


def test_blocks_are_training_week_delay_week_test_week() -> None:
    b = Block(date(2018, 8, 29))
    assert (b.train_start, b.delay_start, b.test_end) == (
        date(2018, 8, 15),
        date(2018, 8, 22),
        date(2018, 9, 5),
    )
    assert HANDBOOK_TEST_STARTS == tuple(date(2018, 8, d) for d in (8, 15, 22, 29))


def _customer_left_out_days(fraud_day: date) -> list[int]:
    """Test-day indexes (0..6) on which customer x is left out, given one fraud of x."""
    out = []
    for j in range(7):
        d = TEST_START + timedelta(days=j)
        labeled, scored = _frames(
            [
                (0, _at(fraud_day), "x", 1, 0.5),
                (1, _at(d, 9), "x", 0, 0.5),
                (2, _at(d, 10), "g", 0, 0.1),
                (3, _at(d, 11), "f", 1, 0.9),
            ]
        )
        block = handbook_report(scored, labeled, test_starts=[TEST_START]).blocks[0]
        if block.left_out:
            out.append(j)
    return out


def test_fraud_in_the_training_week_leaves_the_customer_out_all_test_week() -> None:
    assert _customer_left_out_days(TRAIN_START) == list(range(7))
    assert _customer_left_out_days(TRAIN_START + timedelta(days=6)) == list(range(7))


def test_fraud_in_the_delay_week_counts_from_eight_days_later() -> None:
    # First delay day (2018-08-01) is known on test day 2018-08-09 (index 1), not before.
    assert _customer_left_out_days(date(2018, 8, 1)) == [1, 2, 3, 4, 5, 6]
    assert _customer_left_out_days(date(2018, 8, 4)) == [4, 5, 6]
    # The last delay day would be known on 2018-08-15, after the test week.
    assert _customer_left_out_days(date(2018, 8, 7)) == []


def test_frauds_before_the_training_week_or_in_the_test_week_leave_nobody_out() -> None:
    assert _customer_left_out_days(TRAIN_START - timedelta(days=1)) == []
    assert _customer_left_out_days(TEST_START) == []


def test_detected_card_is_left_out_of_later_test_days_of_its_block_only() -> None:
    rows: list[tuple[int, datetime, str, int, float]] = []
    for j in range(14):  # two consecutive test weeks; a turns fraudulent on 2018-08-14
        d = TEST_START + timedelta(days=j)
        rows += [(2 * j, _at(d), "a", int(j >= 6), 0.9), (2 * j + 1, _at(d), "b", 0, 0.1)]
    labeled, scored = _frames(rows)
    report = handbook_report(scored, labeled, test_starts=[TEST_START, date(2018, 8, 15)], k=1)
    first, second = report.blocks
    # Found on the last day of the first block; the second block starts afresh, finds a
    # on its first day and leaves it out afterwards (b, genuine, is all that is left).
    assert first.card_precision.per_day == (0, 0, 0, 0, 0, 0, 1.0)
    assert second.card_precision.per_day == (1.0, 0, 0, 0, 0, 0, 0)
    # a's fraud of 2018-08-14 (a delay day of the second block) is known from 08-22 on.
    assert (first.left_out, second.left_out) == (0, 0)
    assert report.cp100 == pytest.approx(1 / 7)


def test_block_auc_and_ap_are_computed_over_the_kept_test_week() -> None:
    rng = np.random.default_rng(3)
    n = 500
    days = rng.integers(0, 21, n)
    times = [
        _at(TRAIN_START + timedelta(days=int(d)), int(h))
        for d, h in zip(days, rng.integers(0, 24, n), strict=True)
    ]
    customers = [f"c{c}" for c in rng.integers(0, 40, n)]
    frauds = (rng.random(n) < 0.1).astype(int)
    scores = np.round(rng.random(n) + frauds * 0.5, 1)
    labeled, scored = _frames(
        list(zip(range(n), times, customers, frauds.tolist(), scores.tolist(), strict=True))
    )
    block = handbook_report(scored, labeled, test_starts=[TEST_START]).blocks[0]
    kept = _oracle_test_set(labeled, TRAIN_START)
    merged = kept.merge(scored, on="transaction_id")
    assert block.transactions == len(merged)
    assert block.auc == pytest.approx(roc_auc_score(merged["is_fraud"], merged["score"]))
    assert block.ap == pytest.approx(average_precision_score(merged["is_fraud"], merged["score"]))


def _oracle_test_set(labeled: pd.DataFrame, train_start: date) -> pd.DataFrame:
    """The handbook's own procedure, spelled out: start from the training week's frauds,
    and before each test day add the frauds of the day ``train_start + 7 + day - 1``."""
    tx_day = labeled["event_time"].dt.normalize().dt.date
    start = pd.Timestamp(train_start).tz_localize(UTC)
    train = labeled[
        (labeled["event_time"] >= start) & (labeled["event_time"] < start + pd.Timedelta(days=7))
    ]
    known = set(train.loc[train["is_fraud"] == 1, "customer_id"])
    parts = []
    for day in range(7):
        delay_day = labeled[tx_day == train_start + timedelta(days=7 + day - 1)]
        known |= set(delay_day.loc[delay_day["is_fraud"] == 1, "customer_id"])
        test_day = labeled[tx_day == train_start + timedelta(days=14 + day)]
        parts.append(test_day[~test_day["customer_id"].isin(known)])
    return pd.concat(parts)


@given(st.integers(0, 2**31 - 1))
@settings(max_examples=25, deadline=None)
def test_left_out_transactions_match_the_handbook_procedure(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    offsets = rng.integers(-3 * 86400, 24 * 86400, n)
    times = [datetime(2018, 7, 25, tzinfo=UTC) + timedelta(seconds=int(o)) for o in offsets]
    customers = [f"c{c}" for c in rng.integers(0, 25, n)]
    frauds = (rng.random(n) < 0.15).astype(int).tolist()
    labeled, scored = _frames(list(zip(range(n), times, customers, frauds, [0.5] * n, strict=True)))
    oracle = _oracle_test_set(labeled, TRAIN_START)
    kept = protocol_test_set(labeled, test_starts=[TEST_START])
    assert sorted(kept["transaction_id"]) == sorted(oracle["transaction_id"])
    block = handbook_report(scored, labeled, test_starts=[TEST_START]).blocks[0]
    assert block.transactions == len(oracle)
    assert block.frauds == int(oracle["is_fraud"].sum())
    test_week = labeled[
        (labeled["event_time"] >= pd.Timestamp(TEST_START, tz=UTC))
        & (labeled["event_time"] < pd.Timestamp(2018, 8, 15, tz=UTC))
    ]
    assert block.left_out == len(test_week) - len(oracle)


def test_timezone_aware_times_are_read_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    aware = pd.Series(
        [datetime(2018, 8, 8, 1, 0, tzinfo=paris), datetime(2018, 8, 8, 2, 0, tzinfo=paris)]
    )
    naive = pd.Series(pd.to_datetime(["2018-08-07 23:00:00", "2018-08-08 00:00:00"]))
    assert event_days(aware).tolist() == event_days(naive).tolist()
    assert event_days(naive).tolist() == [
        (date(2018, 8, 7) - date(1970, 1, 1)).days,
        (TEST_START - date(1970, 1, 1)).days,
    ]


def test_missing_score_for_a_kept_test_transaction_is_an_error() -> None:
    labeled, scored = _frames(
        [(1, _at(TEST_START), "a", 1, 0.9), (2, _at(TEST_START), "b", 0, 0.1)]
    )
    with pytest.raises(ValueError, match="1 test transactions .* have no score"):
        handbook_report(scored.iloc[:1], labeled, test_starts=[TEST_START])


def test_duplicate_scores_are_an_error() -> None:
    labeled, scored = _frames(
        [(1, _at(TEST_START), "a", 1, 0.9), (2, _at(TEST_START), "b", 0, 0.1)]
    )
    with pytest.raises(ValueError, match="more than one score"):
        handbook_report(pd.concat([scored, scored]), labeled, test_starts=[TEST_START])


def test_missing_columns_are_named() -> None:
    labeled, scored = _frames([(1, _at(TEST_START), "a", 1, 0.9)])
    with pytest.raises(ValueError, match="is_fraud"):
        handbook_report(scored, labeled.drop(columns="is_fraud"))


def test_scores_of_left_out_or_other_transactions_are_not_needed() -> None:
    labeled, scored = _frames(
        [
            (1, _at(TRAIN_START), "a", 1, 0.0),  # training week: no score needed
            (2, _at(TEST_START), "a", 1, 0.0),  # a is known: left out
            (3, _at(TEST_START), "b", 1, 0.9),
            (4, _at(TEST_START), "c", 0, 0.1),
        ]
    )
    block = _one_block(scored[scored["transaction_id"] > 2], labeled)
    assert (block.transactions, block.left_out, block.auc) == (2, 1, 1.0)


def _two_block_report() -> HandbookReport:
    rows: list[tuple[int, datetime, str, int, float]] = []
    tid = 0
    for j in range(14):
        d = TEST_START + timedelta(days=j)
        for c, fraud, score in (("a", 1, 0.9), ("b", 0, 0.1 * (j % 3)), ("c", j % 2, 0.3)):
            rows.append((tid, _at(d), c, fraud, score))
            tid += 1
    labeled, scored = _frames(rows)
    return handbook_report(scored, labeled, test_starts=[TEST_START, date(2018, 8, 15)], k=2)


def test_report_means_are_the_means_of_the_blocks() -> None:
    report = _two_block_report()
    blocks = report.blocks
    assert report.auc == pytest.approx(np.mean([b.auc for b in blocks]))
    assert report.ap == pytest.approx(np.mean([b.ap for b in blocks]))
    assert report.cp100 == pytest.approx(np.mean([b.cp for b in blocks]))


def test_render_shows_the_published_table_and_ends_with_the_summary_line() -> None:
    report = _two_block_report()
    text = report.render(name="ours")
    lines = text.splitlines()
    assert lines[-1] == (
        f"evaluate: auc={report.auc:.3f} ap={report.ap:.3f} cp100={report.cp100:.3f}"
    )
    assert lines[-1].startswith("evaluate: auc=0.")
    for row in PUBLISHED:
        assert f"| {row.model} | {row.auc:.3f} | {row.ap:.3f} | {row.cp100:.3f} |" in lines
    assert any(line.startswith("| **ours** |") for line in lines)
    assert "| 2018-08-15 |" in text


def test_published_table_holds_the_handbook_best_values() -> None:
    assert max(r.auc for r in PUBLISHED) == 0.876
    assert max(r.ap for r in PUBLISHED) == 0.687
    assert max(r.cp100 for r in PUBLISHED) == 0.303
    assert len(PUBLISHED) == 6


def test_beats_compares_each_metric_with_the_best_published_value() -> None:
    report = _two_block_report()
    verdict = report.beats()
    assert verdict == {
        "auc": report.auc > 0.876,
        "ap": report.ap > 0.687,
        "cp100": report.cp100 > 0.303,
    }


def test_daily_metrics_leave_out_customers_with_a_fraud_eight_to_fourteen_days_before() -> None:
    d0 = date(2018, 8, 20)
    labeled, scored = _frames(
        [
            (1, _at(d0 - timedelta(days=8)), "x", 1, 0.5),  # known on d0
            (2, _at(d0 - timedelta(days=15)), "y", 1, 0.5),  # too old on d0
            (3, _at(d0 - timedelta(days=7)), "z", 1, 0.5),  # too recent on d0
            (4, _at(d0), "x", 0, 0.2),
            (5, _at(d0), "y", 1, 0.8),
            (6, _at(d0), "z", 0, 0.6),
        ]
    )
    daily = daily_metrics(scored, labeled)
    row = daily.loc[d0]
    assert (int(row["transactions"]), int(row["left_out"])) == (2, 1)
    assert row["auc"] == 1.0
    assert row["cp_at_k"] == 0.01


def test_daily_metrics_count_unscored_transactions_and_report_nan_auc_without_fraud() -> None:
    d0 = date(2018, 8, 20)
    labeled, scored = _frames([(1, _at(d0), "a", 0, 0.2), (2, _at(d0), "b", 0, 0.3)])
    daily = daily_metrics(scored.iloc[:1], labeled)
    row = daily.loc[d0]
    assert (int(row["transactions"]), int(row["unscored"])) == (1, 1)
    assert math.isnan(row["auc"]) and math.isnan(row["ap"])


def test_daily_metrics_carry_a_detected_card_for_carry_days() -> None:
    rows = [(j, _at(TEST_START + timedelta(days=j)), "a", 1, 0.9) for j in range(4)]
    labeled, scored = _frames(rows)
    # A fraud of a on day j makes a known on day j + 8 only: the carry decides here.
    assert daily_metrics(scored, labeled, k=1, carry_days=1)["cp_at_k"].tolist() == [1, 0, 1, 0]
    assert daily_metrics(scored, labeled, k=1, carry_days=6)["cp_at_k"].tolist() == [1, 0, 0, 0]


def test_protocol_test_set_lists_each_block_with_its_kept_transactions() -> None:
    report = _two_block_report()
    rows = []
    for j in range(14):
        d = TEST_START + timedelta(days=j)
        rows += [(3 * j, _at(d), "a", 1, 0.9), (3 * j + 1, _at(d), "b", 0, 0.1)]
    labeled, _ = _frames(rows)
    kept = protocol_test_set(labeled, test_starts=[TEST_START, date(2018, 8, 15)])
    # a's frauds of the first week are known in the second block from 2018-08-16 on.
    assert kept.groupby("test_week").size().to_dict() == {TEST_START: 14, date(2018, 8, 15): 8}
    assert set(kept.columns) == {"test_week", "transaction_id", "customer_id", "day", "is_fraud"}
    assert report.blocks[0].transactions == 21
