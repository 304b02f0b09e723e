"""The label join: a label meets the features and scores its transaction was given.

Runs on the terminal partition, where a transaction is scored and where its label
(keyed by terminal) arrives. What was used at scoring time is kept, changelogged, until
the label comes or ``ttl_s`` of event time passes; a label that arrives before its
transaction was scored waits for it the same way. Each join emits one
:class:`~streams.events.LabeledExample` to `labeled-examples` (the online learner's
and the batch trainer's input). A repeated label for an already joined transaction
is not joined again while its transaction's entry is held; after a crash a label may
be joined twice, and consumers of `labeled-examples` (the online learner, the trainer)
drop repeats by transaction id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from streams.codec import encode, encode_key
from streams.events import Label, LabeledExample
from streams.records import Output, StateWrite
from streams.scoring import Scored

JOIN_TABLE = "pending-examples"
DAY_S = 86_400.0


@dataclass(frozen=True)
class JoinConfig:
    """Plain configuration of the label join."""

    labeled_examples_topic: str = "labeled-examples"
    feature_set: str = "handbook-v1"
    ttl_s: float = 30 * DAY_S


@dataclass
class JoinResult:
    """What one call produced."""

    outputs: list[Output] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)
    joined: int = 0
    examples: list[LabeledExample] = field(default_factory=list)
    """The examples joined by this call (also encoded in ``outputs``)."""


class LabelJoin:
    """Pending examples and early labels of the partitions this worker owns."""

    def __init__(self, config: JoinConfig | None = None) -> None:
        self.config = config or JoinConfig()
        # tx id -> (partition, event time s, entry)
        self.examples: dict[str, tuple[int, float, list[object]]] = {}
        self.labels: dict[str, tuple[int, float, Label]] = {}
        # Per partition, (time, kind, id) in arrival order: expiry pops from the left.
        self._ages: dict[int, deque[tuple[float, str, str]]] = {}

    # -- recovery ---------------------------------------------------------------------
    def restore(self, partition: int, key: str, value: list[object] | None) -> None:
        """Apply one changelog entry: ``e|<id>`` a scored example, ``l|<id>`` an early label.

        Deletions (joins and expiries) are applied in log order, and the ages of
        entries already deleted are trimmed from the front, so a changelog that is
        never compacted does not make a restore hold one age per entry ever written.
        """
        kind, _, tx_id = key.partition("|")
        if value is None:
            (self.examples if kind == "e" else self.labels).pop(tx_id, None)
            ages = self._ages.get(partition)
            while ages and ages[0][2] not in (self.examples if ages[0][1] == "e" else self.labels):
                ages.popleft()
            return
        time_s = float(value[0])  # type: ignore[arg-type]
        if kind == "e":
            self.examples[tx_id] = (partition, time_s, list(value))
        else:
            self.labels[tx_id] = (partition, time_s, Label.model_validate_json(str(value[1])))
        self._aged(partition, time_s, kind, tx_id)

    def _aged(self, partition: int, time_s: float, kind: str, tx_id: str) -> None:
        ages = self._ages.get(partition)
        if ages is None:
            ages = self._ages[partition] = deque()
        ages.append((time_s, kind, tx_id))

    def drop_partitions(self, keep: set[int]) -> None:
        """Forget entries of partitions this worker no longer owns."""
        for store in (self.examples, self.labels):
            for tx_id in [k for k, v in store.items() if v[0] not in keep]:
                del store[tx_id]
        for p in [p for p in self._ages if p not in keep]:
            del self._ages[p]

    # -- processing -------------------------------------------------------------------
    def remember(self, scored: Scored) -> JoinResult:
        """Keep what each scored transaction was given; join labels that came early."""
        result = JoinResult()
        versions = scored.versions
        for i, row in enumerate(scored.rows):
            tx = row.enriched.transaction
            tx_id = tx.transaction_id
            if tx_id in self.examples:
                continue  # scored again after a restart: the first scoring stands
            entry: list[object] = [
                tx.event_time.timestamp(),
                row.values,
                float(scored.score[i]),
                None if scored.deep is None else float(scored.deep[i]),
                None if scored.online is None else float(scored.online[i]),
                versions,
                tx.customer_id,
                tx.terminal_id,
            ]
            early = self.labels.pop(tx_id, None)
            if early is not None:
                result.writes.append(StateWrite(JOIN_TABLE, row.partition, f"l|{tx_id}", None))
                self._join(row.partition, tx_id, entry, early[2], result)
            else:
                self.examples[tx_id] = (row.partition, float(entry[0]), entry)  # type: ignore[arg-type]
                self._aged(row.partition, float(entry[0]), "e", tx_id)  # type: ignore[arg-type]
                result.writes.append(StateWrite(JOIN_TABLE, row.partition, f"e|{tx_id}", entry))
        return result

    def on_labels(self, labels: list[tuple[int, Label]]) -> JoinResult:
        """Join labels with what their transactions were given (or keep them waiting)."""
        result = JoinResult()
        for partition, label in labels:
            tx_id = label.transaction_id
            if tx_id in self.labels:
                continue
            pending = self.examples.pop(tx_id, None)
            if pending is None:
                time_s = label.transaction_time.timestamp()
                self.labels[tx_id] = (partition, time_s, label)
                self._aged(partition, time_s, "l", tx_id)
                result.writes.append(
                    StateWrite(
                        JOIN_TABLE, partition, f"l|{tx_id}", [time_s, label.model_dump_json()]
                    )
                )
                continue
            result.writes.append(StateWrite(JOIN_TABLE, partition, f"e|{tx_id}", None))
            self._join(partition, tx_id, pending[2], label, result)
        return result

    def expire(self, partition: int, watermark_s: float) -> list[StateWrite]:
        """Drop entries of ``partition`` older than the TTL behind ``watermark_s``."""
        cutoff = watermark_s - self.config.ttl_s
        writes: list[StateWrite] = []
        ages = self._ages.get(partition)
        while ages and ages[0][0] < cutoff:
            _, kind, tx_id = ages.popleft()
            store: dict[str, object] = self.examples if kind == "e" else self.labels  # type: ignore[assignment]
            entry = store.get(tx_id)
            if entry is not None and entry[1] < cutoff:  # type: ignore[index]
                del store[tx_id]
                writes.append(StateWrite(JOIN_TABLE, partition, f"{kind}|{tx_id}", None))
        return writes

    def _join(
        self, partition: int, tx_id: str, entry: list[object], label: Label, result: JoinResult
    ) -> None:
        time_s, values, score, deep, online, versions, customer, terminal = entry
        example = LabeledExample(
            transaction_id=tx_id,
            customer_id=str(customer),
            terminal_id=str(terminal),
            event_time=datetime.fromtimestamp(float(time_s), UTC),  # type: ignore[arg-type]
            label_time=label.label_time,
            is_fraud=label.is_fraud,
            feature_set=self.config.feature_set,
            values=list(values),  # type: ignore[call-overload]
            score=score,  # type: ignore[arg-type]
            deep_score=deep,  # type: ignore[arg-type]
            online_score=online,  # type: ignore[arg-type]
            model_versions=dict(versions),  # type: ignore[call-overload]
        )
        result.examples.append(example)
        result.outputs.append(
            Output(
                self.config.labeled_examples_topic,
                encode_key(str(terminal)),
                encode(example),
                int(label.label_time.timestamp() * 1000),
            )
        )
        result.joined += 1
