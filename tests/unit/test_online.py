"""Online learners: exact fast batch scoring, protocol conformance, signed snapshots."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.online import (
    LEARNER_KINDS,
    LogisticLearner,
    SnapshotError,
    SnapshotMeta,
    TreeLearner,
    load_snapshot,
    make_learner,
    sign_snapshot,
    snapshot_learner,
    verify_snapshot,
)
from models.protocols import OnlineLearner

NAMES = ["amount", "night", "count_1d", "constant", "risk_7d"]
KEY = b"0123456789abcdef0123456789abcdef"


def _stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.exponential(60, n),
            rng.random(n) < 0.2,
            rng.poisson(3, n),
            np.full(n, 7.0),
            rng.beta(1, 30, n),
        ]
    ).astype(np.float64)
    y = rng.random(n) < 1 / (1 + np.exp(-(X[:, 0] / 60 - 4 + 30 * X[:, 4])))
    return X, y


def _rows(X: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(NAMES, row, strict=True)) for row in X.tolist()]


def _trained(kind: str = "logistic", n: int = 3000) -> OnlineLearner:
    learner = make_learner(kind, NAMES)
    X, y = _stream(n)
    for x, label in zip(_rows(X), y.tolist(), strict=True):
        learner.learn_one(x, label)
    return learner


@pytest.fixture(scope="module")
def logistic() -> LogisticLearner:
    learner = _trained()
    assert isinstance(learner, LogisticLearner)
    return learner


def test_fast_batch_predictor_reproduces_rivers_logits_exactly(
    logistic: LogisticLearner,
) -> None:
    X, _ = _stream(2000, seed=1)
    scaler = logistic._model.steps["StandardScaler"]
    regression = logistic._model.steps["LogisticRegression"]
    river = [regression._raw_dot_one(scaler.transform_one(x)) for x in _rows(X)]
    np.testing.assert_array_equal(logistic.logits_many(X), river)
    one = np.array([logistic.predict_proba_one(x) for x in _rows(X)])
    np.testing.assert_allclose(logistic.predict_proba_many(X), one, rtol=0, atol=1e-15)


def test_fast_batch_predictor_agrees_with_rivers_dataframe_path(
    logistic: LogisticLearner,
) -> None:
    X, _ = _stream(500, seed=2)
    river = logistic._model.predict_proba_many(pd.DataFrame(X, columns=NAMES))[True]
    np.testing.assert_allclose(logistic.predict_proba_many(X), river.to_numpy(), rtol=0, atol=1e-12)


def test_an_untrained_learner_predicts_one_half_on_both_paths() -> None:
    learner = LogisticLearner(NAMES)
    X, _ = _stream(3)
    assert learner.predict_proba_many(X).tolist() == [0.5, 0.5, 0.5]
    assert learner.predict_proba_one(_rows(X)[0]) == 0.5


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=5), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_fast_and_per_row_predictions_agree_on_any_stream(
    examples: list[tuple[list[float], bool]],
) -> None:
    learner = LogisticLearner(NAMES, learning_rate=0.1)
    for row, label in examples:
        learner.learn_one(dict(zip(NAMES, row, strict=True)), label)
    X = np.array([row for row, _ in examples])
    one = [learner.predict_proba_one(x) for x in _rows(X)]
    np.testing.assert_allclose(learner.predict_proba_many(X), one, rtol=0, atol=1e-12)


def test_contributions_add_up_to_the_logit(logistic: LogisticLearner) -> None:
    X, _ = _stream(100, seed=3)
    c = logistic.contributions_many(X)
    intercept = logistic._parameters()[3]
    p = 1 / (1 + np.exp(-(c.sum(axis=1) + intercept)))
    np.testing.assert_allclose(p, logistic.predict_proba_many(X), rtol=1e-12)
    assert (c[:, NAMES.index("constant")] == 0).all()  # zero variance: no effect


def test_key_order_of_an_example_does_not_change_the_model() -> None:
    a, b = LogisticLearner(NAMES), LogisticLearner(NAMES)
    X, y = _stream(300)
    for x, label in zip(_rows(X), y.tolist(), strict=True):
        a.learn_one(x, label)
        b.learn_one(dict(reversed(list(x.items()))), label)
    np.testing.assert_array_equal(a.predict_proba_many(X), b.predict_proba_many(X))


def test_an_example_missing_a_feature_is_rejected() -> None:
    with pytest.raises(KeyError, match="risk_7d"):
        LogisticLearner(NAMES).learn_one({n: 1.0 for n in NAMES[:-1]}, True)


def test_batch_prediction_rejects_the_wrong_width(logistic: LogisticLearner) -> None:
    with pytest.raises(ValueError, match="expected"):
        logistic.predict_proba_many(np.zeros((3, 4)))


def test_positive_weight_raises_scores_of_a_rare_class() -> None:
    X, y = _stream(2000)
    plain, weighted = LogisticLearner(NAMES), LogisticLearner(NAMES, positive_weight=20.0)
    for x, label in zip(_rows(X), y.tolist(), strict=True):
        plain.learn_one(x, label)
        weighted.learn_one(x, label)
    assert weighted.predict_proba_many(X).mean() > plain.predict_proba_many(X).mean() + 0.1


@pytest.mark.parametrize("kind", LEARNER_KINDS)
def test_every_learner_kind_follows_the_protocol_and_learns(kind: str) -> None:
    learner = _trained(kind, n=1500)
    assert isinstance(learner, OnlineLearner)
    assert learner.kind == kind and learner.n_learned == 1500
    X, y = _stream(1500, seed=9)
    p = learner.predict_proba_many(X)
    assert p.shape == (1500,) and bool(((p >= 0) & (p <= 1)).all())
    assert p[y].mean() > p[~y].mean()  # better than chance on fresh data
    assert learner.predict_proba_one(_rows(X[:1])[0]) == pytest.approx(p[0], abs=1e-12)


@pytest.mark.parametrize("kind", ["logistic", "hoeffding_adaptive_tree"])
def test_a_signed_snapshot_round_trips_and_keeps_learning_identically(kind: str) -> None:
    learner = _trained(kind, n=1000)
    blob = snapshot_learner(learner, KEY, offsets={"labels/0": 1000, "labels/1": 12})
    meta, restored = load_snapshot(blob, KEY)
    assert meta.kind == kind and meta.n_learned == 1000
    assert meta.offsets == {"labels/0": 1000, "labels/1": 12}
    assert meta.feature_names == tuple(NAMES)
    X, y = _stream(300, seed=4)
    np.testing.assert_array_equal(restored.predict_proba_many(X), learner.predict_proba_many(X))
    for x, label in zip(_rows(X), y.tolist(), strict=True):
        learner.learn_one(x, label)
        restored.learn_one(x, label)
    np.testing.assert_array_equal(restored.predict_proba_many(X), learner.predict_proba_many(X))
    assert restored.n_learned == 1300


UNPICKLED: list[str] = []


def _record_unpickling() -> dict[str, object]:
    UNPICKLED.append("payload ran")
    return {}


class _Tripwire:
    """Unpickling this object runs ``_record_unpickling``."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_record_unpickling, ())


