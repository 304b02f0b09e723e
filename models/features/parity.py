"""Compare computed features with a reference, and explain the differences.

:func:`compare_features` is pure: it takes two frames keyed by transaction id and
returns a :class:`ParityReport` with per-feature match rates, the share of
transactions whose features all match, ids present on one side only, and for the
first mismatches a hint at the likely cause (a tie or a window edge, label timing,
float tolerance...). Given the transactions, hints look at the data around a
mismatch to say which.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.features.names import DAY_S, DEFAULT_DELAY_S, FEATURE_NAMES

_WINDOW = re.compile(r"_(\d+)DAY_WINDOW$")
#: Differences up to this share of the value (beyond ``atol``) are called float noise.
_FLOAT_NOISE = 1e-6


@dataclass(frozen=True)
class FeatureParity:
    """How one feature compares over the transactions present on both sides."""

    name: str
    compared: int
    matched: int
    max_abs_diff: float

    @property
    def rate(self) -> float:
        """Share of compared transactions where the feature matches (1.0 if none)."""
        return self.matched / self.compared if self.compared else 1.0


@dataclass(frozen=True)
class Mismatch:
    """One feature of one transaction that differs from the reference."""

    transaction_id: object
    feature: str
    ours: float
    reference: float
    hint: str


@dataclass(frozen=True)
class ParityReport:
    """The outcome of :func:`compare_features`."""

    features: tuple[FeatureParity, ...]
    n_reference: int
    n_ours: int
    n_all_match: int
    missing_ids: tuple[object, ...]
    n_missing: int
    extra_ids: tuple[object, ...]
    n_extra: int
    not_compared: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]
    atol: float

    @property
    def fraction(self) -> float:
        """Share of reference transactions whose compared features all match."""
        return self.n_all_match / self.n_reference if self.n_reference else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able values (ids as they are), with the fraction."""
        out = asdict(self)
        out["fraction"] = self.fraction
        for f, feature in zip(out["features"], self.features, strict=True):
            f["rate"] = feature.rate
        return out

    def render(self) -> str:
        """Return a plain-text table per feature that ends with ``parity: <fraction>``."""
        width = max([len("feature"), *(len(f.name) for f in self.features)])
        lines = [
            f"{'feature':<{width}}  {'compared':>9}  {'matched':>9}  {'rate':>9}  max |diff|",
        ]
        for f in self.features:
            lines.append(
                f"{f.name:<{width}}  {f.compared:>9}  {f.matched:>9}  "
                f"{f.rate:>9.4%}  {f.max_abs_diff:.3g}"
            )
        lines.append(
            f"transactions: reference {self.n_reference}, ours {self.n_ours}, "
            f"missing {self.n_missing}, extra {self.n_extra}; tolerance {self.atol:g}"
        )
        if self.missing_ids:
            lines.append(f"missing ids (first): {', '.join(map(str, self.missing_ids))}")
        if self.extra_ids:
            lines.append(f"extra ids (first): {', '.join(map(str, self.extra_ids))}")
        if self.not_compared:
            lines.append(f"not compared (one side only): {', '.join(self.not_compared)}")
        lines.append(f"all features match: {self.n_all_match} of {self.n_reference}")
        if self.mismatches:
            lines.append("mismatches (first):")
            for m in self.mismatches:
                lines.append(
                    f"  {m.transaction_id}  {m.feature}  ours {m.ours:.6g}  "
                    f"reference {m.reference:.6g}  {m.hint}"
                )
        lines.append(f"parity: {self.fraction:.6f}")
        return "\n".join(lines)


