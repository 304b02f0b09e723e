"""The Fraud Detection Handbook's evaluation protocol, and daily metrics for live scores.

The protocol (handbook chapters 5 and 7, as ``data/handbook/README.md`` states it):
four blocks whose test weeks start 2018-08-08, 08-15, 08-22 and 08-29; each block is a
training week, a 7-day delay week and the test week. On test day ``d`` the transactions
of customers already known to be compromised are left out: a customer is known if one
of their frauds lies in the training week or in the delay week on a day no later than
``d - 8``. AUC ROC and average precision are computed per block over the test week,
card precision@100 per test day (a card detected on an earlier day of the block is left
out of later days) and averaged over the week; the result is the mean over the blocks.

Days are calendar days in UTC (naive timestamps are read as UTC), which is the
handbook's ``TX_TIME_DAYS`` up to a constant: its day 0 is 2018-04-01 00:00:00.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.metrics import CardPrecision, average_precision, card_precision_at_k, roc_auc

__all__ = [
    "HANDBOOK_TEST_STARTS",
    "PUBLISHED",
    "Block",
    "BlockResult",
    "HandbookReport",
    "PublishedRow",
    "daily_metrics",
    "event_days",
    "handbook_report",
    "protocol_test_set",
]

_EPOCH = date(1970, 1, 1)

#: First days of the handbook's four test weeks.
HANDBOOK_TEST_STARTS: tuple[date, ...] = (
    date(2018, 8, 8),
    date(2018, 8, 15),
    date(2018, 8, 22),
    date(2018, 8, 29),
)


@dataclass(frozen=True)
class PublishedRow:
    """One model's published result under the handbook protocol."""

    model: str
    auc: float
    ap: float
    cp100: float


#: The published results on the handbook data (``data/handbook/README.md``).
PUBLISHED: tuple[PublishedRow, ...] = (
    PublishedRow("Decision tree", 0.797, 0.579, 0.284),
    PublishedRow("Logistic regression", 0.868, 0.623, 0.297),
    PublishedRow("Random forest", 0.870, 0.678, 0.299),
    PublishedRow("XGBoost", 0.869, 0.687, 0.303),
    PublishedRow("Feed-forward neural network", 0.876, 0.675, 0.303),
    PublishedRow("LSTM over customer sequence", 0.876, 0.665, 0.297),
)


@dataclass(frozen=True)
class Block:
    """A training week, a delay week and a test week, as consecutive calendar days.

    Examples
    --------
    >>> b = Block(date(2018, 8, 8))
    >>> b.train_start, b.delay_start, b.test_end
    (datetime.date(2018, 7, 25), datetime.date(2018, 8, 1), datetime.date(2018, 8, 15))
    """

    test_start: date
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7

    @property
    def train_start(self) -> date:
        """First day of the training week."""
        return self.test_start - timedelta(days=self.delay_days + self.train_days)

    @property
    def delay_start(self) -> date:
        """First day of the delay week (the day after the training week)."""
        return self.test_start - timedelta(days=self.delay_days)

    @property
    def test_end(self) -> date:
        """The day after the test week (exclusive end)."""
        return self.test_start + timedelta(days=self.test_days)


@dataclass(frozen=True)
class BlockResult:
    """Metrics of one block's test week.

    Attributes
    ----------
    block
        The block.
    transactions
        Test transactions evaluated (after leaving out known compromised customers).
    frauds
        Frauds among them.
    left_out
        Test-week transactions left out because their customer was known compromised.
    auc, ap
        AUC ROC and average precision over the test week.
    card_precision
        Card precision@k per test day; ``cp`` is its mean.
    """

    block: Block
    transactions: int
    frauds: int
    left_out: int
    auc: float
    ap: float
    card_precision: CardPrecision

    @property
    def cp(self) -> float:
        """Card precision@k averaged over the test days."""
        return self.card_precision.mean


