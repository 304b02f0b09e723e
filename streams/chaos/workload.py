"""The seeded workload of a fault run: valid transactions, their labels, poison.

Valid transactions come from the simulator (:mod:`producers.simulation`): each carries
a unique id and its customer's sequence number (0, 1, 2... in event-time order), so a
verifier can tell whether the feature state of a customer skipped or repeated one.
Labels follow ``label_delay_days`` of event time later, merged in event-time order as a
replay publishes them. Poison records (:mod:`streams.chaos.poison`) are spread over the
stream after its first tenth (a partition needs a watermark before ``too_late`` can
be judged, and an id must be in state before a copy of it is a duplicate).

Examples
--------
>>> plan = plan_workload(WorkloadConfig(seed=3, customers=20, terminals=40, days=3, poison=5))
>>> from collections import Counter
>>> sorted(Counter(p.role for p in plan.records).items())
[('labels', 48), ('transactions', 53)]
>>> first = plan.valid[0]
>>> first.ident, first.sequence
('3-0', 0)
>>> sum(1 for p in plan.records if p.expected is not None)
5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from producers.replay import schedule
from producers.simulation import SimulationConfig, simulate_frame
from streams.chaos.plan import Planned
from streams.chaos.poison import POISON_KINDS, poison_record
from streams.codec import encode
from streams.events import Label, Transaction


@dataclass(frozen=True)
class WorkloadConfig:
    """What one run publishes; the same config gives the same records."""

    seed: int
    customers: int = 150
    terminals: int = 300
    days: int = 10
    poison: int = 0
    label_delay_days: float = 7.0
    poison_kinds: tuple[str, ...] = POISON_KINDS


@dataclass
class Workload:
    """The planned records in publication order, and the valid transactions as a frame."""

    records: list[Planned]
    frame: pd.DataFrame
    valid: list[Planned] = field(default_factory=list)


def valid_frame(config: WorkloadConfig) -> pd.DataFrame:
    """The simulated transactions of a run, with sequence numbers and label times."""
    sim = simulate_frame(
        SimulationConfig(
            n_customers=config.customers,
            n_terminals=config.terminals,
            days=config.days,
            seed=config.seed,
        )
    )
    frame = pd.DataFrame(
        {
            "transaction_id": [f"{config.seed}-{i}" for i in sim["TRANSACTION_ID"]],
            "event_time": pd.to_datetime(sim["TX_DATETIME"]).dt.tz_localize("UTC"),
            "customer_id": sim["CUSTOMER_ID"].astype(str),
            "terminal_id": sim["TERMINAL_ID"].astype(str),
            "amount": sim["TX_AMOUNT"].astype(float),
            "is_fraud": sim["TX_FRAUD"].astype(bool),
            "sequence": sim["SEQUENCE"].astype(int),
        }
    )
    frame = frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    frame["label_time"] = frame["event_time"] + timedelta(days=config.label_delay_days)
    return frame


def plan_workload(config: WorkloadConfig) -> Workload:
    """Every record of a run, in the order it is published."""
    frame = valid_frame(config)
    kinds, rows = schedule(frame)
    records: list[Planned] = []
    valid: list[Planned] = []
    ids = frame["transaction_id"].tolist()
    times = frame["event_time"].tolist()
    label_times = frame["label_time"].tolist()
    customers = frame["customer_id"].tolist()
    terminals = frame["terminal_id"].tolist()
    amounts = frame["amount"].tolist()
    frauds = frame["is_fraud"].tolist()
    seqs = frame["sequence"].tolist()
    for kind, row in zip(kinds.tolist(), rows.tolist(), strict=True):
        if kind == 1:
            tx = Transaction(
                transaction_id=ids[row],
                event_time=times[row],
                customer_id=customers[row],
                terminal_id=terminals[row],
                amount=amounts[row],
                sequence=seqs[row],
            )
            planned = Planned(
                len(records),
                "transactions",
                customers[row].encode(),
                encode(tx),
                int(times[row].timestamp() * 1000),
                ids[row],
                "valid",
                customer=customers[row],
                sequence=seqs[row],
            )
            valid.append(planned)
        else:
            label = Label(
                transaction_id=ids[row],
                customer_id=customers[row],
                terminal_id=terminals[row],
                is_fraud=bool(frauds[row]),
                transaction_time=times[row],
                label_time=label_times[row],
            )
            planned = Planned(
                len(records),
                "labels",
                terminals[row].encode(),
                encode(label),
                int(label_times[row].timestamp() * 1000),
                ids[row],
                "label",
            )
        records.append(planned)
    if config.poison:
        records = _with_poison(records, frame, config)
        valid = [p for p in records if p.kind == "valid"]
    return Workload(records, frame, valid)


def _with_poison(
    records: list[Planned], frame: pd.DataFrame, config: WorkloadConfig
) -> list[Planned]:
    """Insert ``config.poison`` poison records at seeded places after the first tenth."""
    rng = np.random.default_rng([config.seed, 0xBAD])
    n = len(records)
    start = max(n // 10, 1)
    places = np.sort(rng.integers(start, n, size=config.poison))
    first_time = frame["event_time"].iloc[0]
    kinds = config.poison_kinds
    out: list[Planned] = []
    published: list[Planned] = []  # copies (duplicates) are of valid ones already sent
    k = 0
    for i, planned in enumerate(records):
        while k < len(places) and places[k] == i:
            original = published[int(rng.integers(len(published)))] if published else None
            kind = kinds[k % len(kinds)]
            poison = poison_record(kind, k, config.seed, planned.timestamp_ms, first_time, original)
            out.append(poison)
            k += 1
        out.append(planned)
        if planned.kind == "valid":
            published.append(planned)
    return [p.at(i) for i, p in enumerate(out)]
