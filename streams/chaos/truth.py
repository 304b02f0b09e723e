"""Ground truth of a fault run: which planned records the broker acknowledged, and where.

Only acknowledged records are owed an outcome: a record the producer never saw
acknowledged may or may not be in the log. Each acknowledgement keeps the record's
partition and offset (dead letters are matched to poison by them) and the wall time
(recovery after a fault is measured against it). The file form is JSON lines, one
per planned record, so a run can be verified again later.

Examples
--------
>>> from streams.chaos.plan import Planned
>>> truth = GroundTruth("transactions", "labels")
>>> p = Planned(0, "transactions", b"c1", b"{}", 0, "7-0", "valid", "c1", 0)
>>> truth.plan([p])
>>> truth.ack(p, partition=2, offset=41, at=12.5)
>>> truth.acked_valid()[0].offset, truth.unacked()
(41, [])
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streams.chaos.plan import Planned


@dataclass(frozen=True, slots=True)
class Acked:
    """A planned record and where the broker put it."""

    planned: Planned
    topic: str
    partition: int
    offset: int
    at: float

    @property
    def ident(self) -> str:
        """Id of the record (transaction id, or the poison record's own id)."""
        return self.planned.ident


class GroundTruth:
    """Planned records and their acknowledgements (by plan index)."""

    def __init__(self, transactions_topic: str, labels_topic: str) -> None:
        self.topics = {"transactions": transactions_topic, "labels": labels_topic}
        self.planned: list[Planned] = []
        self.acked: dict[int, Acked] = {}

    def plan(self, records: Iterable[Planned]) -> None:
        """Record what is going to be published."""
        self.planned.extend(records)

    def ack(self, planned: Planned, partition: int, offset: int, at: float) -> None:
        """The broker acknowledged ``planned`` at ``partition``/``offset``."""
        if planned.index not in self.acked:
            self.acked[planned.index] = Acked(
                planned, self.topics[planned.role], partition, offset, at
            )

    def unacked(self) -> list[Planned]:
        """Planned records never acknowledged."""
        return [p for p in self.planned if p.index not in self.acked]

    def acked_valid(self) -> list[Acked]:
        """Acknowledged valid transactions (each owed one prediction)."""
        return [a for a in self.acked.values() if a.planned.kind == "valid"]

    def acked_poison(self) -> list[Acked]:
        """Acknowledged poison records (each owed one dead letter with its reason)."""
        return [a for a in self.acked.values() if a.planned.expected is not None]

    def write(self, path: Path) -> None:
        """Write one JSON line per planned record (acknowledged or not)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for p in self.planned:
                a = self.acked.get(p.index)
                row = {
                    "index": p.index,
                    "role": p.role,
                    "ident": p.ident,
                    "kind": p.kind,
                    "customer": p.customer,
                    "sequence": p.sequence,
                    "expected": p.expected,
                    "acked": a is not None,
                    "partition": None if a is None else a.partition,
                    "offset": None if a is None else a.offset,
                    "acked_at": None if a is None else round(a.at, 4),
                }
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
