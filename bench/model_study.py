"""Which models beat the handbook's published table when scoring live?

Offline study on the handbook data with the reference features (which the stream
reproduces exactly), scored under the live constraint: a transaction at time ``t`` is
scored only by models trained on labels of transactions at or before ``t - 7 days``.
Every run writes its scores of the four test weeks (2018-08-08 .. 09-04) to
``reports/model_study/<name>.parquet`` and its protocol row to ``results.jsonl``, so
blends can reuse the scores and ``table`` can print everything.

Usage (from the repository root; every run stays under ~10 minutes on one core)::

    nice -n 10 .venv/bin/python bench/model_study.py reproduce
    nice -n 10 .venv/bin/python bench/model_study.py sk-live --model lr --window 28
    nice -n 10 .venv/bin/python bench/model_study.py mlp --window 56 --cadence 1
    nice -n 10 .venv/bin/python bench/model_study.py river --learner lr
    nice -n 10 .venv/bin/python bench/model_study.py blend --parts mlp-... river-lr --rule rank
    .venv/bin/python bench/model_study.py table

scikit-learn is used here (baselines); the system's runtime never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.evaluation import HANDBOOK_TEST_STARTS, PUBLISHED, HandbookReport, handbook_report  # noqa: E402

#: The handbook data (transactions.parquet, reference_features.parquet).
DATA = Path(os.environ.get("STREAMSCORE_HANDBOOK_DIR", ROOT / "data" / "handbook"))
OUT = ROOT / "reports" / "model_study"
EPOCH = date(1970, 1, 1)

FEATURES = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "TERMINAL_ID_RISK_1DAY_WINDOW",
    "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "TERMINAL_ID_RISK_7DAY_WINDOW",
    "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "TERMINAL_ID_RISK_30DAY_WINDOW",
]
#: Columns that are amounts or counts (heavy right tails): log1p in the "log" transform.
LOG_COLUMNS = [i for i, f in enumerate(FEATURES) if "AMOUNT" in f or "NB_TX" in f]

#: The handbook's validation weeks (its model selection folds), before the test weeks.
VALID_STARTS = (date(2018, 7, 4), date(2018, 7, 11), date(2018, 7, 18), date(2018, 7, 25))
SCORE_FROM_DAY = (VALID_STARTS[0] - EPOCH).days
FIRST_TEST_DAY = (HANDBOOK_TEST_STARTS[0] - EPOCH).days
LAST_TEST_DAY = (HANDBOOK_TEST_STARTS[-1] - EPOCH).days + 6
DELAY_DAYS = 7
DAY_SECONDS = 86_400


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    """The whole stream, time-ordered: features, labels, ids, days (since 1970)."""

    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.int8]
    day: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.int64]
    customer: npt.NDArray[np.int64]
    terminal: npt.NDArray[np.int64]
    tx_id: npt.NDArray[np.int64]
    scenario: npt.NDArray[np.int8]

    def labeled_frame(self) -> pd.DataFrame:
        """The ``labeled`` input of ``handbook_report``."""
        return pd.DataFrame(
            {
                "transaction_id": self.tx_id,
                "event_time": pd.to_datetime(self.seconds, unit="s"),
                "customer_id": self.customer,
                "is_fraud": self.y,
            }
        )

    def scored_mask(self) -> npt.NDArray[np.bool_]:
        """Transactions every run scores: 2018-07-04 .. 09-04 (validation to test)."""
        return (self.day >= SCORE_FROM_DAY) & (self.day <= LAST_TEST_DAY)


def load_data() -> Data:
    """Join transactions with the reference features (cached as one .npz)."""
    cache = OUT / "data.npz"
    if cache.exists():
        z = np.load(cache)
        return Data(**{k: z[k] for k in z.files})
    tx = pd.read_parquet(DATA / "transactions.parquet")
    feats = pd.read_parquet(DATA / "reference_features.parquet")
    df = tx.merge(feats, on="TRANSACTION_ID", validate="one_to_one").sort_values("TRANSACTION_ID")
    seconds = (df["TX_DATETIME"] - pd.Timestamp("1970-01-01")).dt.total_seconds().astype(np.int64)
    data = Data(
        X=df[FEATURES].to_numpy(np.float32),
        y=df["TX_FRAUD"].to_numpy(np.int8),
        day=(seconds // DAY_SECONDS).to_numpy(np.int64),
        seconds=seconds.to_numpy(np.int64),
        customer=df["CUSTOMER_ID"].to_numpy(np.int64),
        terminal=df["TERMINAL_ID"].to_numpy(np.int64),
        tx_id=df["TRANSACTION_ID"].to_numpy(np.int64),
        scenario=df["TX_FRAUD_SCENARIO"].to_numpy(np.int8),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data.__dict__)
    return data


EXTRA_FEATURES = [
    "CUSTOMER_ID_AMOUNT_ZSCORE_30DAY_WINDOW",
    "CUSTOMER_ID_NB_HIGH_RATIO_1DAY_BEFORE",
    "CUSTOMER_ID_NB_HIGH_RATIO_7DAY_BEFORE",
    "CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX",
]


def extra_features(data: Data, ratio: float = 2.5) -> npt.NDArray[np.float32]:
    """Features the customer state could add (amounts only, no labels; cached).

    - amount z-score against the customer's 30-day window (t - 30 d, t] (needs a sum of
      squares beside the window's count and sum);
    - how many of the customer's earlier transactions in the last 1 and 7 days had an
      amount above ``ratio`` times their own 30-day mean (a flag kept per event);
    - log1p of the seconds since the customer's previous transaction (capped at 30 days).
    """
    cache = OUT / "extra.npz"
    if cache.exists():
        return np.load(cache)["E"]
    order = np.lexsort((data.seconds, data.customer))
    cust = data.customer[order]
    t = data.seconds[order]
    amount = data.X[order, 0].astype(np.float64)
    key = cust.astype(np.int64) * 10**10 + t  # sortable (customer, time)

    def window_start(seconds: int) -> npt.NDArray[np.int64]:
        return np.searchsorted(key, key - seconds, side="right")

    def window_sum(v: npt.NDArray[np.float64], lo: npt.NDArray[np.int64], hi: Any) -> Any:
        c = np.r_[0.0, np.cumsum(v)]
        return c[hi] - c[lo]

    idx = np.arange(t.size)
    lo30 = window_start(30 * DAY_SECONDS)
    n30 = idx + 1 - lo30
    s1 = window_sum(amount, lo30, idx + 1)
    s2 = window_sum(amount**2, lo30, idx + 1)
    mean30 = s1 / n30
    std30 = np.sqrt(np.maximum(s2 / n30 - mean30**2, 0.0))
    z = np.where(std30 > 1e-9, (amount - mean30) / np.maximum(std30, 1e-9), 0.0)
    high = (amount > ratio * mean30).astype(np.float64)
    # Earlier transactions only: the window [lo, idx) excludes the current one.
    high1 = window_sum(high, window_start(DAY_SECONDS), idx)
    high7 = window_sum(high, window_start(7 * DAY_SECONDS), idx)
    prev_same = np.r_[False, cust[1:] == cust[:-1]]
    gap = np.where(prev_same, t - np.r_[t[0], t[:-1]], 30 * DAY_SECONDS)
    gap = np.log1p(np.minimum(gap, 30 * DAY_SECONDS))
    E = np.empty((t.size, 4), dtype=np.float32)
    E[order] = np.column_stack([z, high1, high7, gap]).astype(np.float32)
    np.savez(cache, E=E)
    return E


def day_of(d: date) -> int:
    return (d - EPOCH).days


_LABELED: list[pd.DataFrame] = []


def evaluate(
    data: Data, scores: npt.NDArray[np.floating], starts: Sequence[date]
) -> HandbookReport:
    """Protocol report of scores given for the scored period (``scored_mask`` order)."""
    if not _LABELED:
        _LABELED.append(data.labeled_frame())
    scored = pd.DataFrame({"transaction_id": data.tx_id[data.scored_mask()], "score": scores})
    return handbook_report(scored, _LABELED[0], test_starts=starts)


def _row(report: HandbookReport) -> dict[str, Any]:
    return {
        "auc": round(report.auc, 4),
        "ap": round(report.ap, 4),
        "cp100": round(report.cp100, 4),
        "blocks": [[round(b.auc, 4), round(b.ap, 4), round(b.cp, 4)] for b in report.blocks],
    }


def record(
    data: Data,
    name: str,
    scores: npt.NDArray[np.floating],
    seconds: float,
    params: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> HandbookReport:
    """Evaluate on the validation and the test weeks, print, store scores and results."""
    valid = evaluate(data, scores, VALID_STARTS)
    test = evaluate(data, scores, HANDBOOK_TEST_STARTS)
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"transaction_id": data.tx_id[data.scored_mask()], "score": scores}).to_parquet(
        OUT / f"{name}.parquet"
    )
    row = {
        "name": name,
        "test": _row(test),
        "valid": _row(valid),
        "train_seconds": round(seconds, 1),
        "extra": extra or {},
        "params": params,
    }
    with (OUT / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(test.render(name=name))
    print(f"validation weeks: {valid.summary_line()}")
    print(f"{name}: {seconds:.1f} s {json.dumps(extra or {})}", flush=True)
    return test


def transform(X: npt.NDArray[np.float32], kind: str) -> npt.NDArray[np.float32]:
    """Feature transform before standardization.

    ``raw``; ``log`` (log1p of amounts and counts); ``both`` (raw and log side by side:
    30 inputs computed from the same 15 features).
    """
    if kind == "raw":
        return X
    out = X.copy()
    out[:, LOG_COLUMNS] = np.log1p(out[:, LOG_COLUMNS])
    if kind == "log":
        return out
    if kind == "both":
        return np.hstack([X, out[:, LOG_COLUMNS]])
    raise ValueError(kind)


# ------------------------------------------------------ live schedule of retraining


def live_schedule(
    data: Data,
    fit_predict: Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.floating]],
    *,
    window: int | None,
    cadence: int,
    genuine_fraction: float = 1.0,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Score the scored period with models retrained every ``cadence`` days.

    A model trained at the start of day ``D`` sees the transactions of days up to
    ``D - 8`` (all labeled: their time is before ``D - 7 days``) and, with ``window``,
    only the last ``window`` of those days; it scores days ``D .. D + cadence - 1``, so
    the live constraint holds. ``window=7, cadence=7`` is the handbook's static model of
    each block. ``genuine_fraction`` < 1 sub-samples genuine training transactions
    (seeded), keeping every fraud.
    """
    rng = np.random.default_rng(seed)
    keep = (data.y == 1) | (rng.random(data.y.size) < genuine_fraction)
    score_idx = np.flatnonzero(data.scored_mask())
    out = np.full(score_idx.size, np.nan)
    for start in range(SCORE_FROM_DAY, LAST_TEST_DAY + 1, cadence):
        last_train = start - DELAY_DAYS - 1
        first_train = -(10**9) if window is None else last_train - window + 1
        train = np.flatnonzero(keep & (data.day >= first_train) & (data.day <= last_train))
        target = (data.day[score_idx] >= start) & (data.day[score_idx] < start + cadence)
        out[target] = fit_predict(train, score_idx[target])
    assert not np.isnan(out).any()
    return out


