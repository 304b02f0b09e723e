"""The customer stage: decode -> validate -> clean -> customer features, per batch.

Pure: takes consumed records, returns outputs (enriched transactions for the terminal
stage, dead letters) and state writes (the changelog of customer state). The Faust
agent only moves these between Kafka and this class.

Cleaning rules (each tested, each counted):

- **Duplicates.** A transaction id already held in its customer's state (30 days of
  event time plus the allowed lateness) at a *different* source offset is a
  duplicate: it goes to the dead-letter topic as ``duplicate_transaction``. The same
  id at the *same* offset is a redelivery after a restart and is processed again
  (the terminal stage drops repeats by id). The duplicate check comes before the
  lateness check: a copy of an id still held is a duplicate however late it is.
- **Lateness.** Each partition keeps a watermark, the highest event time seen. An
  event more than ``max_lateness_s`` behind it is ``too_late`` (dead-lettered):
  windows near it may already have been expired. Events within the lateness are
  inserted in event-time order and get exact features as of their arrival.
- **Impossible values** (negative, non-finite or absurd amounts, naive timestamps,
  malformed ids) are rejected by the schema at the validate stage.

**Watermarks.** After each batch, the stage sends every `txn-by-terminal` partition a
:class:`~streams.events.Watermark` for each source partition in the batch: its
highest event time minus the allowed lateness, so every transaction of that partition
up to that time has been sent before it. The terminal stage waits for these before
computing windows that end at ``t - 7 days`` (source partitions progress at different
speeds, and a repartitioned stream interleaves them arbitrarily).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.features import CustomerWindows, time_flags
from streams.codec import EventDecodeError, Reason, decode, encode, encode_key
from streams.deadletter import dead_letter, from_decode_error, to_output
from streams.events import DeadLetter, EnrichedTransaction, Stage, Transaction, Watermark
from streams.records import Output, Record, StateWrite

DAY_S = 86_400.0
CUSTOMER_TABLE = "customer-windows"
#: Key of watermark messages on `txn-by-terminal` ('~' never occurs in an id).
WATERMARK_KEY = b"~watermark"


@dataclass(frozen=True)
class IngestConfig:
    """Plain configuration of the customer stage."""

    enriched_topic: str = "txn-by-terminal"
    enriched_partitions: int = 4
    dead_letter_topic: str = "dead-letters"
    max_lateness_s: float = 3600.0


@dataclass
class IngestResult:
    """What one batch produced."""

    outputs: list[Output] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)
    enriched: int = 0
    dead: Counter[str] = field(default_factory=Counter)


class CustomerStage:
    """Customer-keyed state and the per-batch ingest logic.

    State is the set of :class:`CustomerWindows` of the customers on the partitions
    this worker owns; :meth:`restore` rebuilds it from changelog entries.
    """

    def __init__(self, config: IngestConfig | None = None) -> None:
        self.config = config or IngestConfig()
        self.customers: dict[str, CustomerWindows] = {}
        self.partition_of: dict[str, int] = {}
        self.watermarks: dict[int, float] = {}
        self.sent_marks: dict[int, float] = {}

    # -- state recovery -------------------------------------------------------------
    def restore(self, partition: int, key: str, value: list[float] | None) -> None:
        """Apply one changelog entry (called during recovery).

        Deletions are expiries. The entry's customer is expired from the restored
        watermark as the live stage did after each transaction, so a restore never
        holds more than the live state did, however long the changelog (a log that is
        never compacted still holds every entry ever written); :meth:`drop_partitions`,
        called when recovery ends, expires every customer once more.
        """
        if value is None:
            return
        customer_id, _, tx_id = key.partition("|")
        time_s, amount, seq = value
        windows = self.customers.get(customer_id)
        if windows is None:
            windows = self.customers[customer_id] = CustomerWindows()
        self.partition_of[customer_id] = partition
        windows.add(tx_id, float(time_s), float(amount), int(seq))
        mark = self.watermarks.get(partition)
        if mark is None or time_s > mark:
            mark = self.watermarks[partition] = float(time_s)
        windows.expire(mark - self.config.max_lateness_s)

    def drop_partitions(self, keep: set[int]) -> None:
        """After recovery: forget partitions not owned, expire what the rest restored."""
        gone = [c for c, p in self.partition_of.items() if p not in keep]
        for customer_id in gone:
            self.customers.pop(customer_id, None)
            self.partition_of.pop(customer_id, None)
        for p in list(self.watermarks):
            if p not in keep:
                del self.watermarks[p]
        lateness = self.config.max_lateness_s
        for customer_id, windows in self.customers.items():
            mark = self.watermarks.get(self.partition_of[customer_id])
            if mark is not None:
                windows.expire(mark - lateness)

    # -- processing -----------------------------------------------------------------
    def process(self, records: list[Record]) -> IngestResult:
        """Process one batch of `transactions` records."""
        result = IngestResult()
        now = datetime.now(UTC)
        for record in records:
            try:
                self._process_one(record, now, result)
            except Exception as exc:  # a bug must not take the batch down
                letter = dead_letter(record, Stage.FEATURIZE, Reason.INTERNAL_ERROR, repr(exc))
                self._dead(result, record, letter.reason, letter)
        for partition in sorted({r.partition for r in records}):
            mark = self.watermarks.get(partition)
            if mark is not None:
                result.outputs.extend(
                    self.watermark_outputs(partition, mark - self.config.max_lateness_s)
                )
        return result

    def watermark_outputs(self, partition: int, mark: float) -> list[Output]:
        """Watermark messages of one source partition, one per enriched partition.

        Watermarks only move forward; an older one sends nothing.
        """
        if mark <= self.sent_marks.get(partition, float("-inf")):
            return []
        self.sent_marks[partition] = mark
        value = encode(
            Watermark(source_partition=partition, event_time=datetime.fromtimestamp(mark, UTC))
        )
        return [
            Output(self.config.enriched_topic, WATERMARK_KEY, value, partition=p)
            for p in range(self.config.enriched_partitions)
        ]

    def idle_watermarks(self, caught_up: set[int]) -> list[Output]:
        """Advance the watermarks of partitions with nothing left to read.

        A partition that is caught up (its consumer has read everything the broker
        holds) would otherwise hold back every downstream window; its watermark moves
        up to the highest one sent for this worker's partitions. Returns the
        watermark messages to send (none when nothing moved).
        """
        if not self.sent_marks:
            return []
        top = max(self.sent_marks.values())
        outputs: list[Output] = []
        for partition in sorted(caught_up):
            outputs.extend(self.watermark_outputs(partition, top))
        return outputs

    def _process_one(self, record: Record, now: datetime, result: IngestResult) -> None:
        try:
            tx = decode(Transaction, record.value)
        except EventDecodeError as exc:
            self._dead(result, record, exc.reason.value, from_decode_error(record, exc))
            return
        time_s = tx.event_time.timestamp()
        partition = record.partition
        windows = self.customers.get(tx.customer_id)
        seen_at = None if windows is None else windows.seq_of(tx.transaction_id)
        redelivery = seen_at == record.offset  # read again after a restart
        mark = self.watermarks.get(partition)
        if seen_at is not None and not redelivery:
            letter = dead_letter(
                record,
                Stage.CLEAN,
                Reason.DUPLICATE,
                f"transaction id already seen at offset {seen_at}",
                transaction_id=tx.transaction_id,
                schema_version=tx.schema_version,
            )
            self._dead(result, record, Reason.DUPLICATE.value, letter)
            return
        if not redelivery and mark is not None and time_s < mark - self.config.max_lateness_s:
            late_by = mark - time_s
            letter = dead_letter(
                record,
                Stage.CLEAN,
                Reason.TOO_LATE,
                f"event time is {late_by:.0f} s behind the partition watermark "
                f"(allowed {self.config.max_lateness_s:.0f} s)",
                transaction_id=tx.transaction_id,
                schema_version=tx.schema_version,
            )
            self._dead(result, record, Reason.TOO_LATE.value, letter)
            return
        if windows is None:
            windows = self.customers[tx.customer_id] = CustomerWindows()
        self.partition_of[tx.customer_id] = partition
        if seen_at is None:
            windows.add(tx.transaction_id, time_s, tx.amount, record.offset)
            result.writes.append(
                StateWrite(
                    CUSTOMER_TABLE,
                    partition,
                    f"{tx.customer_id}|{tx.transaction_id}",
                    [time_s, tx.amount, record.offset],
                )
            )
        customer = windows.features(time_s, record.offset)
        weekend, night = time_flags(time_s)
        if mark is None or time_s > mark:
            self.watermarks[partition] = time_s
            mark = time_s
        for expired in windows.expire(mark - self.config.max_lateness_s):
            result.writes.append(
                StateWrite(CUSTOMER_TABLE, partition, f"{tx.customer_id}|{expired}", None)
            )
        enriched = EnrichedTransaction(
            transaction=tx,
            customer_features=[tx.amount, weekend, night, *customer],
            source_partition=partition,
            source_offset=record.offset,
            ingest_time=now,
        )
        result.outputs.append(
            Output(
                topic=self.config.enriched_topic,
                key=encode_key(tx.terminal_id),
                value=encode(enriched),
                timestamp_ms=int(time_s * 1000),
            )
        )
        result.enriched += 1

    def _dead(self, result: IngestResult, record: Record, reason: str, letter: DeadLetter) -> None:
        result.outputs.append(to_output(letter, self.config.dead_letter_topic, record.key))
        result.dead[reason] += 1