def compare_features(
    ours: pd.DataFrame,
    reference: pd.DataFrame,
    atol: float = 1e-6,
    *,
    transactions: pd.DataFrame | None = None,
    delay_s: float = DEFAULT_DELAY_S,
    max_examples: int = 20,
) -> ParityReport:
    """Compare two feature frames keyed by transaction id.

    Parameters
    ----------
    ours, reference
        Feature columns, indexed by transaction id (or with a ``transaction_id``
        column). Features present on one side only are listed, not compared.
    atol
        Largest absolute difference that still matches; NaN matches only NaN.
    transactions
        Optional ``transaction_id, event_time, customer_id, terminal_id`` columns:
        sharper hints (which tie, which window edge).
    delay_s
        The terminal windows' label delay, for the hints.
    max_examples
        How many mismatching transactions to explain, and ids to list.

    Examples
    --------
    >>> ref = pd.DataFrame({"transaction_id": [1, 2, 3],
    ...                     "CUSTOMER_ID_NB_TX_1DAY_WINDOW": [1.0, 2.0, 1.0],
    ...                     "TERMINAL_ID_RISK_1DAY_WINDOW": [0.0, 0.5, 0.0]})
    >>> ours = ref.copy()
    >>> ours.loc[1, "CUSTOMER_ID_NB_TX_1DAY_WINDOW"] = 1.0
    >>> report = compare_features(ours, ref)
    >>> report.fraction
    0.6666666666666666
    >>> print(report.mismatches[0].hint)
    window membership: 1 fewer transaction in the window (an equal timestamp, or the edge at t-1d)
    >>> print(report.render().splitlines()[-1])
    parity: 0.666667
    """
    ours, reference = _keyed(ours), _keyed(reference)
    names = [c for c in _ordered(ours.columns) if c in reference.columns]
    not_compared = tuple(c for c in _ordered([*ours.columns, *reference.columns]) if c not in names)
    common = ours.index.intersection(reference.index, sort=False)
    missing = reference.index.difference(ours.index, sort=False)
    extra = ours.index.difference(reference.index, sort=False)
    # Column by column, through position indexers: no copy of either frame.
    at_ours, at_ref = ours.index.get_indexer(common), reference.index.get_indexer(common)
    match = np.empty((len(common), len(names)), dtype=bool)
    features: list[FeatureParity] = []
    for j, name in enumerate(names):
        x = ours[name].to_numpy(np.float64)[at_ours]
        y = reference[name].to_numpy(np.float64)[at_ref]
        both_nan = np.isnan(x) & np.isnan(y)
        diff = np.abs(x - y)
        diff[both_nan] = 0.0
        diff[np.isnan(diff)] = np.inf
        match[:, j] = diff <= atol
        features.append(
            FeatureParity(name, len(common), int(match[:, j].sum()), float(diff.max(initial=0.0)))
        )
    all_match = match.all(axis=1)
    explain = _Explainer(transactions, delay_s)
    mismatches: list[Mismatch] = []
    for i in np.flatnonzero(~all_match)[:max_examples]:
        tx_id = _scalar(common[i])
        row_ours = {n: float(ours[n].iat[at_ours[i]]) for n in names}
        row_ref = {n: float(reference[n].iat[at_ref[i]]) for n in names}
        for k in np.flatnonzero(~match[i]).tolist():
            name = names[k]
            hint = explain(tx_id, name, row_ours, row_ref, atol)
            mismatches.append(Mismatch(tx_id, name, row_ours[name], row_ref[name], hint))
    return ParityReport(
        features=tuple(features),
        n_reference=len(reference),
        n_ours=len(ours),
        n_all_match=int(all_match.sum()),
        missing_ids=tuple(missing[:max_examples].tolist()),
        n_missing=len(missing),
        extra_ids=tuple(extra[:max_examples].tolist()),
        n_extra=len(extra),
        not_compared=not_compared,
        mismatches=tuple(mismatches),
        atol=atol,
    )


def _scalar(value: object) -> object:
    """A numpy scalar as the Python value it holds (ids print as 12, not np.int64(12))."""
    return value.item() if isinstance(value, np.generic) else value


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("transaction_id", "TRANSACTION_ID"):
        if column in frame.columns:
            return frame.set_index(column)
    return frame


def _ordered(columns: object) -> list[str]:
    """Feature names first in matrix order, then the others as they come, once each."""
    seen = list(dict.fromkeys(str(c) for c in columns))  # type: ignore[attr-defined]
    return [n for n in FEATURE_NAMES if n in seen] + [c for c in seen if c not in FEATURE_NAMES]


