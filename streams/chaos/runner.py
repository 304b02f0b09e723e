"""Run one fault scenario end to end and verify it.

A run: fresh topics and consumer group (:class:`~streams.harness.Harness`), worker
processes and the online learner started with the same commands a deployment uses,
the seeded workload published at a steady pace with every acknowledgement recorded,
a fault injected mid-stream, the outputs read back while it happens, the processes
sampled once a second. It ends when every acknowledged input has an outcome and no
output has arrived for a few seconds (late repeats are counted too), or when
nothing arrives for ``idle_timeout_s``. The learner is then stopped (it publishes
its last snapshot) and :func:`streams.chaos.verify.verify` counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.features import featurize_frame
from streams.broker import EmbeddedBroker
from streams.chaos.faults import FAULTS, FaultContext
from streams.chaos.observe import Outputs, Sampler
from streams.chaos.produce import Pace, publish_plan
from streams.chaos.soak import SoakTrends, soak_trends, task_counts
from streams.chaos.truth import GroundTruth
from streams.chaos.verify import Counts, Learning, count_features, verify
from streams.chaos.workload import WorkloadConfig, plan_workload, valid_frame
from streams.compat import fetch_end_offsets
from streams.harness import Harness, read_topics
from streams.kafka import KafkaConnection
from streams.process import stop
from streams.progress import ProgressFn
from streams.settings import StreamsSettings, TopicsSettings

logger = logging.getLogger(__name__)

#: No output for this long after every input has one: the run is over.
QUIET_S = 4.0


@dataclass(frozen=True)
class Scenario:
    """One fault and the workload it runs under."""

    name: str
    fault: str
    workers: int = 1
    customers: int = 150
    terminals: int = 300
    days: int = 10
    poison_per_valid: float = 0.0
    rate: float | None = 500.0
    learner: bool = True
    #: Restart processes that exit on their own (as a process supervisor would).
    supervise: bool = False
    #: The run is over when no output arrives for this long (at least the caller's).
    idle_s: float = 90.0


@dataclass
class RunResult:
    """The outcome of one scenario with one seed."""

    scenario: Scenario
    seed: int
    counts: Counts
    events: list[tuple[str, float]]
    recovery_s: list[float]
    peak_rss_bytes: int
    max_backlog: int
    max_open_files: int
    max_threads: int
    wall_s: float
    crashed: list[str] = field(default_factory=list)
    publish_failures: int = 0
    #: Memory, files, threads and tasks of the processes that lived through the run.
    trends: SoakTrends | None = None


def accounted(truth: GroundTruth, outputs: Outputs) -> bool:
    """True when every acknowledged input has its outcome."""
    acked = truth.acked
    if outputs.outcomes() < len(acked) - sum(
        1 for a in acked.values() if a.planned.kind == "label"
    ):
        return False
    for a in acked.values():
        kind = a.planned.kind
        if kind == "label":
            continue
        where = (a.topic, a.partition, a.offset)
        if kind == "valid":
            if a.ident not in outputs.predictions and where not in outputs.dead:
                return False
        elif where not in outputs.dead:
            return False
    return True


def recovery_times(
    truth: GroundTruth, outputs: Outputs, events: list[tuple[str, float]]
) -> list[float]:
    """Per fault: seconds until every input acknowledged before it had its outcome."""
    out = []
    for what, at in events:
        if "restarted" in what or "added" in what or "back" in what:
            continue
        latest = at
        for a in truth.acked.values():
            if a.at >= at or a.planned.kind == "label":
                continue
            where = (a.topic, a.partition, a.offset)
            seen = outputs.first_prediction_at.get(a.ident) if a.planned.kind == "valid" else None
            seen = seen or outputs.first_dead_at.get(where)
            if seen is not None:
                latest = max(latest, seen)
        out.append(latest - at)
    return out


def online_manifest(record: Any) -> dict[str, Any] | None:
    """The manifest of an online-learner snapshot on `model-updates` (None: another record)."""
    if record.key != b"online":
        return None
    return json.loads(record.value).get("manifest") or {}


def manifest_offsets(manifest: dict[str, Any]) -> dict[int, int]:
    """Per `labeled-examples` partition, the next offset a snapshot has not learned from."""
    return {int(p): int(o) for p, o in manifest.get("offsets", {}).items()}


async def wait_for_learner(
    conn: KafkaConnection, topics: TopicsSettings, timeout_s: float = 180.0
) -> bool:
    """Wait until the learner's latest snapshot covers the labeled examples written so far.

    A run ends once every prediction is accounted for; a learner restarted late in
    it (killed, then importing its libraries again) may not have published a snapshot
    yet. Returns whether it caught up within ``timeout_s``.
    """
    name = topics.labeled_examples.name
    partitions = [(name, p) for p in range(topics.partitions_of(topics.labeled_examples))]
    ends = await fetch_end_offsets(conn.aiokafka_kwargs("-reader"), partitions)
    covered: dict[int, int] = {}

    def on_update(topic: str, record: Any) -> None:
        manifest = online_manifest(record)
        if manifest is not None:
            covered.clear()
            covered.update(manifest_offsets(manifest))

    def caught_up() -> bool:
        return all(covered.get(tp.partition, 0) >= end for tp, end in ends.items())

    await read_topics(
        conn,
        [topics.model_updates.name],
        on_update,
        caught_up,
        idle_timeout_s=timeout_s,
        total_timeout_s=timeout_s,
    )
    return caught_up()


async def read_learning(conn: KafkaConnection, topics: TopicsSettings) -> Learning | None:
    """The learner's last snapshot: learned count against distinct examples it covers."""
    snapshots: list[dict[str, Any]] = []

    def on_update(topic: str, record: Any) -> None:
        manifest = online_manifest(record)
        if manifest is not None:
            snapshots.append(manifest)

    await read_topics(
        conn,
        [topics.model_updates.name],
        on_update,
        lambda: False,
        to_end=True,
        total_timeout_s=600.0,
    )
    if not snapshots:
        return None
    last = snapshots[-1]
    upto = manifest_offsets(last)
    ids: set[str] = set()
    n = 0

    def on_example(topic: str, record: Any) -> None:
        nonlocal n
        if record.offset < upto.get(record.partition, 0):
            ids.add(json.loads(record.value)["transaction_id"])
            n += 1

    await read_topics(
        conn,
        [topics.labeled_examples.name],
        on_example,
        lambda: False,
        to_end=True,
        total_timeout_s=600.0,
    )
    return Learning(int(last.get("n_learned", 0)), len(ids), n)


