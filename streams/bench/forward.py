"""The two yardsticks of the throughput run, each in its own process.

- ``raw``: an aiokafka loop, ``getmany`` -> per-partition record batches -> wait for
  the broker's acknowledgements -> commit. What the client library alone can do.
- ``faust``: a stock Faust agent that sends each event on, one ``send`` per event.
  What any Faust application pays before its own code runs.

Both read the run's `transactions` and `labels` topics in their own consumer group and
write every message, unchanged, to one sink topic. Run as::

    python -m streams.bench.forward raw|faust

configured by ``BENCH_SOURCES`` (comma-separated topics), ``BENCH_SINK``,
``BENCH_GROUP``, ``BENCH_DATA_DIR`` and ``BENCH_EMBEDDED`` (``1`` for the embedded
broker's short group timings); the connection comes from ``STREAMSCORE_KAFKA__*``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from streams.kafka import KafkaConnection
from streams.publish import BatchPublisher
from streams.settings import StreamsSettings


@dataclass(frozen=True)
class ForwardConfig:
    """What a forwarder reads and writes."""

    sources: tuple[str, ...]
    sink: str
    group: str
    data_dir: str
    embedded: bool
    #: Where the raw forwarder writes its own timing on exit (JSON), if set.
    stats_file: str = ""

    @classmethod
    def from_env(cls) -> ForwardConfig:
        """Read the ``BENCH_*`` variables."""
        env = os.environ
        return cls(
            sources=tuple(env["BENCH_SOURCES"].split(",")),
            sink=env["BENCH_SINK"],
            group=env["BENCH_GROUP"],
            data_dir=env.get("BENCH_DATA_DIR", "."),
            embedded=env.get("BENCH_EMBEDDED") == "1",
            stats_file=env.get("BENCH_STATS_FILE", ""),
        )

    def env(self) -> dict[str, str]:
        """The ``BENCH_*`` variables of this configuration."""
        return {
            "BENCH_SOURCES": ",".join(self.sources),
            "BENCH_SINK": self.sink,
            "BENCH_GROUP": self.group,
            "BENCH_DATA_DIR": self.data_dir,
            "BENCH_EMBEDDED": "1" if self.embedded else "0",
            "BENCH_STATS_FILE": self.stats_file,
        }


def _group_timings(embedded: bool) -> tuple[float, float]:
    # The embedded broker answers a join after half the session timeout (docs/broker.md).
    return (2.0, 0.3) if embedded else (10.0, 1.0)


@dataclass
class ForwardStats:
    """The raw forwarder's own timing: from its first non-empty fetch to its last commit.

    A backlog that a reader outside drains in a few fetches is too short for the
    reader to time; the forwarder's own clocks are not.
    """

    records: int = 0
    first: float | None = None
    last: float = 0.0
    cpu_first: float = 0.0
    cpu_last: float = 0.0

    @property
    def seconds(self) -> float:
        """Wall seconds from the first fetch to the last commit."""
        return self.last - self.first if self.first is not None else 0.0

    def to_json(self) -> str:
        """The figures a benchmark reads back."""
        return json.dumps(
            {
                "records": self.records,
                "seconds": self.seconds,
                "cpu_seconds": self.cpu_last - self.cpu_first,
            }
        )


async def raw_forward(
    conn: KafkaConnection,
    config: ForwardConfig,
    stop: asyncio.Event,
    stats: ForwardStats | None = None,
) -> None:
    """Forward every record of the sources to the sink until ``stop`` is set."""
    stats = stats if stats is not None else ForwardStats()
    session, heartbeat = _group_timings(config.embedded)
    consumer = AIOKafkaConsumer(
        *config.sources,
        **conn.aiokafka_kwargs("-bench-raw"),
        group_id=config.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(session * 1000),
        heartbeat_interval_ms=int(heartbeat * 1000),
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = conn.bulk_producer("-bench-raw-out", linger_ms=2, max_batch_size=512 * 1024)
    await consumer.start()
    await producer.start()
    try:
        publisher = BatchPublisher(producer)
        sink = config.sink
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=200, max_records=4096)
            if not fetched:
                continue
            if stats.first is None:
                stats.first, stats.cpu_first = time.perf_counter(), time.process_time()
            for records in fetched.values():
                stats.records += len(records)
                for r in records:
                    await publisher.publish(sink, r.key, r.value, r.timestamp)
            await publisher.flush()
            await consumer.commit()
            stats.last, stats.cpu_last = time.perf_counter(), time.process_time()
    finally:
        await consumer.stop()
        await producer.stop()


def faust_forward_app(conn: KafkaConnection, config: ForwardConfig, partitions: int) -> Any:
    """A stock Faust app whose one agent sends every event on, one ``send`` per event."""
    import faust

    from streams.app import faust_credentials

    session, heartbeat = _group_timings(config.embedded)
    app = faust.App(
        config.group,
        broker=[f"kafka://{host}" for host in conn.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(conn),
        store="memory://",
        datadir=config.data_dir,
        autodiscover=False,
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session,
        broker_heartbeat_interval=heartbeat,
        key_serializer="raw",
        value_serializer="raw",
        producer_linger=0.005,  # as the worker's
    )
    source = app.topic(*config.sources, key_type=bytes, value_type=bytes)
    sink = app.topic(config.sink, key_type=bytes, value_type=bytes)

    async def forward(stream: Any) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value)

    app.agent(source, name="forward")(forward)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the forwarder named on the command line until SIGTERM."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("raw", "faust"):
        raise SystemExit("usage: python -m streams.bench.forward raw|faust")
    settings = StreamsSettings()
    servers = settings.kafka.bootstrap_servers
    if not servers:
        raise SystemExit("STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS is not set")
    conn = KafkaConnection.from_settings(settings.kafka, servers)
    config = ForwardConfig.from_env()
    if args[0] == "raw":

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            stats = ForwardStats()
            await raw_forward(conn, config, stop, stats)
            if config.stats_file:
                Path(config.stats_file).write_text(stats.to_json())

        asyncio.run(run())
        return
    import faust

    app = faust_forward_app(conn, config, settings.topics.partitions)
    sys.argv = [sys.argv[0], "worker"]
    faust.Worker(
        app, loglevel="WARNING", quiet=True, redirect_stdouts=False, override_logging=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
