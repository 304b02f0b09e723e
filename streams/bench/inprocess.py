"""The worker's pure stages wired as :mod:`streams.app` wires them, without Faust or Kafka.

What a worker does per batch, minus the broker and the Faust runtime: the customer
stage, the repartition (encoded enriched transactions handed over as records of the
partition their key hashes to), the terminal stage with its held transactions, the
scoring stage, the label join, and the changelog entries of every state write
(encoded as :meth:`streams.state.ChangelogTable.entry` encodes them). Used to time
each stage per event and to measure latency without broker hops.

Each call adds its time on the worker's clock (wall time by default, CPU time for
profiles on a shared machine) to :attr:`InProcessWorker.seconds` under the stage's
name, so a caller can read the cost of every stage after a run.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from streams.bench.load import Messages
from streams.events import EnrichedTransaction, Watermark
from streams.ingest import WATERMARK_KEY
from streams.publish import KeyPartitioner
from streams.records import Output, Record, StateWrite
from streams.scoring import ModelSet
from streams.settings import StreamsSettings
from streams.stages import build_stages


def changelog_values(writes: Sequence[StateWrite]) -> int:
    """Encode state writes as their changelog messages are encoded; return the bytes."""
    size = 0
    for w in writes:
        if w.value is not None:
            size += len(json.dumps(w.value, separators=(",", ":")).encode())
        size += len(w.key.encode())
    return size


class InProcessWorker:
    """One worker's stages, fed records directly."""

    def __init__(
        self,
        settings: StreamsSettings,
        models: ModelSet,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        topics = settings.topics
        self.partitions = topics.partitions
        self.enriched_topic = topics.txn_by_terminal.name
        stages = build_stages(settings, models)
        self.customers, self.terminals = stages.customers, stages.terminals
        self.scorer, self.join = stages.scorer, stages.join
        self.clock = clock
        self.partitioner = KeyPartitioner()
        self.offsets: Counter[tuple[str, int]] = Counter()
        self.held: list[tuple[Record, EnrichedTransaction]] = []
        self.seconds: dict[str, float] = defaultdict(float)
        self.events: Counter[str] = Counter()
        self.outputs = 0
        #: Feature matrices and predictions produced (kept only when asked, to time
        #: the models and the prediction encoding again on their own).
        self.matrices: list[np.ndarray] | None = None
        self.predictions: list[bytes] = []
        self.enriched_values: list[bytes] = []

    # -- input ------------------------------------------------------------------------
    def records(self, messages: Messages, start: int, stop: int) -> list[Record]:
        """Records of ``messages[start:stop]`` on the partitions their keys hash to."""
        out = []
        tx_topic, label_topic = messages.topics
        for i in range(start, stop):
            topic = tx_topic if messages.kinds[i] == 1 else label_topic
            key = messages.keys[i]
            partition = self.partitioner(key, self.partitions)
            offset = self.offsets[(topic, partition)]
            self.offsets[(topic, partition)] = offset + 1
            out.append(
                Record(topic, partition, offset, key, messages.values[i], messages.timestamps[i])
            )
        return out

    def _timed(self, stage: str, started: float, n: int) -> float:
        now = self.clock()
        self.seconds[stage] += now - started
        self.events[stage] += n
        return now

    # -- one batch --------------------------------------------------------------------
    def process(self, labels: list[Record], transactions: list[Record]) -> list[Output]:
        """Run one batch of labels, then one of transactions; return the predictions."""
        clock = self.clock
        if labels:
            t = clock()
            applied = self.terminals.apply_labels(labels)
            joined = self.join.on_labels(applied.labels)
            t = self._timed("labels: apply + join", t, len(labels))
            changelog_values(applied.writes)
            changelog_values(joined.writes)
            self._timed("changelog entries", t, 0)
            self.outputs += len(applied.outputs) + len(joined.outputs)
        if not transactions:
            return self.release()
        t = clock()
        result = self.customers.process(transactions)
        t = self._timed("ingest: customer stage", t, len(transactions))
        changelog_values(result.writes)
        t = self._timed("changelog entries", t, 0)
        enriched = []
        for o in result.outputs:
            if o.topic != self.enriched_topic:
                self.outputs += 1
                continue
            partition = o.partition
            if partition is None:
                partition = self.partitioner(o.key or b"", self.partitions)
            offset = self.offsets[(o.topic, partition)]
            self.offsets[(o.topic, partition)] = offset + 1
            enriched.append(Record(o.topic, partition, offset, o.key, o.value, o.timestamp_ms))
            if self.matrices is not None and o.value is not None and o.key != WATERMARK_KEY:
                self.enriched_values.append(o.value)
        t = clock()
        accepted = 0
        for record in enriched:
            decoded = self.terminals.decode_enriched(record)
            if isinstance(decoded, EnrichedTransaction):
                changelog_values(self.terminals.accept(record, decoded))
                self.held.append((record, decoded))
                accepted += 1
            elif isinstance(decoded, Watermark):
                self.terminals.apply_watermark(record.partition, decoded)
        self._timed("terminal: decode enriched + accept", t, accepted)
        return self.release()

    def release(self) -> list[Output]:
        """Featurize, score and remember the held transactions that are ready."""
        clock = self.clock
        ready: list[tuple[Record, EnrichedTransaction]] = []
        waiting: list[tuple[Record, EnrichedTransaction]] = []
        for item in self.held:
            (ready if self.terminals.ready(item[0].partition, item[1]) else waiting).append(item)
        self.held = waiting
        if not ready:
            return []
        oldest: dict[int, float] = {}
        for record, enriched in (*waiting, *ready):
            ts = enriched.transaction.event_time.timestamp()
            if ts < oldest.get(record.partition, float("inf")):
                oldest[record.partition] = ts
        t = clock()
        result = self.terminals.featurize(ready, oldest)
        t = self._timed("terminal: featurize", t, len(ready))
        changelog_values(result.writes)
        t = self._timed("changelog entries", t, 0)
        self.outputs += len(result.outputs)
        if not result.rows:
            return []
        scored = self.scorer.score(result.rows)
        if self.matrices is not None:
            self.matrices.append(scored.matrix)
            self.predictions.extend(o.value for o in scored.outputs if o.value is not None)
        t = self._timed("score: models + predictions", t, len(result.rows))
        remembered = self.join.remember(scored)
        expired: list[StateWrite] = []
        for partition in {r.partition for r in result.rows}:
            mark = self.terminals.watermarks.get(partition)
            if mark is not None:
                expired.extend(self.join.expire(partition, mark))
        t = self._timed("join: remember + expire", t, len(result.rows))
        changelog_values(remembered.writes)
        changelog_values(expired)
        self._timed("changelog entries", t, 0)
        self.outputs += len(scored.outputs) + len(remembered.outputs)
        return scored.outputs
