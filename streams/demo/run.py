"""Orchestrate a demo: broker, topics, first model, processes, feed, dashboard, shutdown.

The pieces are the system's own: the broker from :func:`streams.runtime.kafka_connection`
(embedded unless one is configured), a :class:`streams.harness.Harness` for the run's
topics, registry, signing key and processes, ``streamscore train`` for the first model
(:func:`streams.backtest.first_model_args`), then ``streamscore worker``, ``learner``
and ``trainer`` as child processes. The demo itself only publishes the stream and reads
the outputs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live

from streams.backtest import first_model_args, first_model_version
from streams.demo.config import DemoConfig
from streams.demo.dashboard import render, status_line
from streams.demo.feed import Feed
from streams.demo.reader import read_outputs
from streams.demo.state import DemoState, View
from streams.demo.stream import DemoStream, build_stream
from streams.harness import Harness
from streams.runtime import kafka_connection
from streams.settings import StreamsSettings

logger = logging.getLogger(__name__)

#: Seconds without a new output after the stream ended before giving up on the rest.
DRAIN_IDLE_S = 30.0
#: Seconds of outputs (drift events, updates) still collected once everything is scored.
GRACE_S = 2.0
#: Seconds between status lines in headless runs.
HEADLESS_EVERY_S = 5.0

Refresh = Callable[[], None]


@dataclass
class DemoRun:
    """How a demo went: its state, where its files go, how it ended."""

    config: DemoConfig
    stream: DemoStream
    state: DemoState
    report_dir: Path
    ended: str = "stream ended"
    wall_s: float = 0.0
    first_model: str | None = None
    failed: bool = False
    #: The dashboard's figures when the run ended, before its processes were stopped.
    last_view: View | None = None


def report_dir_for(out_dir: Path, now: datetime | None = None) -> Path:
    """``<out_dir>/demo-<UTC timestamp>``.

    Examples
    --------
    >>> report_dir_for(Path("reports"), datetime(2024, 5, 1, 12, 30, 5, tzinfo=UTC)).as_posix()
    'reports/demo-20240501-123005'
    """
    now = now or datetime.now(UTC)
    return out_dir / f"demo-{now:%Y%m%d-%H%M%S}"


@contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send this process's log records to ``path`` (the terminal shows the dashboard)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = saved
        handler.close()


def run_demo(config: DemoConfig, settings: StreamsSettings, console: Console) -> DemoRun:
    """Run the demo until the stream ends or it is interrupted; processes are stopped."""
    started = time.monotonic()
    report_dir = report_dir_for(config.out_dir)
    log_dir = report_dir / "logs"
    with logs_to(log_dir / "demo.log"):
        with console.status("building the stream..."):
            stream = build_stream(config)
        run = DemoRun(config, stream, DemoState(stream), report_dir)
        run.state.step("building the stream", started)
        run.state.step("starting the broker", time.monotonic())
        try:
            asyncio.run(_main(run, settings, console, log_dir))
        except KeyboardInterrupt:
            run.ended = "interrupted"
        except Exception as exc:  # reported to the user; the details are in the logs
            logger.exception("demo failed")
            run.ended, run.failed = f"failed: {exc}", True
    run.wall_s = time.monotonic() - started
    run.state.step("stopped", time.monotonic())
    return run


async def _main(run: DemoRun, settings: StreamsSettings, console: Console, log_dir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        run.ended = "interrupted"
        run.state.step("interrupted", time.monotonic())
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)  # a second Ctrl-C interrupts the shutdown

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    state = run.state
    with _display(run, console) as refresh:
        ui = asyncio.create_task(_refresh_loop(refresh, run.config.refresh_s, stop))
        try:
            with kafka_connection(settings) as conn:
                state.processes["broker"] = "running"
                harness = Harness(
                    settings, conn, extra_env=run.config.process_env(), log_dir=log_dir
                )
                try:
                    await _pipeline(run, settings, harness, stop)
                finally:
                    run.last_view = state.view(time.monotonic())
                    state.step("stopping processes", time.monotonic())
                    await asyncio.to_thread(harness.close)
                    for name in state.processes:
                        state.processes[name] = "stopped"
        finally:
            stop.set()
            await ui
            refresh()


async def _pipeline(
    run: DemoRun, settings: StreamsSettings, harness: Harness, stop: asyncio.Event
) -> None:
    state, stream, config = run.state, run.stream, run.config
    harness.create_topics()
    if stream.labeled and config.first_model_days > 0:
        state.step("training the first model", time.monotonic())
        path = harness.tmp / "first-days.parquet"
        stream.write_training_file(path, config.first_model_days)
        delay = f"{settings.worker.label_delay_days:g}d"
        args = first_model_args(harness, path, stream.first_day, config.first_model_days, delay)
        state.processes["train"] = "running"
        train = harness.start_process("train", *args, env=config.first_model_env())
        while train.poll() is None and not stop.is_set():
            await asyncio.sleep(0.2)
        if stop.is_set():
            return  # harness.close() stops it
        state.processes.pop("train")
        if train.returncode != 0:
            raise RuntimeError(
                f"training the first model failed (exit {train.returncode}): see train.log"
            )
        run.first_model = first_model_version(harness)
    state.step("starting the worker", time.monotonic())
    procs = {"worker": harness.start_worker()}
    procs["learner"] = harness.start_process("learner", "learner")
    procs["trainer"] = harness.start_process("trainer", "trainer")
    for name in procs:
        state.processes[name] = "running"
    topics = harness.topics
    feed = Feed(
        harness.conn,
        stream,
        state,
        topics.transactions.name,
        topics.labels.name,
        rate=config.rate,
        bad_every=config.bad_every,
    )
    reading = asyncio.Event()
    reader = asyncio.create_task(read_outputs(harness.conn, topics, state, reading))
    feeding = asyncio.create_task(feed.run(stop))
    try:
        while not stop.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    state.processes[name] = f"exited ({proc.returncode})"
                    raise RuntimeError(f"the {name} process exited with {proc.returncode}")
            if reader.done():
                reader.result()  # raises what stopped it
            if feeding.done():
                if not feeding.result():
                    break
                state.step("draining", time.monotonic())
                if await _drained(state, stop):
                    break
            await asyncio.sleep(0.2)
    finally:
        if not feeding.done():
            await feeding
        reading.set()
        await reader


async def _drained(state: DemoState, stop: asyncio.Event) -> bool:
    """Wait until every message sent has an outcome (or outputs stop coming)."""
    last_count, last_change = -1, time.monotonic()
    while not stop.is_set():
        count = state.predicted + sum(state.dead_reasons.values())
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        if state.accounted():
            await asyncio.sleep(GRACE_S)
            state.phase = "done"
            return True
        if time.monotonic() - last_change > DRAIN_IDLE_S:
            state.phase = "done (some outcomes missing)"
            return True
        await asyncio.sleep(0.2)
    return False


@contextmanager
def _display(run: DemoRun, console: Console) -> Iterator[Refresh]:
    source, drifts = run.stream.source, run.stream.drifts
    if run.config.headless:
        last_at, last_phase = 0.0, ""

        def print_line() -> None:
            nonlocal last_at, last_phase
            now = time.monotonic()
            # Start-up phases change nothing but the phase: say so less often.
            every = HEADLESS_EVERY_S if run.state.sent else 3 * HEADLESS_EVERY_S
            if now - last_at >= every or run.state.phase != last_phase:
                last_at, last_phase = now, run.state.phase
                console.print(status_line(run.state.view(now)), highlight=False, soft_wrap=True)

        yield print_line
        return
    with Live(console=console, auto_refresh=False, transient=False) as live:

        def draw() -> None:
            live.update(render(run.state.view(time.monotonic()), source, drifts), refresh=True)

        yield draw


async def _refresh_loop(refresh: Refresh, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        refresh()
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
