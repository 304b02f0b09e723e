"""The training run on a small synthetic window: train, export, judge, publish, verify."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models.nets import FraudNet, load_ffnn
from models.promotion import PromotionRule
from models.registry import Registry
from models.settings import PromotionSettings, TrainerSettings
from models.trainer import WEIGHTS_FILE, LabeledData, TrainerConfig, TrainingRun, train_candidate
from models.trainer_window import ExampleWindow, TrainingSchedule
from models.training_data import join_features, labeled_frame
from models.verify import FeatureContract, VerifyOptions, verify
from tests.unit.artifacts import make_registry, update_of

NAMES = ("amount", "night", "velocity")
T0 = datetime(2018, 4, 1, tzinfo=UTC).timestamp()
CONFIG = TrainerConfig(
    hidden=(8,),
    epochs=4,
    lr=1e-2,
    eval_days=3.0,
    min_examples=200,
    golden_rows=16,
    rule=PromotionRule(min_labels=200, min_positives=10),
)


def synthetic(n: int = 3000, days: float = 10.0, seed: int = 0) -> LabeledData:
    """Fraud depends on amount and velocity; examples spread over ``days``."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.gamma(2.0, 40.0, n), rng.random(n) < 0.2, rng.poisson(3.0, n)]).astype(
        np.float32
    )
    logit = 0.03 * X[:, 0] + 0.6 * X[:, 2] - 7.0
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    times = T0 + np.sort(rng.random(n)) * days * 86_400
    customers = np.array([f"c{i % 300}" for i in range(n)], dtype=object)
    return LabeledData(X, y, times, customers, NAMES, "synthetic-v1")


class Oracle:
    """A champion that knows the labels: no candidate beats it."""

    feature_names = NAMES
    version = "oracle"

    def __init__(self, data: LabeledData) -> None:
        self.by_row = {
            row.tobytes(): float(label) for row, label in zip(data.X, data.y, strict=True)
        }

    def score_batch(self, X: np.ndarray) -> np.ndarray:
        return np.array([self.by_row[row.tobytes()] for row in X], dtype=np.float32)


@pytest.fixture(scope="module")
def data() -> LabeledData:
    return synthetic()


@pytest.fixture(scope="module")
def first_run(data: LabeledData) -> tuple[TrainingRun, list[tuple[int, float, float]], list[str]]:
    epochs: list[tuple[int, float, float]] = []
    phases: list[str] = []
    run = train_candidate(
        data,
        CONFIG,
        model_name="deep",
        version="syn-1",
        on_epoch=lambda *e: epochs.append(e),
        on_phase=phases.append,
    )
    return run, epochs, phases


def test_run_without_champion_is_published_and_reports_progress(
    first_run: tuple[TrainingRun, list[tuple[int, float, float]], list[str]],
    data: LabeledData,
) -> None:
    run, epochs, phases = first_run
    assert run.publish and run.verdict is None and run.parent_version is None
    assert phases == ["train", "export", "evaluate"]
    assert [e[0] for e in epochs] == list(range(len(run.history)))
    assert run.n_train + run.n_eval == 3000
    assert run.metrics["auc"] > 0.75  # the signal is strong; a broken trainer lands near 0.5
    assert run.metrics["parity_max_abs_diff"] <= 1e-5
    window = run.manifest_fields["training_window"]
    held_out = data.event_time >= data.event_time[-1] - 3 * 86_400
    assert run.n_eval == int(held_out.sum())
    assert window["eval_start"].timestamp() == pytest.approx(data.event_time[held_out][0], abs=1e-5)


def test_published_run_passes_the_workers_verification(
    first_run: tuple[TrainingRun, list[tuple[int, float, float]], list[str]],
    tmp_path: Path,
) -> None:
    run = first_run[0]
    registry = make_registry(tmp_path)
    manifest = registry.publish(run.model, run.manifest_fields)
    assert len(manifest.golden.inputs) == 16
    contract = FeatureContract("synthetic-v1", NAMES)
    verified = verify(
        update_of(registry, "syn-1"), registry, contract, VerifyOptions(provider="cpu")
    )
    assert verified.version == "syn-1"


def test_golden_rows_span_the_score_range(
    first_run: tuple[TrainingRun, list[tuple[int, float, float]], list[str]],
) -> None:
    expected = first_run[0].manifest_fields["golden"]["expected"]
    assert min(expected) < 0.05 and max(expected) > 0.5


