"""Blend rules, decisions and reason codes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.blend import OnlineStacker, RankAverage, WeightedBlend, decide
from models.online import LogisticLearner
from models.protocols import Blend
from models.reasons import occlusion_effects, occlusion_reasons, top_reasons
from models.serving import OnnxScorer
from tests.unit.onnx_builders import logistic_onnx

probabilities = arrays(np.float64, st.integers(0, 30), elements=st.floats(0, 1))


# ---------------------------------------------------------------------------- blend


@given(probabilities, st.floats(0, 1))
def test_weighted_blend_stays_between_its_inputs(deep: np.ndarray, w: float) -> None:
    online = deep[::-1].copy()
    blended = WeightedBlend(w, floor=0.0).blend(deep, online)
    assert (blended >= np.minimum(deep, online) - 1e-12).all()
    assert (blended <= np.maximum(deep, online) + 1e-12).all()


def test_drift_moves_weight_to_the_online_model_down_to_the_floor_and_back() -> None:
    rule = WeightedBlend(0.8, floor=0.5, step=0.2)
    weights = []
    for _ in range(4):
        rule = rule.on_drift()
        weights.append(rule.w_deep)
    assert weights == [0.6, 0.5, 0.5, 0.5]
    for _ in range(4):
        rule = rule.on_recovery()
    assert rule.w_deep == 0.8 and rule.version == "weighted(w_deep=0.800)"


@pytest.mark.parametrize(
    "kwargs",
    [{"w_deep": 1.2}, {"w_deep": 0.1, "floor": 0.2}, {"w_deep": 0.5, "ceiling": 0.4}, {"step": 0}],
)
def test_weighted_blend_rejects_impossible_weights(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WeightedBlend(**kwargs)


def test_blends_reject_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        WeightedBlend().blend(np.zeros(3), np.zeros(4))


def test_rank_average_depends_on_the_row_only_and_is_monotone() -> None:
    rng = np.random.default_rng(0)
    rule = RankAverage(rng.beta(1, 20, 1000), rng.beta(2, 5, 1000))
    deep, online = rng.random(50), rng.random(50)
    whole = rule.blend(deep, online)
    assert np.array_equal(whole[:10], rule.blend(deep[:10], online[:10]))
    assert (rule.blend(deep + 0.01, online) >= whole).all()
    assert ((whole >= 0) & (whole <= 1)).all()
    other = RankAverage(rng.beta(1, 20, 1000), rng.beta(2, 5, 1000))
    assert rule.version != other.version and rule.version.startswith("rank_average(")


def test_stacker_learns_to_trust_the_informative_model() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(6000) < 0.1
    online = np.clip(np.where(y, 0.7, 0.2) + rng.normal(0, 0.1, 6000), 0, 1)  # informative
    deep = rng.random(6000)  # noise
    stacker = OnlineStacker(learning_rate=0.05)
    stacker.learn_many(deep, online, y)
    a, b, _ = stacker.params
    assert b > 1.0 and abs(a) < 0.2
    p = stacker.blend(deep, online)
    assert p[y].mean() > p[~y].mean() + 0.3 and ((p >= 0) & (p <= 1)).all()
    assert stacker.version.startswith("stacker(") and "n=6000" in stacker.version


def test_stacker_is_deterministic_and_checks_label_count() -> None:
    rng = np.random.default_rng(2)
    d, o, y = rng.random(100), rng.random(100), rng.random(100) < 0.3
    first, second = OnlineStacker(), OnlineStacker()
    first.learn_many(d, o, y)
    second.learn_many(d, o, y)
    assert first.params == second.params
    with pytest.raises(ValueError, match="labels"):
        first.learn_many(d, o, y[:-1])


def test_every_rule_follows_the_blend_protocol() -> None:
    ref = np.linspace(0, 1, 11)
    for rule in (WeightedBlend(), RankAverage(ref, ref), OnlineStacker()):
        assert isinstance(rule, Blend)
        assert rule.blend(np.array([0.0, 1.0]), np.array([1.0, 0.0])).shape == (2,)


# ---------------------------------------------------------------------------- decide


def test_thresholds_are_inclusive_lower_bounds() -> None:
    scores = np.array([0.0, 0.299, 0.3, 0.8999, 0.9, 1.0])
    assert decide(scores, review=0.3, decline=0.9).tolist() == [
        "approve",
        "approve",
        "review",
        "review",
        "decline",
        "decline",
    ]


def test_equal_thresholds_leave_no_review_band() -> None:
    assert decide(np.array([0.49, 0.5]), review=0.5, decline=0.5).tolist() == [
        "approve",
        "decline",
    ]


def test_decide_handles_empty_batches_and_refuses_nan_and_bad_thresholds() -> None:
    assert decide(np.array([])).tolist() == []
    with pytest.raises(ValueError, match="NaN"):
        decide(np.array([0.2, np.nan]))
    with pytest.raises(ValueError, match="review <= decline"):
        decide(np.array([0.2]), review=0.9, decline=0.5)
    with pytest.raises(ValueError):
        decide(np.array([0.2]), review=-0.1)


# ---------------------------------------------------------------------------- reasons

NAMES = ["amount", "night", "count_7d", "risk_7d"]
WEIGHTS = [0.5, 2.0, -1.0, 3.0]


def test_top_reasons_keep_positive_effects_strongest_first() -> None:
    effects = np.array([[0.2, 0.9, -0.5, 0.0], [-1.0, -2.0, -0.1, -0.3], [0.1, 0.1, 0.3, 0.0]])
    reasons = top_reasons(effects, k=3)
    assert reasons.names(NAMES) == [["night", "amount"], [], ["count_7d", "amount", "night"]]
    assert reasons.indices.tolist()[0] == [1, 0, -1]
    assert reasons.effects.tolist()[0] == [0.9, 0.2, 0.0]


def test_linear_contributions_give_exact_reasons_for_the_online_model() -> None:
    learner = LogisticLearner(NAMES, learning_rate=0.1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    y = X @ np.array(WEIGHTS) + rng.normal(size=3000) > 2
    for row, label in zip(X, y, strict=True):
        learner.learn_one(dict(zip(NAMES, row.tolist(), strict=True)), bool(label))
    # A row far above average on risk and night only: those are its reasons, in that order.
    row = np.array([[0.0, 1.0, 0.0, 2.0]]) * X.std(axis=0) + X.mean(axis=0)
    reasons = top_reasons(learner.contributions_many(row), k=3)
    assert reasons.names(NAMES) == [["risk_7d", "night"]]


@pytest.fixture(scope="module")
def linear_scorer() -> OnnxScorer:
    return OnnxScorer(logistic_onnx(NAMES, WEIGHTS, -1.0), feature_names=NAMES, provider="cpu")


def test_occlusion_effects_of_a_linear_model_match_the_closed_form(
    linear_scorer: OnnxScorer,
) -> None:
    X = np.array([[1.0, 1.0, 2.0, 0.5], [0.0, 0.0, -1.0, 0.0]], dtype=np.float32)
    baseline = np.zeros(4)
    effects = occlusion_effects(linear_scorer, X, baseline)

    def sigmoid(z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-z))

    logit = X.astype(np.float64) @ np.array(WEIGHTS) - 1.0
    expected = sigmoid(logit)[:, None] - sigmoid(logit[:, None] - X * np.array(WEIGHTS))
    np.testing.assert_allclose(effects, expected, atol=1e-6)
    reasons = occlusion_reasons(linear_scorer, X, baseline, k=2)
    assert reasons.names(NAMES) == [["night", "risk_7d"], ["count_7d"]]


def test_candidate_preselection_occludes_only_the_farthest_features(
    linear_scorer: OnnxScorer,
) -> None:
    X = np.array([[10.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    scale = np.array([10.0, 0.1, 1.0, 1.0])  # night is 10 std away, amount only 1
    effects = occlusion_effects(linear_scorer, X, np.zeros(4), scale=scale, candidates=1)
    assert effects[0, 1] > 0 and (effects[0, [0, 2, 3]] == 0).all()


def test_occlusion_handles_empty_batches(linear_scorer: OnnxScorer) -> None:
    reasons = occlusion_reasons(linear_scorer, np.zeros((0, 4), dtype=np.float32), np.zeros(4))
    assert reasons.indices.shape == (0, 3) and reasons.names(NAMES) == []
