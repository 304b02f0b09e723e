"""The worker's stages, configured from settings (the worker and the in-process bench)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.blend import WeightedBlend
from models.features import FEATURE_NAMES
from streams.ingest import CustomerStage, IngestConfig
from streams.join import JoinConfig, LabelJoin
from streams.scoring import ModelSet, ScoreStage, ScoringConfig
from streams.settings import StreamsSettings
from streams.terminal import DAY_S, TerminalConfig, TerminalStage


@dataclass
class Stages:
    """Customer state, terminal state and features, scoring, and the label join."""

    customers: CustomerStage
    terminals: TerminalStage
    scorer: ScoreStage
    join: LabelJoin


def build_stages(settings: StreamsSettings, models: ModelSet | None = None) -> Stages:
    """The stages of one worker as ``settings`` configure them.

    ``models`` are served from the start (default: none until the registry's
    arrive); the blend's weights always come from the settings.
    """
    topics, worker, scoring = settings.topics, settings.worker, settings.scoring
    customers = CustomerStage(
        IngestConfig(
            enriched_topic=topics.txn_by_terminal.name,
            enriched_partitions=topics.partitions_of(topics.txn_by_terminal),
            dead_letter_topic=topics.dead_letters.name,
            max_lateness_s=worker.max_lateness_s,
        )
    )
    terminals = TerminalStage(
        TerminalConfig(
            dead_letter_topic=topics.dead_letters.name,
            features_topic=topics.features.name if worker.emit_features else None,
            upstream_partitions=topics.partitions_of(topics.transactions),
            label_delay_s=worker.label_delay_days * DAY_S,
            max_lateness_s=worker.max_lateness_s,
        )
    )
    scorer = ScoreStage(
        tuple(FEATURE_NAMES),
        ScoringConfig(
            predictions_topic=topics.predictions.name,
            dead_letter_topic=topics.dead_letters.name,
            source_topic=topics.txn_by_terminal.name,
            review_threshold=scoring.review_threshold,
            decline_threshold=scoring.decline_threshold,
            reason_codes=scoring.reason_codes,
        ),
    )
    blend = WeightedBlend(w_deep=scoring.blend_w_deep, floor=scoring.blend_floor)
    scorer.models = replace(scorer.models if models is None else models, blend=blend)
    join = LabelJoin(
        JoinConfig(
            labeled_examples_topic=topics.labeled_examples.name, ttl_s=scoring.ttl_days * DAY_S
        )
    )
    return Stages(customers, terminals, scorer, join)
