"""Start-up helpers shared by commands: settings -> a live Kafka connection."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from streams.broker import BrokerConfig, EmbeddedBroker
from streams.kafka import KafkaConnection
from streams.settings import BrokerSettings, StreamsSettings

logger = logging.getLogger(__name__)


def broker_config(settings: BrokerSettings) -> BrokerConfig:
    """Plain broker config from settings."""
    return BrokerConfig(
        binary=settings.binary,
        host=settings.host,
        port=settings.port,
        storage_engine=settings.storage_engine,
        startup_timeout_s=settings.startup_timeout_s,
        log_file=settings.log_file,
    )


@contextlib.contextmanager
def kafka_connection(settings: StreamsSettings) -> Iterator[KafkaConnection]:
    """Yield a connection to the configured broker, or to an embedded one started here."""
    if settings.kafka.bootstrap_servers:
        yield KafkaConnection.from_settings(settings.kafka, settings.kafka.bootstrap_servers)
        return
    with EmbeddedBroker(broker_config(settings.broker)) as broker:
        logger.info("no bootstrap server configured: embedded broker at %s", broker.bootstrap)
        yield KafkaConnection.from_settings(settings.kafka, broker.bootstrap, embedded=True)
