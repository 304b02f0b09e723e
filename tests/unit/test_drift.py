"""Drift detectors: shifts fire fast, stationary streams stay quiet, batching is irrelevant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.drift import (
    DriftConfig,
    DriftMonitor,
    ReferenceCusum,
    WindowKS,
    absolute_errors,
    make_error_detector,
    make_kswin,
    make_page_hinkley,
)
from models.protocols import DriftDetector

NAMES = ["normal", "amount", "flag", "count", "risk", "sparse", "constant"]


def _features(rng: np.random.Generator, n: int) -> np.ndarray:
    sparse = np.where(rng.random(n) < 0.95, 0.0, rng.uniform(0, 1, n))
    return np.column_stack(
        [
            rng.normal(0, 1, n),
            rng.exponential(60, n),
            rng.random(n) < 0.2,
            rng.poisson(3, n),
            rng.beta(1, 30, n),
            sparse,
            np.full(n, 5.0),
        ]
    )


def _monitor(seed: int = 0, **kwargs: object) -> tuple[DriftMonitor, np.random.Generator]:
    rng = np.random.default_rng(seed)
    monitor = DriftMonitor(NAMES, _features(rng, 20000), rng.beta(1, 20, 20000), **kwargs)  # type: ignore[arg-type]
    return monitor, rng


def _loop_cusum(
    values: np.ndarray, ref: np.ndarray, k: float, h: float, block: int, relearn: int, clip: float
) -> list[tuple[int, float]]:
    """The detector written as a plain loop over values: the oracle for the vectorized one."""
    mean, std = ref.mean(), ref.std()
    z_ref = np.clip((ref - mean) / std, -clip, clip)
    z_mean, z_std = z_ref.mean(), z_ref.std()
    center, up, down, run_up, run_down, learning, learned = 0.0, 0.0, 0.0, 0, 0, 0, 0.0
    firings, acc, count = [], 0.0, 0
    for i, v in enumerate(values.tolist()):
        acc += min(max(v, mean - clip * std), mean + clip * std)
        count += 1
        if count < block:
            continue
        x = ((acc / block - mean) / std - z_mean) * math.sqrt(block) / z_std
        acc, count = 0.0, 0
        if learning:
            learned += x
            learning -= 1
            if not learning:
                center = learned / relearn
            continue
        x -= center
        up, run_up = (up + x - k, run_up + 1) if up + x - k > 0 else (0.0, 0)
        down, run_down = (down - x - k, run_down + 1) if down - x - k > 0 else (0.0, 0)
        if up > h or down > h:
            shift = up / run_up + k if up > h else -(down / run_down + k)
            firings.append((i, (center + shift) / math.sqrt(block)))
            up = down = 0.0
            run_up = run_down = 0
            learning, learned = relearn, 0.0
    return firings


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shift=st.floats(-2, 2),
    cuts=st.lists(st.integers(1, 3999), max_size=6),
    block=st.sampled_from([1, 4, 32]),
)
def test_vectorized_cusum_matches_a_plain_loop_for_any_batching(
    seed: int, shift: float, cuts: list[int], block: int
) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.exponential(2.0, 3000)
    stream = np.concatenate([rng.exponential(2.0, 2000), rng.exponential(2.0, 2000) + shift])
    params = {"k": 0.5, "h": 6.0, "block": block, "relearn": 4, "clip": 3.0}
    expected = _loop_cusum(stream, ref, **params)  # type: ignore[arg-type]
    cusum = ReferenceCusum.from_reference(ref, **params)
    got, start = [], 0
    for end in [*sorted(set(cuts)), len(stream)]:
        got += [(start + i, m) for _, i, m in cusum.update_many(stream[start:end])]
        start = end
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([m for _, m in got], [m for _, m in expected], atol=1e-9)


def test_abrupt_feature_shift_fires_within_two_hundred_rows() -> None:
    monitor, rng = _monitor()
    firings = []
    for batch in range(60):
        X = _features(rng, 500)
        if batch >= 40:  # from row 20000 on, amounts are one standard deviation higher
            X[:, 1] += 60
        firings += monitor.update(scores=rng.beta(1, 20, 500), features=X)
    cusum = [f for f in firings if f.detector == "cusum"]
    assert [(f.kind, f.feature) for f in cusum] == [("feature", "amount")]
    assert 20000 <= cusum[0].position < 20200
    assert cusum[0].statistic > 0.3  # an upward shift, in reference standard deviations


def test_a_persistent_shift_is_reported_once_and_a_further_shift_again() -> None:
    monitor, rng = _monitor(seed=1)
    positions = []
    for batch in range(120):
        scores = rng.beta(1, 20, 500)
        scores += 0.05 * (batch >= 20) + 0.05 * (batch >= 80)
        firings = monitor.update(scores=scores, features=_features(rng, 500))
        positions += [f.position for f in firings if f.detector == "cusum" and f.kind == "score"]
    assert len(positions) == 2
    assert 10000 <= positions[0] < 10300 and 40000 <= positions[1] < 41500


def test_error_rate_jump_fires_adwin_within_three_hundred_labels() -> None:
    monitor, rng = _monitor()
    errors = np.concatenate([rng.random(5000) < 0.05, rng.random(2000) < 0.3]).astype(float)
    firings = []
    for start in range(0, len(errors), 100):
        firings += monitor.update(errors=errors[start : start + 100])
    assert len(firings) >= 1 and {f.detector for f in firings} == {"adwin"}
    assert 5000 <= firings[0].position < 5300
    assert firings[0].statistic > firings[0].threshold  # error went up


def test_a_change_of_spread_alone_is_caught_by_the_ks_window() -> None:
    monitor, rng = _monitor(config=DriftConfig(ks_every=1024, ks_window=1024))
    firings = []
    for batch in range(20):
        X = _features(rng, 512)
        if batch >= 10:
            X[:, 0] *= 2.0  # same mean, twice the spread
        firings += monitor.update(scores=rng.beta(1, 20, 512), features=X)
    ks = [f for f in firings if f.detector == "ks"]
    assert [f.feature for f in ks] == ["normal"]
    assert 5120 <= ks[0].position < 5120 + 2048
    assert ks[0].statistic > ks[0].threshold


def test_stationary_streams_raise_at_most_one_false_alarm_in_300k_rows() -> None:
    """Observed with these seeds: 0 firings over 3 x 100,000 rows, 8 streams, 150k labels."""
    total = 0
    for seed in range(3):
        monitor, rng = _monitor(seed)
        for _ in range(100):
            errors = (rng.random(250) < 0.05).astype(float)
            total += len(
                monitor.update(
                    scores=rng.beta(1, 20, 1000), features=_features(rng, 1000), errors=errors
                )
            )
    assert total <= 1


def test_unmonitored_features_never_fire() -> None:
    monitor, rng = _monitor(monitored=["normal", "count"])
    firings = []
    for _ in range(20):
        X = _features(rng, 500)
        X[:, 1] *= 5  # amount drifts, but is not monitored
        firings += monitor.update(scores=rng.beta(1, 20, 500), features=X)
    assert firings == []


def test_window_ks_distance_is_close_to_the_exact_two_sample_statistic() -> None:
    rng = np.random.default_rng(3)
    reference, sample = rng.normal(size=5000), rng.normal(0.1, 1.2, size=2000)
    d, critical = WindowKS(reference, grid=256).test_sample(sample, alpha=0.01)
    points = np.concatenate([sample, reference])
    exact = np.max(
        np.abs(
            np.searchsorted(np.sort(sample), points, side="right") / len(sample)
            - np.searchsorted(np.sort(reference), points, side="right") / len(reference)
        )
    )
    assert exact - 2 / 256 <= d <= exact
    assert critical == pytest.approx(1.628 * math.sqrt(7000 / (2000 * 5000)), rel=1e-3)


def test_scores_and_features_must_come_together_and_match() -> None:
    monitor, rng = _monitor()
    with pytest.raises(ValueError, match="pass both"):
        monitor.update(features=_features(rng, 10))
    with pytest.raises(ValueError, match="expected"):
        monitor.update(scores=np.zeros(10), features=_features(rng, 9))
    with pytest.raises(ValueError, match="not in feature_names"):
        DriftMonitor(NAMES, _features(rng, 100), np.zeros(100), monitored=["colour"])
    assert monitor.update() == []


def test_detectors_follow_the_drift_detector_protocol() -> None:
    detectors = [
        make_error_detector(),
        make_page_hinkley(),
        make_kswin(),
        ReferenceCusum.from_reference(np.arange(100.0)),
    ]
    for detector in detectors:
        assert isinstance(detector, DriftDetector)
        detector.update(1.0)
        assert detector.drift_detected in (True, False)


def test_single_value_updates_follow_river_vocabulary() -> None:
    cusum = ReferenceCusum.from_reference(np.random.default_rng(0).normal(size=1000), block=1)
    fired_at = None
    for i in range(100):
        cusum.update(5.0)
        if cusum.drift_detected:
            fired_at = i
            break
    assert fired_at is not None and fired_at < 10


def test_absolute_errors_are_the_distance_to_the_label() -> None:
    assert absolute_errors(np.array([1, 0, 1]), np.array([0.9, 0.2, 0.0])).round(6).tolist() == [
        0.1,
        0.2,
        1.0,
    ]
