"""TEMPORARY stand-in (replaced by the real feature core)."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

DAY = 86_400.0
WINDOWS = (1, 7, 30)
FEATURE_NAMES: tuple[str, ...] = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *[f"CUSTOMER_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS for k in ("NB_TX", "AVG_AMOUNT")],
    *[f"TERMINAL_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS for k in ("NB_TX", "RISK")],
)


def time_flags(time_s: float) -> tuple[float, float]:
    d = datetime.fromtimestamp(time_s, UTC)
    return float(d.weekday() >= 5), float(d.hour <= 6)


class CustomerWindows:
    def __init__(self) -> None:
        self.items: list[tuple[float, int, str, float]] = []
        self.ids: dict[str, int] = {}

    def seq_of(self, tx_id: str) -> int | None:
        return self.ids.get(tx_id)

    def add(self, tx_id: str, time_s: float, amount: float, seq: int) -> bool:
        if tx_id in self.ids:
            return False
        self.ids[tx_id] = seq
        bisect.insort(self.items, (time_s, seq, tx_id, amount))
        return True

    def remove(self, tx_id: str) -> None:
        if tx_id in self.ids:
            del self.ids[tx_id]
            self.items = [x for x in self.items if x[2] != tx_id]

    def features(self, time_s: float, seq: int) -> tuple[float, ...]:
        out = []
        for w in WINDOWS:
            sel = [a for t, s, _, a in self.items if time_s - w * DAY < t <= time_s and s <= seq]
            out += [float(len(sel)), sum(sel) / len(sel) if sel else 0.0]
        return tuple(out)

    def expire(self, before_s: float) -> list[str]:
        gone = [x[2] for x in self.items if x[0] < before_s]
        for g in gone:
            self.remove(g)
        return gone


class TerminalWindows:
    def __init__(self) -> None:
        self.tx: dict[str, float] = {}
        self.labels: dict[str, tuple[bool, float, float]] = {}

    def has_transaction(self, tx_id: str) -> bool:
        return tx_id in self.tx

    def label_of(self, tx_id: str) -> tuple[bool, float] | None:
        lab = self.labels.get(tx_id)
        return None if lab is None else (lab[0], lab[1])

    def add_transaction(self, tx_id: str, time_s: float) -> bool:
        if tx_id in self.tx:
            return False
        self.tx[tx_id] = time_s
        return True

    def add_label(self, tx_id: str, tx_time_s: float, label_time_s: float, is_fraud: bool) -> bool:
        if tx_id in self.labels:
            return False
        self.labels[tx_id] = (is_fraud, label_time_s, tx_time_s)
        return True

    def remove(self, tx_id: str) -> None:
        self.tx.pop(tx_id, None)
        self.labels.pop(tx_id, None)

    def unlabeled(self, time_s: float, delay_s: float) -> int:
        hi = time_s - delay_s
        lo = hi - 30 * DAY
        return sum(1 for k, t in self.tx.items() if lo < t <= hi and k not in self.labels)

    def features(self, time_s: float, delay_s: float) -> tuple[float, ...]:
        out = []
        hi = time_s - delay_s
        for w in WINDOWS:
            lo = hi - w * DAY
            ids = [k for k, t in self.tx.items() if lo < t <= hi]
            fr = sum(
                1
                for k in ids
                if k in self.labels and self.labels[k][0] and self.labels[k][1] <= time_s
            )
            out += [float(len(ids)), fr / len(ids) if ids else 0.0]
        return tuple(out)

    def expire(self, before_s: float) -> list[str]:
        gone = [k for k, t in self.tx.items() if t < before_s]
        for g in gone:
            self.remove(g)
        return gone


class _Report:
    def __init__(self, ours, ref):  # type: ignore[no-untyped-def]
        import numpy as np

        self.rates = {}
        ok = np.ones(len(ours), bool)
        for f in FEATURE_NAMES:
            m = np.abs(ours[f].to_numpy() - ref[f].to_numpy()) <= 1e-6
            self.rates[f] = m.mean()
            ok &= m
        self.fraction = float(ok.mean())

    def render(self) -> str:
        lines = [f"{f:40s} {r:.6f}" for f, r in self.rates.items()]
        return "\n".join(lines + [f"parity: {self.fraction:.6f}"])


def compare_features(ours, ref):  # type: ignore[no-untyped-def]
    return _Report(ours, ref)
