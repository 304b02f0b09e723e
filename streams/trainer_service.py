"""The trainer process: labeled examples in, signed models out, on a schedule or on request.

It reads ``labeled-examples`` from the beginning into a sliding window of event time
and ``model-updates`` for retrain requests. A run starts when the schedule is due
(every ``every_days`` of labeled-example event time, or every ``every_s`` wall
seconds) or when a retrain request newer than the last publication arrives. A
scheduled run fine-tunes the champion's published weights on the whole window
(``finetune_epochs``; workers judge the result); a retrain request, or a champion
without weights, trains from scratch (:func:`models.trainer.train_candidate`),
compares with the registry's champion on the held-out days and — if the publish rule
allows — publishes. Each publication goes to the registry with its torch weights and
as a ``publish`` update. The very first model becomes champion at once (there is
nothing to shadow it against) and a ``promote`` update follows. ``promote`` updates
from the workers' shadow judges move the registry's champion pointer.

Restarts are stateless: the schedule restarts from the training window end of the
newest published model, so a restarted trainer does not redo past runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from models.manifest import Manifest
from models.nets import EpochCallback, FraudNet, load_ffnn
from models.registry import Registry, RegistryError
from models.rejections import Rejected
from models.settings import TrainerSettings
from models.trainer import WEIGHTS_FILE, TrainerConfig, TrainingRun, train_candidate
from models.trainer_window import ExampleWindow, TrainingSchedule
from models.verify import (
    FeatureContract,
    Verified,
    VerifyOptions,
    read_verified_file,
    verify_version,
)
from streams import metrics
from streams.codec import EventDecodeError, decode
from streams.events import LabeledExample, ModelUpdate, ModelUpdateAction
from streams.kafka import KafkaConnection
from streams.model_updates import send_updates, update_for

logger = logging.getLogger(__name__)

__all__ = ["RunOutcome", "TrainerService"]


@dataclass
class RunOutcome:
    """One trainer run: why it ran, what it trained, what it published."""

    trigger: str
    """``schedule`` or ``request``."""
    examples: int
    run: TrainingRun | None = None
    published: Manifest | None = None
    promoted: bool = False
    """True when the published model became champion at once (the first model)."""
    champion_version: str | None = None
    champion_note: str | None = None
    """Why no champion was compared (none yet, or it failed verification)."""
    skipped: str | None = None
    """Why the run trained nothing."""
    wall_s: float = 0.0


@dataclass
class TrainerService:
    """The trainer's loop; :meth:`run` until stopped or ``max_runs`` runs are done."""

    conn: KafkaConnection
    examples_topic: str
    updates_topic: str
    registry: Registry
    registry_uri: str
    contract: FeatureContract
    settings: TrainerSettings
    config: TrainerConfig
    on_epoch: EpochCallback | None = None
    on_phase: Callable[[str], None] | None = None
    on_run: Callable[[RunOutcome], None] | None = None
    outcomes: list[RunOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.window = ExampleWindow(
            self.contract.feature_names, self.contract.feature_set, self.settings.window_days
        )
        latest = self._latest_published()
        self.schedule = TrainingSchedule(
            self.settings.schedule,
            self.settings.every_days,
            self.settings.every_s,
            anchor=(
                latest.training_window.end.timestamp()
                if latest is not None
                and latest.training_window is not None
                and self.settings.schedule == "event_time"
                else None
            ),
        )
        self._last_publication = latest.created_time if latest is not None else None
        self._request: ModelUpdate | None = None
        self._start_ends: dict[TopicPartition, int] = {}
        self._caught_up = False

    def _latest_published(self) -> Manifest | None:
        mine = [m for m in self.registry.list() if m.model_name == self.contract.model_name]
        return mine[-1] if mine else None

    async def run(self, stop: asyncio.Event | None = None, max_runs: int | None = None) -> None:
        """Consume, train when due, publish; return when ``stop`` is set or after ``max_runs``.

        The event-time schedule is checked after every example, so a trainer catching
        up on a replayed topic trains at the same event times as one that ran live
        (partitions are interleaved a fetch at a time, so a run may miss the newest
        examples of another partition; the next run has them).
        """
        stop = stop or asyncio.Event()
        consumer = AIOKafkaConsumer(
            **self.conn.aiokafka_kwargs("-trainer"),
            group_id=None,
            max_partition_fetch_bytes=1 << 18,
        )
        await consumer.start()

        def done() -> bool:
            return stop.is_set() or (max_runs is not None and len(self.outcomes) >= max_runs)

        try:
            await self._assign(consumer)
            while not done():
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batch.items():
                    if tp.topic == self.updates_topic:
                        self._take_updates(r.value for r in records)
                await self._track_pending(consumer)
                examples = sorted(
                    (
                        (ex.event_time, tp.partition, ex)
                        for tp, records in batch.items()
                        if tp.topic == self.examples_topic
                        for ex in self._decode_examples(r.value for r in records)
                    ),
                    key=lambda item: (item[0], item[1]),
                )
                for _, partition, ex in examples:
                    self._add(ex, partition)
                    # Records of this batch come in event-time order: none still to come
                    # is older than this one, whichever partition it is from.
                    watermark = min(ex.event_time.timestamp(), self.window.watermark)
                    if not done() and self.schedule.due(watermark, time.time()):
                        await self._run("schedule", until=watermark)
                if done():
                    break
                if not self._caught_up:
                    self._caught_up = await self._at_start_ends(consumer)
                trigger = self._trigger()
                if trigger is not None:
                    await self._run(trigger)
        finally:
            await consumer.stop()

    async def _run(self, trigger: str, until: float | None = None) -> None:
        self.schedule.ran(self.window.watermark if until is None else until, time.time())
        outcome = await asyncio.to_thread(self._run_once, trigger, until)
        self.outcomes.append(outcome)
        _observe(outcome)
        if outcome.published is not None:
            await self._announce(outcome)
        if self.on_run is not None:
            self.on_run(outcome)

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # refresh metadata
        partitions = [
            TopicPartition(topic, p)
            for topic in (self.examples_topic, self.updates_topic)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not any(tp.topic == self.examples_topic for tp in partitions):
            raise RuntimeError(
                f"topic {self.examples_topic!r} does not exist (`streamscore topics create`)"
            )
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        examples = [tp for tp in partitions if tp.topic == self.examples_topic]
        self._start_ends = await consumer.end_offsets(examples)

    async def _at_start_ends(self, consumer: AIOKafkaConsumer) -> bool:
        """True once every examples partition is read up to where it ended at start-up."""
        for tp, end in self._start_ends.items():
            if await consumer.position(tp) < end:
                return False
        logger.info("trainer caught up with %s", self.examples_topic)
        return True

    def _decode_examples(self, values: Iterable[bytes | None]) -> Iterator[LabeledExample]:
        for value in values:
            try:
                yield decode(LabeledExample, value)
            except EventDecodeError as exc:
                logger.warning("undecodable labeled example: %s", exc)

    def _add(self, ex: LabeledExample, partition: int) -> None:
        metrics.TRAINER_EXAMPLES.inc()
        self.window.add(
            ex.transaction_id,
            ex.event_time.timestamp(),
            ex.values,
            ex.is_fraud,
            ex.customer_id,
            ex.feature_set,
            partition=partition,
        )

    async def _track_pending(self, consumer: AIOKafkaConsumer) -> None:
        """Tell the window which examples partitions have more to read right now."""
        pending: set[int] = set()
        for tp, start_end in self._start_ends.items():
            end = max(consumer.highwater(tp) or 0, start_end)
            if await consumer.position(tp) < end:
                pending.add(tp.partition)
        self.window.set_pending(pending)

    def _take_updates(self, values: Iterable[bytes | None]) -> None:
        for value in values:
            try:
                update = decode(ModelUpdate, value)
            except EventDecodeError:
                continue
            if update.action == ModelUpdateAction.PROMOTE:
                self._follow_promotion(update)
            elif (
                update.action == ModelUpdateAction.RETRAIN_REQUEST
                and update.model_name == self.contract.model_name
                and (self._last_publication is None or update.issued_time > self._last_publication)
            ):
                logger.info("retrain requested: %s", update.reason or "no reason given")
                self._request = update

    def _follow_promotion(self, update: ModelUpdate) -> None:
        """Point the registry's champion at a model a worker's shadow judge promoted.

        The registry is what a restarted worker loads and what the next run compares
        with and fine-tunes, so it follows the judges. Only promotions issued after
        the pointers were last written count: replaying the topic from the start
        never undoes a later promotion or an operator's rollback.
        """
        if update.model_name != self.contract.model_name or update.version is None:
            return
        pointers = self.registry.pointers()
        if update.version == pointers.champion:
            return
        if pointers.updated_time is not None and update.issued_time <= pointers.updated_time:
            return
        try:
            self.registry.promote(update.version)
        except RegistryError as exc:
            logger.warning("cannot follow the promotion of %s: %s", update.version, exc)
            return
        logger.info(
            "registry champion follows a promotion",
            extra={"model_version": update.version, "detail": update.reason or ""},
        )

    def _champion_net(self, champion: Verified, outcome: RunOutcome) -> FraudNet | None:
        """The champion's torch network, to fine-tune; ``None`` (train from scratch) if
        it published no weights or they fail their check."""
        if WEIGHTS_FILE not in champion.manifest.files:
            outcome.champion_note = f"champion {champion.version} has no weights: from scratch"
            return None
        try:
            return load_ffnn(read_verified_file(champion.manifest, self.registry, WEIGHTS_FILE))
        except (Rejected, ValueError) as exc:
            outcome.champion_note = f"weights of {champion.version} unusable ({exc}): from scratch"
            logger.warning(outcome.champion_note)
            return None

    def _trigger(self) -> str | None:
        # A request waits until the examples that existed at start-up are read.
        if self._request is not None and self._caught_up and len(self.window) > 0:
            return "request"
        if self.schedule.due(self.window.watermark, time.time()):
            return "schedule"
        return None

    def _champion(self, outcome: RunOutcome) -> Verified | None:
        pointers = self.registry.pointers()
        if pointers.champion is None:
            outcome.champion_note = "no champion yet"
            return None
        outcome.champion_version = pointers.champion
        try:
            verified = verify_version(
                pointers.champion,
                self.registry,
                self.contract,
                VerifyOptions(provider="cpu", warmup_batch_sizes=()),
            )
        except Rejected as exc:
            outcome.champion_note = f"champion {pointers.champion} failed verification: {exc}"
            logger.warning(outcome.champion_note)
            return None
        return verified

    def _run_once(self, trigger: str, until: float | None) -> RunOutcome:
        clock = time.perf_counter()
        self._request = None
        data = self.window.data(until)
        outcome = RunOutcome(trigger=trigger, examples=len(data))
        if len(data) < self.config.min_examples:
            outcome.skipped = f"{len(data)} examples < min_examples {self.config.min_examples}"
            logger.info("trainer run skipped: %s", outcome.skipped)
            return outcome
        champion = self._champion(outcome)
        window = None if champion is None else champion.manifest.training_window
        # Scheduled runs fine-tune the champion; a retrain request (drift) starts afresh.
        init = None
        if champion is not None and trigger == "schedule" and self.config.finetune_epochs > 0:
            init = self._champion_net(champion, outcome)
        try:
            run = train_candidate(
                data,
                self.config,
                model_name=self.contract.model_name,
                champion=None if champion is None else champion.scorer,
                champion_trained_until=None if window is None else window.end,
                init=init,
                on_epoch=self.on_epoch,
                on_phase=self.on_phase,
            )
        except ValueError as exc:
            outcome.skipped = str(exc)
            logger.warning("trainer run failed: %s", exc)
            return outcome
        outcome.run = run
        if run.publish:
            outcome.published = self.registry.publish(
                run.model, run.manifest_fields, extra_files={WEIGHTS_FILE: run.weights}
            )
            self._last_publication = outcome.published.created_time
            if self.registry.pointers().champion is None:
                self.registry.promote(run.version)
                outcome.promoted = True
        outcome.wall_s = time.perf_counter() - clock
        return outcome

    async def _announce(self, outcome: RunOutcome) -> None:
        assert outcome.published is not None and outcome.run is not None
        version = outcome.published.version
        updates = [
            update_for(
                self.registry,
                ModelUpdateAction.PUBLISH,
                version,
                uri=self.registry_uri,
                reason=f"{outcome.trigger}: {outcome.run.publish_reason}"[:512],
            )
        ]
        if outcome.promoted:
            updates.append(
                update_for(
                    self.registry,
                    ModelUpdateAction.PROMOTE,
                    version,
                    uri=self.registry_uri,
                    reason="first model: nothing to shadow against",
                )
            )
        await send_updates(self.conn, self.updates_topic, updates)


def _observe(outcome: RunOutcome) -> None:
    """The run in the trainer's metrics: outcome, duration, validation AUC."""
    run = outcome.run
    if run is None:
        metrics.TRAINER_RUNS.labels("failed").inc()
        return
    metrics.TRAINER_RUNS.labels("published" if outcome.published else "rejected").inc()
    metrics.TRAINER_DURATION.observe(outcome.wall_s)
    # A fine-tuned candidate has no held-out AUC (it learned every label of its window).
    if "auc" in run.metrics:
        metrics.TRAINER_VALIDATION_AUC.labels("candidate").set(run.metrics["auc"])
    if "champion_auc" in run.metrics:
        metrics.TRAINER_VALIDATION_AUC.labels("champion").set(run.metrics["champion_auc"])
