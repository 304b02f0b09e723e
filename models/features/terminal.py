"""One terminal's delayed windows: transaction counts and fraud risk.

For a transaction at event time ``t`` and a label delay ``d``, the window of ``w``
days holds the terminal's transactions with event time in ``(t - d - w, t - d]``.
The count is how many there are; the risk is the share of them with a fraud label
known at ``t`` (label time <= ``t``), 0.0 when the window is empty. A transaction
without a known label counts as genuine, so genuine labels change no feature; they
are remembered only to make :meth:`TerminalWindows.add_label` idempotent. Labels may
arrive before or after their transaction; a fraud label counts once both are here.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any

from models.features.customer import TxId
from models.features.names import DAY_S

_W1, _W7, _W30 = DAY_S, 7 * DAY_S, 30 * DAY_S
_STATE_VERSION = 1


class TerminalWindows:
    """Delayed sliding windows over one terminal's transactions and labels.

    Examples
    --------
    >>> tw = TerminalWindows()
    >>> day = 86_400
    >>> for i, t in enumerate([0.0, 0.5 * day, 3 * day]):
    ...     _ = tw.add_transaction(i, t)
    >>> tw.add_label(1, 0.5 * day, label_time_s=7.8 * day, is_fraud=True)
    True
    >>> tw.features(8 * day, delay_s=7 * day)  # (n, risk) over 1, 7 and 30 days
    (1.0, 1.0, 2.0, 0.5, 2.0, 0.5)
    >>> tw.features(7.6 * day, delay_s=7 * day)  # the label was not known yet
    (2.0, 0.0, 2.0, 0.0, 2.0, 0.0)
    """

    __slots__ = ("_times", "_ids", "_known", "_labels", "_fraud", "_horizon", "_query", "_bounds")

    def __init__(self) -> None:
        self._times: list[float] = []
        self._ids: list[TxId] = []
        self._known: set[TxId] = set()
        # Every label seen: transaction id -> transaction time (for expiry).
        self._labels: dict[TxId, float] = {}
        # Fraud labels as (transaction time, label time, transaction id), sorted.
        self._fraud: list[tuple[float, float, TxId]] = []
        self._horizon = float("-inf")
        # Window end of the last query and its (end, 1d, 7d, 30d) start indices:
        # lower bounds for any later end, as inserts only move them up. Expiry resets
        # them (+inf forces a search).
        self._query = float("inf")
        self._bounds = (0, 0, 0, 0)

    def __len__(self) -> int:
        return len(self._times)

    def __contains__(self, tx_id: object) -> bool:
        """Whether a transaction is in the windows (a re-add would be a no-op)."""
        return tx_id in self._known

    @property
    def horizon_s(self) -> float:
        """Event time at or before which arrivals are refused (-inf before any expiry)."""
        return self._horizon

    def __repr__(self) -> str:
        return (
            f"TerminalWindows(entries={len(self._times)}, labels={len(self._labels)}, "
            f"frauds={len(self._fraud)})"
        )

    def add_transaction(self, tx_id: TxId, time_s: float) -> bool:
        """Record a transaction; return False if it is known already or too old to matter."""
        if tx_id in self._known or time_s <= self._horizon:
            return False
        self._known.add(tx_id)
        times = self._times
        if not times or time_s >= times[-1]:
            times.append(time_s)
            self._ids.append(tx_id)
        else:
            i = bisect_right(times, time_s)
            times.insert(i, time_s)
            self._ids.insert(i, tx_id)
        return True

    def add_label(self, tx_id: TxId, tx_time_s: float, label_time_s: float, is_fraud: bool) -> bool:
        """Record a transaction's label; return False if it is known already or too old.

        The first label of a transaction wins: a second one, even with another
        verdict, is ignored.
        """
        if tx_id in self._labels or tx_time_s <= self._horizon:
            return False
        self._labels[tx_id] = tx_time_s
        if is_fraud:
            insort(self._fraud, (tx_time_s, label_time_s, tx_id), key=_by_time)
        return True

    def features(self, time_s: float, delay_s: float) -> tuple[float, ...]:
        """Return ``(n_1d, risk_1d, n_7d, risk_7d, n_30d, risk_30d)`` at ``time_s``.

        Parameters
        ----------
        time_s
            Event time of the transaction (epoch seconds).
        delay_s
            The label delay: windows end at ``time_s - delay_s``.
        """
        end = time_s - delay_s
        times = self._times
        if end >= self._query:
            # Windows only move forward: walk the bounds of the previous query.
            hi, lo1, lo7, lo30 = self._bounds
            n = len(times)
            while hi < n and times[hi] <= end:
                hi += 1
            edge = end - _W1
            while lo1 < hi and times[lo1] <= edge:
                lo1 += 1
            edge = end - _W7
            while lo7 < hi and times[lo7] <= edge:
                lo7 += 1
            edge = end - _W30
            while lo30 < hi and times[lo30] <= edge:
                lo30 += 1
        else:
            hi = bisect_right(times, end)
            lo1 = bisect_right(times, end - _W1, 0, hi)
            lo7 = bisect_right(times, end - _W7, 0, lo1)
            lo30 = bisect_right(times, end - _W30, 0, lo7)
        self._query = end
        self._bounds = (hi, lo1, lo7, lo30)
        n1, n7, n30 = hi - lo1, hi - lo7, hi - lo30
        f1 = f7 = f30 = 0
        if self._fraud and n30:
            fraud = self._fraud
            stop = bisect_right(fraud, end, key=_by_time)
            start = bisect_right(fraud, end - _W30, 0, stop, key=_by_time)
            known = self._known
            for k in range(start, stop):
                tx_time, label_time, tx_id = fraud[k]
                if label_time <= time_s and tx_id in known:
                    f30 += 1
                    if tx_time > end - _W7:
                        f7 += 1
                        if tx_time > end - _W1:
                            f1 += 1
        return (
            float(n1),
            f1 / n1 if n1 else 0.0,
            float(n7),
            f7 / n7 if n7 else 0.0,
            float(n30),
            f30 / n30 if n30 else 0.0,
        )

    def unlabeled(self, time_s: float, delay_s: float) -> int:
        """How many transactions in the 30-day window at ``time_s`` have no label yet.

        When it is 0, no label still to come can change the features at ``time_s``.
        """
        end = time_s - delay_s
        times, ids, labels = self._times, self._ids, self._labels
        hi = bisect_right(times, end)
        lo = bisect_right(times, end - _W30, 0, hi)
        return sum(1 for k in range(lo, hi) if ids[k] not in labels)

    def expire(self, watermark_s: float, delay_s: float) -> tuple[list[TxId], list[TxId]]:
        """Drop what no window of a transaction at or after ``watermark_s`` can see.

        Later transactions and labels at or before the new horizon are refused.

        Returns
        -------
        tuple
            The ids of the transaction entries and of the labels dropped.
        """
        cutoff = watermark_s - delay_s - _W30
        if cutoff <= self._horizon:
            return [], []
        self._horizon = cutoff
        self._query = float("inf")
        times = self._times
        k = bisect_right(times, cutoff) if times and times[0] <= cutoff else 0
        dropped = self._ids[:k]
        if k:
            self._known.difference_update(dropped)
            del times[:k], self._ids[:k]
        old_labels: list[TxId] = []
        if self._labels and min(self._labels.values()) <= cutoff:
            old_labels = [i for i, t in self._labels.items() if t <= cutoff]
            self._labels = {i: t for i, t in self._labels.items() if t > cutoff}
        if self._fraud and self._fraud[0][0] <= cutoff:
            del self._fraud[: bisect_right(self._fraud, cutoff, key=_by_time)]
        return dropped, old_labels

    def to_state(self) -> dict[str, Any]:
        """Return the windows as JSON-able lists (see :meth:`from_state`)."""
        return {
            "v": _STATE_VERSION,
            "time": list(self._times),
            "id": list(self._ids),
            "label": [[i, t] for i, t in self._labels.items()],
            "fraud": [list(entry) for entry in self._fraud],
            "horizon": None if self._horizon == float("-inf") else self._horizon,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TerminalWindows:
        """Rebuild windows saved by :meth:`to_state`.

        Raises
        ------
        ValueError
            If the state has another version or inconsistent lists.
        """
        if state.get("v") != _STATE_VERSION:
            raise ValueError(f"unknown terminal state version {state.get('v')!r}")
        if len(state["time"]) != len(state["id"]):
            raise ValueError("terminal state lists differ in length")
        tw = cls()
        tw._times = [float(t) for t in state["time"]]
        tw._ids = list(state["id"])
        tw._known = set(tw._ids)
        tw._labels = {i: float(t) for i, t in state["label"]}
        tw._fraud = sorted(((float(t), float(lt), i) for t, lt, i in state["fraud"]), key=_by_time)
        horizon = state["horizon"]
        tw._horizon = float("-inf") if horizon is None else float(horizon)
        return tw


def _by_time(entry: tuple[float, float, TxId]) -> float:
    return entry[0]
