"""Topic layout and idempotent creation.

The layout comes from :class:`streams.settings.TopicsSettings`; :func:`create_topics`
creates what is missing and reports what already exists (it never alters a topic).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.kafka import KafkaConnection
from streams.settings import TopicSettings, TopicsSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicResult:
    """What :func:`create_topics` did with one topic."""

    spec: TopicSpec
    status: str  # "created" | "exists"
    partitions: int


def spec_of(topic: TopicSettings, layout: TopicsSettings) -> TopicSpec:
    """The creation spec of one configured topic."""
    config: dict[str, str] = {}
    if topic.compacted:
        config["cleanup.policy"] = "compact"
    if topic.retention_ms is not None:
        config["retention.ms"] = str(topic.retention_ms)
    return TopicSpec(
        name=topic.name,
        partitions=layout.partitions_of(topic),
        replication_factor=layout.replication_factor,
        config=config,
    )


def topic_specs(layout: TopicsSettings) -> list[TopicSpec]:
    """Creation specs of every topic the system uses."""
    return [spec_of(topic, layout) for topic in layout.all().values()]


def create_topics(conn: KafkaConnection, specs: list[TopicSpec]) -> list[TopicResult]:
    """Create the topics that do not exist yet; return one result per spec."""
    admin = KafkaAdminClient(**conn.kafka_python_kwargs("-admin"))
    try:
        existing = set(admin.list_topics())
        results: list[TopicResult] = []
        for spec in specs:
            if spec.name not in existing:
                try:
                    admin.create_topics(
                        [
                            NewTopic(
                                spec.name,
                                spec.partitions,
                                spec.replication_factor,
                                topic_configs=spec.config,
                            )
                        ]
                    )
                    results.append(TopicResult(spec, "created", spec.partitions))
                    continue
                except TopicAlreadyExistsError:
                    pass  # created concurrently by another process
            described = admin.describe_topics([spec.name])
            count = len(described[0]["partitions"]) if described else 0
            if count != spec.partitions:
                logger.warning(
                    "topic exists with a different partition count",
                    extra={"topic": spec.name, "expected": spec.partitions, "actual": count},
                )
            results.append(TopicResult(spec, "exists", count))
        return results
    finally:
        admin.close()
