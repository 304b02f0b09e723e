"""The terminal stage: labels -> terminal state; enriched transactions -> full features.

Pure, like :mod:`streams.ingest`. The Faust agents feed it `labels` records and
`txn-by-terminal` records of the same partitions (both keyed by terminal id).

**Determinism.** A terminal feature of a transaction at event time ``t`` looks at the
terminal's transactions up to ``t - delay`` and at the labels known at ``t``. Both
arrive with no global order: transactions from every source partition interleaved
on the repartition topic, labels on their own topic. A transaction is :meth:`ready`
when

- every source partition's in-band :class:`~streams.events.Watermark` has reached
  ``t - delay`` (all transactions its windows count have arrived), and
- this partition's *label watermark* (the highest label time applied; producers
  publish labels in label-time order) has passed ``t``, or no transaction in the
  terminal's windows still lacks a label (no label in flight can change it).

The agent waits for readiness up to a configured bound (``label_wait_s``). Labels with
a label time after ``t`` that were applied early are ignored by the computation, so
the features come out the same whatever the arrival order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from models.features import FEATURE_NAMES, TerminalWindows
from streams.codec import EventDecodeError, Reason, decode, encode, encode_key
from streams.deadletter import dead_letter, from_decode_error, to_output
from streams.events import (
    DeadLetter,
    EnrichedTransaction,
    FeatureVector,
    Label,
    Stage,
    Watermark,
)
from streams.ingest import WATERMARK_KEY
from streams.records import Output, Record, StateWrite

DAY_S = 86_400.0
TERMINAL_TABLE = "terminal-windows"
FEATURE_SET = "handbook-v1"


@dataclass(frozen=True)
class TerminalConfig:
    """Plain configuration of the terminal stage."""

    dead_letter_topic: str = "dead-letters"
    features_topic: str | None = "features"
    upstream_partitions: int = 4
    label_delay_s: float = 7 * DAY_S
    horizon_s: float = 30 * DAY_S
    max_lateness_s: float = 3600.0


@dataclass
class LabelResult:
    """What one batch of labels produced."""

    labels: list[tuple[int, Label]] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)
    dead: Counter[str] = field(default_factory=Counter)


@dataclass
class Featurized:
    """A transaction with its complete feature vector."""

    enriched: EnrichedTransaction
    partition: int
    offset: int
    values: list[float]


@dataclass
class FeatureResult:
    """What one batch of enriched transactions produced."""

    rows: list[Featurized] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)
    dead: Counter[str] = field(default_factory=Counter)


class TerminalStage:
    """Terminal-keyed state and the per-batch logic of the terminal stage."""

    def __init__(self, config: TerminalConfig | None = None) -> None:
        self.config = config or TerminalConfig()
        self.terminals: dict[str, TerminalWindows] = {}
        self.partition_of: dict[str, int] = {}
        self.label_watermarks: dict[int, float] = {}
        self.watermarks: dict[int, float] = {}
        self.upstream: dict[int, dict[int, float]] = {}

    # -- state recovery -------------------------------------------------------------
    def restore(self, partition: int, key: str, value: list[float | None] | None) -> None:
        """Apply one changelog entry (called during recovery)."""
        terminal_id, _, tx_id = key.partition("|")
        windows = self.terminals.get(terminal_id)
        if value is None:
            if windows is not None:
                windows.remove(tx_id)
            return
        if windows is None:
            windows = self.terminals[terminal_id] = TerminalWindows()
        self.partition_of[terminal_id] = partition
        tx_time, present, is_fraud, label_time = value
        assert tx_time is not None
        if present:
            windows.add_transaction(tx_id, tx_time)
            self._advance(self.watermarks, partition, tx_time)
        if is_fraud is not None and label_time is not None:
            windows.add_label(tx_id, tx_time, label_time, bool(is_fraud))
            self._advance(self.label_watermarks, partition, label_time)

    def drop_partitions(self, keep: set[int]) -> None:
        """Forget state of partitions this worker no longer owns."""
        for terminal_id in [t for t, p in self.partition_of.items() if p not in keep]:
            self.terminals.pop(terminal_id, None)
            self.partition_of.pop(terminal_id, None)
        for marks in (self.label_watermarks, self.watermarks, self.upstream):
            for p in [p for p in marks if p not in keep]:
                del marks[p]

    # -- labels ---------------------------------------------------------------------
    def apply_labels(self, records: list[Record]) -> LabelResult:
        """Decode and apply a batch of `labels` records."""
        result = LabelResult()
        for record in records:
            try:
                label = decode(Label, record.value)
            except EventDecodeError as exc:
                self._dead(result.outputs, result.dead, record, from_decode_error(record, exc))
                continue
            except Exception as exc:
                letter = dead_letter(record, Stage.LEARN, Reason.INTERNAL_ERROR, repr(exc))
                self._dead(result.outputs, result.dead, record, letter)
                continue
            windows = self._windows(label.terminal_id, record.partition)
            tx_time = label.transaction_time.timestamp()
            label_time = label.label_time.timestamp()
            if windows.add_label(label.transaction_id, tx_time, label_time, label.is_fraud):
                result.writes.append(
                    StateWrite(
                        TERMINAL_TABLE,
                        record.partition,
                        f"{label.terminal_id}|{label.transaction_id}",
                        [
                            tx_time,
                            int(windows.has_transaction(label.transaction_id)),
                            int(label.is_fraud),
                            label_time,
                        ],
                    )
                )
            self._advance(self.label_watermarks, record.partition, label_time)
            result.labels.append((record.partition, label))
        return result

    # -- transactions ---------------------------------------------------------------
    def apply_watermark(self, partition: int, watermark: Watermark) -> None:
        """Record a source partition's progress as seen on ``partition``."""
        marks = self.upstream.setdefault(partition, {})
        self._advance(marks, watermark.source_partition, watermark.event_time.timestamp())

    def ready(self, partition: int, enriched: EnrichedTransaction) -> bool:
        """True when nothing still in flight can change this transaction's features."""
        time_s = enriched.transaction.event_time.timestamp()
        marks = self.upstream.get(partition)
        if marks is None or len(marks) < self.config.upstream_partitions:
            return False
        if min(marks.values()) < time_s - self.config.label_delay_s:
            return False
        mark = self.label_watermarks.get(partition)
        if mark is not None and mark > time_s:
            return True
        windows = self.terminals.get(enriched.transaction.terminal_id)
        if windows is None:
            return True
        return windows.unlabeled(time_s, self.config.label_delay_s) == 0

    def decode_enriched(self, record: Record) -> EnrichedTransaction | Watermark | DeadLetter:
        """Decode a `txn-by-terminal` record, or a dead letter for it."""
        try:
            if record.key == WATERMARK_KEY:
                return decode(Watermark, record.value)
            return decode(EnrichedTransaction, record.value)
        except EventDecodeError as exc:
            return from_decode_error(record, exc)

    def dead_letter_output(self, record: Record, letter: DeadLetter) -> Output:
        """The message that routes ``letter`` to the dead-letter topic."""
        return to_output(letter, self.config.dead_letter_topic, record.key)

    def featurize(self, items: list[tuple[Record, EnrichedTransaction]]) -> FeatureResult:
        """Complete the feature vectors of decoded, ready transactions."""
        result = FeatureResult()
        for record, enriched in items:
            try:
                result.rows.append(self._featurize_one(record, enriched, result))
            except Exception as exc:  # a bug must not take the batch down
                letter = dead_letter(
                    record,
                    Stage.FEATURIZE,
                    Reason.FEATURE_ERROR,
                    repr(exc),
                    transaction_id=enriched.transaction.transaction_id,
                )
                self._dead(result.outputs, result.dead, record, letter)
        return result

    def _featurize_one(
        self, record: Record, enriched: EnrichedTransaction, result: FeatureResult
    ) -> Featurized:
        tx = enriched.transaction
        time_s = tx.event_time.timestamp()
        partition = record.partition
        windows = self._windows(tx.terminal_id, partition)
        if windows.add_transaction(tx.transaction_id, time_s):
            labelled = windows.label_of(tx.transaction_id)
            result.writes.append(
                StateWrite(
                    TERMINAL_TABLE,
                    partition,
                    f"{tx.terminal_id}|{tx.transaction_id}",
                    [
                        time_s,
                        1,
                        None if labelled is None else int(labelled[0]),
                        None if labelled is None else labelled[1],
                    ],
                )
            )
        values = [*enriched.customer_features, *windows.features(time_s, self.config.label_delay_s)]
        if len(values) != len(FEATURE_NAMES):
            raise ValueError(f"{len(values)} feature values for {len(FEATURE_NAMES)} names")
        mark = self._advance(self.watermarks, partition, time_s)
        horizon = self.config.label_delay_s + self.config.horizon_s + self.config.max_lateness_s
        for expired in windows.expire(mark - horizon):
            result.writes.append(
                StateWrite(TERMINAL_TABLE, partition, f"{tx.terminal_id}|{expired}", None)
            )
        if self.config.features_topic is not None:
            vector = FeatureVector(
                transaction_id=tx.transaction_id,
                customer_id=tx.customer_id,
                terminal_id=tx.terminal_id,
                event_time=tx.event_time,
                feature_set=FEATURE_SET,
                values=values,
            )
            result.outputs.append(
                Output(
                    topic=self.config.features_topic,
                    key=encode_key(tx.terminal_id),
                    value=encode(vector),
                    timestamp_ms=int(time_s * 1000),
                    partition=partition,
                )
            )
        return Featurized(enriched, partition, record.offset, values)

    # -- helpers --------------------------------------------------------------------
    def _windows(self, terminal_id: str, partition: int) -> TerminalWindows:
        windows = self.terminals.get(terminal_id)
        if windows is None:
            windows = self.terminals[terminal_id] = TerminalWindows()
        self.partition_of[terminal_id] = partition
        return windows

    @staticmethod
    def _advance(marks: dict[int, float], partition: int, value: float) -> float:
        mark = marks.get(partition)
        if mark is None or value > mark:
            marks[partition] = value
            return value
        return mark

    def _dead(
        self, outputs: list[Output], dead: Counter[str], record: Record, letter: DeadLetter
    ) -> None:
        outputs.append(to_output(letter, self.config.dead_letter_topic, record.key))
        dead[letter.reason] += 1
