"""Where a fetch starts against the read offset: nothing fetched is skipped."""

from __future__ import annotations

from streams.batching import FetchStart, fetch_start


def test_a_fetch_behind_the_read_offset_is_a_rewind_not_records_to_drop() -> None:
    # A seek to committed offsets that failed halfway moved the position back to 290232
    # and left the read offset at 300098: the fetch must be delivered again.
    assert fetch_start(290_232, 300_098) is FetchStart.REWOUND


def test_the_next_offset_and_the_seeked_offset_are_both_next() -> None:
    assert fetch_start(101, 100) is FetchStart.NEXT  # read 100 last
    assert fetch_start(100, 100) is FetchStart.NEXT  # a seek put the partition at 100
    assert fetch_start(0, None) is FetchStart.NEXT  # nothing read yet


def test_a_fetch_further_on_is_a_gap() -> None:
    assert fetch_start(105, 100) is FetchStart.GAP
    # Faust treats read offset 0 as unknown: no gap from it.
    assert fetch_start(5, 0) is FetchStart.NEXT
