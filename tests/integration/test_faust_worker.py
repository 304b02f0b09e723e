"""A Faust worker on the embedded broker: repartition, changelog table, restart.

Faust reads a changelog up to ``end_offsets()`` when it recovers a table; Tansu's
answer stops at the last batch's first record. ``streams.compat`` makes the worker
read end offsets from ``Fetch`` responses, and the table comes back whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from streams.compat import fetch_end_offsets
from streams.kafka import KafkaConnection
from tests.integration.brokerkit import new_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _transactions(start: int, stop: int) -> list[dict[str, str]]:
    return [
        {"tid": str(i), "customer": f"c{i % 7}", "terminal": f"t{i % 5}"}
        for i in range(start, stop)
    ]


async def _produce(conn: KafkaConnection, topic: str, txns: list[dict[str, str]]) -> None:
    producer = AIOKafkaProducer(**conn.aiokafka_kwargs(), linger_ms=20)
    await producer.start()
    try:
        for txn in txns:
            await producer.send(topic, json.dumps(txn).encode(), key=txn["customer"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _outputs(conn: KafkaConnection, topic: str, want: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs())
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got: list[dict[str, object]] = []
        deadline = time.monotonic() + 240
        while len(got) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            got += [json.loads(r.value) for r in batch.get(tp, [])]
        return got
    finally:
        await consumer.stop()


async def _group_members(conn: KafkaConnection, group: str) -> tuple[str, set[str]]:
    """The consumer group's state and member ids."""
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs())
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups
    return str(described[2]), {str(m[0]) for m in described[5]}


async def _wait_sole_member(
    conn: KafkaConnection, group: str, gone: set[str], timeout_s: float = 60.0
) -> tuple[str, set[str]]:
    """Wait until the group is stable with members none of which is in ``gone``.

    The broker keeps a member that left until the next join expires it. Records sent
    while the new worker's group still lists the old one are read across two
    rebalances, and the stock Faust app (at least once) processes again what it had
    not committed in between: duplicate outputs. Return the state and members last seen.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state, members = await _group_members(conn, group)
        if (state == "Stable" and members and not members & gone) or time.monotonic() > deadline:
            return state, members
        await asyncio.sleep(0.2)


class Worker:
    """The counting app in a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.faust_counter_app",
                "worker",
                "--without-web",
            ],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def test_faust_table_is_recovered_whole_after_a_restart(
    tansu_conn: KafkaConnection, tmp_path: Path
) -> None:
    source, sink = new_topic(tansu_conn, partitions=2), new_topic(tansu_conn)
    app_id = f"compat-faust-{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        COMPAT_BOOTSTRAP=tansu_conn.bootstrap_servers,
        COMPAT_APP_ID=app_id,
        COMPAT_SOURCE=source,
        COMPAT_SINK=sink,
    )
    log = tmp_path / "worker.log"

    # Produced before the worker starts, so it reads them in one go and writes its
    # changelog in batches.
    asyncio.run(_produce(tansu_conn, source, _transactions(0, 100)))
    worker = Worker(env, log)
    try:
        first = asyncio.run(_outputs(tansu_conn, sink, 100))
        _, first_members = asyncio.run(_group_members(tansu_conn, app_id))
    finally:
        worker.stop()
    assert len(first) == 100, log.read_text()
    assert first_members, "the first worker was not listed in its group"

    # The changelog was written in batches, so end_offsets() under-reports its end:
    # a stock Faust worker would restore a stale table here.
    changelog = [TopicPartition(f"{app_id}-counts-changelog", p) for p in (0, 1)]

    async def ends() -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        consumer = AIOKafkaConsumer(**tansu_conn.aiokafka_kwargs())
        await consumer.start()
        try:
            listed = await consumer.end_offsets(changelog)
        finally:
            await consumer.stop()
        return listed, await fetch_end_offsets(tansu_conn.aiokafka_kwargs(), changelog)

    listed, fetched = asyncio.run(ends())
    assert sum(fetched.values()) == 100
    assert any(listed[tp] < fetched[tp] for tp in changelog)

    worker = Worker(env, log)
    try:
        state, members = asyncio.run(_wait_sole_member(tansu_conn, app_id, first_members))
        assert state == "Stable" and members and not members & first_members, log.read_text()
        asyncio.run(_produce(tansu_conn, source, _transactions(100, 110)))
        both = asyncio.run(_outputs(tansu_conn, sink, 110))
    finally:
        worker.stop()
    second = both[100:]
    assert sorted(int(str(o["tid"])) for o in second) == list(range(100, 110)), log.read_text()
    # 20 per terminal before the restart, 2 more after: only a whole table counts 22.
    final: dict[str, int] = {}
    for out in second:
        final[str(out["terminal"])] = max(
            final.get(str(out["terminal"]), 0), int(str(out["count"]))
        )
    assert final == {f"t{i}": 22 for i in range(5)}
