"""One customer's spending windows: counts and mean amounts over 1, 7 and 30 days.

A transaction at event time ``t`` that arrived with sequence number ``s`` sees the
customer's transactions with event time in ``(t - w, t]`` that arrived no later than
itself (sequence <= ``s``), itself included. With events in event-time order this is
the handbook's sliding window; the sequence only decides between equal timestamps,
where the one that arrived first does not see the one that arrived after it. Because
the answer depends only on what had arrived, a replay after a crash recomputes the
features that were emitted the first time, even with the later events already in the
state.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Any

from models.features.names import CUSTOMER_HORIZON_S, DAY_S

TxId = str | int
"""Transaction ids: strings on the wire, integers in the handbook files."""

_W1, _W7, _W30 = DAY_S, 7 * DAY_S, 30 * DAY_S
_EMPTY = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
_STATE_VERSION = 1


class CustomerWindows:
    """Sliding windows over one customer's transactions, in event time.

    Entries are kept sorted by ``(time, seq)`` with running sums of the amounts; a
    query walks the window starts on from where the previous one left them (binary
    searches when it goes back in time), so in event-time order it costs a few
    comparisons. Entries that arrive behind a later one (out of event-time order)
    are also remembered apart, so that a replayed query can leave out what had not
    arrived yet; in a live stream that list is never read.

    ``seq`` must grow with arrival (a Kafka offset within the customer's partition,
    or a row number).

    Examples
    --------
    >>> cw = CustomerWindows()
    >>> day = 86_400
    >>> cw.add("a", 0.0, 10.0, seq=0)
    True
    >>> cw.add("b", 2 * day, 30.0, seq=1)
    True
    >>> cw.add("b", 2 * day, 30.0, seq=1)  # a replayed event changes nothing
    False
    >>> cw.features(2 * day, seq=1)  # (n, mean) over 1, 7 and 30 days
    (1.0, 30.0, 2.0, 20.0, 2.0, 20.0)
    >>> cw.features(day, seq=0)  # exactly one day after "a": it has left the 1-day window
    (0.0, 0.0, 1.0, 10.0, 1.0, 10.0)
    """

    __slots__ = (
        "_times",
        "_seqs",
        "_amounts",
        "_ids",
        "_cum",
        "_known",
        "_late",
        "_late_seq",
        "_horizon",
        "_query_time",
        "_starts",
    )

    def __init__(self) -> None:
        self._times: list[float] = []
        self._seqs: list[int] = []
        self._amounts: list[float] = []
        self._ids: list[TxId] = []
        # _cum[i] is the sum of _amounts[: i + 1]; window sums are differences.
        self._cum: list[float] = []
        self._known: set[TxId] = set()
        # (time, seq, amount) of entries inserted before a later one, by arrival.
        self._late: list[tuple[float, int, float]] = []
        # The highest sequence among them: queries at or after it skip the list.
        self._late_seq = -1
        # Entries at or before this time were expired; older arrivals are refused.
        self._horizon = float("-inf")
        # Window starts of the last query: lower bounds for any later query, as
        # inserts only move them up. Expiry resets them (+inf forces a search).
        self._query_time = float("inf")
        self._starts = (0, 0, 0)

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
        return f"CustomerWindows(entries={len(self._times)}, late={len(self._late)})"

    def add(self, tx_id: TxId, time_s: float, amount: float, seq: int) -> bool:
        """Record a transaction; return False if it is known already or too old to matter.

        Re-adding a transaction id (a replay after a crash) is a no-op, as is adding
        one at or before the expiry horizon (see :meth:`expire`).
        """
        if tx_id in self._known or time_s <= self._horizon:
            return False
        self._known.add(tx_id)
        times, seqs = self._times, self._seqs
        if not times or time_s > times[-1] or (time_s == times[-1] and seq > seqs[-1]):
            times.append(time_s)
            seqs.append(seq)
            self._amounts.append(amount)
            self._ids.append(tx_id)
            self._cum.append(self._cum[-1] + amount if self._cum else amount)
            return True
        i = bisect_right(times, time_s)
        while i > 0 and times[i - 1] == time_s and seqs[i - 1] > seq:
            i -= 1
        times.insert(i, time_s)
        seqs.insert(i, seq)
        self._amounts.insert(i, amount)
        self._ids.insert(i, tx_id)
        cum = self._cum
        cum.insert(i, (cum[i - 1] if i else 0.0) + amount)
        for j in range(i + 1, len(cum)):
            cum[j] += amount
        self._late.append((time_s, seq, amount))
        self._late_seq = max(self._late_seq, seq)
        return True

    def features(self, time_s: float, seq: int | None = None) -> tuple[float, ...]:
        """Return ``(n_1d, mean_1d, n_7d, mean_7d, n_30d, mean_30d)`` at ``time_s``.

        Parameters
        ----------
        time_s
            Event time of the transaction (epoch seconds).
        seq
            Its arrival sequence number: entries that arrived after it are left out.
            None counts every entry in the windows, whatever its arrival.

        Returns
        -------
        tuple
            Counts and mean amounts over ``(time_s - w, time_s]``; a mean is 0.0 where
            the window is empty.
        """
        times = self._times
        n = len(times)
        if n and (
            times[-1] < time_s or (times[-1] == time_s and (seq is None or self._seqs[-1] <= seq))
        ):
            hi = n
        else:
            hi = bisect_right(times, time_s)
            if seq is not None:
                seqs = self._seqs
                while hi and times[hi - 1] == time_s and seqs[hi - 1] > seq:
                    hi -= 1
            if not hi:
                return _EMPTY
        cum = self._cum
        top = cum[hi - 1]
        if time_s >= self._query_time:
            # Windows only move forward: walk the starts of the previous query.
            lo1, lo7, lo30 = self._starts
            edge = time_s - _W1
            while lo1 < hi and times[lo1] <= edge:
                lo1 += 1
            edge = time_s - _W7
            while lo7 < hi and times[lo7] <= edge:
                lo7 += 1
            edge = time_s - _W30
            while lo30 < hi and times[lo30] <= edge:
                lo30 += 1
        else:
            lo1 = bisect_right(times, time_s - _W1, 0, hi)
            lo7 = bisect_right(times, time_s - _W7, 0, lo1)
            lo30 = bisect_right(times, time_s - _W30, 0, lo7)
        self._query_time = time_s
        self._starts = (lo1, lo7, lo30)
        n1, n7, n30 = hi - lo1, hi - lo7, hi - lo30
        s1 = top - cum[lo1 - 1] if lo1 else top
        s7 = top - cum[lo7 - 1] if lo7 else top
        s30 = top - cum[lo30 - 1] if lo30 else top
        if seq is not None and seq < self._late_seq:
            for late_time, late_seq, amount in self._late:
                if late_seq > seq and time_s - _W30 < late_time < time_s:
                    n30 -= 1
                    s30 -= amount
                    if late_time > time_s - _W7:
                        n7 -= 1
                        s7 -= amount
                        if late_time > time_s - _W1:
                            n1 -= 1
                            s1 -= amount
        return (
            float(n1),
            s1 / n1 if n1 else 0.0,
            float(n7),
            s7 / n7 if n7 else 0.0,
            float(n30),
            s30 / n30 if n30 else 0.0,
        )

    def observe(self, tx_id: TxId, time_s: float, amount: float, seq: int) -> tuple[float, ...]:
        """Add a transaction and return its features (:meth:`add` then :meth:`features`)."""
        self.add(tx_id, time_s, amount, seq)
        return self.features(time_s, seq)

    def seq_of(self, tx_id: TxId) -> int | None:
        """The sequence number a transaction was added with, None if it is not held.

        Tells a redelivery (same sequence) from a duplicate (another one).
        """
        if tx_id not in self._known:
            return None
        return self._seqs[self._ids.index(tx_id)]

    def expire(self, watermark_s: float) -> list[TxId]:
        """Drop what no window of a transaction at or after ``watermark_s`` can see.

        Call it now and then with the oldest event time still expected (e.g. the
        partition's event-time watermark minus the allowed lateness). Later arrivals
        at or before the new horizon are refused by :meth:`add`.

        Returns
        -------
        list
            The ids of the entries dropped, oldest first.
        """
        cutoff = watermark_s - CUSTOMER_HORIZON_S
        if cutoff <= self._horizon:
            return []
        self._horizon = cutoff
        times = self._times
        if not times or times[0] > cutoff:
            return []
        k = bisect_right(times, cutoff)
        dropped = self._ids[:k]
        self._known.difference_update(dropped)
        del times[:k], self._seqs[:k], self._amounts[:k], self._ids[:k]
        self._cum = list(accumulate(self._amounts))
        self._query_time = float("inf")
        if self._late:
            self._late = [entry for entry in self._late if entry[0] > cutoff]
            self._late_seq = max((entry[1] for entry in self._late), default=-1)
        return dropped

    def to_state(self) -> dict[str, Any]:
        """Return the windows as JSON-able lists (see :meth:`from_state`)."""
        return {
            "v": _STATE_VERSION,
            "time": list(self._times),
            "seq": list(self._seqs),
            "amount": list(self._amounts),
            "id": list(self._ids),
            "late": [list(entry) for entry in self._late],
            "horizon": None if self._horizon == float("-inf") else self._horizon,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CustomerWindows:
        """Rebuild windows saved by :meth:`to_state`.

        Raises
        ------
        ValueError
            If the state has another version or inconsistent lists.
        """
        if state.get("v") != _STATE_VERSION:
            raise ValueError(f"unknown customer state version {state.get('v')!r}")
        times, seqs, amounts, ids = state["time"], state["seq"], state["amount"], state["id"]
        if not len(times) == len(seqs) == len(amounts) == len(ids):
            raise ValueError("customer state lists differ in length")
        cw = cls()
        cw._times = [float(t) for t in times]
        cw._seqs = [int(s) for s in seqs]
        cw._amounts = [float(a) for a in amounts]
        cw._ids = list(ids)
        cw._cum = list(accumulate(cw._amounts))
        cw._known = set(cw._ids)
        cw._late = [(float(t), int(s), float(a)) for t, s, a in state["late"]]
        cw._late_seq = max((entry[1] for entry in cw._late), default=-1)
        horizon = state["horizon"]
        cw._horizon = float("-inf") if horizon is None else float(horizon)
        return cw