@dataclass(frozen=True)
class HandbookReport:
    """Per-block and mean metrics under the handbook protocol.

    Examples
    --------
    >>> labeled, scored = _toy_stream()
    >>> report = handbook_report(scored, labeled, test_starts=[date(2018, 8, 8)], k=2)
    >>> print(report.render(name="toy").splitlines()[-1])
    evaluate: auc=0.833 ap=0.833 cp100=0.250
    """

    blocks: tuple[BlockResult, ...]

    @property
    def auc(self) -> float:
        """AUC ROC, mean over the blocks."""
        return float(np.mean([b.auc for b in self.blocks]))

    @property
    def ap(self) -> float:
        """Average precision, mean over the blocks."""
        return float(np.mean([b.ap for b in self.blocks]))

    @property
    def cp100(self) -> float:
        """Card precision@k (k=100 by default), mean over the blocks."""
        return float(np.mean([b.cp for b in self.blocks]))

    def beats(self, rows: Sequence[PublishedRow] = PUBLISHED) -> dict[str, bool]:
        """Whether each mean metric is above the best published value of that metric."""
        return {
            "auc": self.auc > max(r.auc for r in rows),
            "ap": self.ap > max(r.ap for r in rows),
            "cp100": self.cp100 > max(r.cp100 for r in rows),
        }

    def summary_line(self) -> str:
        """The one-line result: ``evaluate: auc=<x> ap=<x> cp100=<x>``."""
        return f"evaluate: auc={self.auc:.3f} ap={self.ap:.3f} cp100={self.cp100:.3f}"

    def render(
        self, name: str = "streamscore", published: Sequence[PublishedRow] = PUBLISHED
    ) -> str:
        """Return our row beside the published table, the blocks, then the summary line."""
        k = self.blocks[0].card_precision.k if self.blocks else 100
        lines = [
            f"| model | AUC ROC | Average precision | Card precision@{k} |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r.model} | {r.auc:.3f} | {r.ap:.3f} | {r.cp100:.3f} |" for r in published]
        lines.append(f"| **{name}** | {self.auc:.3f} | {self.ap:.3f} | {self.cp100:.3f} |")
        lines += [
            "",
            f"| test week | transactions | frauds | left out | AUC ROC | AP | CP@{k} |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {b.block.test_start.isoformat()} | {b.transactions} | {b.frauds} | "
            f"{b.left_out} | {b.auc:.3f} | {b.ap:.3f} | {b.cp:.3f} |"
            for b in self.blocks
        ]
        lines += ["", self.summary_line()]
        return "\n".join(lines)


