"""The Faust application: topics, changelog tables and thin agents over the stages.

Two agents move micro-batches between Kafka and the pure stages:

- ``ingest`` reads `transactions` (keyed by customer) and runs
  :class:`streams.ingest.CustomerStage`; valid transactions go, enriched with their
  customer features, to `txn-by-terminal` (keyed by terminal).
- ``terminal`` reads `labels` and `txn-by-terminal` (both keyed by terminal, so a
  terminal's labels and transactions meet on one partition) and runs
  :class:`streams.terminal.TerminalStage`.

Agents receive whole fetched partition batches (:mod:`streams.batching`), one Faust
event per batch, and send their outputs and changelog entries in per-partition
record batches (:mod:`streams.publish`).

Delivery: outputs of a batch are awaited until the broker acknowledges them before
the batch is acknowledged, and Faust commits only acknowledged offsets:
at-least-once, with repeats removed by id downstream. A transaction held back
(:mod:`streams.held`) keeps a reference on its message, so its offset is not committed
until it has been featurized and delivered. If outputs cannot be delivered at all,
the process exits without committing (a restart reprocesses from the last commit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.types import Message

from models.blend import WeightedBlend
from models.features import FEATURE_NAMES
from models.settings import ModelsSettings
from streams import metrics
from streams.batching import BatchingApp, ack
from streams.codec import encode, encode_key
from streams.drift import DriftSettingsView, DriftStage
from streams.events import (
    EnrichedTransaction,
    LabeledExample,
    ModelUpdate,
    ModelUpdateAction,
    Watermark,
)
from streams.exporter import faust_partition_offsets, install_faust_sensor, sync_faust_sensor
from streams.held import Held, HeldQueue, Taken
from streams.ingest import CUSTOMER_TABLE, CustomerStage
from streams.join import JOIN_TABLE, LabelJoin
from streams.kafka import KafkaConnection
from streams.live_eval import LiveEvaluation
from streams.logs import Summarized
from streams.model_updates import ModelUpdatesReader, update_key
from streams.publish import BatchPublisher
from streams.records import Output, Record, StateWrite
from streams.scoring import Scored
from streams.serving_models import ServedModels
from streams.settings import StreamsSettings
from streams.snapshots import MetricsSnapshotter
from streams.stages import build_stages
from streams.state import RAW_SCHEMA, ChangelogTable
from streams.terminal import TERMINAL_TABLE, TerminalStage

logger = logging.getLogger(__name__)

#: At most one "drift detected" log line per this many seconds (with counts since).
DRIFT_LOG_EVERY_S = 60.0
#: Forced releases behind a lagging source log one line a minute (the metric counts all).
FORCED_LOG_EVERY_S = 60.0


def faust_credentials(conn: KafkaConnection) -> Any:
    """Faust credentials for the connection's security settings (None for plaintext)."""
    if conn.sasl_mechanism is not None:
        return faust.SASLCredentials(
            username=conn.sasl_username,
            password=conn.sasl_password,
            mechanism=conn.sasl_mechanism,
            ssl_context=conn.ssl_context(),
        )
    if conn.uses_tls:
        return faust.SSLCredentials(conn.ssl_context())
    return None


def to_record(m: Message) -> Record:
    """The core's view of a consumed message."""
    return Record(m.topic, m.partition, m.offset, m.key, m.value, int(m.timestamp * 1000))


