"""The benchmark's pure logic: percentiles, tables, number formats, the summary line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from streams.bench.latency import LatencyRun
from streams.bench.measure import Outputs
from streams.bench.replay import ReplayResult
from streams.bench.report import (
    RUNS_HEADING,
    SUMMARY_PATTERN,
    Table,
    append_section,
    ms,
    percentiles,
    rate,
    section,
    summary_line,
    us,
)
from streams.bench.run import BenchConfig, BenchOutcome, round_rate, targets_table
from streams.bench.throughput import Consumed


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    p50, p99, p999 = percentiles(values, [50, 99, 99.9])
    assert p50 == pytest.approx(50.5)
    assert p99 == pytest.approx(99.01)
    assert p999 == pytest.approx(99.901)


def test_percentiles_of_nothing_are_none_for_each_quantile() -> None:
    assert percentiles([], [50, 99, 99.9]) == [None, None, None]


def test_percentiles_do_not_depend_on_order() -> None:
    assert percentiles([5.0, 1.0, 3.0], [50]) == percentiles([1.0, 3.0, 5.0], [50]) == [3.0]


def test_table_renders_markdown_with_escaped_cells_and_notes() -> None:
    table = Table("Latency", ["where", "p99 ms"])
    table.add("in | process", 1.5)
    table.add("worker", None)
    table.note("measured on a shared machine")
    assert table.markdown().splitlines() == [
        "#### Latency",
        "",
        "| where | p99 ms |",
        "| --- | --- |",
        "| in \\| process | 1.5 |",
        "| worker |  |",
        "",
        "- measured on a shared machine",
    ]


def test_table_rejects_a_row_of_the_wrong_width() -> None:
    table = Table("Throughput", ["run", "tx/s"])
    with pytest.raises(ValueError, match="3 cells for 2 columns"):
        table.add("pipeline", 1, 2)


def test_number_formats_say_dash_for_missing_or_infinite() -> None:
    assert rate(999.6) == "1000"
    assert rate(64_000.0) == "64.0k"
    assert rate(math.inf) == rate(math.nan) == rate(None) == "-"
    assert ms(0.25) == "250"
    assert ms(math.nan) == "-"
    assert us(0.000_013) == "13.0"


def test_summary_line_has_the_contract_format() -> None:
    line = summary_line(51_234.4, 9_876.0, 64_000.0, 3.456, 41.04)
    assert line == (
        "bench: pipeline_eps=51234 forward_eps=9876 raw_eps=64000 p99_ms_at_5k=3.46 replay_s=41.0"
    )
    match = SUMMARY_PATTERN.match(line)
    assert match is not None
    assert [float(g) for g in match.groups()] == [51234, 9876, 64000, 3.46, 41.0]


def test_summary_line_marks_what_was_not_measured() -> None:
    line = summary_line(None, math.nan, 10.0, None, math.inf)
    assert line == "bench: pipeline_eps=0 forward_eps=0 raw_eps=10 p99_ms_at_5k=nan replay_s=nan"
    assert SUMMARY_PATTERN.match(line) is not None


def test_outcome_summary_uses_its_figures() -> None:
    outcome = BenchOutcome(
        pipeline_eps=2500.2, forward_eps=740.0, raw_eps=24_700.0, p99_ms_at_5k=4.0, replay_s=12.34
    )
    assert outcome.summary() == (
        "bench: pipeline_eps=2500 forward_eps=740 raw_eps=24700 p99_ms_at_5k=4.00 replay_s=12.3"
    )


def test_section_lists_conditions_tables_and_summary() -> None:
    table = Table("T", ["a"])
    table.add(1)
    text = section("2026-01-01 — run", [("machine", "2 CPUs")], [table], "bench: x")
    assert text.startswith("### 2026-01-01 — run\n\n- **machine**: 2 CPUs\n\n#### T\n")
    assert text.endswith("```\nbench: x\n```\n")


def test_append_section_creates_the_file_then_appends_in_order(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "benchmarks.md"
    append_section(path, "### first\n")
    append_section(path, "### second\n")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert text.index(RUNS_HEADING) < text.index("### first") < text.index("### second")


def test_append_section_adds_the_runs_heading_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\nNotes written by hand.\n", encoding="utf-8")
    append_section(path, "### run\n")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nNotes written by hand.\n")
    assert text.index(RUNS_HEADING) < text.index("### run")


def test_round_rate_keeps_two_significant_digits_down() -> None:
    assert round_rate(2649.0) == 2600.0
    assert round_rate(51_999.0) == 51_000.0
    assert round_rate(87.0) == 87.0
    assert round_rate(0.0) == 0.0


def test_latency_run_is_sustained_only_with_every_prediction_at_the_offered_rate() -> None:
    ok = LatencyRun("worker", 1000.0, 990.0, 3, e2e=[0.01, 0.02, 0.03])
    assert ok.sustained
    missing = LatencyRun("worker", 1000.0, 990.0, 3, e2e=[0.01, 0.02])
    assert not missing.sustained
    slow = LatencyRun("worker", 1000.0, 500.0, 3, e2e=[0.01, 0.02, 0.03])
    assert not slow.sustained
    backlog = LatencyRun("worker", 1000.0, 990.0, 3, e2e=[0.01, 0.02, 0.03], late_s=5.0)
    assert not backlog.sustained


def test_replay_estimate_adds_the_start_up_to_the_rest_at_the_steady_rate() -> None:
    result = ReplayResult(
        transactions=10_000,
        wall_s=12.0,
        publish_s=3.0,
        predicted=10_000,
        missing=0,
        duplicates=0,
        dead=0,
        steady_tx_per_s=1000.0,
    )
    assert result.tx_per_s == pytest.approx(10_000 / 12.0)
    # start-up 2 s (12 s less 10,000 at 1k/s), then 100,000 at 1k/s
    assert result.estimate_s(100_000) == pytest.approx(102.0)
    assert result.estimate_s(5_000) == pytest.approx(6.0)


def test_targets_table_says_which_targets_were_met() -> None:
    config = BenchConfig.for_mode(True, Path("out.md"), Path("work"), None)
    outcome = BenchOutcome(
        pipeline_eps=60_000.0, forward_eps=70_000.0, raw_eps=1.0, p99_ms_at_5k=12.0, replay_s=None
    )
    rows = {row[0]: row[1:] for row in targets_table(outcome, config).rows}
    assert rows["pipeline >= 50k tx/s per worker process"] == ["60.0k", "yes"]
    assert rows["pipeline >= 80 % of the Faust forward-only agent"] == ["86 %", "yes"]
    assert rows["p99 excluding broker hops <= 10 ms at 5k tx/s"] == ["12.0 ms", "no"]
    assert rows["full handbook replay <= 60 s"] == ["-", "-"]


def test_quick_mode_is_smaller_than_the_full_one() -> None:
    quick = BenchConfig.for_mode(True, Path("o"), Path("w"), None)
    full = BenchConfig.for_mode(False, Path("o"), Path("w"), None)
    assert quick.transactions < full.transactions
    assert quick.latency_s < full.latency_s
    assert quick.replay_rows is not None and full.replay_rows is not None
    assert quick.replay_rows < full.replay_rows
    assert "scaling" in full.sections


def test_consumer_rate_prefers_its_own_timing_and_counts_transactions() -> None:
    outputs = Outputs(expected=200, times=[0.0, *[0.1 * i for i in range(1, 200)]])
    outputs.window_start = 20
    reader_timed = Consumed("faust", transactions=100, messages=200, outputs=outputs)
    # 179 outputs over 17.9 s: 10 messages/s, one transaction every two messages
    assert reader_timed.tx_per_s == pytest.approx(5.0)
    assert reader_timed.msgs_per_s == pytest.approx(10.0)
    self_timed = Consumed(
        "raw", 100, 200, outputs, own_msgs_per_s=1000.0, own_cpu_per_msg_s=0.000_01
    )
    assert self_timed.tx_per_s == pytest.approx(500.0)
    assert self_timed.cpu_per_tx_s("raw") == pytest.approx(0.000_02)