# ------------------------------------------------- online learning, delayed labels


def online_run(
    data: Data,
    X: npt.NDArray[np.floating],
    model: Any,
    *,
    learn_mask: npt.NDArray[np.bool_],
    snapshot_seconds: int,
    pos_weight: float = 1.0,
) -> tuple[npt.NDArray[np.float64], dict[str, float]]:
    """Run a River classifier over the stream: learn each label 7 days after its
    transaction, score the scored period from a snapshot refreshed every
    ``snapshot_seconds`` (the learner publishes snapshots; scorers use the latest).

    Returns the scores and the learning/scoring cost in microseconds per event.
    """
    names = [f"f{i}" for i in range(X.shape[1])]
    learn_idx = np.flatnonzero(learn_mask)
    arrival = data.seconds[learn_idx] + DELAY_DAYS * DAY_SECONDS
    score_idx = np.flatnonzero(data.scored_mask())
    slot = data.seconds[score_idx] // snapshot_seconds
    bounds = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1], True])
    out = np.empty(score_idx.size)
    learned = 0
    learn_s = score_s = 0.0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        now = int(slot[a]) * snapshot_seconds
        upto = int(np.searchsorted(arrival, now, side="right"))
        t0 = time.process_time()
        for i in learn_idx[learned:upto]:
            yi = bool(data.y[i])
            model.learn_one(
                dict(zip(names, X[i].tolist(), strict=True)), yi, w=pos_weight if yi else 1.0
            )
        learned = max(learned, upto)
        t1 = time.process_time()
        for j in range(a, b):
            x = dict(zip(names, X[score_idx[j]].tolist(), strict=True))
            out[j] = model.predict_proba_one(x).get(True, 0.0)
        score_s += time.process_time() - t1
        learn_s += t1 - t0
    cost = {
        "learned": float(learned),
        "learn_us_per_event": 1e6 * learn_s / max(learned, 1),
        "score_us_per_event": 1e6 * score_s / max(score_idx.size, 1),
    }
    return out, cost