async def read_trends(
    conn: KafkaConnection,
    topics: TopicsSettings,
    sampler: Sampler,
    workers: list[subprocess.Popen[bytes]],
) -> SoakTrends:
    """Trends of the watched processes, with the task counts of ``workers``."""
    raw: list[bytes] = []

    def on_snapshot(topic: str, record: Any) -> None:
        if record.key == b"worker":
            raw.append(record.value)

    await read_topics(
        conn, [topics.metrics.name], on_snapshot, lambda: False, to_end=True, total_timeout_s=600.0
    )
    pids = {w.pid: f"worker-0 (pid {w.pid})" for w in workers}
    return soak_trends(sampler.series, task_counts(raw), pids)


def reading_limit_s(n_records: int, scenario: Scenario) -> float:
    """How long the outputs are read at most: the paced load, as long again to drain.

    >>> reading_limit_s(5_760_000, Scenario("soak", "soak", rate=1600.0, idle_s=900.0))
    8100.0
    >>> reading_limit_s(1000, Scenario("kill", "kill"))
    3600.0
    """
    load_s = n_records / scenario.rate if scenario.rate else 0.0
    return max(3600.0, 2 * load_s + scenario.idle_s)


async def run_scenario(
    settings: StreamsSettings,
    conn: KafkaConnection,
    scenario: Scenario,
    seed: int,
    log_dir: Path | None = None,
    idle_timeout_s: float = 90.0,
    progress: ProgressFn | None = None,
    broker: EmbeddedBroker | None = None,
) -> RunResult:
    """Run ``scenario`` with ``seed`` and count what went wrong.

    ``progress(phase, done, total)`` is called as outcomes are read back.
    """
    base = WorkloadConfig(seed, scenario.customers, scenario.terminals, scenario.days)
    n_poison = int(len(valid_frame(base)) * scenario.poison_per_valid)
    workload = plan_workload(
        WorkloadConfig(seed, scenario.customers, scenario.terminals, scenario.days, n_poison)
    )
    started = time.time()
    with Harness(settings, conn, log_dir=log_dir) as harness:
        harness.create_topics()
        topics = harness.topics
        for _ in range(scenario.workers):
            harness.start_worker()
        if scenario.learner:
            harness.start_process("learner", "learner")
        # The first worker and the learner, followed one by one (soak trends).
        watch = {f"worker-0 (pid {harness.workers[0].pid})": harness.workers[0].pid}
        watch.update({f"learner (pid {p.pid})": p.pid for p in harness.others})
        truth = GroundTruth(topics.transactions.name, topics.labels.name)
        truth.plan(workload.records)
        outputs = Outputs(topics.predictions.name, topics.features.name, topics.dead_letters.name)
        pace = Pace(scenario.rate)
        owed = sum(1 for p in workload.records if p.kind != "label")
        ctx = FaultContext(harness, pace, outputs, owed, np.random.default_rng(seed), broker=broker)
        live = asyncio.Event()  # the first outcome: the workers are up
        on_message = outputs.on_message

        def on_output(topic: str, record: Any) -> None:
            on_message(topic, record)
            live.set()

        sampler = Sampler()
        last_count = [0, time.monotonic()]

        warm_up = max(len(workload.records) // 50, 1)
        producing = asyncio.create_task(
            publish_plan(conn, truth, workload.records, pace, gate=(warm_up, live))
        )
        faulting = asyncio.ensure_future(FAULTS[scenario.fault](ctx))

        def done() -> bool:
            now = time.monotonic()
            if progress is not None:
                progress(f"{scenario.name} {seed}", min(outputs.outcomes(), owed), owed)
            n = outputs.outcomes() + sum(outputs.predictions.values())
            if n != last_count[0]:
                last_count[:] = [n, now]
            if not (producing.done() and faulting.done()):
                return False
            return now - last_count[1] >= QUIET_S and accounted(truth, outputs)

        async def sample() -> None:
            while True:
                backlog = sum(1 for a in truth.acked.values() if a.planned.kind != "label")
                backlog -= outputs.outcomes()
                live = [w.pid for w in harness.workers if w.poll() is None]
                sampler.sample(live, max(backlog, 0), watch)
                await asyncio.sleep(1.0)

        async def supervise() -> None:
            while True:
                await asyncio.sleep(0.5)
                for proc in list(harness.workers):
                    if proc.poll() is not None:
                        harness.workers.remove(proc)
                        harness.start_worker()
                        ctx.note(f"worker exited with {proc.returncode}, restarted")
                for proc in list(harness.others):
                    if proc.poll() is not None:
                        harness.others.remove(proc)
                        harness.start_process("learner", "learner")
                        ctx.note(f"learner exited with {proc.returncode}, restarted")

        sampling = asyncio.create_task(sample())
        supervising = asyncio.create_task(supervise()) if scenario.supervise else None
        try:
            await read_topics(
                conn,
                [topics.predictions.name, topics.features.name, topics.dead_letters.name],
                on_output,
                done,
                idle_timeout_s=max(idle_timeout_s, scenario.idle_s),
                total_timeout_s=reading_limit_s(len(workload.records), scenario),
            )
        finally:
            sampling.cancel()
            if supervising is not None:
                supervising.cancel()
                await asyncio.gather(supervising, return_exceptions=True)
            for task in (producing, faulting):
                if not task.done():
                    task.cancel()
            await asyncio.gather(producing, faulting, sampling, return_exceptions=True)
        crashed = harness.crashed()
        if scenario.learner and not await wait_for_learner(conn, topics):
            logger.warning("the learner's last snapshot does not cover every labeled example")
        for proc in list(harness.others):
            await asyncio.to_thread(stop, proc, signal.SIGTERM)
        harness.others.clear()
        learning = await read_learning(conn, topics) if scenario.learner else None
        trends = None
        if scenario.fault == "soak":
            survivors = list(harness.workers[:1])
            # Stopped first: a live worker's snapshots would keep the reader waiting.
            await asyncio.to_thread(harness.stop_workers, signal.SIGTERM)
            trends = await read_trends(conn, topics, sampler, survivors)
    expected = featurize_frame(
        workload.frame[
            ["transaction_id", "event_time", "customer_id", "terminal_id", "amount"]
        ].assign(is_fraud=workload.frame["is_fraud"], label_time=workload.frame["label_time"]),
        None,
    )
    counts = verify(truth, outputs, count_features(expected), learning)
    if log_dir is not None:
        truth.write(log_dir / "truth.jsonl")
    return RunResult(
        scenario,
        seed,
        counts,
        ctx.events,
        recovery_times(truth, outputs, ctx.events),
        sampler.peak_rss_bytes,
        sampler.max_backlog,
        max((s.open_files for s in sampler.samples), default=0),
        max((s.threads for s in sampler.samples), default=0),
        time.time() - started,
        crashed,
        len(pace.failures),
        trends,
    )
