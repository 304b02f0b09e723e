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

The agent waits for readiness up to configured bounds (``label_wait_s`` for labels,
``source_wait_s`` for a source partition behind; see :mod:`streams.held`). Labels with
a label time after ``t`` that were applied early are ignored by the computation, so
the features come out the same whatever the arrival order.

**One prediction per transaction id.** The stage keeps the ids it has featurized
(changelogged as ``s|<terminal>|<tx>``, kept for ``dedup_s`` of event time behind
the slowest source). A transaction read again (the worker died before committing
its offset, so the customer stage re-reads and re-sends it, or this stage re-reads
it) is dropped here: terminal keys are co-partitioned, so every copy of an id meets
the same state, and the table is restored before a new owner reads on.
"""

from __future__ import annotations

from collections import Counter, deque
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
    max_lateness_s: float = 3600.0
    #: How long (event time) featurized ids are kept to drop copies read again.
    dedup_s: float = 32 * DAY_S


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
    #: Copies of transactions already featurized, dropped (no second prediction).
    repeats: int = 0


class TerminalStage:
    """Terminal-keyed state and the per-batch logic of the terminal stage."""

    def __init__(self, config: TerminalConfig | None = None) -> None:
        self.config = config or TerminalConfig()
        self.terminals: dict[str, TerminalWindows] = {}
        self.partition_of: dict[str, int] = {}
        self.label_watermarks: dict[int, float] = {}
        self.watermarks: dict[int, float] = {}
        self.upstream: dict[int, dict[int, float]] = {}
        self._held: dict[int, float] = {}
        #: Featurized transaction ids -> (partition, terminal, event time s).
        self.scored: dict[str, tuple[int, str, float]] = {}
        # Per partition, (time, id) in featurization order: expiry pops from the left.
        self._scored_ages: dict[int, deque[tuple[float, str]]] = {}

    # -- state recovery -------------------------------------------------------------
    def restore(self, partition: int, key: str, value: list[float] | None) -> None:
        """Apply one changelog entry (called during recovery).

        Keys: ``t|<terminal>|<tx>`` -> ``[time]`` a transaction, ``l|<terminal>|<tx>``
        -> ``[tx time, label time, is_fraud]`` a label, ``s|<terminal>|<tx>`` -> ``[time]``
        a featurized (predicted) transaction. Deletions are expiries: each entry's
        terminal (and the partition's featurized ids) is expired from the restored
        watermark (the newest featurized time, see :meth:`_restored_mark`) as it is
        restored, with the margin :meth:`drop_partitions` uses when recovery ends, so
        a restore holds about what the live state did, however long the changelog (a
        log that is never compacted holds every entry written).
        """
        if value is None:
            return
        kind, terminal_id, tx_id = key.split("|", 2)
        if kind == "s":
            self._remember(partition, terminal_id, tx_id, float(value[0]))
            mark = self._advance(self.watermarks, partition, float(value[0]))
            self._expire_scored(partition, self._restored_mark(mark))
            return
        windows = self._windows(terminal_id, partition)
        if kind == "t":
            # An arrival, not progress: a transaction is recorded when it arrives,
            # possibly long before it is ready (a slow source partition holds every
            # window back), so only featurized ids move the restored watermark.
            windows.add_transaction(tx_id, value[0])
        else:
            tx_time, label_time, is_fraud = value
            windows.add_label(tx_id, tx_time, label_time, bool(is_fraud))
            self._advance(self.label_watermarks, partition, label_time)
        newest = self.watermarks.get(partition)
        if newest is not None:
            windows.expire(self._restored_mark(newest), self.config.label_delay_s)

    def _restored_mark(self, newest: float) -> float:
        """The expiry mark of restored state whose newest featurized time is ``newest``.

        Live expiry follows the slowest source partition (see :meth:`_expiry_mark`),
        which the changelog does not record; what it does record is that a
        transaction at ``newest`` was ready, so every source had reached
        ``newest - label_delay_s``. Restored state is expired from there, less the
        day live expiry keeps and the allowed lateness: never past what a
        transaction still to come can see. Live expiry trims the rest once the
        sources' watermarks arrive.
        """
        return newest - self.config.label_delay_s - DAY_S - self.config.max_lateness_s

    def drop_partitions(self, keep: set[int]) -> None:
        """After recovery: forget partitions not owned, expire what the rest restored."""
        for terminal_id in [t for t, p in self.partition_of.items() if p not in keep]:
            self.terminals.pop(terminal_id, None)
            self.partition_of.pop(terminal_id, None)
        for marks in (self.label_watermarks, self.watermarks, self.upstream):
            for p in [p for p in marks if p not in keep]:
                del marks[p]
        for tx_id in [t for t, v in self.scored.items() if v[0] not in keep]:
            del self.scored[tx_id]
        for p in [p for p in self._scored_ages if p not in keep]:
            del self._scored_ages[p]
        for p, newest in self.watermarks.items():
            self._expire_scored(p, self._restored_mark(newest))
        for terminal_id, windows in self.terminals.items():
            mark = self.watermarks.get(self.partition_of[terminal_id])
            if mark is not None:
                windows.expire(self._restored_mark(mark), self.config.label_delay_s)

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
                        f"l|{label.terminal_id}|{label.transaction_id}",
                        [tx_time, label_time, int(label.is_fraud)],
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
        bound = self.arrival_bound(partition)
        time_s = enriched.transaction.event_time.timestamp()
        return bound is not None and time_s <= bound and self.labels_settled(partition, enriched)

    def arrival_bound(self, partition: int) -> float | None:
        """The newest event time on ``partition`` whose windows have all arrived.

        Every source partition's watermark has reached ``bound - delay``; None until
        each source has sent one.
        """
        marks = self.upstream.get(partition)
        if marks is None or len(marks) < self.config.upstream_partitions:
            return None
        return min(marks.values()) + self.config.label_delay_s

    def labels_settled(self, partition: int, enriched: EnrichedTransaction) -> bool:
        """True when no label still in flight can change this transaction's features."""
        time_s = enriched.transaction.event_time.timestamp()
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

    def featurize(
        self,
        items: list[tuple[Record, EnrichedTransaction]],
        held: dict[int, float] | None = None,
    ) -> FeatureResult:
        """Complete the feature vectors of decoded, ready transactions.

        ``held`` gives, per partition, the oldest event time among the transactions
        being featurized or still waiting: state they need is not expired.
        """
        self._held = held or {}
        result = FeatureResult()
        # Oldest first: a transaction's terminal windows end 7 days before it.
        ordered = sorted(items, key=lambda item: item[1].transaction.event_time)
        for record, enriched in ordered:
            if enriched.transaction.transaction_id in self.scored:
                result.repeats += 1  # read again after a restart or rebalance
                continue
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
        for partition in sorted({row.partition for row in result.rows}):
            result.writes.extend(self._expire_scored(partition, self._expiry_mark(partition)))
        return result

    def accept(self, record: Record, enriched: EnrichedTransaction) -> list[StateWrite]:
        """Record an arriving transaction in its terminal's state (before it is ready).

        A transaction counts in the windows of later ones as soon as it is here, even
        while it waits for labels itself: readiness of a transaction at ``t`` only
        guarantees that everything up to ``t - delay`` has *arrived*.
        """
        tx = enriched.transaction
        time_s = tx.event_time.timestamp()
        windows = self._windows(tx.terminal_id, record.partition)
        if not windows.add_transaction(tx.transaction_id, time_s):
            return []
        key = f"t|{tx.terminal_id}|{tx.transaction_id}"
        return [StateWrite(TERMINAL_TABLE, record.partition, key, [time_s])]

    def _featurize_one(
        self, record: Record, enriched: EnrichedTransaction, result: FeatureResult
    ) -> Featurized:
        tx = enriched.transaction
        time_s = tx.event_time.timestamp()
        partition = record.partition
        windows = self._windows(tx.terminal_id, partition)
        result.writes.extend(self.accept(record, enriched))  # a no-op once accepted
        values = [*enriched.customer_features, *windows.features(time_s, self.config.label_delay_s)]
        if len(values) != len(FEATURE_NAMES):
            raise ValueError(f"{len(values)} feature values for {len(FEATURE_NAMES)} names")
        self._advance(self.watermarks, partition, time_s)
        gone_tx, gone_labels = windows.expire(
            self._expiry_mark(partition), self.config.label_delay_s
        )
        for kind, ids in (("t", gone_tx), ("l", gone_labels)):
            for expired in ids:
                key = f"{kind}|{tx.terminal_id}|{expired}"
                result.writes.append(StateWrite(TERMINAL_TABLE, partition, key, None))
        self._remember(partition, tx.terminal_id, tx.transaction_id, time_s)
        key = f"s|{tx.terminal_id}|{tx.transaction_id}"
        result.writes.append(StateWrite(TERMINAL_TABLE, partition, key, [time_s]))
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

    def _expiry_mark(self, partition: int) -> float:
        """The oldest event time a transaction of ``partition`` may still have.

        Transactions from several source partitions interleave here, so the bound is
        the slowest source's watermark (not the newest time seen), or the oldest
        transaction still held back for labels if older, less a day of margin.
        """
        marks = self.upstream.get(partition)
        if not marks or len(marks) < self.config.upstream_partitions:
            return float("-inf")
        floor = min(marks.values())
        held = self._held.get(partition)
        if held is not None:
            floor = min(floor, held)
        return floor - DAY_S

    # -- helpers --------------------------------------------------------------------
    def _remember(self, partition: int, terminal_id: str, tx_id: str, time_s: float) -> None:
        self.scored[tx_id] = (partition, terminal_id, time_s)
        ages = self._scored_ages.get(partition)
        if ages is None:
            ages = self._scored_ages[partition] = deque()
        ages.append((time_s, tx_id))

    def _expire_scored(self, partition: int, mark: float) -> list[StateWrite]:
        """Forget featurized ids of ``partition`` older than ``dedup_s`` behind ``mark``."""
        cutoff = mark - self.config.dedup_s
        writes: list[StateWrite] = []
        ages = self._scored_ages.get(partition)
        while ages and ages[0][0] < cutoff:
            _, tx_id = ages.popleft()
            entry = self.scored.get(tx_id)
            if entry is not None and entry[2] < cutoff:
                del self.scored[tx_id]
                key = f"s|{entry[1]}|{tx_id}"
                writes.append(StateWrite(TERMINAL_TABLE, partition, key, None))
        return writes

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
