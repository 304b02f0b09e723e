"""Model slots change by whole-state swaps; the promotion rule; shadow ledger; metrics."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from models.promotion import PromotionRule, ShadowLedger, judge
from models.rejections import RejectReason
from models.scoreboard import average_precision, card_precision_at_k, roc_auc
from models.settings import PromotionSettings
from models.slots import ModelSlots, SlotError


class Fixed:
    """A scorer that gives every row the same score."""

    feature_names = ("x",)

    def __init__(self, version: str, value: float = 0.5) -> None:
        self.version = version
        self.value = value

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.value, dtype=np.float32)


def test_stage_promote_rollback_move_models_between_slots() -> None:
    v1, v2 = Fixed("v1"), Fixed("v2")
    slots = ModelSlots(v1)
    slots.stage(v2)
    state = slots.promote("v2")
    assert (state.champion, state.challenger, state.previous) == (v2, None, v1)
    state = slots.rollback("v1")
    assert (state.champion, state.previous) == (v1, None)
    assert state.generation == 3


def test_rollback_swaps_back_the_very_object_kept_loaded() -> None:
    v1 = Fixed("v1")
    slots = ModelSlots(v1)
    slots.install(Fixed("v2"))
    assert slots.rollback().champion is v1


def test_refused_changes_leave_the_state_untouched() -> None:
    slots = ModelSlots(Fixed("v1"))
    before = slots.snapshot()
    with pytest.raises(SlotError):
        slots.promote()
    with pytest.raises(SlotError):
        slots.rollback()
    with pytest.raises(SlotError):
        slots.reject()
    with pytest.raises(SlotError):
        slots.stage(Fixed("v1"))
    slots.stage(Fixed("v2"))
    staged = slots.snapshot()
    with pytest.raises(SlotError):
        slots.promote("v3")
    with pytest.raises(SlotError):
        slots.reject("v3")
    assert slots.snapshot() is staged and before.generation == 0


def test_install_of_the_challengers_version_ends_its_shadow() -> None:
    slots = ModelSlots(Fixed("v1"))
    v2 = Fixed("v2")
    slots.stage(v2)
    state = slots.install(Fixed("v2"))
    assert state.challenger is None and state.champion_version == "v2"
    assert state.previous_version == "v1"


def test_concurrent_changes_never_show_a_mixed_state() -> None:
    models = [Fixed(f"v{i}") for i in range(4)]
    slots = ModelSlots(models[0])
    stop = threading.Event()
    problems: list[str] = []

    def read() -> None:
        last = -1
        while not stop.is_set():
            s = slots.snapshot()
            if s.generation < last:
                problems.append("generation went back")
            if s.champion is None or s.champion_version == s.challenger_version:
                problems.append(f"inconsistent {s}")
            last = s.generation

    def write() -> None:
        for i in range(2000):
            nxt = models[(i + 1) % 4]
            try:
                slots.stage(nxt)
                slots.promote(nxt.version)
            except SlotError:
                pass  # another writer got there first: refused, state unchanged
            if i % 7 == 0:
                try:
                    slots.rollback()
                except SlotError:
                    pass

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write) for _ in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert problems == []
    assert slots.snapshot().generation > 2000


# --------------------------------------------------------------------- the rule


def _labels(n: int = 4000, rate: float = 0.05, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rate
    noise = rng.random(n)
    return y, 0.6 * y + noise, 0.3 * y + noise  # good, weaker


def test_rule_promotes_a_better_or_equal_newcomer() -> None:
    y, good, weak = _labels()
    assert judge(PromotionRule(), y, weak, good).decision == "promote"
    assert judge(PromotionRule(), y, good, good).decision == "promote"


def test_rule_rejects_a_worse_newcomer_with_the_numbers() -> None:
    y, good, weak = _labels()
    verdict = judge(PromotionRule(), y, good, weak)
    assert verdict.decision == "reject"
    assert verdict.reason == RejectReason.WORSE_THAN_CHAMPION
    assert verdict.newcomer["ap"] < verdict.champion["ap"]
    assert "AP drop" in verdict.detail


def test_rule_tolerates_a_drop_within_the_allowance() -> None:
    y, good, weak = _labels()
    drop_ap = average_precision(y, good) - average_precision(y, weak)
    drop_auc = roc_auc(y, good) - roc_auc(y, weak)
    lenient = PromotionRule(max_ap_drop=drop_ap + 1e-9, max_auc_drop=drop_auc + 1e-9)
    assert judge(lenient, y, good, weak).decision == "promote"
    only_ap = PromotionRule(max_ap_drop=drop_ap + 1e-9, max_auc_drop=0.0)
    assert judge(only_ap, y, good, weak).detail.endswith(f"AUC drop exceeds {0.0}")


def test_rule_waits_for_labels_and_frauds_then_gives_up() -> None:
    y, good, weak = _labels(n=500)
    rule = PromotionRule(min_labels=1000, min_positives=10, max_labels=2000)
    assert judge(rule, y, good, weak).decision == "wait"
    no_fraud = np.zeros(3000, dtype=bool)
    scores = np.linspace(0, 1, 3000)
    verdict = judge(rule, no_fraud, scores, scores)
    assert (verdict.decision, verdict.reason) == ("reject", RejectReason.INSUFFICIENT_EVIDENCE)


def test_rule_reads_its_thresholds_from_settings() -> None:
    rule = PromotionRule.from_settings(PromotionSettings(min_labels=5, max_ap_drop=0.01))
    assert (rule.min_labels, rule.max_ap_drop, rule.max_auc_drop) == (5, 0.01, 0.005)


def test_ledger_joins_labels_to_shadow_scores_and_bounds_pending() -> None:
    ledger = ShadowLedger("v1", "v2", capacity=3)
    ledger.record(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, float("nan")])
    assert ledger.pending == 3  # d had a NaN score; nothing evicted yet
    ledger.record(["e"], [0.5], [0.9])
    assert ledger.pending == 3 and not ledger.label("a", True)  # the oldest went
    assert ledger.label("e", True) and ledger.label("b", False)
    assert ledger.matured == 2 and ledger.pending == 1


def test_ledger_verdict_matches_judging_the_same_arrays() -> None:
    y, good, weak = _labels(n=3000)
    ledger = ShadowLedger("v1", "v2")
    ids = [str(i) for i in range(len(y))]
    ledger.record(ids, good, weak)
    for i, label in zip(ids, y, strict=True):
        ledger.label(i, bool(label))
    assert ledger.verdict(PromotionRule()) == judge(PromotionRule(), y, good, weak)


# --------------------------------------------------------------------- metrics


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.9, 1.0])),
        min_size=2,
        max_size=60,
    )
)
def test_auc_and_ap_agree_with_scikit_learn(rows: list[tuple[bool, float]]) -> None:
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows])
    if 0 < y.sum() < len(y):
        assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    else:
        assert np.isnan(roc_auc(y, s))


def test_card_precision_counts_each_card_once_per_day() -> None:
    # Card a has three frauds on day 0 but counts once; day 1 has only genuine cards.
    cp = card_precision_at_k(
        y=[1, 1, 1, 0, 0],
        score=[0.9, 0.8, 0.7, 0.6, 0.5],
        cards=["a", "a", "a", "b", "c"],
        days=[0, 0, 0, 0, 1],
        k=2,
    )
    assert cp == pytest.approx((1 / 2 + 0 / 2) / 2)
