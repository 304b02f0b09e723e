"""Fixtures for the broker compatibility tests: always the embedded Tansu broker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from streams.broker import BrokerConfig, EmbeddedBroker
from streams.kafka import KafkaConnection


@pytest.fixture(scope="session")
def tansu_bootstrap(kafka_bootstrap: str) -> Iterator[str]:
    """An embedded Tansu broker, even when another broker is configured.

    The compatibility tests pin down Tansu 0.6.0's own behaviour, defects included,
    so they never run against the configured broker. Without one configured they
    share the session's embedded broker.
    """
    if not os.environ.get("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS"):
        yield kafka_bootstrap
        return
    with EmbeddedBroker(BrokerConfig()) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def tansu_conn(tansu_bootstrap: str) -> KafkaConnection:
    """A plaintext connection to the embedded Tansu broker."""
    return KafkaConnection(bootstrap_servers=tansu_bootstrap, client_id="streamscore-compat")
