"""Fault injectors: what happens to a run's processes while it publishes.

Each fault is a coroutine given the :class:`FaultContext` of the run. It waits until
the run reaches a seeded point (a share of the outcomes it owes read back), acts, and
notes what it did and when in ``ctx.events`` (recovery is measured from those times).

- ``kill`` / ``term``: SIGKILL or SIGTERM one worker mid-stream, restart it a
  seeded 0.5-3 s later; ``kill`` also kills the online learner and restarts it.
- ``rebalance``: start with one worker, add one, remove one cleanly (SIGTERM, not
  replaced), add one, kill one (SIGKILL, not replaced).
- ``broker`` / ``broker-long``: the broker stopped (SIGINT) and started again on the
  same port after 1 s, or after 6 s (three session timeouts: every group member is
  expelled); needs a broker with persistent storage (:mod:`streams.chaos.s3broker`).
- ``poison``: no process fault (the workload carries the poison).
- ``overload``: publish at twice the sustainable rate for a while, then back.
- ``soak``: a second worker added and removed cleanly, again and again, while the
  first one runs through the whole (hour-long) run; ``join-leave`` is the same three
  times over a short run that keeps the first worker busy (its fetcher must survive
  each rebalance).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from streams.broker import EmbeddedBroker
from streams.chaos.observe import Outputs
from streams.chaos.produce import Pace
from streams.harness import Harness

Fault = Callable[["FaultContext"], Awaitable[None]]


@dataclass
class FaultContext:
    """What a fault may act on."""

    harness: Harness
    pace: Pace
    outputs: Outputs
    owed: int
    rng: np.random.Generator
    events: list[tuple[str, float]] = field(default_factory=list)
    #: The broker, when the run owns a restartable one.
    broker: EmbeddedBroker | None = None

    async def at_share(self, share: float) -> None:
        """Wait until ``share`` of the owed outcomes have been read back.

        Outcomes, not publication: the pipeline is then busy (mid-batch), whatever
        its start-up took.
        """
        target = int(self.owed * share)
        while self.outputs.outcomes() < target:
            await asyncio.sleep(0.02)

    def note(self, what: str) -> None:
        """Record that ``what`` happened now."""
        self.events.append((what, time.time()))


def _signal_worker(ctx: FaultContext, index: int, sig: int) -> subprocess.Popen[bytes]:
    proc = ctx.harness.workers.pop(index)
    proc.send_signal(sig)
    return proc


async def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        await asyncio.to_thread(proc.wait)


def _restart_learner(ctx: FaultContext, sig: int) -> subprocess.Popen[bytes] | None:
    for i, proc in enumerate(ctx.harness.others):
        if proc.poll() is None and str(proc.args[-1]) == "learner":  # type: ignore[index]
            ctx.harness.others.pop(i)
            proc.send_signal(sig)
            return proc
    return None


def stop_and_restart(sig: int) -> Fault:
    """A worker (and, for SIGKILL, the learner) stopped mid-stream and restarted."""

    async def fault(ctx: FaultContext) -> None:
        share = float(ctx.rng.uniform(0.25, 0.5))
        delay = float(ctx.rng.uniform(0.5, 3.0))
        await ctx.at_share(share)
        name = "kill -9" if sig == signal.SIGKILL else "SIGTERM"
        proc = _signal_worker(ctx, 0, sig)
        ctx.note(f"{name} worker")
        await _wait_exit(proc)
        await asyncio.sleep(delay)
        ctx.harness.start_worker()
        ctx.note("worker restarted")
        if sig == signal.SIGKILL:
            await ctx.at_share(min(share + 0.3, 0.95))
            learner = _restart_learner(ctx, sig)
            if learner is not None:
                ctx.note("kill -9 learner")
                await _wait_exit(learner)
                await asyncio.sleep(delay)
                ctx.harness.start_process("learner", "learner")
                ctx.note("learner restarted")

    return fault


async def rebalance(ctx: FaultContext) -> None:
    """Workers added, one removed cleanly, one killed (neither replaced)."""
    await ctx.at_share(0.15)
    ctx.harness.start_worker()
    ctx.note("worker added")
    await ctx.at_share(0.4)
    proc = _signal_worker(ctx, 0, signal.SIGTERM)
    ctx.note("worker removed (SIGTERM)")
    await _wait_exit(proc)
    await ctx.at_share(0.55)
    ctx.harness.start_worker()
    ctx.note("worker added")
    await ctx.at_share(0.75)
    proc = _signal_worker(ctx, int(ctx.rng.integers(len(ctx.harness.workers))), signal.SIGKILL)
    ctx.note("kill -9 worker (not replaced)")
    await _wait_exit(proc)


def broker_restart(down_s: float) -> Fault:
    """The broker stopped mid-stream and started again ``down_s`` seconds later."""

    async def fault(ctx: FaultContext) -> None:
        await ctx.at_share(float(ctx.rng.uniform(0.25, 0.45)))
        broker = ctx.broker
        if broker is None:
            raise RuntimeError("a broker-restart fault needs a restartable broker")
        await asyncio.to_thread(broker.stop)
        ctx.note(f"broker stopped ({down_s:g} s)")
        await asyncio.sleep(down_s)
        await asyncio.to_thread(broker.start)
        ctx.note("broker restarted")

    return fault


def soak(cycles: int = 12) -> Fault:
    """Periodic rebalances: a second worker added and removed ``cycles`` times.

    The first worker lives through the whole run (its memory, files and threads are
    the soak's trends); the second joins at the start of each cycle and leaves
    cleanly (SIGTERM) halfway through it, so partitions move twice per cycle.
    """

    async def fault(ctx: FaultContext) -> None:
        for k in range(1, cycles):
            await ctx.at_share(k / cycles)
            ctx.harness.start_worker()
            ctx.note("worker added")
            await ctx.at_share((k + 0.5) / cycles)
            proc = _signal_worker(ctx, len(ctx.harness.workers) - 1, signal.SIGTERM)
            ctx.note("worker removed (SIGTERM)")
            await _wait_exit(proc)

    return fault


async def no_fault(ctx: FaultContext) -> None:
    """Nothing happens to the processes."""


def overload(factor: float = 2.0, share: tuple[float, float] = (0.1, 0.8)) -> Fault:
    """Publish ``factor`` times faster between two shares of the plan."""

    async def fault(ctx: FaultContext) -> None:
        await ctx.at_share(share[0])
        base = ctx.pace.rate
        if base is None:
            return
        ctx.pace.rate = base * factor
        ctx.note(f"rate x{factor:g}")
        await ctx.at_share(share[1])
        ctx.pace.rate = base
        ctx.note("rate back")

    return fault


FAULTS: dict[str, Fault] = {
    "kill": stop_and_restart(signal.SIGKILL),
    "term": stop_and_restart(signal.SIGTERM),
    "rebalance": rebalance,
    "broker": broker_restart(1.0),
    "broker-long": broker_restart(6.0),
    "poison": no_fault,
    "overload": overload(),
    "none": no_fault,
    "soak": soak(),
    "join-leave": soak(cycles=4),
}
