"""Scoring, the label join and the online learner, without Kafka."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from models.blend import WeightedBlend
from models.features import FEATURE_NAMES
from models.linear import LinearSnapshot
from models.signing import hmac_keys
from streams.events import EnrichedTransaction, Label, LabeledExample, Transaction
from streams.join import JOIN_TABLE, LabelJoin
from streams.learner import LearnerConfig, OnlineTraining
from streams.scoring import ModelSet, ScoreStage
from streams.terminal import Featurized

T0 = datetime(2018, 8, 1, 12, tzinfo=UTC)
NAMES = tuple(FEATURE_NAMES)
SIGNER, VERIFIER = hmac_keys(b"k" * 32)
OTHER_SIGNER, OTHER_VERIFIER = hmac_keys(b"x" * 32)


class ConstantScorer:
    """A deep model stand-in that returns fixed probabilities."""

    version = "deep-const"
    feature_names = NAMES

    def __init__(self, p: float) -> None:
        self.p = p

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.p, dtype=np.float32)


def row(i: int, amount: float = 10.0, when: datetime = T0) -> Featurized:
    tx = Transaction(
        transaction_id=str(i),
        event_time=when,
        customer_id=f"c{i % 3}",
        terminal_id=f"t{i % 2}",
        amount=amount,
    )
    enriched = EnrichedTransaction(
        transaction=tx,
        customer_features=[amount] + [0.0] * 8,
        source_partition=0,
        source_offset=i,
        ingest_time=when,
    )
    values = [amount] + [0.0] * (len(NAMES) - 1)
    return Featurized(enriched, partition=i % 2, offset=i, values=values)


def linear(weight_on_amount: float) -> LinearSnapshot:
    n = len(NAMES)
    return LinearSnapshot(
        version="online-1",
        feature_names=NAMES,
        means=(0.0,) * n,
        stds=(1.0,) * n,
        weights=(weight_on_amount,) + (0.0,) * (n - 1),
        intercept=-2.0,
    )


def test_every_row_gets_one_prediction_scored_by_one_set_of_versions() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(deep=ConstantScorer(0.95), online=linear(0.0), blend=WeightedBlend(0.5))
    scored = stage.score([row(i) for i in range(5)])
    predictions = [json.loads(o.value) for o in scored.outputs]
    assert [p["transaction_id"] for p in predictions] == ["0", "1", "2", "3", "4"]
    online = 1 / (1 + np.exp(2.0))
    assert predictions[0]["score"] == pytest.approx(0.5 * 0.95 + 0.5 * online)
    assert {json.dumps(p["model_versions"], sort_keys=True) for p in predictions} == {
        json.dumps({"blend": "weighted(w_deep=0.500)", "deep": "deep-const", "online": "online-1"})
    }
    assert all(p["decision"] == "review" for p in predictions)


def test_decisions_follow_the_thresholds_and_reasons_name_the_pushing_feature() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(online=linear(1.0))
    scored = stage.score([row(0, amount=0.0), row(1, amount=3.0), row(2, amount=10.0)])
    decisions = [json.loads(o.value)["decision"] for o in scored.outputs]
    assert decisions == ["approve", "review", "decline"]
    reasons = [json.loads(o.value)["reason_codes"] for o in scored.outputs]
    assert reasons[0] == [] and reasons[2] == ["TX_AMOUNT"]


def test_a_model_swap_between_batches_never_mixes_versions_within_one() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(online=linear(0.1))
    first = stage.score([row(i) for i in range(3)])
    stage.models = replace(stage.models, online=replace(linear(0.2), version="online-2"))
    second = stage.score([row(i) for i in range(3, 6)])
    assert {
        v["online"] for v in [json.loads(o.value)["model_versions"] for o in first.outputs]
    } == {"online-1"}
    assert {json.loads(o.value)["model_versions"]["online"] for o in second.outputs} == {"online-2"}


class PickyScorer:
    """Fails on large amounts: NaN for them, or raises on any batch that holds one."""

    version = "deep-picky"
    feature_names = NAMES

    def __init__(self, raises: bool) -> None:
        self.raises = raises

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        bad = X[:, 0] > 1000.0
        if self.raises and bad.any():
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")
        return np.where(bad, np.nan, 0.2).astype(np.float32)


@pytest.mark.parametrize(
    ("raises", "reason"), [(False, "non_finite_score"), (True, "scoring_error")]
)
def test_rows_a_model_cannot_score_are_dead_lettered_and_their_neighbours_scored(
    raises: bool, reason: str
) -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(deep=PickyScorer(raises), online=linear(0.0))
    rows = [row(i, amount=5000.0 if i in (1, 3) else 10.0) for i in range(5)]
    scored = stage.score(rows)
    assert [json.loads(o.value)["transaction_id"] for o in scored.outputs] == ["0", "2", "4"]
    assert [r.enriched.transaction.transaction_id for r in scored.rows] == ["0", "2", "4"]
    assert len(scored.matrix) == len(scored.score) == len(scored.decisions) == 3
    assert scored.dead_reasons == [reason, reason]
    letters = [json.loads(o.value) for o in scored.dead]
    assert [(d["transaction_id"], d["stage"], d["reason"]) for d in letters] == [
        ("1", "score", reason),
        ("3", "score", reason),
    ]
    assert letters[0]["source_topic"] == "txn-by-terminal" and letters[0]["source_offset"] == 1
    original = EnrichedTransaction.model_validate_json(base64.b64decode(letters[0]["original"]))
    assert original == rows[1].enriched
    assert all(o.topic == "dead-letters" for o in scored.dead)


def test_a_failing_challenger_only_loses_its_shadow_scores() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(deep=ConstantScorer(0.3), challenger=PickyScorer(raises=True))
    scored = stage.score([row(0), row(1, amount=5000.0)])
    predictions = [json.loads(o.value) for o in scored.outputs]
    assert len(predictions) == 2 and not scored.dead
    assert [p["challenger_score"] for p in predictions] == [None, None]
    stage.models = ModelSet(deep=ConstantScorer(0.3), challenger=PickyScorer(raises=False))
    shadow = [
        json.loads(o.value)["challenger_score"] for o in stage.score([row(0), row(1, 5e3)]).outputs
    ]
    assert shadow == [pytest.approx(0.2), None]


def label_for(i: int, fraud: bool) -> Label:
    return Label(
        transaction_id=str(i),
        customer_id=f"c{i % 3}",
        terminal_id=f"t{i % 2}",
        is_fraud=fraud,
        transaction_time=T0,
        label_time=T0 + timedelta(days=7),
    )


def test_labels_join_what_the_transaction_was_given_whichever_comes_first() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(online=linear(0.5))
    join = LabelJoin()
    early = join.on_labels([(1, label_for(1, True))])
    assert early.outputs == [] and early.writes[0].key == "l|1"
    remembered = join.remember(stage.score([row(0), row(1)]))
    late = join.on_labels([(0, label_for(0, False))])
    examples = [
        LabeledExample.model_validate_json(o.value) for o in remembered.outputs + late.outputs
    ]
    assert sorted((e.transaction_id, e.is_fraud) for e in examples) == [("0", False), ("1", True)]
    assert all(e.values == row(0).values for e in examples)
    assert all(e.model_versions["online"] == "online-1" for e in examples)
    assert join.examples == {} and join.labels == {}


def test_join_state_restores_from_its_changelog_and_expires_after_the_ttl() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(online=linear(0.5))
    live = LabelJoin()
    writes = live.remember(stage.score([row(0), row(1)])).writes
    restored = LabelJoin()
    for w in writes:
        assert w.table == JOIN_TABLE
        restored.restore(w.partition, w.key, json.loads(json.dumps(w.value)))
    assert set(restored.examples) == {"0", "1"}
    gone = restored.expire(0, T0.timestamp() + 31 * 86_400)
    assert [w.key for w in gone] == ["e|0"]
    assert set(restored.examples) == {"1"}


def test_join_restore_of_a_long_changelog_keeps_ages_only_of_what_is_pending() -> None:
    stage = ScoreStage(NAMES)
    stage.models = ModelSet(online=linear(0.5))
    live = LabelJoin()
    writes = []
    for i in range(0, 400, 2):  # each transaction joined by its label soon after
        writes += live.remember(stage.score([row(i)])).writes
        writes += live.on_labels([(0, label_for(i, i % 10 == 0))]).writes
    writes += live.remember(stage.score([row(400)])).writes  # still waiting
    restored = LabelJoin()
    for w in writes:
        restored.restore(w.partition, w.key, json.loads(json.dumps(w.value)))
        assert len(restored._ages.get(0, ())) <= 1
    assert set(restored.examples) == {"400"} and restored.labels == {}


def example(i: int, fraud: bool, x: float) -> LabeledExample:
    return LabeledExample(
        transaction_id=str(i),
        customer_id="c",
        terminal_id="t",
        event_time=T0 + timedelta(seconds=i),
        label_time=T0 + timedelta(days=7, seconds=i),
        is_fraud=fraud,
        feature_set="handbook-v1",
        values=[x] + [0.0] * (len(NAMES) - 1),
    )


def stream(n: int, seed: int = 0) -> list[tuple[int, int, LabeledExample]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = float(rng.normal())
        out.append((i % 2, i // 2, example(i, x > 1.0, x)))
    return out


def test_the_learner_restarts_from_its_checkpoint_without_learning_a_label_twice() -> None:
    examples = stream(400)
    straight = OnlineTraining(LearnerConfig(NAMES))
    straight.learn(examples)

    crashed = OnlineTraining(LearnerConfig(NAMES))
    crashed.learn(examples[:250])
    checkpoint = crashed.checkpoint(SIGNER)
    crashed.learn(examples[250:320])  # learned, then lost with the process

    resumed = OnlineTraining(LearnerConfig(NAMES))
    resumed.restore(checkpoint, VERIFIER)
    # Read on from the checkpoint's offsets, as the service does.
    todo = [e for e in examples if e[1] >= resumed.offsets.get(e[0], 0)]
    result = resumed.learn(todo)
    assert result.repeated == 0
    assert resumed.learner.n_learned == 400
    np.testing.assert_allclose(
        resumed.snapshot().weights, straight.snapshot().weights, rtol=0, atol=1e-12
    )


def test_repeated_examples_are_learned_once() -> None:
    training = OnlineTraining(LearnerConfig(NAMES))
    batch = stream(50)
    training.learn(batch)
    again = training.learn([(p, o + 1000, e) for p, o, e in batch[:10]])
    assert again.repeated == 10 and again.learned == 0
    assert training.learner.n_learned == 50


def test_a_tampered_checkpoint_is_refused_before_unpickling() -> None:
    training = OnlineTraining(LearnerConfig(NAMES))
    training.learn(stream(20))
    blob = bytearray(training.checkpoint(SIGNER))
    blob[-1] ^= 1
    with pytest.raises(ValueError, match="signature"):
        OnlineTraining(LearnerConfig(NAMES)).restore(bytes(blob), VERIFIER)
    with pytest.raises(ValueError, match="signature"):
        OnlineTraining(LearnerConfig(NAMES)).restore(training.checkpoint(SIGNER), OTHER_VERIFIER)


def test_a_published_snapshot_scores_like_the_learner_and_carries_its_offsets() -> None:
    training = OnlineTraining(LearnerConfig(NAMES))
    training.learn(stream(300))
    snap = training.snapshot()
    X = np.array([e.values for _, _, e in stream(20, seed=3)])
    np.testing.assert_allclose(
        snap.predict_proba_many(X), training.learner.predict_proba_many(X), atol=1e-12
    )
    assert snap.offsets == {"0": 150, "1": 150}
    signature = snap.sign(SIGNER)
    assert LinearSnapshot.from_json(snap.to_json()).verify(VERIFIER, signature)
    assert not replace(snap, intercept=snap.intercept + 1).verify(VERIFIER, signature)
    assert not snap.verify(OTHER_VERIFIER, signature)
