"""Throughput: the pipeline beside a raw aiokafka forwarder and a Faust forwarder.

One run's `transactions` and `labels` topics are filled before any consumer starts
(a backlog, so the producer never limits and never competes for CPU); then each
consumer reads the same messages in its own group, one after the other:

- **raw**: :func:`streams.bench.forward.raw_forward` in its own process;
- **faust**: :func:`streams.bench.forward.faust_forward_app` in its own process;
- **pipeline**: ``streamscore worker`` processes (one, or several for scaling).

Rates are transactions per second over the steady window (from output number 10 %
to the last), so start-up, group joins and model loading are left out; the labels
(one per transaction) are read by every consumer and ride along.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from streams.bench.forward import ForwardConfig
from streams.bench.load import Messages, encode_messages, publish_all
from streams.bench.measure import (
    Outputs,
    StageCost,
    peak_rss_mib,
    read_outputs,
    scrape,
    stage_costs,
)
from streams.bench.modelset import BenchModels
from streams.broker import free_port
from streams.harness import Harness
from streams.kafka import KafkaConnection
from streams.process import spawn, stop
from streams.settings import StreamsSettings
from streams.topics import TopicSpec, create_topics


@dataclass
class BenchContext:
    """What every measurement needs: the broker, the models, where logs go."""

    settings: StreamsSettings
    conn: KafkaConnection
    models: BenchModels
    broker_pid: int | None
    log_dir: Path
    idle_timeout_s: float = 60.0

    def pids(self, **children: int) -> dict[str, int]:
        """Processes whose CPU a measurement reports: the children, broker, this one."""
        out = dict(children)
        if self.broker_pid is not None:
            out["broker"] = self.broker_pid
        out["bench"] = os.getpid()
        return out


@dataclass
class Consumed:
    """One consumer's run over the backlog."""

    name: str
    transactions: int
    messages: int
    outputs: Outputs
    processes: int = 1
    stages: list[StageCost] = field(default_factory=list)
    peak_rss_mib: float | None = None
    #: The consumer's own timing (messages/s, CPU s/message), used in place of the
    #: reader's when set (the raw forwarder: see ForwardStats).
    own_msgs_per_s: float | None = None
    own_cpu_per_msg_s: float | None = None

    @property
    def tx_per_s(self) -> float | None:
        """Transactions per second over the steady window."""
        if self.own_msgs_per_s is not None:
            return self.own_msgs_per_s * self.transactions / self.messages
        rate = self.outputs.rate
        if rate is None:
            return None
        # Forwarders output every message; the pipeline one prediction per transaction.
        per_tx = self.outputs.expected / self.transactions
        return rate / per_tx

    @property
    def msgs_per_s(self) -> float | None:
        """Input messages (transactions and labels) per second over the steady window."""
        tx = self.tx_per_s
        return None if tx is None else tx * self.messages / self.transactions

    def cpu_per_tx_s(self, name: str) -> float | None:
        """CPU seconds a process used per transaction of the window."""
        if self.own_cpu_per_msg_s is not None and name == self.name:
            return self.own_cpu_per_msg_s * self.messages / self.transactions
        used = self.outputs.cpu_used()
        tx = self.outputs.window_outputs * self.transactions / self.outputs.expected
        if not tx:
            return None
        total = sum(v for k, v in used.items() if k == name or k.startswith(name + "-"))
        return total / tx if any(k == name or k.startswith(name + "-") for k in used) else None


def new_harness(ctx: BenchContext, partitions: int | None = None) -> Harness:
    """A run with its own topics, served by the benchmark's models."""
    settings = ctx.settings
    if partitions is not None:
        topics = settings.topics.model_copy(update={"partitions": partitions})
        settings = settings.model_copy(update={"topics": topics})
    harness = Harness(settings, ctx.conn, extra_env=dict(ctx.models.env()), log_dir=ctx.log_dir)
    harness.create_topics()
    return harness


async def fill(ctx: BenchContext, harness: Harness, frame: pd.DataFrame) -> tuple[Messages, float]:
    """Publish the frame's transactions and labels to the run's topics (the backlog)."""
    await ctx.models.publish_online(ctx.conn, harness.topics.model_updates.name)
    topics = harness.topics
    messages = encode_messages(frame, topics.transactions.name, topics.labels.name)
    seconds = await publish_all(ctx.conn, messages)
    return messages, seconds


