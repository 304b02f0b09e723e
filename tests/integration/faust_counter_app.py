"""A minimal Faust worker for the broker compatibility tests, run as a subprocess.

It reads transactions keyed by customer, repartitions them by terminal
(``group_by``), counts them per terminal in a changelog-backed table and emits
``{"tid", "terminal", "count"}`` for every transaction. Configured by environment:
``COMPAT_BOOTSTRAP``, ``COMPAT_APP_ID``, ``COMPAT_SOURCE``, ``COMPAT_SINK``.

Run: ``python -m tests.integration.faust_counter_app worker --without-web``.
"""

from __future__ import annotations

import os

import faust

from streams.compat import use_fetched_end_offsets


class Txn(faust.Record, serializer="json"):
    """A transaction as the test writes it."""

    tid: str
    customer: str
    terminal: str


def build_app(bootstrap: str, app_id: str, source: str, sink: str) -> faust.App:
    """The counting app; Tansu-friendly group timings, end offsets read from Fetch."""
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=2,
        topic_replication_factor=1,
        # Tansu answers a JoinGroup after half the session timeout and keeps a departed
        # member until its session expires: short sessions make restarts fast.
        broker_session_timeout=2.0,
        broker_heartbeat_interval=0.3,
        broker_rebalance_timeout=2.0,
        # Batch the changelog writes, as a busy worker would.
        producer_linger_ms=100,
        web_enabled=False,
    )
    use_fetched_end_offsets(app)
    transactions = app.topic(source, value_type=Txn, key_type=bytes)
    counts_out = app.topic(sink, key_serializer="raw", value_serializer="json")
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(transactions)
    async def count(stream: faust.StreamT[Txn]) -> None:
        async for txn in stream.group_by(Txn.terminal, name="by-terminal"):
            counts[txn.terminal] += 1
            await counts_out.send(
                key=txn.terminal.encode(),
                value={"tid": txn.tid, "terminal": txn.terminal, "count": counts[txn.terminal]},
            )

    return app


def main() -> None:
    """Start the worker from the environment (``faust`` parses the command line)."""
    env = os.environ
    build_app(
        env["COMPAT_BOOTSTRAP"], env["COMPAT_APP_ID"], env["COMPAT_SOURCE"], env["COMPAT_SINK"]
    ).main()


if __name__ == "__main__":
    main()
