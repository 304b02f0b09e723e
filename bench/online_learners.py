"""Throughput of the online side: learning, batch prediction, snapshots, drift, blend.

    python bench/online_learners.py

Synthetic stream of 15 features (exponential amounts, flags, counts, sparse risks).
Each number is the best of ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from models.blend import WeightedBlend, decide
from models.drift import DriftMonitor
from models.online import LogisticLearner, load_snapshot, make_learner, snapshot_learner
from models.reasons import top_reasons

NAMES = [f"f{i:02d}" for i in range(15)]
KEY = os.urandom(32)


def stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A labeled stream with 15 mixed-type features and ~2 % positives."""
    rng = np.random.default_rng(seed)
    cols = []
    for j in range(15):
        kind = j % 5
        if kind == 0:
            cols.append(rng.exponential(50, n))
        elif kind == 1:
            cols.append((rng.random(n) < 0.2).astype(float))
        elif kind == 2:
            cols.append(rng.poisson(3, n).astype(float))
        elif kind == 3:
            cols.append(np.where(rng.random(n) < 0.9, 0.0, rng.random(n)))
        else:
            cols.append(rng.normal(size=n))
    X = np.column_stack(cols)
    logit = X[:, 0] / 50 + 3 * X[:, 3] + X[:, 4] - 5
    return X, rng.random(n) < 1 / (1 + np.exp(-logit))


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--learn-rows", type=int, default=20000)
    args = parser.parse_args()
    X, y = stream(args.learn_rows)
    rows = [dict(zip(NAMES, r, strict=True)) for r in X.tolist()]
    labels = y.tolist()
    print(f"# {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}\n")

    print("| learner | learn_one/s | predict rows/s b=1 | b=64 | b=1024 | snapshot bytes |")
    print("|---|---|---|---|---|---|")
    learners = {}
    for kind, n in (
        ("logistic", args.learn_rows),
        ("hoeffding_adaptive_tree", args.learn_rows // 4),
        ("adaptive_random_forest", args.learn_rows // 10),
    ):

        def learn(kind: str = kind, n: int = n) -> None:
            learner = make_learner(kind, NAMES)
            for x, label in zip(rows[:n], labels[:n], strict=True):
                learner.learn_one(x, label)
            learners[kind] = learner

        rate = n / best_seconds(learn, args.repeats)
        learner = learners[kind]
        cells = []
        for b in (1, 64, 1024):
            batch = X[:b]
            calls = max(1, 2048 // b)

            def predict(learner: object = learner, batch: np.ndarray = batch, calls: int = calls):
                for _ in range(calls):
                    learner.predict_proba_many(batch)  # type: ignore[attr-defined]

            cells.append(b * calls / best_seconds(predict, args.repeats))
        size = len(snapshot_learner(learner, KEY))
        print(
            f"| {kind} | {rate:,.0f} | " + " | ".join(f"{c:,.0f}" for c in cells) + f" | {size:,} |"
        )

    logistic = learners["logistic"]
    assert isinstance(logistic, LogisticLearner)
    print("\n# logistic batch prediction paths, rows/s")
    for b in (64, 1024):
        frame = pd.DataFrame(X[:b], columns=NAMES)
        one = [dict(zip(NAMES, r, strict=True)) for r in X[:b].tolist()]
        fast = b / best_seconds(lambda b=b: logistic.predict_proba_many(X[:b]), args.repeats)
        pandas_rate = b / best_seconds(
            lambda f=frame: logistic._model.predict_proba_many(f), args.repeats
        )
        loop = b / best_seconds(
            lambda o=one: [logistic.predict_proba_one(x) for x in o], args.repeats
        )
        print(
            f"b={b}: numpy fast path {fast:,.0f}, River predict_proba_many (pandas) "
            f"{pandas_rate:,.0f}, predict_proba_one loop {loop:,.0f}"
        )

    blob = snapshot_learner(logistic, KEY, offsets={"labels/0": 123})
    sign = best_seconds(lambda: snapshot_learner(logistic, KEY), args.repeats)
    load = best_seconds(lambda: load_snapshot(blob, KEY), args.repeats)
    print(f"\n# logistic snapshot: {len(blob)} bytes, sign {sign * 1e3:.2f} ms, ", end="")
    print(f"verify + load {load * 1e3:.2f} ms")

    Xb = X[:1024]
    reasons = best_seconds(lambda: top_reasons(logistic.contributions_many(Xb), k=3), args.repeats)
    print(f"# linear reason codes (k=3), batch 1024: {reasons / 1024 * 1e6:.3f} us/row")
    deep, online = np.random.default_rng(1).random((2, 1024))
    rule = WeightedBlend(0.8)
    blend = best_seconds(lambda: decide(rule.blend(deep, online)), args.repeats)
    print(f"# weighted blend + decide, batch 1024: {blend / 1024 * 1e6:.3f} us/row")

    ref, _ = stream(20000, seed=2)
    monitor = DriftMonitor(NAMES, ref, np.random.default_rng(3).beta(1, 20, 20000))
    batches = [stream(1024, seed=10 + i)[0] for i in range(40)]
    scores = np.random.default_rng(4).beta(1, 20, 1024)

    def drift_rows() -> None:
        for batch in batches:
            monitor.update(scores=scores, features=batch)

    per_row = best_seconds(drift_rows, args.repeats) / (40 * 1024)
    errors = (np.random.default_rng(5).random(20000) < 0.05).astype(float)
    per_label = best_seconds(lambda: monitor.update(errors=errors), args.repeats) / len(errors)
    print(
        f"# drift monitor (score + 15 features, CUSUM + KS), batch 1024: {per_row * 1e6:.2f} us/row"
    )
    print(f"# ADWIN on the error stream: {per_label * 1e6:.2f} us/label")


if __name__ == "__main__":
    main()
