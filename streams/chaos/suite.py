"""Scenario sets and reports of `streamscore chaos`.

The quick set (faults 1, 3 and 4 of the reliability plan: kill and SIGTERM,
rebalance, poison; small workloads, one seed each by default) runs in CI; the long
set runs the same faults, overload and broker restarts (fault 2) on larger
workloads with many seeds. Broker restarts run on a broker with S3 storage
(:mod:`streams.chaos.s3broker`; the default memory engine forgets everything when it
stops, see ``docs/reliability.md``).

Examples
--------
>>> from streams.chaos.verify import Counts
>>> totals([Counts(missing=1), Counts(duplicates=2)]).line()
'missing=1 duplicates=2 state_violations=0 relearned=0'
>>> percentile([1.0, 2.0, 3.0, 10.0], 50)
2.5
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields

import numpy as np

from streams.chaos.runner import RunResult, Scenario
from streams.chaos.verify import Counts

QUICK: tuple[Scenario, ...] = (
    Scenario("kill", "kill", customers=100, terminals=200, days=8),
    Scenario("term", "term", customers=100, terminals=200, days=8),
    Scenario("rebalance", "rebalance", customers=100, terminals=200, days=8),
    Scenario("poison", "poison", customers=100, terminals=200, days=8, poison_per_valid=0.1),
    # A busy worker (3,000 records/s) while a second one joins and leaves three times:
    # the rebalances must not stop the first one's fetcher.
    Scenario("join", "join-leave", customers=1500, terminals=3000, days=20, rate=3000.0),
)

#: Broker restart on the quick workload (not in `--quick`: on the embedded broker its
#: producers' retries write some records twice, see docs/reliability.md).
QUICK_BROKER = Scenario("broker", "broker", customers=100, terminals=200, days=8, supervise=True)

LONG: tuple[Scenario, ...] = (
    Scenario("kill", "kill", customers=400, terminals=800, days=12),
    Scenario("term", "term", customers=400, terminals=800, days=12),
    Scenario("rebalance", "rebalance", customers=400, terminals=800, days=12),
    Scenario("poison", "poison", customers=400, terminals=800, days=12, poison_per_valid=0.1),
    Scenario("overload", "overload", customers=600, terminals=1200, days=12, rate=1200.0),
    Scenario("broker", "broker", supervise=True),
    Scenario("broker-long", "broker-long", supervise=True),
)

#: Run only when named (`--only`): the features issue's full scale, 10,000 poison
#: records among about 100,000 valid ones (several minutes per seed on 2 cores).
NAMED_ONLY: tuple[Scenario, ...] = (
    Scenario(
        "poison-100k", "poison", customers=4300, terminals=8600, days=12, poison_per_valid=0.1
    ),
    # Fault 6: about an hour at 800 records/s (400 transactions and 400 labels a
    # second, 4,000 customers over 186 days), a second worker added and removed every
    # five minutes; trends of memory, open files, threads and asyncio tasks of the
    # processes that run throughout. Sized for the embedded broker on a 2-core, 23 GiB
    # machine: its memory engine keeps every record and changelog entry (no
    # compaction), and each join restores the moved tables from changelogs that grow
    # with the run, so outputs may pause for minutes.
    Scenario("soak", "soak", customers=4000, terminals=8000, days=186, rate=800.0, idle_s=900.0),
    # The same hour at twice the rate (about 2.9 M transactions and their labels): on
    # the embedded broker it outgrows 23 GiB (docs/reliability.md, run 5); for a broker
    # that compacts changelogs.
    Scenario(
        "soak-full", "soak", customers=8000, terminals=16000, days=186, rate=1600.0, idle_s=900.0
    ),
)

#: Scenarios that need a restartable broker with persistent storage.
BROKER_FAULTS = frozenset({"broker", "broker-long"})

#: The counts that must be zero, in report order.
ZERO_COUNTS = (
    "missing",
    "duplicates",
    "state_violations",
    "relearned",
    "order_violations",
    "misrouted",
)


def totals(counts: Iterable[Counts]) -> Counts:
    """Sum of the integer counts of several runs."""
    total = Counts()
    for c in counts:
        for f in fields(Counts):
            value = getattr(c, f.name)
            if isinstance(value, int):
                setattr(total, f.name, getattr(total, f.name) + value)
    return total


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear), 0 for no values."""
    return float(np.percentile(values, q)) if values else 0.0


def table(results: Sequence[RunResult]) -> str:
    """A Markdown table with one row per run and a summary row."""
    head = (
        "| scenario | seed | inputs | poison | missing | duplicates | state_violations "
        "| relearned | order | misrouted | dead-letter repeats | recovery s "
        "| max backlog | peak RSS MiB | wall s |"
    )
    rows = [head, "|" + " --- |" * 15]
    for r in results:
        c = r.counts
        recovery = ", ".join(f"{s:.1f}" for s in r.recovery_s) or "-"
        rows.append(
            f"| {r.scenario.name} | {r.seed} | {c.inputs} | {c.poison} | {c.missing} "
            f"| {c.duplicates} | {c.state_violations} | {c.relearned} | {c.order_violations} "
            f"| {c.misrouted} | {c.dead_letter_repeats} | {recovery} | {r.max_backlog} "
            f"| {r.peak_rss_bytes / 2**20:.0f} | {r.wall_s:.0f} |"
        )
    return "\n".join(rows)


def summary(results: Sequence[RunResult]) -> str:
    """Per scenario: runs, counts summed, recovery p50/p95/max, peak RSS."""
    rows = [
        "| scenario | runs | missing | duplicates | state_violations | relearned "
        "| order | misrouted | recovery p50 / p95 / max s | peak RSS MiB |",
        "|" + " --- |" * 10,
    ]
    for name in dict.fromkeys(r.scenario.name for r in results):
        mine = [r for r in results if r.scenario.name == name]
        c = totals(r.counts for r in mine)
        rec = [s for r in mine for s in r.recovery_s]
        rss = max(r.peak_rss_bytes for r in mine) / 2**20
        rows.append(
            f"| {name} | {len(mine)} | {c.missing} | {c.duplicates} | {c.state_violations} "
            f"| {c.relearned} | {c.order_violations} | {c.misrouted} "
            f"| {percentile(rec, 50):.1f} / {percentile(rec, 95):.1f} / "
            f"{max(rec, default=0.0):.1f} | {rss:.0f} |"
        )
    return "\n".join(rows)


def to_json(results: Sequence[RunResult]) -> str:
    """Every run's counts, events and measurements as JSON."""
    out = []
    for r in results:
        out.append(
            {
                "scenario": asdict(r.scenario),
                "seed": r.seed,
                "counts": asdict(r.counts),
                "events": [(what, round(at, 3)) for what, at in r.events],
                "recovery_s": [round(s, 3) for s in r.recovery_s],
                "peak_rss_bytes": r.peak_rss_bytes,
                "max_backlog": r.max_backlog,
                "max_open_files": r.max_open_files,
                "max_threads": r.max_threads,
                "wall_s": round(r.wall_s, 2),
                "crashed": r.crashed,
                "publish_failures": r.publish_failures,
                "trends": None if r.trends is None else asdict(r.trends),
            }
        )
    return json.dumps(out, indent=1)
