"""Live evaluation over the newest matured labels."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from models.scoreboard import card_precision_at_k
from streams.live_eval import LiveEvaluation, card_precision

T0 = datetime(2018, 6, 1, tzinfo=UTC)


def test_metrics_cover_the_newest_window_and_each_recorded_role() -> None:
    rng = np.random.default_rng(0)
    n, window = 3000, 1000
    y = rng.random(n) < 0.1
    blend = 0.5 * y + rng.random(n)
    online = rng.random(n)
    ev = LiveEvaluation(window=window, every=500, k=10)
    outputs = []
    for i in range(n):
        scores = {"blend": blend[i], "deep": None, "online": online[i] if i % 2 else math.nan}
        out = ev.add(f"c{i % 300}", T0 + timedelta(hours=i), bool(y[i]), scores)
        if out is not None:
            outputs.append(out)
    assert len(outputs) == 1 + (n - 100) // 500 and len(ev) == window
    last = ev.metrics()
    assert set(last) == {"blend", "online"}  # no deep score recorded, NaN online left out
    tail = slice(n - window, n)
    assert math.isclose(last["blend"][0], roc_auc_score(y[tail], blend[tail]), abs_tol=1e-9)
    assert math.isclose(
        last["blend"][1], average_precision_score(y[tail], blend[tail]), abs_tol=1e-9
    )
    odd = np.arange(n - window, n)[1::2]
    assert math.isclose(last["online"][0], roc_auc_score(y[odd], online[odd]), abs_tol=1e-9)
    assert 0.0 <= last["blend"][2] <= 1.0


def test_a_window_of_one_class_gives_nan() -> None:
    ev = LiveEvaluation(window=10, every=3, k=5)
    out = None
    for i in range(3):
        out = ev.add("c", T0, False, {"blend": 0.1 * i})
    assert out is not None and all(math.isnan(v) for v in out["blend"][:2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_card_precision_equals_the_scoreboard_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    y = rng.random(n) < 0.05
    score = np.round(rng.random(n), 2)  # ties on purpose
    cards = rng.integers(0, 800, n)
    days = rng.integers(0, 6, n).astype(float)
    for k in (1, 10, 100, 1000):
        ours = card_precision(y, score, cards, days, k)
        assert ours == pytest.approx(card_precision_at_k(y, score, cards, days, k=k), abs=1e-12)
