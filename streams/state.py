"""Changelog-backed state on Faust tables, with our own in-memory view.

A :class:`ChangelogTable` is a Faust table used for what Faust tables do well —
a changelog topic per table, co-partitioned with the stream, replayed by Faust's
recovery on start-up and on every rebalance — while the live state itself is held by
the stage objects (:class:`streams.ingest.CustomerStage`,
:class:`streams.terminal.TerminalStage`, :class:`streams.join.LabelJoin`) in
structures built for window queries.

Writes are small: one changelog entry per event (``"<entity>|<transaction id>"`` ->
JSON), deleted with a tombstone when it leaves every window, so a compacted changelog
holds exactly the live state. Recovery feeds every entry back through the stage's
``restore`` callback.

The table knows, per partition, the last changelog offset its stage's state includes
(entries restored, and the worker's own writes once acknowledged) and reports it to
Faust as the *persisted offset*: recovery then reads only what came after it. A
partition a rebalance takes away is kept for ``retain_s`` (the stage keeps its state,
nothing changes it meanwhile), so when it comes back — a worker joining and leaving
again, a rolling restart of the others — only the entries its other owner wrote are
replayed, not the whole changelog. Re-reading an entry already applied is harmless:
every ``restore`` is idempotent. Past ``retain_s`` the stage drops the partition's
state and forgets its offset, and the next recovery of it starts from the beginning.

The offset is trusted only while the state is exactly the changelog up to it: each
acknowledged write must start right after the last offset the state includes. A
write that lands further on means another worker wrote to the partition meanwhile
(a worker the group had already dropped still flushing, or ours flushing late after
a revoke), entries this state has not seen: the partition is then *diverged*, its
offset forgotten, and it is not retained when revoked, so its next recovery starts
from the beginning as a fresh worker's would.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust
from faust.types import TP, EventT

from streams.records import Output

logger = logging.getLogger(__name__)

RestoreFn = Callable[[int, str, Any], None]
#: Called with (active partitions, revoked partitions whose state is kept).
AssignedFn = Callable[[set[int], set[int]], None]

RAW_SCHEMA: faust.Schema[bytes, bytes] = faust.Schema(
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


class ChangelogTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog feeds a stage's own state.

    Parameters
    ----------
    restore
        Called with ``(partition, key, value)`` for each changelog entry during
        recovery; ``value`` is None for a deletion. Must be idempotent.
    assigned
        Called with ``(active, retained)`` partitions after each recovery and when a
        retained partition's time is up: the stage keeps the state of both sets and
        drops the rest.
    retain_s
        How long the state of a revoked partition is kept (see the module).
    clock
        Monotonic seconds.
    """

    def __init__(
        self,
        app: faust.App,
        *,
        restore: RestoreFn,
        assigned: AssignedFn,
        retain_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, schema=RAW_SCHEMA, key_type=bytes, value_type=bytes, **kwargs)
        self._restore = restore
        self._assigned = assigned
        self.retain_s = retain_s
        self._clock = clock
        self.restored = 0
        #: Per partition whose state the stage holds: the last changelog offset in it.
        self.applied: dict[int, int] = {}
        self.active: set[int] = set()
        #: Revoked partitions whose state is kept -> when they were revoked.
        self.retained: dict[int, float] = {}
        #: Partitions whose changelog another worker wrote to while this state held
        #: them: no offset is trusted, and they are not retained.
        self.diverged: set[int] = set()
        self._rebalancing = False

    def entry(self, partition: int, key: str, value: Any) -> Output:
        """The changelog message that records ``key = value`` (None deletes).

        Sent by the caller with the batch's other outputs; once the broker has
        acknowledged it, report its offset with :meth:`written`.
        """
        raw = None if value is None else json.dumps(value, separators=(",", ":")).encode()
        return Output(self.changelog_topic_name, key.encode(), raw, partition=partition)

    def written(self, partition: int, first: int, last: int) -> None:
        """Our own entries at offsets ``first``..``last`` were acknowledged by the broker.

        Call in offset order per partition.
        """
        if partition not in self.active and partition not in self.retained:
            return
        if partition in self.diverged:
            return
        held = self.applied.get(partition, -1)
        if last <= held:
            return  # already counted
        if first != held + 1:
            self.diverged.add(partition)
            self.applied.pop(partition, None)
            logger.warning(
                "changelog partition written by another worker too: its next recovery "
                "starts from the beginning",
                extra={"table": self.name, "partition": partition, "held": held, "first": first},
            )
            return
        self.applied[partition] = last

    def persisted_offset(self, tp: TP) -> int | None:
        """The changelog offset recovery of ``tp`` may start from (None: the beginning)."""
        if tp.topic != self.changelog_topic_name:
            return None
        return self.applied.get(tp.partition)

    def apply_changelog_batch(self, batch: Iterable[EventT[bytes]]) -> None:
        """Called by Faust's recovery with a batch of changelog events."""
        restore = self._restore
        applied = self.applied
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
            if message.offset > applied.get(message.partition, -1):
                applied[message.partition] = message.offset
            self.restored += 1

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        """Called by Faust when a rebalance starts: retained state is not dropped now."""
        self._rebalancing = True
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Called by Faust when recovery after a rebalance has completed."""
        partitions = {tp.partition for tp in active_tps if tp.topic == self.changelog_topic_name}
        now = self._clock()
        for p in self.active - partitions:
            if p not in self.diverged:
                self.retained.setdefault(p, now)
        for p in partitions:
            self.retained.pop(p, None)
        self.active = partitions
        self._rebalancing = False
        self._settle(now)
        logger.info(
            "table recovered",
            extra={
                "table": self.name,
                "partitions": sorted(partitions),
                "retained": sorted(self.retained),
                "entries": self.restored,
            },
        )
        await super().on_recovery_completed(active_tps, standby_tps)

    def expire_retained(self) -> None:
        """Drop retained partitions whose time is up (call now and then)."""
        if self._rebalancing:
            return  # the partition may be coming back: recovery decides
        now = self._clock()
        if any(now - since >= self.retain_s for since in self.retained.values()):
            self._settle(now)

    def _settle(self, now: float) -> None:
        for p in [p for p, since in self.retained.items() if now - since >= self.retain_s]:
            del self.retained[p]
        for p in [p for p in self.applied if p not in self.active and p not in self.retained]:
            del self.applied[p]
        self.diverged &= self.active
        self._assigned(set(self.active), set(self.retained))