# ----------------------------------------------------------------------- commands


def cmd_reproduce(args: argparse.Namespace) -> None:
    """The handbook's static models: per block, trained on its training week only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    data = load_data()
    models: dict[str, Callable[[], Any]] = {
        f"handbook-lr-C{c:g}": (lambda c=c: LogisticRegression(C=c, random_state=0, max_iter=1000))
        for c in (0.1, 1.0, 100.0)
    }
    for depth in args.depths:
        models[f"handbook-dt-depth{depth}"] = lambda d=depth: DecisionTreeClassifier(
            max_depth=d, random_state=0
        )
    if args.forest:
        from sklearn.ensemble import RandomForestClassifier

        models["handbook-rf"] = lambda: RandomForestClassifier(
            n_estimators=100, max_depth=20, random_state=0, n_jobs=1
        )
    for name, make in models.items():

        def fit_predict(train: npt.NDArray[np.int64], test: npt.NDArray[np.int64]) -> Any:
            scaler = StandardScaler().fit(data.X[train])
            model = make().fit(scaler.transform(data.X[train]), data.y[train])  # noqa: B023
            return model.predict_proba(scaler.transform(data.X[test]))[:, 1]

        started = time.process_time()
        # The training week of a block ends 8 days before its test week starts: this is
        # the live schedule with a 7-day window, retrained weekly.
        scores = live_schedule(data, fit_predict, window=7, cadence=7)
        record(data, name, scores, time.process_time() - started, {"static": "training week"})


def _sk_model(kind: str, seed: int) -> Any:
    if kind == "lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.1, max_leaf_nodes=31, random_state=seed
        )
    raise ValueError(kind)


def cmd_sk_live(args: argparse.Namespace) -> None:
    """scikit-learn baselines retrained on the live schedule (reference points)."""
    from sklearn.preprocessing import StandardScaler

    data = load_data()

    def fit_predict(train: npt.NDArray[np.int64], test: npt.NDArray[np.int64]) -> Any:
        Xtr = transform(data.X[train], args.transform)
        scaler = StandardScaler().fit(Xtr)
        model = _sk_model(args.model, args.seed).fit(scaler.transform(Xtr), data.y[train])
        return model.predict_proba(scaler.transform(transform(data.X[test], args.transform)))[:, 1]

    started = time.process_time()
    scores = live_schedule(
        data,
        fit_predict,
        window=args.window or None,
        cadence=args.cadence,
        genuine_fraction=args.genuine_fraction,
        seed=args.seed,
    )
    name = args.name or (
        f"live-{args.model}-{args.transform}-w{args.window or 'all'}-c{args.cadence}"
        f"-g{args.genuine_fraction:g}"
    )
    record(data, name, scores, time.process_time() - started, vars_of(args))


def _train_mlp(
    X: npt.NDArray[np.float32],
    y: npt.NDArray[np.int8],
    args: argparse.Namespace,
    seed: int,
    init: Any = None,
) -> Any:
    """Train (or fine-tune ``init``) a feed-forward net with Adam on BCE."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean = X.mean(axis=0)
    std = np.where(X.std(axis=0) > 1e-6, X.std(axis=0), 1.0)
    if init is None:
        layers: list[nn.Module] = []
        width = X.shape[1]
        for h in args.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(args.dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        net = nn.Sequential(*layers)
        epochs = args.epochs
    else:
        net, epochs = init[0], args.finetune_epochs
        mean, std = init[1], init[2]  # keep the scaling the weights were learned with
    Xt = torch.from_numpy(((X - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    pos_weight = torch.tensor(args.pos_weight)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    net.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(Xt)))
        for i in range(0, len(order), args.batch):
            idx = order[i : i + args.batch]
            opt.zero_grad()
            loss = loss_fn(net(Xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
    net.eval()
    return net, mean, std


def _predict_mlp(model: Any, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    import torch

    net, mean, std = model
    with torch.no_grad():
        z = net(torch.from_numpy(((X - mean) / std).astype(np.float32))).squeeze(1)
        return torch.sigmoid(z).double().numpy()


def cmd_mlp(args: argparse.Namespace) -> None:
    """Torch feed-forward net retrained on the live schedule (the deep model)."""
    import torch

    torch.set_num_threads(1)
    data = load_data()
    X_all = transform(data.X, args.transform)
    if args.extra:
        X_all = np.hstack([X_all, extra_features(data)])
    state: dict[int, Any] = {}

    def fit_predict(train: npt.NDArray[np.int64], test: npt.NDArray[np.int64]) -> Any:
        preds = []
        for member in range(args.ensemble):
            seed = args.seed + 1000 * member
            init = state.get(member) if args.finetune_epochs else None
            model = _train_mlp(X_all[train], data.y[train], args, seed, init)
            state[member] = model
            preds.append(_predict_mlp(model, X_all[test]))
        return np.mean(preds, axis=0)

    started = time.process_time()
    scores = live_schedule(
        data,
        fit_predict,
        window=args.window or None,
        cadence=args.cadence,
        genuine_fraction=args.genuine_fraction,
        seed=args.seed,
    )
    hidden = "x".join(map(str, args.hidden))
    name = args.name or (
        f"mlp-{args.transform}-h{hidden}-w{args.window or 'all'}-c{args.cadence}"
        f"-e{args.epochs}-ft{args.finetune_epochs}-b{args.batch}-lr{args.lr:g}"
        f"-d{args.dropout:g}-wd{args.weight_decay:g}-pw{args.pos_weight:g}"
        f"-g{args.genuine_fraction:g}-n{args.ensemble}{'-x' if args.extra else ''}-s{args.seed}"
    )
    record(data, name, scores, time.process_time() - started, vars_of(args))


def _river_model(args: argparse.Namespace) -> Any:
    from river import forest, linear_model, optim, preprocessing, tree

    if args.learner == "lr":
        return preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(args.lr), l2=args.l2
        )
    if args.learner == "hat":
        return tree.HoeffdingAdaptiveTreeClassifier(
            grace_period=args.grace_period, leaf_prediction=args.leaf_prediction, seed=args.seed
        )
    if args.learner == "arf":
        return forest.ARFClassifier(
            n_models=args.n_models,
            grace_period=args.grace_period,
            leaf_prediction=args.leaf_prediction,
            seed=args.seed,
        )
    raise ValueError(args.learner)


def cmd_river(args: argparse.Namespace) -> None:
    """River online learner fed by labels 7 days late, scoring from hourly snapshots."""
    data = load_data()
    X = transform(data.X, args.transform)
    rng = np.random.default_rng(args.seed)
    learn = data.day >= day_of(date.fromisoformat(args.learn_from))
    learn &= (data.y == 1) | (rng.random(data.y.size) < args.genuine_fraction)
    started = time.process_time()
    scores, cost = online_run(
        data,
        X,
        _river_model(args),
        learn_mask=learn,
        snapshot_seconds=args.snapshot,
        pos_weight=args.pos_weight,
    )
    name = args.name or (
        f"river-{args.learner}-{args.transform}-from{args.learn_from}"
        f"-g{args.genuine_fraction:g}-pw{args.pos_weight:g}-lr{args.lr:g}"
        + (f"-{args.leaf_prediction}-n{args.n_models}" if args.learner != "lr" else "")
    )
    record(data, name, scores, time.process_time() - started, vars_of(args), cost)


def _parts(names: Sequence[str]) -> npt.NDArray[np.float64]:
    frames = [pd.read_parquet(OUT / f"{n}.parquet") for n in names]
    for f in frames[1:]:
        if not np.array_equal(
            f["transaction_id"].to_numpy(), frames[0]["transaction_id"].to_numpy()
        ):
            raise ValueError("parts were scored over different transactions")
    return np.column_stack([f["score"].to_numpy(np.float64) for f in frames])


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def trailing_percentile(data: Data, scores: npt.NDArray[np.float64], days: int = 7) -> Any:
    """Each score's percentile among the same model's scores of the previous ``days``
    days (causal: what a live scorer can hold); the first day ranks within itself."""
    day = data.day[data.scored_mask()]
    out = np.empty_like(scores)
    for d in np.unique(day):
        here = day == d
        ref_mask = (day >= d - days) & (day < d)
        ref = np.sort(scores[ref_mask] if ref_mask.any() else scores[here])
        out[here] = np.searchsorted(ref, scores[here], side="right") / ref.size
    return out


def cmd_blend(args: argparse.Namespace) -> None:
    """Blend stored scores: weighted mean, logit mean, trailing-rank mean, or a stacker
    (River logistic regression on the parts' logits, learning from delayed labels)."""
    data = load_data()
    P = _parts(args.parts)
    started = time.process_time()
    cost: dict[str, float] = {}
    if args.rule == "stack":
        from river import linear_model, optim, preprocessing

        Z = _logit(P)
        full = np.zeros((data.y.size, Z.shape[1]))
        full[data.scored_mask()] = Z
        stacker = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(args.lr)
        )
        scores, cost = online_run(
            data, full, stacker, learn_mask=data.scored_mask(), snapshot_seconds=3600
        )
    else:
        if args.rule == "mean":
            F = P
        elif args.rule == "logit":
            F = _logit(P)
        elif args.rule == "rank":
            F = np.column_stack([trailing_percentile(data, P[:, i]) for i in range(P.shape[1])])
        else:
            raise ValueError(args.rule)

        def combine(w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            out = F @ (w / w.sum())
            return 1 / (1 + np.exp(-out)) if args.rule == "logit" else out

        w = np.asarray(args.weights or [1.0] * P.shape[1], dtype=np.float64)
        if args.tune:
            # Weight of the first part chosen on the validation weeks only.
            if P.shape[1] != 2:
                raise ValueError("--tune takes two parts")
            best = -1.0
            for w0 in np.linspace(0.0, 1.0, 11):
                v = evaluate(data, combine(np.array([w0, 1 - w0])), VALID_STARTS)
                print(f"w={w0:.1f}: validation {v.summary_line()}", flush=True)
                if v.auc + v.ap + v.cp100 > best:
                    best, w = v.auc + v.ap + v.cp100, np.array([w0, 1 - w0])
            args.weights = [round(float(x), 2) for x in w]
        scores = combine(w)
    weights = ":".join(f"{x:g}" for x in (args.weights or []))
    name = args.name or f"blend-{args.rule}{'-w' + weights if weights else ''}-" + "+".join(
        args.parts
    )
    record(data, name, scores, time.process_time() - started, vars_of(args), cost)


def _operating_points(
    kept: pd.DataFrame, precision_floor: float, cards_per_day: int
) -> dict[str, float]:
    """Thresholds on one period: the lowest with transaction precision >= the floor,
    the median daily score of the ``cards_per_day``-th card, and the best-F1 one."""
    order = np.argsort(-kept["score"].to_numpy(), kind="mergesort")
    s = kept["score"].to_numpy()[order]
    y = kept["is_fraud"].to_numpy()[order]
    tp = np.cumsum(y)
    precision = tp / np.arange(1, y.size + 1)
    recall = tp / max(int(y.sum()), 1)
    ok = np.flatnonzero(precision >= precision_floor)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    cards = kept.groupby(["day", "customer_id"])["score"].max().reset_index()
    nth = cards.groupby("day")["score"].apply(
        lambda g: np.sort(g.to_numpy())[::-1][min(cards_per_day, g.size) - 1]
    )
    return {
        "block": float(s[ok[-1]]) if ok.size else float("inf"),
        "review": float(nth.median()),
        "best_f1": float(s[int(np.argmax(f1))]),
    }


def _at_threshold(kept: pd.DataFrame, threshold: float) -> dict[str, float]:
    flagged = kept["score"] >= threshold
    frauds = int(kept["is_fraud"].sum())
    tp = int((flagged & (kept["is_fraud"] == 1)).sum())
    days = kept["day"].nunique()
    cards = kept[flagged].groupby("day")["customer_id"].nunique().sum()
    return {
        "precision": tp / max(int(flagged.sum()), 1),
        "recall": tp / max(frauds, 1),
        "alerts_per_day": float(flagged.sum()) / days,
        "cards_per_day": float(cards) / days,
    }


def cmd_thresholds(args: argparse.Namespace) -> None:
    """Decision thresholds chosen on the validation weeks, checked on the test weeks."""
    from models.evaluation import protocol_test_set

    data = load_data()
    scores = pd.read_parquet(OUT / f"{args.name}.parquet")
    labeled = data.labeled_frame()
    periods = {"validation": VALID_STARTS, "test": HANDBOOK_TEST_STARTS}
    kept = {
        k: protocol_test_set(labeled, test_starts=v).merge(scores, on="transaction_id")
        for k, v in periods.items()
    }
    points = _operating_points(kept["validation"], args.precision, args.cards)
    print(
        "| threshold (chosen on validation) | value | period | precision | recall "
        "| alerts/day | cards/day |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, threshold in points.items():
        for period, frame in kept.items():
            m = _at_threshold(frame, threshold)
            print(
                f"| {label} | {threshold:.4f} | {period} | {m['precision']:.3f} "
                f"| {m['recall']:.3f} | {m['alerts_per_day']:.1f} | {m['cards_per_day']:.1f} |"
            )


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k != "func"}


def cmd_table(args: argparse.Namespace) -> None:
    """Print stored results beside the published table (latest run per name)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in (OUT / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["name"]] = row
    print("| model | test AUC | test AP | test CP@100 | valid AUC | valid AP | valid CP@100 | s |")
    print("|---|---|---|---|---|---|---|---|")
    for p in PUBLISHED:
        print(f"| {p.model} (published) | {p.auc:.3f} | {p.ap:.3f} | {p.cp100:.3f} | | | | |")
    for row in rows.values():
        if args.grep and not any(g in row["name"] for g in args.grep):
            continue
        t, v = row["test"], row["valid"]
        print(
            f"| {row['name']} | {t['auc']:.3f} | {t['ap']:.3f} | {t['cp100']:.3f} "
            f"| {v['auc']:.3f} | {v['ap']:.3f} | {v['cp100']:.3f} | {row['train_seconds']:.0f} |"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True)

    p = sub.add_parser("reproduce", help=cmd_reproduce.__doc__)
    p.add_argument("--depths", type=int, nargs="*", default=[2, 4, 6, 8])
    p.add_argument("--forest", action="store_true")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("sk-live", help=cmd_sk_live.__doc__)
    p.add_argument("--model", choices=["lr", "hgb"], default="lr")
    p.add_argument("--transform", choices=["raw", "log", "both"], default="raw")
    p.add_argument("--window", type=int, default=28, help="days of labels (0: all)")
    p.add_argument("--cadence", type=int, default=1, help="retrain every N days")
    p.add_argument("--genuine-fraction", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name")
    p.set_defaults(func=cmd_sk_live)

    p = sub.add_parser("mlp", help=cmd_mlp.__doc__)
    p.add_argument("--transform", choices=["raw", "log", "both"], default="log")
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 32])
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--window", type=int, default=28, help="days of labels (0: all)")
    p.add_argument("--cadence", type=int, default=1, help="retrain every N days")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--finetune-epochs", type=int, default=0, help="warm start with N epochs")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--pos-weight", type=float, default=1.0)
    p.add_argument("--genuine-fraction", type=float, default=1.0)
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--extra", action="store_true", help="add the extra customer features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name")
    p.set_defaults(func=cmd_mlp)

    p = sub.add_parser("river", help=cmd_river.__doc__)
    p.add_argument("--learner", choices=["lr", "hat", "arf"], default="lr")
    p.add_argument("--transform", choices=["raw", "log", "both"], default="raw")
    p.add_argument("--learn-from", default="2018-04-01", help="first day whose labels are learned")
    p.add_argument("--genuine-fraction", type=float, default=1.0)
    p.add_argument("--pos-weight", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=0.01, help="SGD step (lr learner)")
    p.add_argument("--l2", type=float, default=0.0)
    p.add_argument("--grace-period", type=int, default=200)
    p.add_argument("--n-models", type=int, default=10)
    p.add_argument("--leaf-prediction", choices=["mc", "nb", "nba"], default="nba")
    p.add_argument("--snapshot", type=int, default=3600, help="seconds between snapshots")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name")
    p.set_defaults(func=cmd_river)

    p = sub.add_parser("blend", help=cmd_blend.__doc__)
    p.add_argument("--parts", nargs="+", required=True)
    p.add_argument("--rule", choices=["mean", "logit", "rank", "stack"], default="rank")
    p.add_argument("--weights", type=float, nargs="*")
    p.add_argument("--tune", action="store_true", help="pick 2-part weights on validation")
    p.add_argument("--lr", type=float, default=0.01, help="SGD step of the stacker")
    p.add_argument("--name")
    p.set_defaults(func=cmd_blend)

    p = sub.add_parser("thresholds", help=cmd_thresholds.__doc__)
    p.add_argument("--name", required=True, help="a stored run")
    p.add_argument("--precision", type=float, default=0.9, help="precision floor of 'block'")
    p.add_argument("--cards", type=int, default=100, help="cards reviewed per day")
    p.set_defaults(func=cmd_thresholds)

    p = sub.add_parser("table", help=cmd_table.__doc__)
    p.add_argument("--grep", nargs="*")
    p.set_defaults(func=cmd_table)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
