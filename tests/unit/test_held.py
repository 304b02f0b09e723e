"""Held transactions: released by arrival bound and labels, forced only when waited out."""

from __future__ import annotations

from streams.held import Held, HeldQueue


def held(partition: int, time_s: float, since: float = 0.0) -> Held:
    return Held(None, None, f"{partition}@{time_s}", partition, time_s, since)


def names(items: list[Held]) -> list[str]:
    return [h.enriched for h in items]


def test_only_what_the_arrival_bound_passed_is_released_oldest_first() -> None:
    q = HeldQueue()
    for t in (30.0, 10.0, 20.0, 40.0):
        q.add(held(0, t))
    q.add(held(1, 5.0))
    bounds = {0: 25.0, 1: None}
    taken = q.take(bounds.get, lambda h: True, now=1.0, label_wait_s=10, source_wait_s=100)
    assert names(taken.ready) == ["0@10.0", "0@20.0"]
    assert (taken.forced_labels, taken.forced_sources) == (0, 0)
    assert len(q) == 3
    assert q.oldest() == {0: 30.0, 1: 5.0}
    bounds[0] = 100.0
    taken = q.take(bounds.get, lambda h: True, now=2.0, label_wait_s=10, source_wait_s=100)
    assert names(taken.ready) == ["0@30.0", "0@40.0"]
    assert len(q) == 1


def test_labels_in_flight_hold_a_transaction_until_label_wait_then_it_is_forced() -> None:
    q = HeldQueue()
    q.add(held(0, 10.0, since=0.0))
    settled = {"0@10.0": False}

    def take(now: float):
        return q.take(
            lambda p: 50.0, lambda h: settled[h.enriched], now, label_wait_s=5, source_wait_s=100
        )

    assert take(now=1.0).ready == []  # arrivals complete at 1.0: the label wait starts
    assert not q.due(5.9, label_wait_s=5, source_wait_s=100)
    assert q.due(6.0, label_wait_s=5, source_wait_s=100)
    taken = take(now=6.0)
    assert names(taken.ready) == ["0@10.0"] and taken.forced_labels == 1
    assert len(q) == 0


def test_a_label_arriving_in_time_releases_without_forcing() -> None:
    q = HeldQueue()
    q.add(held(0, 10.0))
    settled = {"0@10.0": False}
    assert q.take(lambda p: 50.0, lambda h: settled[h.enriched], 1.0, 5, 100).ready == []
    settled["0@10.0"] = True
    taken = q.take(lambda p: 50.0, lambda h: settled[h.enriched], 2.0, 5, 100)
    assert names(taken.ready) == ["0@10.0"] and taken.forced_labels == 0


def test_a_source_behind_holds_transactions_for_source_wait_then_forces_them() -> None:
    q = HeldQueue()
    q.add(held(0, 10.0, since=0.0))
    q.add(held(0, 20.0, since=50.0))
    assert q.take(lambda p: None, lambda h: True, 99.0, 5, 100).ready == []
    assert not q.due(99.0, label_wait_s=5, source_wait_s=100)
    assert q.due(100.0, label_wait_s=5, source_wait_s=100)
    taken = q.take(lambda p: None, lambda h: True, 100.0, 5, 100)
    assert names(taken.ready) == ["0@10.0"] and taken.forced_sources == 1
    assert len(q) == 1 and q.oldest() == {0: 20.0}
    # The bound catches up: the other one goes out as ready, not forced.
    taken = q.take(lambda p: 30.0, lambda h: True, 101.0, 5, 100)
    assert names(taken.ready) == ["0@20.0"] and taken.forced_sources == 0
    assert len(q) == 0 and not q.due(1000.0, label_wait_s=5, source_wait_s=100)


def test_a_rebalance_forgets_the_partitions_taken_away() -> None:
    q = HeldQueue()
    q.add(held(0, 10.0))
    q.add(held(1, 10.0))
    q.add(held(1, 20.0))
    q.take({1: 15.0}.get, lambda h: False, 1.0, 5, 100)  # 1@10 now waits for labels
    q.keep({0})
    assert len(q) == 1 and q.oldest() == {0: 10.0}
    taken = q.take(lambda p: None, lambda h: True, 1000.0, 5, 100)
    assert names(taken.ready) == ["0@10.0"] and taken.forced_sources == 1
    assert len(q) == 0


def test_a_release_takes_at_most_its_limit_and_the_rest_is_due_next() -> None:
    q = HeldQueue()
    for t in range(7):
        q.add(held(0, float(t), since=0.0))  # a source behind: forced after 100 s
    q.add(held(1, 3.0, since=0.0))  # arrived and settled: released by labels
    bounds = {0: None, 1: 10.0}

    def take(limit: int):
        return q.take(bounds.get, lambda h: True, 200.0, 5, 100, limit=limit)

    first = take(3)
    assert len(first.ready) == 3 and first.forced_sources == 3
    assert len(q) == 5
    assert q.due(200.0, 5, 100)
    second = take(3)
    third = take(3)
    assert len(second.ready) == 3 and len(third.ready) == 2
    released = sorted(names(first.ready + second.ready + third.ready))
    assert released == sorted(["1@3.0"] + [f"0@{float(t)}" for t in range(7)])
    assert len(q) == 0
    assert not take(3).ready
    assert not q.due(200.0, 5, 100)
