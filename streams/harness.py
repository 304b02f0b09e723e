"""Run the whole pipeline as separate processes on one broker, and read its outputs.

Used by the commands that exercise the system end to end (``parity``, ``backtest``,
``chaos``, ``bench``): each run gets its own topic names and consumer group, so runs
never see each other's data, and its workers are child processes started with the
same ``streamscore worker`` command a deployment uses.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from models.signing import generate_key_files
from streams.compat import fetch_end_offsets
from streams.kafka import KafkaConnection
from streams.process import spawn, stop
from streams.settings import StreamsSettings, TopicsSettings
from streams.topics import create_topics, topic_specs


def run_topics(base: TopicsSettings, run_id: str) -> TopicsSettings:
    """The topic layout of one run: every name suffixed with the run id."""
    renamed = {
        role: topic.model_copy(update={"name": f"{topic.name}.{run_id}"})
        for role, topic in base.all().items()
    }
    return base.model_copy(update=renamed)


def topics_env(topics: TopicsSettings) -> dict[str, str]:
    """Environment variables that give a child process this topic layout."""
    env = {"STREAMSCORE_TOPICS__PARTITIONS": str(topics.partitions)}
    for role, topic in topics.all().items():
        prefix = f"STREAMSCORE_TOPICS__{role.upper()}__"
        env[prefix + "NAME"] = topic.name
        if topic.partitions is not None:
            env[prefix + "PARTITIONS"] = str(topic.partitions)
    return env


@dataclass
class Harness:
    """One run of the pipeline: its topics, group and worker processes."""

    settings: StreamsSettings
    conn: KafkaConnection
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    extra_env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Workers started so far: each gets its own log, ``worker-<n>.log``.
    workers_started: int = 0
    _logs: list[IO[bytes]] = field(default_factory=list)
    _tmp: Path | None = None

    def __post_init__(self) -> None:
        self.topics = run_topics(self.settings.topics, self.run_id)
        self.app_id = f"{self.settings.worker.app_id}-{self.run_id}"

    def create_topics(self) -> None:
        """Create this run's topics."""
        create_topics(self.conn, topic_specs(self.topics))

    @property
    def tmp(self) -> Path:
        """This run's private directory (removed by :meth:`close`)."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix=f"streamscore-{self.run_id}-"))
        return self._tmp

    @property
    def registry_dir(self) -> Path:
        """This run's model registry."""
        return self.tmp / "registry"

    @property
    def key_file(self) -> Path:
        """This run's signing key (created on first use)."""
        path = self.tmp / "signing.key"
        if not path.exists():
            generate_key_files(path, "hmac-sha256")
        return path

    def env(self) -> dict[str, str]:
        """The environment of this run's child processes."""
        tmp = self.tmp
        env = dict(os.environ)
        env.update(topics_env(self.topics))
        env["STREAMSCORE_KAFKA__BOOTSTRAP_SERVERS"] = self.conn.bootstrap_servers
        env["STREAMSCORE_WORKER__APP_ID"] = self.app_id
        env["STREAMSCORE_WORKER__DATA_DIR"] = str(tmp / "worker")
        env["STREAMSCORE_LEARNER__CHECKPOINT"] = str(tmp / "learner" / "checkpoint.bin")
        env["STREAMSCORE_REGISTRY__URI"] = str(self.registry_dir)
        env["STREAMSCORE_REGISTRY__SIGNING_KEY_FILE"] = str(self.key_file)
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.conn.embedded:
            # The embedded broker answers a join after half the session timeout and
            # keeps a stopped member for a whole one (docs/broker.md): keep it short.
            env.setdefault("STREAMSCORE_WORKER__SESSION_TIMEOUT_S", "2")
            env.setdefault("STREAMSCORE_WORKER__HEARTBEAT_INTERVAL_S", "0.3")
        env.update(self.extra_env)
        return env

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start one more worker process."""
        exe = Path(sys.executable).with_name("streamscore")
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = (self.log_dir / f"worker-{self.workers_started}.log").open("ab")
            self._logs.append(log)
            out = log
        cmd = [str(exe), "--log-level", "WARNING", "worker"]
        proc = spawn(cmd, env=self.env(), stdout=out, stderr=out)
        self.workers.append(proc)
        self.workers_started += 1
        return proc

    def start_process(
        self, name: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start another `streamscore` process of this run (learner, trainer...).

        ``env`` adds to the run's environment, for this process only.
        """
        exe = Path(sys.executable).with_name("streamscore")
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = (self.log_dir / f"{name}.log").open("ab")
            self._logs.append(log)
            out = log
        proc = spawn(
            [str(exe), "--log-level", "WARNING", *args],
            env={**self.env(), **(env or {})},
            stdout=out,
            stderr=out,
        )
        self.others.append(proc)
        return proc

    def crashed(self) -> list[str]:
        """Processes of this run that exited on their own (with their exit codes)."""
        out = []
        for i, proc in enumerate(self.workers):
            if proc.poll() is not None:
                out.append(f"worker-{i} exited with {proc.returncode}")
        for proc in self.others:
            if proc.poll() is not None:
                out.append(f"{' '.join(map(str, proc.args[3:]))} exited with {proc.returncode}")  # type: ignore[index]
        return out

    def stop_workers(self, sig: int = signal.SIGTERM) -> None:
        """Stop every worker process."""
        for proc in self.workers:
            stop(proc, sig)
        self.workers.clear()

    def close(self) -> None:
        """Stop every process and remove temporary files."""
        self.stop_workers()
        for proc in self.others:
            stop(proc)
        self.others.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def read_topics(
    conn: KafkaConnection,
    topics: list[str],
    on_message: Callable[[str, Any], None],
    done: Callable[[], bool],
    idle_timeout_s: float = 60.0,
    total_timeout_s: float = 3600.0,
    to_end: bool = False,
) -> None:
    """Read ``topics`` from the beginning until ``done()`` or nothing arrives for a while.

    With ``to_end``, reading stops once every partition is read up to the end offset
    it had when reading began (the idle timeout then does not apply: a slow start
    cannot end the read early). Uses an assign()-mode consumer (no consumer group),
    so reading never disturbs the pipeline's groups.
    """
    consumer = AIOKafkaConsumer(
        **conn.aiokafka_kwargs("-reader"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps: list[TopicPartition] = []
        for topic in topics:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer.topics()
                parts = consumer.partitions_for_topic(topic) or set()
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # The true ends (Fetch's high watermark): Tansu's ListOffsets names the last
        # batch's base offset + 1, which ended reads of `model-updates` after its
        # first, multi-megabyte records, before any snapshot of the learner.
        ends = await fetch_end_offsets(conn.aiokafka_kwargs("-reader"), tps) if to_end else {}

        async def at_end() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return False
            return True

        started = last = time.monotonic()
        while not done() and not (to_end and await at_end()):
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            now = time.monotonic()
            if batch:
                last = now
                for tp, records in batch.items():
                    for record in records:
                        on_message(tp.topic, record)
            idle = not to_end and now - last > idle_timeout_s
            if idle or now - started > total_timeout_s:
                return
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