def test_candidate_worse_than_the_champion_is_not_published(data: LabeledData) -> None:
    run = train_candidate(data, CONFIG, model_name="deep", version="syn-2", champion=Oracle(data))
    assert run.verdict is not None and run.verdict.decision == "reject"
    assert not run.publish and "worse than the champion" in run.publish_reason
    assert run.metrics["champion_auc"] == 1.0 and run.parent_version == "oracle"
    always = train_candidate(
        data,
        replace(CONFIG, publish_rule="always", epochs=1),
        model_name="deep",
        version="syn-3",
        champion=Oracle(data),
    )
    assert always.publish


def test_the_champion_is_judged_only_on_labels_it_did_not_learn(data: LabeledData) -> None:
    end = datetime.fromtimestamp(float(data.event_time[-1]), UTC)
    # The oracle "learned" every held-out label: no fair comparison, shadow decides.
    seen_all = train_candidate(
        data,
        replace(CONFIG, epochs=1),
        model_name="deep",
        version="syn-4",
        champion=Oracle(data),
        champion_trained_until=end,
    )
    assert seen_all.verdict is None and seen_all.publish
    assert "learned every held-out label" in seen_all.publish_reason
    assert "champion_auc" not in seen_all.metrics
    # Trained until the middle of the held-out days: judged on the later part only.
    middle = float(data.event_time[-1]) - CONFIG.eval_days * 86_400 / 2
    half = train_candidate(
        data,
        replace(CONFIG, epochs=1),
        model_name="deep",
        version="syn-5",
        champion=Oracle(data),
        champion_trained_until=datetime.fromtimestamp(middle, UTC),
    )
    later = int((data.event_time >= middle).sum())
    assert half.verdict is not None and half.verdict.decision == "reject"
    assert f"on {later} labels" in half.verdict.detail


def test_a_warm_start_fine_tunes_the_champion_on_the_whole_window(
    first_run: tuple[TrainingRun, list[tuple[int, float, float]], list[str]],
    data: LabeledData,
    tmp_path: Path,
) -> None:
    base = load_ffnn(first_run[0].weights)
    tuned = train_candidate(
        data,
        replace(CONFIG, finetune_epochs=2),
        model_name="deep",
        version="syn-ft",
        champion=Oracle(data),
        init=base,
    )
    # Every example trains (newest included), nothing is held out, the workers judge.
    assert (tuned.mode, tuned.n_train, tuned.n_eval) == ("finetune", len(data), 0)
    assert len(tuned.history) == 2 and tuned.verdict is None and tuned.publish
    assert "workers judge" in tuned.publish_reason and tuned.parent_version == "oracle"
    assert set(tuned.metrics) == {"parity_max_abs_diff"}
    assert tuned.manifest_fields["training_window"]["eval_start"] is None
    # The champion's standardization is kept, its weights moved, the input is untouched.
    again = load_ffnn(tuned.weights)
    assert torch.equal(again.mean, base.mean) and torch.equal(again.std, base.std)
    assert not torch.equal(again.body[0].weight, base.body[0].weight)
    assert torch.equal(load_ffnn(first_run[0].weights).body[0].weight, base.body[0].weight)
    # Published with its weights, it passes the workers' verification.
    registry = make_registry(tmp_path)
    registry.publish(tuned.model, tuned.manifest_fields, extra_files={WEIGHTS_FILE: tuned.weights})
    contract = FeatureContract("synthetic-v1", NAMES)
    verified = verify(
        update_of(registry, "syn-ft"), registry, contract, VerifyOptions(provider="cpu")
    )
    assert WEIGHTS_FILE in verified.manifest.files
    with pytest.raises(ValueError, match="features"):
        train_candidate(data, CONFIG, model_name="deep", init=FraudNet(len(NAMES) + 1, hidden=(4,)))


def test_too_little_data_is_refused_before_training(data: LabeledData) -> None:
    with pytest.raises(ValueError, match="min_examples"):
        train_candidate(data.take(np.arange(len(data)) < 100), CONFIG, model_name="deep")
    with pytest.raises(ValueError, match="shorter than eval_days"):
        train_candidate(data, replace(CONFIG, eval_days=30.0), model_name="deep")


