"""`streamscore bench`: every measurement in one run, tables, the doc section, the summary.

Sections, in order: throughput (pipeline, raw aiokafka, Faust forward-only over one
backlog), scaling (1, 2, 4 workers; full mode), the stage profile, latency at fixed
offered rates (in process and end to end), the handbook replay through every stage
(a slice in quick mode), and the scoring engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from streams.bench.conditions import conditions
from streams.bench.latency import LatencyRun, inprocess_latency, latency_table, worker_latency
from streams.bench.load import encode_messages, load_frame
from streams.bench.modelset import prepare_models
from streams.bench.profile import profile_table, stage_profile
from streams.bench.replay import replay_run, replay_table
from streams.bench.report import Table, append_section, percentiles, rate, section, us
from streams.bench.report import summary_line as format_summary
from streams.bench.throughput import (
    BenchContext,
    Consumed,
    ThroughputResult,
    compare,
    new_harness,
    scaling,
)
from streams.broker import EmbeddedBroker
from streams.kafka import KafkaConnection
from streams.runtime import broker_config
from streams.settings import StreamsSettings

SECTIONS = ("throughput", "scaling", "profile", "latency", "replay", "engines")
FIXED_RATES = (1000.0, 5000.0, 20000.0)
HANDBOOK_ROWS = 1_754_155


@dataclass(frozen=True)
class BenchConfig:
    """What one `streamscore bench` run measures, and how much of it.

    ``out`` None prints the tables without appending them anywhere.
    """

    quick: bool
    out: Path | None
    work_dir: Path
    data: Path | None
    sections: tuple[str, ...] = SECTIONS
    transactions: int = 100_000
    scaling_workers: tuple[int, ...] = (1, 2, 4)
    profile_transactions: int = 50_000
    latency_s: float = 10.0
    drain_s: float = 30.0
    #: Rows replayed (None: the whole file). The full run caps the replay: at the
    #: pipeline's measured rate the whole handbook takes far longer than a benchmark
    #: should; ``--replay-rows 0`` replays all of it.
    replay_rows: int | None = 50_000
    engine_sizes: tuple[int, ...] = (1, 16, 64, 256, 1024, 4096)
    engine_min_time: float = 0.3
    engine_repeats: int = 3
    cprofile: bool = False
    #: Free text recorded with the conditions (e.g. what else ran on the machine).
    note: str = ""

    @classmethod
    def for_mode(
        cls, quick: bool, out: Path | None, work_dir: Path, data: Path | None
    ) -> BenchConfig:
        """Defaults of the full run, or of the quick one (about two minutes on 2 cores)."""
        if not quick:
            return cls(quick, out, work_dir, data)
        return cls(
            quick,
            out,
            work_dir,
            data,
            sections=tuple(s for s in SECTIONS if s != "scaling"),
            transactions=6_000,
            scaling_workers=(1, 2),
            profile_transactions=6_000,
            latency_s=2.0,
            drain_s=5.0,
            replay_rows=3_000,
            engine_sizes=(1, 64, 256, 1024, 4096),
            engine_min_time=0.1,
            engine_repeats=1,
        )

    def rows_needed(self) -> int:
        """Transactions the sections need (the size of a synthetic stream)."""
        offered = max(FIXED_RATES) * self.latency_s
        worker = sum(FIXED_RATES) * self.latency_s + 2_000
        return int(
            max(
                self.transactions,
                self.profile_transactions,
                self.replay_rows or 0,
                offered,
                worker,
            )
        )


@dataclass
class BenchOutcome:
    """Tables and headline figures of a run."""

    tables: list[Table] = field(default_factory=list)
    pipeline_eps: float | None = None
    forward_eps: float | None = None
    raw_eps: float | None = None
    p99_ms_at_5k: float | None = None
    #: Wall seconds of the replay that ran (the whole file, or the stated slice).
    replay_s: float | None = None
    #: The whole file's replay: measured, or estimated from the slice.
    replay_full_s: float | None = None
    replay_rows: int | None = None
    replay_whole_rows: int | None = None

    def summary(self) -> str:
        """The final line."""
        return format_summary(
            self.pipeline_eps, self.forward_eps, self.raw_eps, self.p99_ms_at_5k, self.replay_s
        )


@contextlib.contextmanager
def _broker(settings: StreamsSettings) -> Iterator[tuple[KafkaConnection, int | None, str]]:
    if settings.kafka.bootstrap_servers:
        servers = settings.kafka.bootstrap_servers
        yield KafkaConnection.from_settings(settings.kafka, servers), None, f"external ({servers})"
        return
    with EmbeddedBroker(broker_config(settings.broker)) as broker:
        conn = KafkaConnection.from_settings(settings.kafka, broker.bootstrap, embedded=True)
        yield conn, broker.pid, f"embedded Tansu ({settings.broker.storage_engine}), same host"


def run_bench(
    config: BenchConfig,
    settings: StreamsSettings,
    say: Callable[[str], None] = print,
) -> BenchOutcome:
    """Run the configured sections; print each table as it is measured; append the doc."""
    begun = time.perf_counter()
    say = _timestamped(say, begun)
    outcome = BenchOutcome()
    mode = "quick" if config.quick else "full"
    log_dir = config.work_dir / "logs"
    data_file = config.data
    say(f"bench: {mode} run; logs in {log_dir}")
    frame, source = load_frame(data_file, None if data_file is not None else config.rows_needed())
    if data_file is None:
        data_file = config.work_dir / "synthetic.parquet"
        config.work_dir.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(data_file)
    first_day = frame["event_time"].min().floor("D").to_pydatetime()
    say("bench: preparing the served models (trained once, then reused)")
    models = prepare_models(config.work_dir, data_file, first_day)
    with _broker(settings) as (conn, broker_pid, broker_label):
        conds = conditions(settings, mode, broker_label)
        conds.append(("data", source))
        if config.note:
            conds.append(("note", config.note))
        ctx = BenchContext(settings, conn, models, broker_pid, log_dir)

        def show(table: Table) -> None:
            outcome.tables.append(table)
            say("\n" + table.markdown() + "\n")

        head = frame.iloc[: config.transactions].reset_index(drop=True)
        tp: ThroughputResult | None = None
        scaled: list[Consumed] = []
        if "throughput" in config.sections:
            say(f"bench: throughput over {len(head):,} transactions and their labels")
            tp = asyncio.run(compare(ctx, head))
            outcome.pipeline_eps = tp.pipeline.tx_per_s
            outcome.forward_eps = tp.faust.tx_per_s
            outcome.raw_eps = tp.raw.tx_per_s
        if "scaling" in config.sections:
            for workers in config.scaling_workers:
                if workers == 1 and tp is not None:
                    continue
                say(f"bench: scaling, {workers} worker processes")
                scaled.append(asyncio.run(scaling(ctx, head, workers)))
        if tp is not None or scaled:
            show(throughput_table(tp, scaled))
        served = None
        profile_cpu_per_tx: float | None = None
        if "profile" in config.sections or "latency" in config.sections:
            served = models.model_set(settings.scoring)
        if "profile" in config.sections and served is not None:
            say("bench: stage profile (in process)")
            part = frame.iloc[: config.profile_transactions]
            messages = encode_messages(part, "transactions", "labels")
            profile = stage_profile(
                settings, served, messages, settings.worker.batch_size, config.cprofile
            )
            profile_cpu_per_tx = profile.total_s / profile.transactions
            show(profile_table(profile))
            if tp is not None:
                show(worker_cpu_table(tp.pipeline, profile_cpu_per_tx))
            if profile.cprofile:
                path = config.work_dir / "cprofile.txt"
                path.write_text(profile.cprofile)
                say(f"bench: cProfile of the stages written to {path}")
        if "latency" in config.sections and served is not None:
            runs = latency_runs(ctx, config, frame, served, tp, profile_cpu_per_tx, say)
            at_5k = [r for r in runs if r.where == "in process" and r.offered == 5000.0]
            if at_5k and at_5k[0].e2e:
                outcome.p99_ms_at_5k = 1000 * (percentiles(at_5k[0].e2e, [99])[0] or math.nan)
            table = latency_table(runs)
            table.note(
                "in process: our stages only (no broker, no Faust), arrivals paced on the wall "
                "clock, micro-batches after a 1 ms linger; this is the 'excluding broker hops' "
                "figure of the summary line"
            )
            table.note(
                "worker: a `streamscore worker` process on the broker; in = sent -> "
                "ingest_time, worker = ingest_time -> scored_time (includes the "
                "txn-by-terminal hop), terminal = enriched readable -> scored_time, "
                "out = scored_time -> read back"
            )
            show(table)
        if "replay" in config.sections:
            rows = config.replay_rows
            part = frame if rows is None else frame.iloc[:rows].reset_index(drop=True)
            say(f"bench: replay of {len(part):,} transactions through every stage")
            result = asyncio.run(replay_run(ctx, part))
            label = "full file" if rows is None or rows >= len(frame) else "slice"
            show(replay_table(result, max(len(frame), len(part)), label))
            outcome.replay_s = result.wall_s
            # The target is the handbook's; a synthetic stream is scaled to its size.
            whole = len(frame) if config.data is not None else HANDBOOK_ROWS
            outcome.replay_full_s = result.estimate_s(whole)
            outcome.replay_rows = len(part)
            outcome.replay_whole_rows = whole
        if "engines" in config.sections:
            say("bench: scoring engines")
            from streams.bench.engines import engines_table, measure_engines

            stream_batch = None
            if tp is not None:
                score = [s for s in tp.pipeline.stages if s.stage == "score"]
                stream_batch = score[0].mean_batch if score else None
            rates = measure_engines(
                list(config.engine_sizes),
                min_time=config.engine_min_time,
                repeats=config.engine_repeats,
                cache_dir=config.work_dir / "engines",
            )
            show(engines_table(rates, stream_batch))
    show(targets_table(outcome, config))
    summary = outcome.summary()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    conds.append(("load average at the end (1, 5, 15 min)", load))
    conds.append(("duration", f"{time.perf_counter() - begun:.0f} s"))
    if config.out is not None:
        append_section(
            config.out,
            section(
                f"{conds[0][1]} — `streamscore bench{' --quick' if config.quick else ''}`",
                conds,
                outcome.tables,
                summary,
            ),
        )
        say(f"bench: appended to {config.out}")
    say(f"bench: done in {time.perf_counter() - begun:.0f} s")
    return outcome


def _timestamped(say: Callable[[str], None], begun: float) -> Callable[[str], None]:
    """``say`` with the seconds since ``begun`` in each ``bench:`` progress line."""

    def stamped(text: str) -> None:
        if text.startswith("bench: "):
            text = f"bench: [{time.perf_counter() - begun:4.0f} s] {text[7:]}"
        say(text)

    return stamped


def latency_runs(
    ctx: BenchContext,
    config: BenchConfig,
    frame: pd.DataFrame,
    served: object,
    tp: ThroughputResult | None,
    profile_cpu_per_tx: float | None,
    say: Callable[[str], None],
) -> list[LatencyRun]:
    """In-process and worker latency at the fixed rates and a sustainable one."""
    from streams.scoring import ModelSet

    assert isinstance(served, ModelSet)
    settings = ctx.settings
    runs: list[LatencyRun] = []
    # Labels 1 h of event time late: labels flow at the transaction rate from the start.
    in_rates = list(FIXED_RATES)
    if profile_cpu_per_tx:
        in_rates.append(round_rate(0.8 / profile_cpu_per_tx))
    need = int(max(in_rates) * config.latency_s)
    messages = encode_messages(frame.iloc[:need], "transactions", "labels", label_delay="1h")
    for offered in sorted(set(in_rates)):
        say(f"bench: latency in process at {rate(offered)} tx/s")
        runs.append(inprocess_latency(settings, served, messages, offered, config.latency_s))
    w_rates = list(FIXED_RATES)
    if tp is not None and tp.pipeline.tx_per_s:
        w_rates.append(round_rate(0.8 * tp.pipeline.tx_per_s))
    w_rates = sorted(set(w_rates))
    say(f"bench: latency through a worker at {', '.join(rate(r) for r in w_rates)} tx/s")

    def skip(offered: float, done: list[LatencyRun]) -> str | None:
        failed = [r for r in done if r.transactions and not r.sustained and r.offered < offered]
        return f"not run: {rate(failed[0].offered)}/s was not sustained" if failed else None

    async def through_worker() -> list[LatencyRun]:
        with new_harness(ctx) as harness:
            await ctx.models.publish_online(ctx.conn, harness.topics.model_updates.name)
            topics = harness.topics
            total = int(sum(w_rates) * config.latency_s) + 2000
            messages = encode_messages(
                frame.iloc[:total], topics.transactions.name, topics.labels.name, "1h"
            )
            harness.start_worker()
            # Warm-up: wait until the worker has joined, loaded the models and scored.
            warm = await worker_latency(ctx.conn, harness, messages, [500.0], 2.0, drain_s=60.0)
            start = warm[0].transactions if warm else 0
            index = _message_index(messages, start)
            return await worker_latency(
                ctx.conn,
                harness,
                messages,
                w_rates,
                config.latency_s,
                config.drain_s,
                start=index,
                should_skip=skip,
            )

    runs.extend(asyncio.run(through_worker()))
    return runs


def _message_index(messages: object, transactions: int) -> int:
    from streams.bench.load import Messages

    assert isinstance(messages, Messages)
    seen = 0
    for i, kind in enumerate(messages.kinds):
        if seen >= transactions:
            return i
        seen += kind
    return len(messages.kinds)


def round_rate(value: float) -> float:
    """Two significant digits, down (a rate to offer)."""
    if value <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return float(math.floor(value / scale) * scale)


def throughput_table(tp: ThroughputResult | None, scaled: list[Consumed]) -> Table:
    """Consumers of one backlog side by side, and the pipeline with more workers."""
    table = Table(
        "Throughput over one backlog (transactions + one label each)",
        [
            "consumer",
            "processes",
            "tx/s",
            "tx/s per process",
            "msgs/s in",
            "its CPU µs/tx",
            "broker CPU µs/tx",
            "vs Faust forward",
            "peak RSS MiB",
            "duplicates",
        ],
    )
    rows = [] if tp is None else [tp.raw, tp.faust, tp.pipeline]
    rows.extend(scaled)
    faust = None if tp is None else tp.faust.tx_per_s
    for c in rows:
        own = "worker" if c.name.startswith("pipeline") else c.name
        tx = c.tx_per_s
        versus = f"{100 * tx / faust:.0f} %" if tx and faust else "-"
        table.add(
            c.name,
            c.processes,
            rate(tx),
            rate(None if tx is None else tx / c.processes),
            rate(c.msgs_per_s),
            us(c.cpu_per_tx_s(own)),
            us(c.cpu_per_tx_s("broker")),
            versus,
            "-" if c.peak_rss_mib is None else f"{c.peak_rss_mib:.0f}",
            c.outputs.duplicates,
        )
        if c.outputs.crashed or not c.outputs.complete:
            table.note(
                f"{c.name}: {len(c.outputs.times):,}/{c.outputs.expected:,} outputs"
                + (f"; {', '.join(c.outputs.crashed)}" if c.outputs.crashed else "")
            )
    if tp is not None:
        labels = tp.pipeline.messages - tp.pipeline.transactions
        table.note(
            f"{tp.pipeline.transactions:,} transactions and {labels:,} "
            f"labels published before any consumer started ({tp.publish_s:.1f} s); each consumer "
            "reads them all in its own group, one after the other, on the same broker"
        )
    table.note(
        "tx/s: over the steady window, from output 10 % to the last (start-up left out); "
        "forwarders write every message, the pipeline one prediction per transaction"
    )
    table.note("CPU: user + system seconds from /proc over the same window, per transaction")
    if tp is not None and tp.raw.own_msgs_per_s is not None:
        table.note(
            "raw: rate and CPU timed by the forwarder itself (first fetch to last commit; "
            "it drains the backlog faster than the reader outside can time it)"
        )
    return table


def worker_cpu_table(pipeline: Consumed, profile_cpu_per_tx: float) -> Table:
    """Where a worker's CPU goes: the process, its stages, the stages in process."""
    table = Table(
        "Worker CPU per transaction",
        ["measure", "µs / transaction", "from"],
    )
    worker = pipeline.cpu_per_tx_s("worker")
    table.add("worker process, all of it", us(worker), "/proc CPU over the steady window")
    for stage in pipeline.stages:
        if stage.seconds:
            per_tx = stage.seconds / pipeline.transactions
            table.add(
                f"stage `{stage.stage}` (batches of {stage.mean_batch or 0:.0f})",
                us(per_tx),
                "worker's streamscore_batch_duration_seconds (wall, whole run)",
            )
    table.add("our stages, in process", us(profile_cpu_per_tx), "stage profile (CPU)")
    if worker is not None:
        table.add(
            "rest: Faust, aiokafka, sends, changelogs, metrics",
            us(worker - profile_cpu_per_tx),
            "worker process less our stages in process",
        )
    if worker is not None and worker < profile_cpu_per_tx:
        table.note(
            "a negative rest: the in-process profile cost more than the whole worker; the "
            "worker's window ends at its last prediction, so labels it applies after that "
            "fall outside it"
        )
    return table


