"""Small helpers shared by the broker compatibility tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.broker import find_binary, free_port, metadata_answers
from streams.kafka import KafkaConnection
from streams.topics import TopicSpec, create_topics

Record = tuple[bytes | None, bytes | None, int | None]
"""``(key, value, timestamp_ms)``; a None timestamp lets the producer stamp it."""


def new_topic(conn: KafkaConnection, partitions: int = 1, **config: str) -> str:
    """Create a uniquely named topic; return its name."""
    name = f"compat-{uuid.uuid4().hex[:12]}"
    create_topics(conn, [TopicSpec(name, partitions, 1, dict(config))])
    return name


async def send_batch(
    conn: KafkaConnection, topic: str, records: Sequence[Record], partition: int = 0
) -> int:
    """Write ``records`` as ONE record batch; return the offset of its first record."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs("-batch"))
    await producer.start()
    try:
        batch = producer.create_batch()
        for key, value, timestamp in records:
            if batch.append(key=key, value=value, timestamp=timestamp, headers=[]) is None:
                raise ValueError("records do not fit one batch")
        metadata = await (await producer.send_batch(batch, topic, partition=partition))
        return int(metadata.offset)
    finally:
        await producer.stop()


async def send_each(
    conn: KafkaConnection, topic: str, records: Sequence[Record], partition: int = 0
) -> list[int]:
    """Write each record as its own batch (one request each); return their offsets."""
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs("-each"), linger_ms=0)
    await producer.start()
    try:
        offsets = []
        for key, value, timestamp in records:
            metadata = await producer.send_and_wait(
                topic, value, key=key, partition=partition, timestamp_ms=timestamp
            )
            offsets.append(int(metadata.offset))
        return offsets
    finally:
        await producer.stop()


async def read_from(
    conn: KafkaConnection,
    topic: str,
    offset: int = 0,
    partition: int = 0,
    isolation_level: str = "read_uncommitted",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a partition from ``offset`` until a fetch comes back empty."""
    consumer = AIOKafkaConsumer(
        **conn.aiokafka_kwargs("-reader"),
        isolation_level=isolation_level,
        fetch_max_wait_ms=200,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while True:
            batch = await consumer.getmany(tp, timeout_ms=600)
            if not batch:
                return records
            records.extend(batch[tp])
    finally:
        await consumer.stop()


class TansuProcess:
    """A Tansu broker started with extra command-line flags, on a free loopback port.

    ``EmbeddedBroker`` starts the flags we ship with; these tests need others
    (``--authentication``, ``--cert``) and must see start-up failures as exit codes.
    """

    def __init__(self, *flags: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://{self.bootstrap}"
        cmd = [str(find_binary()), "broker", "--listener-url", url]
        cmd += ["--advertised-listener-url", url, *flags]
        self.log = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Block until the port accepts connections; raise if the broker exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"tansu did not listen on {self.bootstrap}")

    def answers_metadata(self) -> bool:
        """True when a plaintext Kafka ``Metadata`` request is answered."""
        return metadata_answers("127.0.0.1", self.port, timeout=1.0)

    def output(self) -> str:
        """What the broker printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGINT, then SIGKILL; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)
