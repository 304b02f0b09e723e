"""Changelog-backed state on Faust tables, with our own in-memory view.

A :class:`ChangelogTable` is a Faust table used for what Faust tables do well —
a compacted changelog topic per table, co-partitioned with the stream, replayed by
Faust's recovery on start-up and on every rebalance — while the live state itself is
held by the stage objects (:class:`streams.ingest.CustomerStage`,
:class:`streams.terminal.TerminalStage`) in structures built for window queries.

Writes are small: one changelog entry per event (``"<entity>|<transaction id>"`` ->
JSON), deleted with a tombstone when it leaves every window, so the compacted
changelog holds exactly the live state. Recovery feeds every entry back through the
stage's ``restore`` callback; when recovery completes, state of partitions this worker
no longer owns is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import faust
from faust.types import TP, EventT

from streams.records import Output

logger = logging.getLogger(__name__)

RestoreFn = Callable[[int, str, Any], None]
AssignedFn = Callable[[set[int]], None]

RAW_SCHEMA: faust.Schema[bytes, bytes] = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


class ChangelogTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog feeds a stage's own state.

    Parameters
    ----------
    restore
        Called with ``(partition, key, value)`` for each changelog entry during
        recovery; ``value`` is None for a deletion.
    assigned
        Called with the set of active partitions after each recovery.
    """

    def __init__(
        self, app: faust.App, *, restore: RestoreFn, assigned: AssignedFn, **kwargs: Any
    ) -> None:
        super().__init__(app, schema=RAW_SCHEMA, key_type=bytes, value_type=bytes, **kwargs)
        self._restore = restore
        self._assigned = assigned
        self.restored = 0

    def entry(self, partition: int, key: str, value: Any) -> Output:
        """The changelog message that records ``key = value`` (None deletes).

        Sent by the caller with the batch's other outputs, on the app's producer,
        so Faust flushes it before committing the offsets it covers.
        """
        raw = None if value is None else json.dumps(value, separators=(",", ":")).encode()
        return Output(self.changelog_topic_name, key.encode(), raw, partition=partition)

    def apply_changelog_batch(self, batch: Iterable[EventT[bytes]]) -> None:
        """Called by Faust's recovery with a batch of changelog events."""
        restore = self._restore
        for event in batch:
            message = event.message
            raw = message.value
            key = message.key.decode() if isinstance(message.key, bytes) else str(message.key)
            try:
                # A tombstone: null, or empty where the broker stores null as empty bytes.
                value = json.loads(raw) if raw else None
                restore(message.partition, key, value)
            except Exception:
                logger.exception(
                    "changelog entry skipped",
                    extra={"table": self.name, "key": key, "offset": message.offset},
                )
                continue
            self.restored += 1

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Called by Faust when recovery after a rebalance has completed."""
        partitions = {tp.partition for tp in active_tps if tp.topic == self.changelog_topic_name}
        self._assigned(partitions)
        logger.info(
            "table recovered",
            extra={"table": self.name, "partitions": sorted(partitions), "entries": self.restored},
        )
        await super().on_recovery_completed(active_tps, standby_tps)