def _tripwire_blob(key: bytes) -> bytes:
    meta = SnapshotMeta(kind="logistic", n_learned=0, feature_names=tuple(NAMES))
    return sign_snapshot(pickle.dumps(_Tripwire()), key, meta)


def test_a_tampered_snapshot_is_rejected_before_anything_is_unpickled() -> None:
    UNPICKLED.clear()
    blob = bytearray(_tripwire_blob(KEY))
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(SnapshotError, match="signature"):
        load_snapshot(bytes(blob), KEY)
    with pytest.raises(SnapshotError, match="signature"):
        load_snapshot(_tripwire_blob(b"another key, 32 bytes long......"), KEY)
    assert UNPICKLED == []
    # The tripwire works: a correctly signed payload is unpickled (and then refused).
    with pytest.raises(SnapshotError, match="not a 'logistic' learner"):
        load_snapshot(_tripwire_blob(KEY), KEY)
    assert UNPICKLED == ["payload ran"]


def test_truncated_or_foreign_bytes_are_not_snapshots() -> None:
    blob = snapshot_learner(LogisticLearner(NAMES), KEY)
    for bad in (b"", blob[:20], b"PK\x03\x04" + blob[4:], blob[:-1]):
        with pytest.raises(SnapshotError):
            verify_snapshot(bad, KEY)


def test_signing_needs_a_real_key() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        snapshot_learner(LogisticLearner(NAMES), b"short")


def test_a_snapshot_of_other_features_is_refused() -> None:
    payload = LogisticLearner(["a", "b"]).snapshot()
    with pytest.raises(SnapshotError, match="differ"):
        LogisticLearner(NAMES).restore(payload)
    with pytest.raises(SnapshotError, match="not a 'hoeffding_adaptive_tree'"):
        TreeLearner(["a", "b"]).restore(payload)
