"""A worker's lifecycle: updates become verified slot changes; the shadow judge decides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from models.lifecycle import ModelLifecycle
from models.promotion import PromotionRule
from models.registry import Registry
from models.rejections import RejectReason
from models.serving import OnnxScorer
from models.slots import ModelSlots
from models.verify import VerifyOptions
from tests.unit.artifacts import (
    CONTRACT,
    Update,
    fields,
    golden_of,
    good_model,
    make_registry,
    publish_good,
    update_of,
)

CPU = VerifyOptions(provider="cpu", warmup_batch_sizes=(1,))
RULE = PromotionRule(min_labels=200, min_positives=10)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = make_registry(tmp_path / "registry")
    publish_good(reg, "v1")
    publish_good(reg, "v2", weights=[0.03, 1.0, -0.2, 3.0])
    publish_good(reg, "v3", weights=[0.01, 2.0, -0.1, 1.0])
    return reg


@pytest.fixture
def lifecycle(registry: Registry) -> ModelLifecycle:
    life = ModelLifecycle(ModelSlots(), registry, CONTRACT, CPU, RULE)
    assert life.handle(update_of(registry, "v1")).outcome == "installed"
    return life


def _shadow(life: ModelLifecycle, challenger_better: bool, n: int = 400) -> None:
    """Score ``n`` transactions with both models, then let their labels mature."""
    rng = np.random.default_rng(0)
    y = rng.random(n) < 0.1
    noise = rng.random(n)
    good, weak = 0.7 * y + noise, 0.1 * y + noise
    state = life.slots.snapshot()
    assert state.challenger_version is not None
    ids = [f"t{i}" for i in range(n)]
    champion, challenger = (weak, good) if challenger_better else (good, weak)
    life.record(ids, champion, challenger, state.challenger_version)
    for tx, label in zip(ids, y, strict=True):
        life.label(tx, bool(label))


def test_first_publication_installs_then_later_ones_enter_shadow(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    event = lifecycle.handle(update_of(registry, "v2"))
    assert (event.outcome, event.champion_version) == ("staged", "v1")
    state = lifecycle.slots.snapshot()
    assert (state.champion_version, state.challenger_version) == ("v1", "v2")
    assert event.timings["golden"] >= 0.0


def test_judge_waits_then_promotes_a_better_challenger(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2"))
    assert lifecycle.judge() is None  # no labels yet
    _shadow(lifecycle, challenger_better=True)
    event = lifecycle.judge()
    assert event is not None and event.outcome == "promoted" and event.verdict is not None
    state = lifecycle.slots.snapshot()
    assert (state.champion_version, state.previous_version, state.challenger) == ("v2", "v1", None)
    assert lifecycle.judge() is None


def test_judge_rejects_a_worse_challenger_and_the_champion_stays(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2"))
    _shadow(lifecycle, challenger_better=False)
    event = lifecycle.judge()
    assert event is not None
    assert (event.outcome, event.reason) == ("rejected", RejectReason.WORSE_THAN_CHAMPION)
    state = lifecycle.slots.snapshot()
    assert (state.champion_version, state.challenger) == ("v1", None)


def test_scores_of_a_replaced_challenger_are_not_counted(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2"))
    lifecycle.record(["a"], [0.1], [0.9], challenger_version="v9")
    assert lifecycle.ledger is not None and lifecycle.ledger.pending == 0


def test_promote_update_of_the_challenger_promotes_it_at_once(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2"))
    challenger = lifecycle.slots.snapshot().challenger
    event = lifecycle.handle(update_of(registry, "v2", action="promote"))
    assert event.outcome == "promoted"
    assert lifecycle.slots.snapshot().champion is challenger
    assert lifecycle.ledger is None


def test_promote_of_a_model_not_loaded_verifies_and_installs_it(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    event = lifecycle.handle(update_of(registry, "v3", action="promote"))
    assert (event.outcome, event.champion_version) == ("promoted", "v3")
    assert lifecycle.slots.snapshot().previous_version == "v1"


def test_rollback_to_the_previous_model_is_a_swap_without_loading(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    v1 = lifecycle.slots.snapshot().champion
    lifecycle.handle(update_of(registry, "v2", action="promote"))
    event = lifecycle.handle(update_of(registry, "v1", action="rollback"))
    assert (event.outcome, event.timings) == ("rolled_back", {})
    assert lifecycle.slots.snapshot().champion is v1


def test_rollback_to_an_older_model_loads_it_from_the_registry(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2", action="promote"))
    lifecycle.handle(update_of(registry, "v3", action="promote"))
    event = lifecycle.handle(update_of(registry, "v1", action="rollback"))
    assert (event.outcome, event.champion_version) == ("rolled_back", "v1")
    assert event.timings  # it was verified


def test_a_bad_rollback_target_is_rejected_and_nothing_changes(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2", action="promote"))
    before = lifecycle.slots.snapshot()
    forged = replace(update_of(registry, "v3", action="rollback"), signature="00" * 32)
    event = lifecycle.handle(forged)
    assert (event.outcome, event.reason) == ("rejected", RejectReason.BAD_SIGNATURE)
    assert lifecycle.slots.snapshot() is before


def test_repeats_retrain_requests_and_other_families_are_ignored(
    lifecycle: ModelLifecycle, registry: Registry
) -> None:
    lifecycle.handle(update_of(registry, "v2"))
    assert lifecycle.handle(update_of(registry, "v2")).outcome == "ignored"
    assert lifecycle.handle(update_of(registry, "v1", action="promote")).outcome == "ignored"
    retrain = Update("deep", "retrain_request", None, None, None)
    assert lifecycle.handle(retrain).outcome == "ignored"
    other = replace(update_of(registry, "v3"), model_name="sequence")
    assert lifecycle.handle(other).outcome == "ignored"
    assert lifecycle.slots.snapshot().challenger_version == "v2"


def test_start_loads_the_registry_champion(registry: Registry) -> None:
    life = ModelLifecycle(ModelSlots(), registry, CONTRACT, CPU)
    assert life.start().outcome == "ignored"
    registry.promote("v2")
    event = life.start()
    assert (event.outcome, event.champion_version) == ("installed", "v2")


def test_matured_labels_after_the_challengers_window_judge_it_without_live_scores(
    registry: Registry,
) -> None:
    end = datetime(2018, 6, 1, tzinfo=UTC)
    model = good_model("v5", weights=[0.03, 1.0, -0.2, 3.0])
    window = {"start": end - timedelta(days=28), "end": end, "examples": 10, "positives": 1}
    registry.publish(model, fields("v5", golden_of(model), training_window=window))
    life = ModelLifecycle(ModelSlots(), registry, CONTRACT, CPU, RULE)
    life.handle(update_of(registry, "v1"))
    assert life.handle(update_of(registry, "v5")).outcome == "staged"
    assert life.unseen_after == end.timestamp()
    # Transactions the champion scored before the challenger arrived; labels from the
    # challenger's own scores, so it ranks them perfectly and the champion does not.
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(800, 4)) * [50, 1, 3, 0.2]).astype(np.float32)
    p = OnnxScorer(model, feature_names=CONTRACT.feature_names, provider="cpu").score_batch(X)
    y = [bool(v) for v in p > np.quantile(p, 0.9)]
    ids = [f"m{i}" for i in range(800)]
    # Half happened inside the challenger's window (it may have learned them): not judged.
    times = [end.timestamp() + (i - 399.5) * 60.0 for i in range(800)]
    # One was shadow-scored live: its recorded scores count, it is not scored again.
    life.record(["m799"], [0.5], [0.5], "v5")
    assert life.matured(ids, X, y, times) == 400
    assert life.ledger is not None and life.ledger.matured == 400 and life.ledger.pending == 0
    event = life.judge()
    assert event is not None and event.outcome == "promoted" and event.verdict is not None
    assert event.verdict.labels == 400 and event.verdict.newcomer["ap"] == 1.0
    # Without a challenger nothing is judged.
    assert life.matured(ids, X, y, times) == 0