class _Explainer:
    """Guess why one feature of one transaction differs."""

    def __init__(self, transactions: pd.DataFrame | None, delay_s: float) -> None:
        self._tx = None if transactions is None else _keyed(transactions)
        self._delay_s = delay_s
        self._seen: dict[tuple[object, str], tuple[pd.Timestamp, pd.Series] | None] = {}

    def __call__(
        self,
        tx_id: object,
        name: str,
        ours: dict[str, float],
        ref: dict[str, float],
        atol: float,
    ) -> str:
        mine, theirs = ours[name], ref[name]
        if np.isnan(mine) or np.isnan(theirs):
            return "missing value on one side (NaN)"
        gap = mine - theirs
        if abs(gap) <= max(atol, _FLOAT_NOISE * max(1.0, abs(theirs))):
            return "float tolerance: a rounding-level difference (summation order); raise atol?"
        window = _WINDOW.search(name)
        if name in ("TX_DURING_WEEKEND", "TX_DURING_NIGHT"):
            return "time flag: check the time zone (UTC) and the day/hour edges (night: hour <= 6)"
        if window is None:
            return "the value differs (input data or cleaning)"
        days = int(window.group(1))
        count_name = name.replace("AVG_AMOUNT", "NB_TX").replace("RISK", "NB_TX")
        if count_name != name:
            if count_name in ours and abs(ours[count_name] - ref[count_name]) > atol:
                return f"follows the count mismatch in {count_name}"
            if "RISK" in name:
                return (
                    "label timing: equal counts, but the frauds known at t (label time <= t) differ"
                )
            return "same count, different amount sum: float summation or a different amount"
        how = f"{abs(gap):.0f} {'more' if gap > 0 else 'fewer'} transaction{'s' * (abs(gap) > 1)}"
        if name.startswith("CUSTOMER_ID"):
            detail = self._customer_detail(tx_id, days)
            edge = f"an equal timestamp, or the edge at t-{days}d"
        else:
            detail = self._terminal_detail(tx_id, days)
            edge = f"the edges at t-delay and t-delay-{days}d"
        return f"window membership: {how} in the window ({detail or edge})"

    def _neighbours(self, tx_id: object, key: str) -> tuple[pd.Timestamp, pd.Series] | None:
        """The transaction's time and those of the others of its customer or terminal."""
        if (tx_id, key) not in self._seen:
            found = None
            if self._tx is not None and tx_id in self._tx.index:
                row = self._tx.loc[tx_id]
                others = self._tx[(self._tx[key] == row[key]) & (self._tx.index != tx_id)]
                found = row["event_time"], others["event_time"]
            self._seen[(tx_id, key)] = found
        return self._seen[(tx_id, key)]

    def _customer_detail(self, tx_id: object, days: int) -> str:
        found = self._neighbours(tx_id, "customer_id")
        if found is None:
            return ""
        t, times = found
        ties = int((times == t).sum())
        if ties:
            return (
                f"tie: {ties} other transaction(s) of the customer at the same time; "
                "arrival order decides"
            )
        if bool((times == t - pd.Timedelta(days=days)).any()):
            return f"boundary: a transaction at exactly t-{days}d, outside (t-w, t]"
        return "no tie or edge found: check the amounts and ids"

    def _terminal_detail(self, tx_id: object, days: int) -> str:
        found = self._neighbours(tx_id, "terminal_id")
        if found is None:
            return ""
        t, times = found
        end = t - pd.Timedelta(seconds=self._delay_s)
        if bool((times == end).any()):
            return "boundary: a transaction at exactly t-delay, inside (t-delay-w, t-delay]"
        if bool((times == end - pd.Timedelta(seconds=days * DAY_S)).any()):
            return f"boundary: a transaction at exactly t-delay-{days}d, outside the window"
        return "no edge found: check the delay and the terminal ids"
