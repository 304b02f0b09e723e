"""The summarized log line: at most one per interval, nothing uncounted."""

from __future__ import annotations

from streams.logs import Summarized


def test_a_frequent_event_logs_once_per_interval_with_the_counts_since() -> None:
    now = [0.0]
    log = Summarized(60.0, clock=lambda: now[0])
    assert log.due(["feature/KS/amount"]) == {"feature/KS/amount": 1}
    for t in (1.0, 2.0, 59.0):
        now[0] = t
        assert log.due(["feature/KS/amount", "score/KS"]) is None
    now[0] = 60.0
    assert log.due(["score/KS"]) == {"feature/KS/amount": 3, "score/KS": 4}
    now[0] = 61.0
    assert log.due([]) is None
    now[0] = 200.0
    assert log.due(["score/KS"]) == {"score/KS": 1}