def targets_table(outcome: BenchOutcome, config: BenchConfig) -> Table:
    """Each target of the performance issue beside this run's figure."""
    table = Table("Targets", ["target", "measured", "met"])

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("yes" if ok else "no")

    p, f = outcome.pipeline_eps, outcome.forward_eps
    table.add(
        "pipeline >= 50k tx/s per worker process",
        rate(p),
        verdict(None if p is None else p >= 50_000),
    )
    table.add(
        "pipeline >= 80 % of the Faust forward-only agent",
        f"{100 * p / f:.0f} %" if p and f else "-",
        verdict(None if not (p and f) else p >= 0.8 * f),
    )
    q = outcome.p99_ms_at_5k
    table.add(
        "p99 excluding broker hops <= 10 ms at 5k tx/s",
        "-" if q is None else f"{q:.1f} ms",
        verdict(None if q is None else q <= 10.0),
    )
    r, rows, whole = outcome.replay_full_s, outcome.replay_rows, outcome.replay_whole_rows
    measured = "-"
    if r is not None:
        measured = f"{r:,.0f} s"
        if rows is not None and whole is not None and rows < whole:
            measured += f" (estimated from {rows:,} of {whole:,} rows)"
    table.add(
        "full handbook replay <= 60 s",
        measured,
        verdict(None if r is None else r <= 60.0),
    )
    table.add("ORT CUDA >= 10x ORT CPU on the sequence model", "see the engines table", "-")
    return table