def event_days(event_time: pd.Series | npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Return the UTC calendar day of each timestamp, as days since 1970-01-01.

    Timezone-aware times are converted to UTC; naive ones are read as UTC.

    Examples
    --------
    >>> event_days(pd.Series(pd.to_datetime(["2018-04-01 23:59:59", "2018-04-02 00:00:00"])))
    array([17622, 17623])
    """
    times = pd.to_datetime(pd.Series(event_time), utc=True)
    seconds = times.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    days: npt.NDArray[np.int64] = np.floor_divide(seconds, 86_400)
    return days


def _day_number(d: date) -> int:
    return (d - _EPOCH).days


def _prepare(labeled: pd.DataFrame) -> pd.DataFrame:
    """Labeled transactions with their day number and a boolean fraud column."""
    missing = {"transaction_id", "event_time", "customer_id", "is_fraud"} - set(labeled.columns)
    if missing:
        raise ValueError(f"labeled lacks columns {sorted(missing)}")
    return pd.DataFrame(
        {
            "transaction_id": labeled["transaction_id"].to_numpy(),
            "customer": labeled["customer_id"].to_numpy(),
            "day": event_days(labeled["event_time"]),
            "fraud": labeled["is_fraud"].to_numpy().astype(np.bool_),
        }
    )


def _attach_scores(frame: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """Join scores on transaction id (one score per transaction; extra scored rows ignored)."""
    missing = {"transaction_id", "score"} - set(scored.columns)
    if missing:
        raise ValueError(f"scored lacks columns {sorted(missing)}")
    scores = scored[["transaction_id", "score"]]
    if scores["transaction_id"].duplicated().any():
        raise ValueError("scored holds more than one score for some transaction ids")
    return frame.merge(scores, on="transaction_id", how="left", validate="one_to_one")


def _known_since(labeled: pd.DataFrame, from_day: int) -> pd.Series:
    """Day of each customer's first fraud on or after ``from_day``."""
    frauds = labeled.loc[labeled["fraud"] & (labeled["day"] >= from_day), ["customer", "day"]]
    return frauds.groupby("customer")["day"].min().rename("known_day")


def _fraud_in_window(frame: pd.DataFrame, first: int, last: int) -> npt.NDArray[np.bool_]:
    """Whether each row's customer has a fraud between ``first`` and ``last`` days before."""
    codes, _ = pd.factorize(frame["customer"])
    # One sorted int64 key per (customer, fraud day); a window is then two binary searches.
    key = codes.astype(np.int64) << 32
    day = frame["day"].to_numpy(dtype=np.int64)
    fraud_keys = np.unique((key + day)[frame["fraud"].to_numpy()])
    lo = np.searchsorted(fraud_keys, key + day - first, side="left")
    hi = np.searchsorted(fraud_keys, key + day - last, side="right")
    inside: npt.NDArray[np.bool_] = hi > lo
    return inside


def _kept_test_week(labeled: pd.DataFrame, block: Block) -> tuple[pd.DataFrame, int]:
    """The block's test-week rows the protocol keeps, and how many it leaves out."""
    train_start = _day_number(block.train_start)
    test_start = _day_number(block.test_start)
    test_end = _day_number(block.test_end)
    test = labeled[(labeled["day"] >= test_start) & (labeled["day"] < test_end)]
    known_day = test["customer"].map(_known_since(labeled, train_start))
    # Known on test day d: a fraud in [train_start, d - delay_days - 1]; the handbook adds
    # delay day d - 8 to the known set before scoring day d.
    known = (known_day.notna() & (known_day <= test["day"] - block.delay_days - 1)).to_numpy()
    return test[~known], int(known.sum())


def protocol_test_set(
    labeled: pd.DataFrame,
    *,
    test_starts: Sequence[date] = HANDBOOK_TEST_STARTS,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
) -> pd.DataFrame:
    """Return the test transactions the protocol evaluates, block by block.

    Parameters
    ----------
    labeled
        ``transaction_id``, ``event_time``, ``customer_id``, ``is_fraud``.
    test_starts, train_days, delay_days, test_days
        As in :func:`handbook_report`.

    Returns
    -------
    pandas.DataFrame
        ``test_week`` (first day of the block's test week), ``transaction_id``,
        ``customer_id``, ``day`` (a ``datetime.date``) and ``is_fraud``; known
        compromised customers' transactions are left out.

    Examples
    --------
    >>> labeled, _ = _toy_stream()
    >>> protocol_test_set(labeled, test_starts=[date(2018, 8, 8)])["transaction_id"].tolist()
    [3, 4, 6, 7, 9]
    """
    frame = _prepare(labeled)
    parts = []
    for start in test_starts:
        kept, _ = _kept_test_week(frame, Block(start, train_days, delay_days, test_days))
        parts.append(
            pd.DataFrame(
                {
                    "test_week": start,
                    "transaction_id": kept["transaction_id"].to_numpy(),
                    "customer_id": kept["customer"].to_numpy(),
                    "day": [_EPOCH + timedelta(days=int(d)) for d in kept["day"]],
                    "is_fraud": kept["fraud"].to_numpy().astype(np.int8),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _evaluate_block(
    labeled: pd.DataFrame, scored: pd.DataFrame, block: Block, k: int
) -> BlockResult:
    test, left_out = _kept_test_week(labeled, block)
    kept = _attach_scores(test, scored)
    unscored = int(kept["score"].isna().sum())
    if unscored:
        raise ValueError(
            f"{unscored} test transactions of the week of {block.test_start} have no score "
            f"(scored.transaction_id is {scored['transaction_id'].dtype}, "
            f"labeled.transaction_id is {test['transaction_id'].dtype})"
        )
    y = kept["fraud"].to_numpy()
    s = kept["score"].to_numpy(dtype=np.float64)
    cp = card_precision_at_k(kept["day"], kept["customer"], s, y, k=k, carry_days=None)
    return BlockResult(
        block=block,
        transactions=len(kept),
        frauds=int(y.sum()),
        left_out=left_out,
        auc=roc_auc(y, s),
        ap=average_precision(y, s),
        card_precision=cp,
    )


def handbook_report(
    scored: pd.DataFrame,
    labeled: pd.DataFrame,
    *,
    test_starts: Sequence[date] = HANDBOOK_TEST_STARTS,
    k: int = 100,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
) -> HandbookReport:
    """Evaluate scores under the handbook protocol.

    Parameters
    ----------
    scored
        One row per scored transaction: ``transaction_id`` and ``score`` are read (other
        columns, such as ``event_time`` and ``customer_id``, are ignored; ``labeled``
        is the reference for those). Rows outside the test weeks are ignored.
    labeled
        ``transaction_id``, ``event_time``, ``customer_id``, ``is_fraud`` of every
        transaction of the training, delay and test weeks (more is fine).
    test_starts
        First day of each block's test week.
    k
        Cards checked per day for card precision@k.
    train_days, delay_days, test_days
        Block layout (the handbook's 7, 7, 7).

    Returns
    -------
    HandbookReport
        Per-block results and their means.

    Raises
    ------
    ValueError
        A column is missing, a transaction has two scores, or a test transaction that
        the protocol keeps has no score.
    """
    frame = _prepare(labeled)
    blocks = [Block(d, train_days, delay_days, test_days) for d in test_starts]
    return HandbookReport(tuple(_evaluate_block(frame, scored, b, k) for b in blocks))


def daily_metrics(
    scored: pd.DataFrame,
    labeled: pd.DataFrame,
    *,
    k: int = 100,
    delay_days: int = 7,
    known_days: int = 7,
    carry_days: int = 6,
) -> pd.DataFrame:
    """Return AUC ROC, average precision and card precision@k per event day.

    The rolling form of the handbook protocol, for live monitoring once labels have
    arrived: on day ``d`` the customers with a fraud on a day in
    ``[d - delay_days - known_days, d - delay_days - 1]`` are left out (with the defaults
    the window a block's first test day sees), and a card detected in the top ``k``
    stays out of the next ``carry_days`` days (6: a week, as within a block). Labeled
    transactions without a score are not evaluated; they are counted in ``unscored``.

    Parameters
    ----------
    scored
        ``transaction_id`` and ``score`` per scored transaction.
    labeled
        ``transaction_id``, ``event_time``, ``customer_id``, ``is_fraud``; should reach
        ``delay_days + known_days`` days before the first day of interest.
    k, delay_days, known_days, carry_days
        As above.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``day`` (a ``datetime.date``), with columns ``transactions``,
        ``frauds``, ``left_out``, ``unscored``, ``auc``, ``ap`` and ``cp_at_k``.
        AUC is NaN on a day with no fraud.

    Examples
    --------
    >>> labeled, scored = _toy_stream()
    >>> daily = daily_metrics(scored, labeled, k=2)
    >>> day = daily.loc[date(2018, 8, 9)]
    >>> int(day.transactions), int(day.left_out), float(day.auc), float(day.cp_at_k)
    (3, 1, 0.5, 0.0)
    """
    frame = _prepare(labeled)
    frame["known"] = _fraud_in_window(frame, first=delay_days + known_days, last=delay_days + 1)
    left_out = frame.groupby("day")["known"].sum()
    kept = _attach_scores(frame[~frame["known"]].drop(columns="known"), scored)
    unscored = kept["score"].isna().groupby(kept["day"]).sum()
    kept = kept[kept["score"].notna()]
    cp = card_precision_at_k(
        kept["day"], kept["customer"], kept["score"], kept["fraud"], k=k, carry_days=carry_days
    )
    rows = []
    for day, g in kept.groupby("day", sort=True):
        y = g["fraud"].to_numpy()
        s = g["score"].to_numpy(dtype=np.float64)
        rows.append(
            {
                "day": _EPOCH + timedelta(days=int(day)),
                "transactions": len(g),
                "frauds": int(y.sum()),
                "left_out": int(left_out.get(day, 0)),
                "unscored": int(unscored.get(day, 0)),
                "auc": roc_auc(y, s),
                "ap": average_precision(y, s),
                "cp_at_k": dict(zip(cp.days, cp.per_day, strict=True))[day],
            }
        )
    columns = ["day", "transactions", "frauds", "left_out", "unscored", "auc", "ap", "cp_at_k"]
    return pd.DataFrame(rows, columns=columns).set_index("day")


def _toy_stream() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tiny labeled stream and its scores around the first handbook test week."""
    labeled = pd.DataFrame(
        {
            "transaction_id": [1, 2, 3, 4, 5, 6, 7, 8, 9],
            "event_time": pd.to_datetime(
                [
                    "2018-07-26 10:00",  # training week: c is compromised
                    "2018-08-01 10:00",  # delay week, day d-8 of 2018-08-09
                    "2018-08-08 09:00",
                    "2018-08-08 10:00",
                    "2018-08-08 11:00",
                    "2018-08-09 09:00",
                    "2018-08-09 10:00",
                    "2018-08-09 11:00",
                    "2018-08-09 12:00",
                ]
            ),
            "customer_id": ["c", "d", "a", "b", "c", "a", "b", "d", "e"],
            "is_fraud": [1, 1, 1, 0, 1, 1, 0, 1, 0],
        }
    )
    scored = pd.DataFrame(
        {
            "transaction_id": [3, 4, 5, 6, 7, 8, 9],
            "score": [0.9, 0.2, 0.95, 0.3, 0.4, 0.99, 0.1],
        }
    )
    return labeled, scored
