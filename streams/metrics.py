"""Every Prometheus metric of streamscore, defined once, and helpers to update them.

Names carry their unit (``_total``, ``_seconds``, ``_ratio``, ``_messages``, ``_tasks``,
``_events``); labels are few and bounded: a pipeline stage, a dead-letter reason, a
model role, an execution provider, a decision, a drift detector, a topic and
partition for lag. Never a customer, terminal or transaction id. Dashboards in
``grafana/`` use only these names (a test holds them to it).

The pipeline updates metrics once per *batch*: a Prometheus observation costs about
0.65 µs, so per-event calls would cost more than the work they measure.
:func:`observe_many` adds a whole array to a histogram with one ``searchsorted``.

Faust's own metrics (messages per topic, event runtime, table operations, producer
latency, rebalances, end and committed offsets) come from its Prometheus sensor,
installed with :func:`install_faust_sensor`, under the prefix ``streamscore_faust_``
and with Faust's names (its latencies are in milliseconds).

Examples
--------
>>> before = value("streamscore_events_in_total", stage="doctest")
>>> observe_batch("doctest", n_in=500, n_out=498, dead_by_reason={"too_late": 2})
>>> value("streamscore_events_in_total", stage="doctest") - before
500.0
>>> value("streamscore_dead_letters_total", stage="doctest", reason="too_late")
2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    gc_collector,
    platform_collector,
    process_collector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# The `_created` series double every counter and histogram and no panel reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: The registry every streamscore metric lives in (plus process, platform and GC).
REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

#: Pipeline stages (values of the ``stage`` label).
STAGES = ("ingest", "labels", "terminal", "score", "join", "learn")
#: Model roles (values of the ``role`` label).
ROLES = ("blend", "deep", "online", "challenger")
#: Decisions (values of the ``decision`` label).
DECISIONS = ("approve", "review", "decline")

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_FAST_SECONDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)
_FAST_SECONDS += (0.5, 1.0, 2.5, 5.0)
_LATENCY_SECONDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LATENCY_SECONDS += (5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
_SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

# -- pipeline -------------------------------------------------------------------------
EVENTS_IN = Counter(
    "streamscore_events_in", "Events a stage took in.", ["stage"], registry=REGISTRY
)
EVENTS_OUT = Counter(
    "streamscore_events_out",
    "Events a stage passed on (dead letters excluded).",
    ["stage"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "streamscore_dead_letters",
    "Inputs sent to the dead-letter topic, by stage and reason code.",
    ["stage", "reason"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "streamscore_batch_size_events",
    "Events per micro-batch taken by a stage.",
    ["stage"],
    buckets=_BATCH_BUCKETS,
    registry=REGISTRY,
)
BATCH_DURATION = Histogram(
    "streamscore_batch_duration_seconds",
    "Time a stage spent on one micro-batch (its own code, sends excluded).",
    ["stage"],
    buckets=_FAST_SECONDS,
    registry=REGISTRY,
)
END_TO_END_LATENCY = Histogram(
    "streamscore_end_to_end_latency_seconds",
    "Wall-clock time from an event's event time (`since=event_time`) or from its "
    "ingestion (`since=ingest_time`) to the stage's output.",
    ["stage", "since"],
    buckets=_LATENCY_SECONDS,
    registry=REGISTRY,
)
EVENT_LOOP_TASKS = Gauge(
    "streamscore_event_loop_tasks",
    "Asyncio tasks alive in the process's event loop (sampled every 5 s): a count that "
    "keeps growing over hours is a task leak.",
    registry=REGISTRY,
)
FORCED_RELEASES = Counter(
    "streamscore_forced_releases_total",
    "Transactions featurized before their terminal features were final, by reason: "
    "'labels' (labels of their windows still in flight after label_wait_s) or "
    "'sources' (a source partition still behind after source_wait_s). An exact "
    "pipeline forces none.",
    ["reason"],
    registry=REGISTRY,
)
WATERMARK = Gauge(
    "streamscore_watermark_timestamp_seconds",
    "Highest event time a stage has seen (Unix seconds).",
    ["stage"],
    registry=REGISTRY,
)

# -- scoring --------------------------------------------------------------------------
SCORING_DURATION = Histogram(
    "streamscore_scoring_duration_seconds",
    "Time of one scoring call over a batch, by model role and execution provider.",
    ["role", "provider"],
    buckets=_FAST_SECONDS,
    registry=REGISTRY,
)
SCORES = Histogram(
    "streamscore_score_ratio",
    "Distribution of scores (probability of fraud), by model role.",
    ["role"],
    buckets=_SCORE_BUCKETS,
    registry=REGISTRY,
)
DECISIONS_TOTAL = Counter(
    "streamscore_decisions", "Decisions taken, by type.", ["decision"], registry=REGISTRY
)
MODEL_INFO = Info(
    "streamscore_model",
    "Model version in service, by role (value 1; the version is a label).",
    ["role"],
    registry=REGISTRY,
)
MODEL_SWAPS = Counter(
    "streamscore_model_swaps",
    "Models verified and swapped into service, by role.",
    ["role"],
    registry=REGISTRY,
)
MODEL_REJECTIONS = Counter(
    "streamscore_model_rejections",
    "Model updates that failed verification (hash, signature, schema, smoke), by role.",
    ["role", "reason"],
    registry=REGISTRY,
)
MODEL_ROLLBACKS = Counter(
    "streamscore_model_rollbacks",
    "Rollbacks to a previous model, by role.",
    ["role"],
    registry=REGISTRY,
)
MODEL_PROMOTIONS = Counter(
    "streamscore_model_promotions",
    "Challengers promoted to champion.",
    registry=REGISTRY,
)

# -- live evaluation over matured labels -----------------------------------------------
MATURED_LABELS = Counter(
    "streamscore_matured_labels",
    "Labels joined with the scores given at scoring time, by label (`fraud`, `genuine`).",
    ["label"],
    registry=REGISTRY,
)
LIVE_AUC = Gauge(
    "streamscore_live_auc_ratio",
    "ROC AUC over the recent matured labels, by model role.",
    ["role"],
    registry=REGISTRY,
)
LIVE_AP = Gauge(
    "streamscore_live_average_precision_ratio",
    "Average precision over the recent matured labels, by model role.",
    ["role"],
    registry=REGISTRY,
)
LIVE_CP_AT_K = Gauge(
    "streamscore_live_card_precision_at_k_ratio",
    "Card precision@k (daily, handbook protocol) over the recent matured labels.",
    ["role"],
    registry=REGISTRY,
)

# -- drift ----------------------------------------------------------------------------
DRIFT_EVENTS = Counter(
    "streamscore_drift_events",
    "Drift detector firings, by stream kind, detector and feature ('' if none).",
    ["kind", "detector", "feature"],
    registry=REGISTRY,
)
DRIFT_STATISTIC = Gauge(
    "streamscore_drift_statistic_ratio",
    "A drift detector's current statistic over its threshold (1 fires).",
    ["kind", "detector", "feature"],
    registry=REGISTRY,
)

# -- online learning and training -----------------------------------------------------
ONLINE_EXAMPLES = Counter(
    "streamscore_online_examples",
    "Labeled examples seen by the online learner, by outcome (`learned`, `repeated`, `skipped`).",
    ["outcome"],
    registry=REGISTRY,
)
ONLINE_SNAPSHOTS = Counter(
    "streamscore_online_snapshots_published",
    "Signed online-model snapshots published by the learner.",
    registry=REGISTRY,
)
TRAINER_RUNS = Counter(
    "streamscore_trainer_runs",
    "Training runs, by outcome (`published`, `rejected`, `failed`).",
    ["outcome"],
    registry=REGISTRY,
)
TRAINER_DURATION = Histogram(
    "streamscore_trainer_run_duration_seconds",
    "Wall-clock time of one training run (train, evaluate, export, publish).",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
TRAINER_EXAMPLES = Counter(
    "streamscore_trainer_examples",
    "Labeled examples read by the trainer.",
    registry=REGISTRY,
)
TRAINER_VALIDATION_AUC = Gauge(
    "streamscore_trainer_validation_auc_ratio",
    "Validation ROC AUC of the last run, for the `candidate` and the `champion`.",
    ["model"],
    registry=REGISTRY,
)

# -- producers ------------------------------------------------------------------------
PRODUCED = Counter(
    "streamscore_produced_messages",
    "Messages published by producers, by kind (`transaction`, `label`).",
    ["kind"],
    registry=REGISTRY,
)
PRODUCER_EVENT_TIME = Gauge(
    "streamscore_producer_event_timestamp_seconds",
    "Event time of the last transaction published (Unix seconds).",
    registry=REGISTRY,
)


# -- consumer lag ---------------------------------------------------------------------
@dataclass(frozen=True)
class PartitionOffsets:
    """Where a consumer stands on one partition (Kafka offsets: next to write/read)."""

    topic: str
    partition: int
    end: int
    """High watermark: the offset the next message written will get."""
    committed: int | None = None
    """Next offset the group reads after a restart (None: nothing committed yet)."""
    position: int | None = None
    """Next offset this consumer will read (None: unknown)."""

    @property
    def lag(self) -> int | None:
        """Messages not yet committed (or not yet read, before the first commit)."""
        base = self.committed if self.committed is not None else self.position
        return None if base is None else max(self.end - base, 0)


class ConsumerLagCollector(Collector):
    """``streamscore_consumer_lag_messages{topic, partition}``, from fed offsets.

    :meth:`update` replaces the whole set (called from the consumer's side, e.g. a
    Faust timer); a scrape reads the last set, so partitions that moved to another
    worker vanish from this one at the next update.

    >>> lag = ConsumerLagCollector()
    >>> lag.update([PartitionOffsets("transactions", 0, end=120, committed=100)])
    >>> [(s.labels, s.value) for s in next(iter(lag.collect())).samples]
    [({'topic': 'transactions', 'partition': '0'}, 20.0)]
    """

    NAME = "streamscore_consumer_lag_messages"
    HELP = "Messages a consumer group has yet to commit, by topic and partition."

    def __init__(self) -> None:
        self._rows: tuple[PartitionOffsets, ...] = ()

    def update(self, rows: Iterable[PartitionOffsets]) -> None:
        """Replace the offsets that the next scrape reports."""
        self._rows = tuple(rows)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family this collector yields (lets the registry check names)."""
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["topic", "partition"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The lag of every partition fed last."""
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["topic", "partition"])
        for row in self._rows:
            lag = row.lag
            if lag is not None:
                family.add_metric([row.topic, str(row.partition)], float(lag))
        yield family


CONSUMER_LAG = ConsumerLagCollector()
REGISTRY.register(CONSUMER_LAG)

# Known label values start at 0, so rates and ratios exist before the first event.
for _stage in STAGES:
    EVENTS_IN.labels(_stage)
    EVENTS_OUT.labels(_stage)
    BATCH_SIZE.labels(_stage)
    BATCH_DURATION.labels(_stage)
for _stage in ("terminal", "score"):
    for _since in ("event_time", "ingest_time"):
        END_TO_END_LATENCY.labels(_stage, _since)
for _decision in DECISIONS:
    DECISIONS_TOTAL.labels(_decision)
for _reason in ("labels", "sources"):
    FORCED_RELEASES.labels(_reason)


# -- helpers the pipeline calls once per batch ----------------------------------------
def observe_batch(
    stage: str,
    n_in: int,
    n_out: int,
    dead_by_reason: Mapping[str, int] | None = None,
    duration_s: float | None = None,
) -> None:
    """Count one batch of a stage: events in, out, dead letters by reason, its size."""
    EVENTS_IN.labels(stage).inc(n_in)
    EVENTS_OUT.labels(stage).inc(n_out)
    if dead_by_reason:
        for reason, n in dead_by_reason.items():
            if n:
                DEAD_LETTERS.labels(stage, reason).inc(n)
    if n_in:
        BATCH_SIZE.labels(stage).observe(n_in)
    if duration_s is not None:
        BATCH_DURATION.labels(stage).observe(duration_s)


def observe_many(histogram: Histogram, values: npt.ArrayLike) -> None:
    """Add every value of an array to a histogram (or labelled child) at once.

    Equal to calling ``observe`` per value (NaN values are dropped), at the cost of
    one ``searchsorted`` and one increment per non-empty bucket.

    >>> h = Histogram("doctest_seconds", "doc", buckets=(1, 2), registry=None)
    >>> observe_many(h, [0.5, 1.5, 1.7, 9.0, float("nan")])
    >>> [b.get() for b in h._buckets], h._sum.get()
    ([1.0, 2.0, 1.0], 12.7)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    # Histogram.observe puts a value in the first bucket whose bound is >= it.
    counts = np.bincount(np.searchsorted(bounds, x, side="left"), minlength=len(bounds))
    buckets = histogram._buckets
    for i in np.flatnonzero(counts).tolist():
        buckets[i].inc(int(counts[i]))
    histogram._sum.inc(float(x.sum()))


def observe_latency(
    stage: str,
    now_s: float,
    event_times_s: npt.ArrayLike | None = None,
    ingest_times_s: npt.ArrayLike | None = None,
) -> None:
    """Observe end-to-end latencies of a batch's outputs (times in Unix seconds)."""
    if event_times_s is not None:
        observe_many(
            END_TO_END_LATENCY.labels(stage, "event_time"),
            now_s - np.asarray(event_times_s, dtype=np.float64),
        )
    if ingest_times_s is not None:
        observe_many(
            END_TO_END_LATENCY.labels(stage, "ingest_time"),
            now_s - np.asarray(ingest_times_s, dtype=np.float64),
        )


def set_watermark(stage: str, event_time_s: float) -> None:
    """Record the highest event time a stage has seen (never moves back)."""
    child = WATERMARK.labels(stage)
    if event_time_s > child._value.get():
        child.set(event_time_s)


def observe_scores(role_scores: Mapping[str, npt.ArrayLike | None]) -> None:
    """Add a batch's scores to the score distribution of each role that scored it."""
    for role, scores in role_scores.items():
        if scores is not None:
            observe_many(SCORES.labels(role), scores)


def count_decisions(decisions: Iterable[str]) -> None:
    """Count a batch's decisions by type."""
    values, counts = np.unique(np.asarray(list(decisions), dtype=str), return_counts=True)
    for decision, n in zip(values.tolist(), counts.tolist(), strict=True):
        DECISIONS_TOTAL.labels(decision).inc(n)


def observe_scoring(role: str, provider: str, seconds: float) -> None:
    """Record the time of one scoring call (``provider``: `cpu`, `cuda`...)."""
    SCORING_DURATION.labels(role, provider).observe(seconds)


def set_models_in_service(versions: Mapping[str, str]) -> None:
    """Publish the versions in service by role; roles no longer served disappear."""
    for role in ROLES:
        version = versions.get(role)
        if version is None:
            try:
                MODEL_INFO.remove(role)
            except KeyError:
                pass
        else:
            MODEL_INFO.labels(role).info({"version": version})


def init_worker_series() -> None:
    """Create the worker's model-event series at zero, so dashboards show 0, not "no data",
    before the first swap, rejection or rollback (Prometheus' advice for known labels)."""
    from models.rejections import RejectReason

    for role in ("deep", "online"):
        MODEL_SWAPS.labels(role)
        MODEL_ROLLBACKS.labels(role)
        for reason in RejectReason:
            MODEL_REJECTIONS.labels(role, reason.value)


def init_learner_series() -> None:
    """The learner's series at zero (see :func:`init_worker_series`)."""
    for outcome in ("learned", "repeated", "skipped"):
        ONLINE_EXAMPLES.labels(outcome)


def init_trainer_series() -> None:
    """The trainer's series at zero (see :func:`init_worker_series`)."""
    for outcome in ("published", "rejected", "failed"):
        TRAINER_RUNS.labels(outcome)


def set_live_evaluation(role: str, auc: float, ap: float, cp_at_k: float) -> None:
    """Publish the live evaluation of a model role (NaN where undefined)."""
    LIVE_AUC.labels(role).set(auc)
    LIVE_AP.labels(role).set(ap)
    LIVE_CP_AT_K.labels(role).set(cp_at_k)


class Firing(Protocol):
    """What :func:`observe_drift` reads of a firing (e.g. ``models.drift.DriftFiring``)."""

    @property
    def detector(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def feature(self) -> str | None: ...
    @property
    def statistic(self) -> float: ...
    @property
    def threshold(self) -> float: ...


def observe_drift(firings: Sequence[Firing]) -> None:
    """Count drift firings (the dashboards draw them as annotations)."""
    for f in firings:
        feature = f.feature or ""
        DRIFT_EVENTS.labels(f.kind, f.detector, feature).inc()
        if f.threshold:
            DRIFT_STATISTIC.labels(f.kind, f.detector, feature).set(
                abs(f.statistic) / abs(f.threshold)
            )


def set_drift_statistic(kind: str, detector: str, feature: str | None, ratio: float) -> None:
    """Publish a detector's statistic over its threshold (its state between firings)."""
    DRIFT_STATISTIC.labels(kind, detector, feature or "").set(ratio)


def value(name: str, registry: CollectorRegistry = REGISTRY, **labels: str) -> float:
    """The current value of one sample (0.0 when it does not exist yet)."""
    got: Any = registry.get_sample_value(name, labels)
    return 0.0 if got is None else float(got)