class StreamWorker:
    """The Faust app of one worker process and the stages its agents drive."""

    def __init__(
        self, settings: StreamsSettings, conn: KafkaConnection, models: ModelsSettings
    ) -> None:
        topics, worker = settings.topics, settings.worker
        self.settings = settings
        self.partitions = topics.partitions
        self.label_wait_s = worker.label_wait_s
        self.source_wait_s = worker.source_wait_s
        self.release_max = worker.release_max
        self.conn = conn
        self.app = BatchingApp(
            worker.app_id,
            broker=[f"kafka://{host}" for host in conn.bootstrap_servers.split(",")],
            broker_credentials=faust_credentials(conn),
            broker_client_id=f"{conn.client_id}-worker",
            store=worker.store,
            datadir=str(worker.data_dir),
            autodiscover=False,
            web_enabled=worker.web_enabled,
            web_host=worker.web_host,
            web_bind=worker.web_host,  # Faust binds 0.0.0.0 unless told otherwise
            web_port=worker.web_port,
            # Table data and cluster topology are not for HTTP clients.
            web_tables_enabled=False,
            web_router_enabled=False,
            web_graph_enabled=False,
            table_standby_replicas=0,
            topic_partitions=topics.partitions,
            topic_replication_factor=topics.replication_factor,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            # The embedded broker answers joins after half the session timeout.
            broker_session_timeout=min(worker.session_timeout_s, 2.0)
            if conn.embedded
            else worker.session_timeout_s,
            broker_heartbeat_interval=min(worker.heartbeat_interval_s, 0.3)
            if conn.embedded
            else worker.heartbeat_interval_s,
            key_serializer="raw",
            value_serializer="raw",
            producer_linger=0.005,
            stream_buffer_maxsize=8,
            stream_wait_empty=False,
            broker_max_poll_records=worker.batch_size,
            processing_guarantee="at_least_once",
        )
        stages = build_stages(settings)
        self.customers, self.terminals = stages.customers, stages.terminals
        self.scorer, self.join = stages.scorer, stages.join
        scoring = settings.scoring
        self.served = ServedModels(self.scorer, models)
        self.live = LiveEvaluation()
        self.drift = DriftStage(
            tuple(FEATURE_NAMES),
            DriftSettingsView(
                reference_rows=settings.drift.reference_rows,
                actions=tuple(settings.drift.actions),
                retrain_cooldown_s=settings.drift.retrain_cooldown_s,
                cusum_h=settings.drift.cusum_h,
            ),
        )
        self.drift_topic = topics.drift_events.name
        self._drift_log = Summarized(DRIFT_LOG_EVERY_S)
        self.model_wait_s = scoring.model_wait_s
        self.model_updates_topic = topics.model_updates.name
        self.updates = ModelUpdatesReader(conn, topics.model_updates.name, self.served.on_update)
        self.held = HeldQueue()
        #: Transactions featurized before they were ready, by cause (see streams.held).
        self.forced: Counter[str] = Counter()
        self._forced_log = Summarized(FORCED_LOG_EVERY_S)
        self.lock = asyncio.Lock()
        self.tables = {
            CUSTOMER_TABLE: self._table(CUSTOMER_TABLE, self.customers),
            TERMINAL_TABLE: self._table(TERMINAL_TABLE, self.terminals),
            JOIN_TABLE: self._table(JOIN_TABLE, self.join),
        }
        self._by_changelog = {t.changelog_topic_name: t for t in self.tables.values()}
        self.transactions_topic = self.app.topic(topics.transactions.name, schema=RAW_SCHEMA)
        self.labels_name = topics.labels.name
        self.app.batch_topics = frozenset(
            {topics.transactions.name, topics.labels.name, topics.txn_by_terminal.name}
        )
        self.app.aligned_topics = {topics.transactions.name: worker.max_skew_s}
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self.app.stop_hooks.append(self._stop_producer)
        self.app.stop_hooks.append(self.updates.stop)
        self.app.task(self._start_updates)
        terminal_channel = self.app.topic(
            topics.labels.name, topics.txn_by_terminal.name, schema=RAW_SCHEMA
        )
        self.app.agent(self.transactions_topic, name="ingest")(self._ingest_agent)
        self.app.agent(terminal_channel, name="terminal")(self._terminal_agent)
        self.app.timer(0.05, name="release-held")(self._release_timer)
        self.app.timer(1.0, name="idle-watermarks")(self._idle_watermarks)
        self.read_offsets: dict[int, int] = {}
        self.caught_up_since: dict[int, float] = {}
        self.idle_s = worker.idle_partition_s
        # metrics: Faust's sensor, the consumer-lag feed and the `metrics` topic snapshots.
        install_faust_sensor(self.app)
        self.app.timer(1.0, name="metrics-lag")(self._feed_lag)
        self.app.timer(5.0, name="event-loop-tasks")(self._count_tasks)
        self.app.timer(10.0, name="retained-state")(self._expire_retained)
        self.snapshotter = MetricsSnapshotter(
            metrics.REGISTRY,
            settings.metrics.process_name or "worker",
            topic=topics.metrics.name,
            interval_s=settings.metrics.snapshot_interval_s,
        )
        if self.snapshotter.interval_s > 0:
            self.app.timer(self.snapshotter.interval_s, name="metrics-snapshot")(self._snapshot)

    def _table(self, name: str, stage: CustomerStage | TerminalStage | LabelJoin) -> ChangelogTable:
        def assigned(active: set[int], retained: set[int]) -> None:
            stage.drop_partitions(active | retained)
            if stage is self.terminals:
                self.held.keep(active)

        table = ChangelogTable(
            self.app,
            name=name,
            partitions=self.partitions,
            beacon=self.app.tables.beacon,
            restore=stage.restore,
            assigned=assigned,
            retain_s=self.settings.worker.retain_revoked_s,
        )
        self.app.tables.add(table)
        return table

    # -- models in service ------------------------------------------------------------
    async def _start_updates(self) -> None:
        await self.served.start()
        self.updates.start()
        publisher = await self._publisher()
        while True:  # announce this worker's shadow verdicts to every worker
            update = await self.served.announcements.get()
            key = encode_key(update_key(update))
            await self._send(publisher, [Output(self.model_updates_topic, key, encode(update))])

    async def _wait_for_models(self) -> None:
        if not self.updates.caught_up.is_set() and self.model_wait_s > 0:
            try:
                await asyncio.wait_for(self.updates.caught_up.wait(), self.model_wait_s)
            except TimeoutError:
                logger.warning("scoring before the model updates were read")

    # -- I/O helpers ------------------------------------------------------------------
    def _entries(self, writes: Sequence[StateWrite]) -> list[Output]:
        tables = self.tables
        return [tables[w.table].entry(w.partition, w.key, w.value) for w in writes]

    async def _publisher(self) -> BatchPublisher:
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.conn.aiokafka_kwargs("-worker-out"),
                    linger_ms=2,
                    max_batch_size=512 * 1024,
                    acks="all",
                    enable_idempotence=self.settings.worker.idempotent_producer,
                )
                await producer.start()
                self._producer = producer
        return BatchPublisher(self._producer)

    async def _stop_producer(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _send(self, publisher: BatchPublisher, outputs: Sequence[Output]) -> None:
        """Send outputs and wait until the broker has acknowledged every one."""
        if not outputs:
            return
        try:
            for o in outputs:
                await publisher.publish(o.topic, o.key, o.value, o.timestamp_ms, o.partition)
            await publisher.flush()
            self._acknowledged(publisher)
        except Exception:
            if self.app.should_stop:
                raise asyncio.CancelledError from None  # shutting down: nothing commits now
            # Acking the batch now would commit offsets whose outputs were lost.
            logger.critical("outputs could not be delivered; exiting without commit", exc_info=True)
            logging.shutdown()
            os._exit(75)

    def _acknowledged(self, publisher: BatchPublisher) -> None:
        """Tell each table the offsets of its entries the broker has acknowledged."""
        by_topic = self._by_changelog
        for (topic, partition), ranges in publisher.acked.items():
            table = by_topic.get(topic)
            if table is not None:
                for first, last in sorted(ranges):
                    table.written(partition, first, last)
        publisher.acked.clear()

    async def _expire_retained(self) -> None:
        for table in self.tables.values():
            table.expire_retained()

    # -- agents ---------------------------------------------------------------------
    async def _ingest_agent(self, stream: faust.StreamT[list[Message]]) -> None:
        self._ingest_publisher = publisher = await self._publisher()
        async for messages in stream:
            started = time.perf_counter()
            result = self.customers.process([to_record(m) for m in messages])
            self.read_offsets[messages[-1].partition] = messages[-1].offset
            # metrics: one update per batch.
            metrics.observe_batch(
                "ingest", len(messages), result.enriched, result.dead, time.perf_counter() - started
            )
            mark = self.customers.watermarks.get(messages[-1].partition)
            if mark is not None:
                metrics.set_watermark("ingest", mark)
            await self._send(publisher, [*self._entries(result.writes), *result.outputs])
            ack(self.app.consumer, messages)

    async def _idle_watermarks(self) -> None:
        """Move the watermarks of caught-up source partitions (see CustomerStage)."""
        name = self.transactions_topic.get_topic_name()
        consumer = self.app.consumer
        now = time.monotonic()
        caught_up = set()
        for tp in consumer.assignment():
            if tp.topic != name:
                continue
            highwater = consumer.highwater(tp)
            read = self.read_offsets.get(tp.partition, -1)
            if highwater is None or read + 1 < highwater:
                self.caught_up_since.pop(tp.partition, None)
                continue
            # Caught up for a while, not just ahead of a producer for a moment.
            since = self.caught_up_since.setdefault(tp.partition, now)
            if now - since >= self.idle_s:
                caught_up.add(tp.partition)
        outputs = self.customers.idle_watermarks(caught_up)
        if outputs:
            publisher = getattr(self, "_ingest_publisher", None)
            if publisher is not None:
                await self._send(publisher, outputs)

    async def _terminal_agent(self, stream: faust.StreamT[list[Message]]) -> None:
        self._terminal_publisher = publisher = await self._publisher()
        await self._wait_for_models()
        async for messages in stream:
            async with self.lock:
                done = await self._terminal_batch(publisher, messages)
                ack(self.app.consumer, done)

    async def _terminal_batch(
        self, publisher: BatchPublisher, messages: Sequence[Message]
    ) -> list[Message]:
        """Process one batch; return the messages whose outcome is delivered."""
        outputs: list[Output] = []
        done: list[Message] = []
        if messages[0].topic == self.labels_name:
            applied = self.terminals.apply_labels([to_record(m) for m in messages])
            metrics.observe_batch("labels", len(messages), len(applied.labels), applied.dead)
            outputs.extend(self._entries(applied.writes))
            outputs.extend(applied.outputs)
            joined = self.join.on_labels(applied.labels)
            outputs.extend(self._entries(joined.writes))
            outputs.extend(joined.outputs)
            self._matured(joined.examples)
            done.extend(messages)
        else:
            now = time.monotonic()
            for message in messages:
                record = to_record(message)
                decoded = self.terminals.decode_enriched(record)
                if isinstance(decoded, EnrichedTransaction):
                    outputs.extend(self._entries(self.terminals.accept(record, decoded)))
                    time_s = decoded.transaction.event_time.timestamp()
                    self.held.add(Held(message, record, decoded, record.partition, time_s, now))
                elif isinstance(decoded, Watermark):
                    self.terminals.apply_watermark(record.partition, decoded)
                    done.append(message)
                else:
                    outputs.append(self.terminals.dead_letter_output(record, decoded))
                    metrics.DEAD_LETTERS.labels("terminal", decoded.reason).inc()
                    done.append(message)
        await self._send(publisher, outputs)
        return done + await self._release(publisher)

    async def _release_timer(self) -> None:
        """Release held transactions whose wait ran out.

        Readiness only changes when labels, watermarks or transactions arrive, and each
        batch of those already releases what became ready: the timer has work only
        when a held transaction waited out ``label_wait_s`` or ``source_wait_s``.
        """
        publisher = getattr(self, "_terminal_publisher", None)
        if not self.held or publisher is None:
            return
        if not self.held.due(time.monotonic(), self.label_wait_s, self.source_wait_s):
            return
        async with self.lock:
            ack(self.app.consumer, await self._release(publisher))

    async def _release(self, publisher: BatchPublisher) -> list[Message]:
        """Featurize and score held transactions that are ready (or waited long enough).

        Returns their messages, to acknowledge now that the outputs are delivered.
        """
        stage = self.terminals
        taken = self.held.take(
            stage.arrival_bound,
            lambda h: stage.labels_settled(h.partition, h.enriched),
            time.monotonic(),
            self.label_wait_s,
            self.source_wait_s,
            self.release_max,
        )
        ready = taken.ready
        if not ready:
            return []
        self._count_forced(taken)
        oldest = self.held.oldest()
        for h in ready:
            if h.time_s < oldest.get(h.partition, float("inf")):
                oldest[h.partition] = h.time_s
        started = time.perf_counter()
        result = self.terminals.featurize([(h.record, h.enriched) for h in ready], oldest)
        metrics.observe_batch(
            "terminal", len(ready), len(result.rows), result.dead, time.perf_counter() - started
        )
        outputs = [*self._entries(result.writes), *result.outputs]
        if result.rows:
            started = time.perf_counter()
            scored = self.scorer.score(result.rows)
            seconds = time.perf_counter() - started
            outputs.extend(scored.dead)
            metrics.observe_batch(
                "score", len(result.rows), len(scored.rows), Counter(scored.dead_reasons), seconds
            )
            if scored.rows:
                self._observe_scored(scored, seconds)
                self.served.record_shadow(scored)
                outputs.extend(self._watch_drift(scored))
                outputs.extend(scored.outputs)
                remembered = self.join.remember(scored)
                outputs.extend(self._entries(remembered.writes))
                outputs.extend(remembered.outputs)
                self._matured(remembered.examples)
            for partition in {r.partition for r in result.rows}:
                mark = self.terminals.watermarks.get(partition)
                if mark is not None:
                    outputs.extend(self._entries(self.join.expire(partition, mark)))
        await self._send(publisher, outputs)
        return [h.message for h in ready]

    def _count_forced(self, taken: Taken) -> None:
        """Count (and now and then log) transactions featurized before they were ready."""
        causes = {"labels": taken.forced_labels, "sources": taken.forced_sources}
        for cause, n in causes.items():
            if n:
                self.forced[cause] += n
                metrics.FORCED_RELEASES.labels(cause).inc(n)
        if taken.forced_sources:
            counts = self._forced_log.due(["sources"] * taken.forced_sources)
            if counts is not None:
                logger.warning(
                    "transactions featurized while a source partition is behind: their "
                    "terminal windows may miss what it has not sent yet",
                    extra={"since_last": counts, "source_wait_s": self.source_wait_s},
                )

    def _watch_drift(self, scored: Scored) -> list[Output]:
        """Drift detection on a scored batch; returns the events and requests to send."""
        last = scored.rows[-1].enriched.transaction.event_time
        outcome = self.drift.observe(scored.matrix, scored.score, last, scored.versions)
        if not outcome.events:
            return []
        metrics.observe_drift(outcome.firings)
        out = [Output(self.drift_topic, encode_key(e.detector), encode(e)) for e in outcome.events]
        if outcome.shift_blend:
            models = self.scorer.models
            if isinstance(models.blend, WeightedBlend):
                self.scorer.models = replace(models, blend=models.blend.on_drift())
        if outcome.request_retrain:
            request = ModelUpdate(
                model_name=self.served.model_name,
                action=ModelUpdateAction.RETRAIN_REQUEST,
                reason=f"{outcome.events[0].kind.value} drift ({outcome.events[0].detector})",
                issued_time=datetime.now(UTC),
            )
            out.append(
                Output(self.model_updates_topic, encode_key(update_key(request)), encode(request))
            )
        firings = [(e.kind.value, e.detector, e.feature) for e in outcome.events]
        counts = self._drift_log.due(
            "/".join(str(part) for part in firing if part is not None) for firing in firings
        )
        if counts is not None:  # every event is on the drift topic; the log summarizes
            logger.warning("drift detected", extra={"firings": firings, "since_last": counts})
        return out

    # -- metrics ----------------------------------------------------------------------
    def _matured(self, examples: list[LabeledExample]) -> None:
        """Matured labels with their scores: count them, evaluate live, judge the shadow."""
        for ex in examples:
            metrics.MATURED_LABELS.labels("fraud" if ex.is_fraud else "genuine").inc()
            scores = {"blend": ex.score, "deep": ex.deep_score, "online": ex.online_score}
            evaluated = self.live.add(ex.customer_id, ex.event_time, ex.is_fraud, scores)
            for role, (auc, ap, cp) in (evaluated or {}).items():
                metrics.set_live_evaluation(role, auc, ap, cp)
        self.served.on_examples(examples)

    def _observe_scored(self, scored: Scored, seconds: float) -> None:
        metrics.observe_latency(
            "score",
            time.time(),
            event_times_s=[r.enriched.transaction.event_time.timestamp() for r in scored.rows],
            ingest_times_s=[r.enriched.ingest_time.timestamp() for r in scored.rows],
        )
        metrics.observe_scores(
            {
                "blend": scored.score,
                "deep": scored.deep,
                "online": scored.online,
                "challenger": scored.challenger,
            }
        )
        metrics.count_decisions(scored.decisions)
        deep = self.scorer.models.deep
        metrics.observe_scoring("deep", str(getattr(deep, "provider", "none")), seconds)

    async def _feed_lag(self) -> None:
        metrics.CONSUMER_LAG.update(faust_partition_offsets(self.app))
        sync_faust_sensor(self.app)

    async def _count_tasks(self) -> None:
        metrics.EVENT_LOOP_TASKS.set(len(asyncio.all_tasks()))

    async def _snapshot(self) -> None:
        await self._send(await self._publisher(), self.snapshotter.outputs())
