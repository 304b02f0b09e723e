"""Workarounds for the embedded broker (Tansu 0.6.0); each is harmless on Apache Kafka.

Tansu answers ``ListOffsets(latest)`` with the base offset of the *last record batch*
plus one, not with the end of the log: after one batch of seven records at offsets
0-6 it says 1, where Kafka says 7. The high watermark in ``Fetch`` responses is
right. Everything that trusts ``end_offsets()`` is off by up to a batch: Faust's
table recovery stops early and restores a stale table, ``seek_to_end()`` and
``auto_offset_reset="latest"`` start inside the last batch, and consumer lag is
under-reported.

:func:`fetch_end_offsets` reads the end of each partition from a ``Fetch`` response
instead, and :class:`FaustTransport` makes a Faust app use it for table recovery.
On Apache Kafka both give the same numbers as ``end_offsets()``. See docs/broker.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

logger = logging.getLogger(__name__)


class EndOffsetTimeout(TimeoutError):
    """No ``Fetch`` response named the end of some partitions in time."""


async def fetch_end_offsets(
    consumer_config: Mapping[str, Any],
    partitions: Iterable[tuple[str, int]],
    *,
    timeout_s: float = 10.0,
) -> dict[TopicPartition, int]:
    """Return the end offset (high watermark) of each partition, read from ``Fetch``.

    A short-lived consumer outside any group is assigned the partitions, seeks each to
    what ``ListOffsets`` reports (never past the true end) and fetches once; the high
    watermark of that response is the end of the log. Records it happens to fetch are
    dropped.

    Parameters
    ----------
    consumer_config
        Connection keyword arguments for :class:`aiokafka.AIOKafkaConsumer`
        (``KafkaConnection.aiokafka_kwargs()``); group settings are overridden.
    partitions
        ``(topic, partition)`` pairs; Faust ``TP`` and aiokafka ``TopicPartition``
        both fit.
    timeout_s
        How long to wait for every partition's ``Fetch`` response.

    Returns
    -------
    dict
        End offset per partition: the offset the next produced record will get.

    Raises
    ------
    EndOffsetTimeout
        Some partition got no ``Fetch`` response within ``timeout_s``.
    """
    tps = [TopicPartition(topic, partition) for topic, partition in partitions]
    if not tps:
        return {}
    config = dict(consumer_config)
    config.update(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50)
    consumer = AIOKafkaConsumer(**config)
    await consumer.start()
    try:
        consumer.assign(tps)
        listed: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, listed[tp])
        ends: dict[TopicPartition, int] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(ends) < len(tps):
            pending = [tp for tp in tps if tp not in ends]
            if loop.time() >= deadline:
                raise EndOffsetTimeout(f"no Fetch response for {pending} in {timeout_s} s")
            await consumer.getmany(*pending, timeout_ms=100)
            for tp in pending:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(highwater, listed[tp])
        corrected = {
            f"{tp.topic}[{tp.partition}]": [listed[tp], ends[tp]]
            for tp in tps
            if ends[tp] != listed[tp]
        }
        if corrected:
            logger.debug("ListOffsets under-reported end offsets", extra={"ends": corrected})
        return ends
    finally:
        await consumer.stop()


class FaustConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with end offsets read by :func:`fetch_end_offsets`."""

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """Return the end offset of each partition (Faust's table recovery reads to it).

        In a transactional app Faust wants last stable offsets, which only its own
        consumer knows: those calls go to Faust unchanged.
        """
        if self.in_transaction:
            return await super().highwaters(*partitions)
        conf = self.app.conf
        config: dict[str, Any] = dict(
            faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
        )
        config["bootstrap_servers"] = faust_aiokafka.server_list(
            self.transport.url, faust_aiokafka.Transport.default_port
        )
        config["client_id"] = f"{conf.broker_client_id}-end-offsets"
        config["request_timeout_ms"] = int(conf.broker_request_timeout * 1000)
        ends = await fetch_end_offsets(
            config, partitions, timeout_s=float(conf.broker_request_timeout)
        )
        return {tp: ends[TopicPartition(tp.topic, tp.partition)] for tp in partitions}


class FaustTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose consumer uses :class:`FaustConsumer`.

    Install it on an app before the app starts: ``use_fetched_end_offsets(app)``.
    """

    Consumer = FaustConsumer


def use_fetched_end_offsets(app: faust.App) -> None:
    """Make a Faust app read end offsets from ``Fetch`` responses (call before start).

    Table recovery then reads each changelog to its true end on Tansu; on Apache Kafka
    nothing changes but one extra short-lived connection per recovery.
    """
    app.transport = FaustTransport(app.conf.broker_consumer, app)
