"""Shared fixtures: a real Kafka-protocol broker for the session, uuid-named topics."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from streams.broker import BrokerConfig, EmbeddedBroker
from streams.kafka import KafkaConnection
from streams.topics import TopicSpec, create_topics


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The broker for integration tests: the configured one, else an embedded one."""
    configured = os.environ.get("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    with EmbeddedBroker(BrokerConfig()) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def kafka_conn(kafka_bootstrap: str) -> KafkaConnection:
    """A plaintext connection to the test broker."""
    embedded = not os.environ.get("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS")
    return KafkaConnection(
        bootstrap_servers=kafka_bootstrap, client_id="streamscore-test", embedded=embedded
    )


TopicFactory = Callable[..., str]


@pytest.fixture
def topic_factory(kafka_conn: KafkaConnection) -> TopicFactory:
    """Create uniquely named topics: ``topic_factory(partitions=3) -> name``."""

    def make(partitions: int = 1, prefix: str = "test", **config: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        create_topics(kafka_conn, [TopicSpec(name, partitions, 1, dict(config))])
        return name

    return make