def test_config_comes_from_settings() -> None:
    config = TrainerConfig.from_settings(
        TrainerSettings(hidden=(16, 8), eval_days=2.0), PromotionSettings(min_labels=7)
    )
    assert (config.hidden, config.eval_days, config.rule.min_labels) == ((16, 8), 2.0, 7)


def test_labeled_data_from_a_frame_is_sorted_by_event_time() -> None:
    frame = pd.DataFrame(
        {
            "amount": [3.0, 1.0, 2.0],
            "night": [0.0, 1.0, 0.0],
            "velocity": [1.0, 1.0, 1.0],
            "is_fraud": [True, False, False],
            "event_time": pd.to_datetime(["2018-04-03", "2018-04-01", "2018-04-02"], utc=True),
            "customer_id": ["a", "b", "c"],
        }
    )
    data = LabeledData.from_frame(frame, NAMES, "fs")
    assert data.X[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert data.y.tolist() == [False, False, True]
    assert data.customer_id.tolist() == ["b", "c", "a"]


def test_precomputed_features_join_by_transaction_id_and_fill_the_amount() -> None:
    tx = pd.DataFrame(
        {
            "transaction_id": ["1", "2"],
            "customer_id": ["c", "d"],
            "event_time": pd.to_datetime(["2018-04-01", "2018-04-02"], utc=True),
            "amount": [5.0, 7.0],
            "is_fraud": [False, True],
        }
    )
    reference = pd.DataFrame({"TRANSACTION_ID": [2, 1, 3], "NIGHT": [1, 0, 0]})
    features = join_features(tx, reference, ["TX_AMOUNT", "NIGHT"])
    frame = labeled_frame(tx, features, ["TX_AMOUNT", "NIGHT"])
    assert frame[["TX_AMOUNT", "NIGHT"]].to_numpy().tolist() == [[5.0, 0.0], [7.0, 1.0]]
    with pytest.raises(ValueError, match="lacks columns"):
        join_features(tx, reference, ["TX_AMOUNT", "RISK"])
    with pytest.raises(ValueError, match="have no features"):
        join_features(tx, reference[reference.TRANSACTION_ID != 2], ["NIGHT"])


def test_example_window_keeps_the_last_days_once_each_in_event_order() -> None:
    window = ExampleWindow(NAMES, "fs", window_days=2.0)
    for i, day in enumerate([0.0, 3.0, 2.5, 1.5]):
        window.add(f"t{i}", T0 + day * 86_400, [day, 0.0, 0.0], i == 1, "c")
    assert not window.add("t1", T0, [0.0, 0.0, 0.0], False, "c")  # duplicate
    assert not window.add("t9", T0, [0.0, 0.0], False, "c")  # wrong width
    assert not window.add("t8", T0, [0.0, 0.0, 0.0], False, "c", feature_set="other")
    data = window.data()
    assert data.X[:, 0].tolist() == [1.5, 2.5, 3.0] and data.y.tolist() == [False, False, True]
    assert window.rejected == 2


def test_schedules_fire_by_event_time_wall_clock_or_never() -> None:
    day = 86_400.0
    by_event = TrainingSchedule("event_time", every_days=7.0, every_s=1.0, anchor=T0)
    assert not by_event.due(T0 + 6.9 * day, now=1e9)
    assert by_event.due(T0 + 7 * day, now=0.0)
    by_event.ran(T0 + 7 * day, now=0.0)
    assert not by_event.due(T0 + 13 * day, now=0.0) and by_event.due(T0 + 14 * day, now=0.0)
    by_wall = TrainingSchedule("wall_clock", every_days=1.0, every_s=60.0)
    assert not by_wall.due(T0, now=1000.0) and by_wall.due(T0, now=1060.0)
    never = TrainingSchedule("requests", every_days=1.0, every_s=1.0)
    assert not never.due(T0 + 100 * day, now=1e12)


def test_registry_publish_of_a_run_records_window_metrics_and_parent(
    first_run: tuple[TrainingRun, list[tuple[int, float, float]], list[str]],
    tmp_path: Path,
) -> None:
    run = first_run[0]
    registry: Registry = make_registry(tmp_path)
    manifest = registry.publish(run.model, run.manifest_fields)
    assert manifest.training_window is not None
    assert manifest.training_window.examples == 3000
    assert manifest.metrics["auc"] == pytest.approx(run.metrics["auc"], abs=1e-6)
    assert manifest.feature_names == NAMES and manifest.opset == 18