async def run_forwarder(
    ctx: BenchContext, harness: Harness, messages: Messages, kind: str
) -> Consumed:
    """Run one forwarder over the backlog and time its outputs."""
    sink = f"bench-{kind}.{harness.run_id}"
    partitions = harness.topics.partitions
    create_topics(ctx.conn, [TopicSpec(sink, partitions, 1, {})])
    config = ForwardConfig(
        sources=(harness.topics.transactions.name, harness.topics.labels.name),
        sink=sink,
        group=f"bench-{kind}-{uuid.uuid4().hex[:8]}",
        data_dir=str(harness.tmp / f"forward-{kind}"),
        embedded=ctx.conn.embedded,
        stats_file=str(harness.tmp / f"forward-{kind}.json") if kind == "raw" else "",
    )
    env = {**harness.env(), **config.env()}
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = (ctx.log_dir / f"forward-{kind}.log").open("ab")
    started = time.perf_counter()
    proc = spawn(
        [sys.executable, "-m", "streams.bench.forward", kind], env=env, stdout=log, stderr=log
    )
    try:
        outputs = await read_outputs(
            ctx.conn,
            [sink],
            len(messages),
            pids=lambda: ctx.pids(**{kind: proc.pid}),
            crashed=lambda: _exited({kind: proc}),
            distinct_keys=False,
            started=started,
            idle_timeout_s=ctx.idle_timeout_s,
        )
        rss = peak_rss_mib(proc.pid)
    finally:
        stop(proc, signal.SIGTERM, timeout=15)
        log.close()
    consumed = Consumed(kind, messages.transactions, len(messages), outputs, peak_rss_mib=rss)
    if config.stats_file:
        try:
            own = json.loads(Path(config.stats_file).read_text())
        except (OSError, ValueError):
            own = None
        if own and own["seconds"] > 0 and own["records"] >= len(messages):
            consumed.own_msgs_per_s = own["records"] / own["seconds"]
            consumed.own_cpu_per_msg_s = own["cpu_seconds"] / own["records"]
    return consumed


async def run_pipeline(
    ctx: BenchContext, harness: Harness, messages: Messages, workers: int = 1
) -> Consumed:
    """Start ``workers`` worker processes on the backlog and time the predictions."""
    port = free_port()
    extra = dict(harness.extra_env)
    started = time.perf_counter()
    for i in range(workers):
        # Each worker's metrics endpoint on a known port (the first one is scraped).
        harness.extra_env = {**extra, "STREAMSCORE_METRICS__PORT": str(port if i == 0 else 0)}
        harness.start_worker()
    harness.extra_env = extra
    procs = list(harness.workers)
    outputs = await read_outputs(
        ctx.conn,
        [harness.topics.predictions.name],
        messages.transactions,
        pids=lambda: ctx.pids(**{f"worker-{i}": p.pid for i, p in enumerate(procs)}),
        crashed=harness.crashed,
        distinct_keys=True,
        started=started,
        idle_timeout_s=ctx.idle_timeout_s,
    )
    stages: list[StageCost] = []
    if workers == 1:
        try:
            stages = stage_costs(scrape(f"http://127.0.0.1:{port}/metrics"))
        except OSError:
            stages = []
    rss = max((peak_rss_mib(p.pid) or 0.0 for p in procs), default=None)
    harness.stop_workers()
    name = "pipeline" if workers == 1 else f"pipeline x{workers}"
    return Consumed(
        name,
        messages.transactions,
        len(messages),
        outputs,
        processes=workers,
        stages=stages,
        peak_rss_mib=rss,
    )


def _exited(procs: dict[str, subprocess.Popen[bytes]]) -> list[str]:
    return [f"{n} exited with {p.returncode}" for n, p in procs.items() if p.poll() is not None]


@dataclass
class ThroughputResult:
    """The three consumers of one backlog."""

    raw: Consumed
    faust: Consumed
    pipeline: Consumed
    publish_s: float


async def compare(ctx: BenchContext, frame: pd.DataFrame) -> ThroughputResult:
    """Raw forwarder, Faust forwarder and the pipeline over the same backlog."""
    with new_harness(ctx) as harness:
        messages, publish_s = await fill(ctx, harness, frame)
        raw = await run_forwarder(ctx, harness, messages, "raw")
        faust = await run_forwarder(ctx, harness, messages, "faust")
        pipeline = await run_pipeline(ctx, harness, messages)
    return ThroughputResult(raw, faust, pipeline, publish_s)


async def scaling(ctx: BenchContext, frame: pd.DataFrame, workers: int) -> Consumed:
    """The pipeline with ``workers`` processes in one group on a fresh backlog."""
    with new_harness(ctx) as harness:
        messages, _ = await fill(ctx, harness, frame)
        return await run_pipeline(ctx, harness, messages, workers=workers)
