"""Changelog tables: the offsets their state includes, and partitions kept after a revoke."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from streams.state import ChangelogTable


class Stage:
    """Records what the table asks of a stage."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, str, Any]] = []
        self.kept: list[tuple[set[int], set[int]]] = []

    def restore(self, partition: int, key: str, value: Any) -> None:
        if key == "bad":
            raise ValueError(key)
        self.entries.append((partition, key, value))

    def assigned(self, active: set[int], retained: set[int]) -> None:
        self.kept.append((active, retained))


def table(stage: Stage, now: list[float], retain_s: float = 60.0) -> ChangelogTable:
    app = faust.App("unit-state", broker="kafka://127.0.0.1:1", autodiscover=False)
    return ChangelogTable(
        app,
        name="customers",
        partitions=4,
        restore=stage.restore,
        assigned=stage.assigned,
        retain_s=retain_s,
        clock=lambda: now[0],
    )


def event(partition: int, offset: int, key: str, value: Any) -> Any:
    raw = None if value is None else json.dumps(value).encode()
    return SimpleNamespace(
        message=SimpleNamespace(partition=partition, offset=offset, key=key.encode(), value=raw)
    )


def recovered(t: ChangelogTable, *partitions: int) -> None:
    tps = {TP(t.changelog_topic_name, p) for p in partitions}
    asyncio.run(t.on_recovery_completed(tps, set()))


def test_recovery_starts_after_what_the_state_already_includes() -> None:
    stage, now = Stage(), [0.0]
    t = table(stage, now)
    tp0, tp1 = TP(t.changelog_topic_name, 0), TP(t.changelog_topic_name, 1)
    assert t.persisted_offset(tp0) is None  # nothing held: from the beginning
    t.apply_changelog_batch(
        [event(0, 0, "c|1", [1.0]), event(0, 1, "bad", [2.0]), event(0, 2, "c|1", None)]
    )
    assert stage.entries == [(0, "c|1", [1.0]), (0, "c|1", None)]
    assert t.persisted_offset(tp0) == 2  # a skipped entry still counts as read
    recovered(t, 0, 1)
    t.written(1, 0, 5)  # our own entries, acknowledged (partition 1 was empty)
    t.written(1, 6, 7)
    t.written(1, 4, 5)  # a repeat of what is counted changes nothing
    assert t.persisted_offset(tp1) == 7
    assert t.persisted_offset(TP("other-topic", 1)) is None
    assert stage.kept[-1] == ({0, 1}, set())


def test_a_revoked_partition_is_kept_for_a_while_then_dropped_with_its_offset() -> None:
    stage, now = Stage(), [100.0]
    t = table(stage, now, retain_s=60.0)
    tp1 = TP(t.changelog_topic_name, 1)
    recovered(t, 0, 1)
    t.written(0, 0, 3)
    t.written(1, 0, 9)
    now[0] = 110.0
    recovered(t, 0)  # partition 1 went to another worker
    assert stage.kept[-1] == ({0}, {1})
    assert t.persisted_offset(tp1) == 9  # if it comes back: from there
    t.written(1, 10, 10)  # an acknowledgement that arrives after the revoke still counts
    assert t.persisted_offset(tp1) == 10
    now[0] = 169.0
    t.expire_retained()
    assert stage.kept[-1] == ({0}, {1})  # not yet
    now[0] = 170.0
    asyncio.run(t.on_rebalance(set(), set(), set()))
    t.expire_retained()  # a rebalance is under way: it may be coming back
    assert t.persisted_offset(tp1) == 10
    recovered(t, 0)  # it did not: its time is up
    assert stage.kept[-1] == ({0}, set())
    assert t.persisted_offset(tp1) is None
    t.written(1, 11, 11)  # a late acknowledgement of a dropped partition: ignored
    assert t.persisted_offset(tp1) is None


def test_a_partition_back_within_its_time_stays_and_time_is_up_without_a_rebalance() -> None:
    stage, now = Stage(), [0.0]
    t = table(stage, now, retain_s=30.0)
    recovered(t, 0, 1)
    t.written(1, 0, 4)
    recovered(t, 0)
    now[0] = 20.0
    recovered(t, 0, 1)  # back: caught up from offset 4, nothing dropped
    assert stage.kept[-1] == ({0, 1}, set())
    assert t.persisted_offset(TP(t.changelog_topic_name, 1)) == 4
    recovered(t, 1)
    now[0] = 50.0
    t.expire_retained()  # the timer alone drops partition 0
    assert stage.kept[-1] == ({1}, set())


def test_with_no_retention_a_revoked_partition_is_dropped_at_once() -> None:
    stage, now = Stage(), [0.0]
    t = table(stage, now, retain_s=0.0)
    recovered(t, 0, 1)
    t.written(1, 0, 4)
    recovered(t, 0)
    assert stage.kept[-1] == ({0}, set())
    assert t.persisted_offset(TP(t.changelog_topic_name, 1)) is None


def test_a_partition_another_worker_wrote_to_meanwhile_is_recovered_from_the_beginning() -> None:
    stage, now = Stage(), [0.0]
    t = table(stage, now, retain_s=60.0)
    tp0, tp1 = TP(t.changelog_topic_name, 0), TP(t.changelog_topic_name, 1)
    t.apply_changelog_batch([event(1, 0, "c|1", [1.0]), event(1, 1, "c|2", [2.0])])
    recovered(t, 0, 1)
    t.written(1, 2, 3)  # right after what was restored: the state is the log up to 3
    assert t.persisted_offset(tp1) == 3
    t.written(1, 6, 6)  # 4 and 5 are someone else's: this state never saw them
    assert t.persisted_offset(tp1) is None
    t.written(1, 7, 9)  # back to back with ours, but the gap stays
    assert t.persisted_offset(tp1) is None
    t.written(0, 0, 1)
    recovered(t)  # both revoked: the diverged one is not kept
    assert stage.kept[-1] == (set(), {0})
    assert t.persisted_offset(tp0) == 1
    recovered(t, 0, 1)  # partition 1 starts over from the beginning and is trusted again
    t.apply_changelog_batch([event(1, i, f"c|{i}", [1.0]) for i in range(10)])
    t.written(1, 10, 10)
    assert t.persisted_offset(tp1) == 10
