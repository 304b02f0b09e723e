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
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.evaluation import HANDBOOK_TEST_STARTS, PUBLISHED, HandbookReport, handbook_report  # noqa: E402

DATA = Path("/work/shared/data/handbook")
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

FIRST_TEST_DAY = (HANDBOOK_TEST_STARTS[0] - EPOCH).days
LAST_TEST_DAY = (HANDBOOK_TEST_STARTS[-1] - EPOCH).days + 6
DELAY_DAYS = 7


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

    def test_mask(self) -> npt.NDArray[np.bool_]:
        """Transactions of the four test weeks."""
        return (self.day >= FIRST_TEST_DAY) & (self.day <= LAST_TEST_DAY)


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
        day=(seconds // 86400).to_numpy(np.int64),
        seconds=seconds.to_numpy(np.int64),
        customer=df["CUSTOMER_ID"].to_numpy(np.int64),
        terminal=df["TERMINAL_ID"].to_numpy(np.int64),
        tx_id=df["TRANSACTION_ID"].to_numpy(np.int64),
        scenario=df["TX_FRAUD_SCENARIO"].to_numpy(np.int8),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data.__dict__)
    return data


def day_of(d: date) -> int:
    return (d - EPOCH).days


_LABELED: pd.DataFrame | None = None


def evaluate(data: Data, scores: npt.NDArray[np.floating]) -> HandbookReport:
    """Protocol report of scores given for the test-week transactions (test_mask order)."""
    global _LABELED
    if _LABELED is None:
        _LABELED = data.labeled_frame()
    mask = data.test_mask()
    scored = pd.DataFrame({"transaction_id": data.tx_id[mask], "score": scores})
    return handbook_report(scored, _LABELED)


def record(
    data: Data,
    name: str,
    scores: npt.NDArray[np.floating],
    seconds: float,
    params: dict[str, Any],
) -> HandbookReport:
    """Evaluate, print, and store scores and the result row."""
    report = evaluate(data, scores)
    OUT.mkdir(parents=True, exist_ok=True)
    mask = data.test_mask()
    pd.DataFrame({"transaction_id": data.tx_id[mask], "score": scores}).to_parquet(
        OUT / f"{name}.parquet"
    )
    row = {
        "name": name,
        "auc": round(report.auc, 4),
        "ap": round(report.ap, 4),
        "cp100": round(report.cp100, 4),
        "blocks": [[round(b.auc, 4), round(b.ap, 4), round(b.cp, 4)] for b in report.blocks],
        "train_seconds": round(seconds, 1),
        "params": params,
    }
    with (OUT / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(report.render(name=name))
    print(f"{name}: {seconds:.1f} s of training", flush=True)
    return report


def transform(X: npt.NDArray[np.float32], kind: str) -> npt.NDArray[np.float32]:
    """Feature transform before standardization: ``raw`` or ``log`` (log1p of tails)."""
    if kind == "raw":
        return X
    out = X.copy()
    out[:, LOG_COLUMNS] = np.log1p(out[:, LOG_COLUMNS])
    return out


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
    """Score the test weeks with models retrained every ``cadence`` days.

    A model trained at the start of day ``D`` sees the transactions of days up to
    ``D - 8`` (all labeled: their time is before ``D - 7 days``) and, with ``window``,
    only the last ``window`` of those days. It scores days ``D .. D + cadence - 1``;
    the latest of them is at most ``D + cadence`` days old, its labels ``D - 8`` at
    least ``7 + 1`` days old, so the live constraint holds. ``genuine_fraction`` < 1
    sub-samples genuine training transactions (seeded), keeping every fraud.
    """
    rng = np.random.default_rng(seed)
    keep = (data.y == 1) | (rng.random(data.y.size) < genuine_fraction)
    mask = data.test_mask()
    test_idx = np.flatnonzero(mask)
    out = np.full(test_idx.size, np.nan)
    for start in range(FIRST_TEST_DAY, LAST_TEST_DAY + 1, cadence):
        last_train = start - DELAY_DAYS - 1
        first_train = -(10**9) if window is None else last_train - window + 1
        train = np.flatnonzero(keep & (data.day >= first_train) & (data.day <= last_train))
        target = (data.day[test_idx] >= start) & (data.day[test_idx] < start + cadence)
        out[target] = fit_predict(train, test_idx[target])
    assert not np.isnan(out).any()
    return out


# ----------------------------------------------------------------------- commands


def cmd_reproduce(args: argparse.Namespace) -> None:
    """The handbook's static models: trained per block on its training week only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    data = load_data()
    mask = data.test_mask()
    test_idx = np.flatnonzero(mask)
    models: dict[str, Callable[[], Any]] = {
        f"handbook-lr-C{c}": (lambda c=c: LogisticRegression(C=c, random_state=0, max_iter=1000))
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
        started = time.perf_counter()
        out = np.empty(test_idx.size)
        for test_start in HANDBOOK_TEST_STARTS:
            s = day_of(test_start)
            train = (data.day >= s - 14) & (data.day < s - 7)
            target = (data.day[test_idx] >= s) & (data.day[test_idx] < s + 7)
            scaler = StandardScaler().fit(data.X[train])
            model = make().fit(scaler.transform(data.X[train]), data.y[train])
            out[target] = model.predict_proba(scaler.transform(data.X[test_idx[target]]))[:, 1]
        record(data, name, out, time.perf_counter() - started, {"static": "training week"})


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

    started = time.perf_counter()
    scores = live_schedule(
        data,
        fit_predict,
        window=args.window,
        cadence=args.cadence,
        genuine_fraction=args.genuine_fraction,
        seed=args.seed,
    )
    name = args.name or (
        f"live-{args.model}-{args.transform}-w{args.window or 'all'}-c{args.cadence}"
        f"-g{args.genuine_fraction}"
    )
    record(data, name, scores, time.perf_counter() - started, vars_of(args))


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k != "func"}


def cmd_table(args: argparse.Namespace) -> None:
    """Print every stored result beside the published table (latest run per name)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in (OUT / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["name"]] = row
    print("| model | AUC ROC | AP | CP@100 | training s |")
    print("|---|---|---|---|---|")
    for p in PUBLISHED:
        print(f"| {p.model} (published) | {p.auc:.3f} | {p.ap:.3f} | {p.cp100:.3f} | |")
    for row in rows.values():
        if args.grep and not any(g in row["name"] for g in args.grep):
            continue
        print(
            f"| {row['name']} | {row['auc']:.3f} | {row['ap']:.3f} | {row['cp100']:.3f} "
            f"| {row['train_seconds']:.0f} |"
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
    p.add_argument("--transform", choices=["raw", "log"], default="raw")
    p.add_argument("--window", type=int, default=None, help="days of labels (default: all)")
    p.add_argument("--cadence", type=int, default=1, help="retrain every N days")
    p.add_argument("--genuine-fraction", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name")
    p.set_defaults(func=cmd_sk_live)

    p = sub.add_parser("table", help=cmd_table.__doc__)
    p.add_argument("--grep", nargs="*")
    p.set_defaults(func=cmd_table)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
