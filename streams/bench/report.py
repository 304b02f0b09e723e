"""Tables, number formats, the summary line and the ``docs/benchmarks.md`` section.

Pure: values in, text out (plus one function that appends text to a file).

Examples
--------
>>> t = Table("Throughput", ["run", "events/s"])
>>> t.add("pipeline", rate(51234.0))
>>> print(t.markdown())
#### Throughput
<BLANKLINE>
| run | events/s |
| --- | --- |
| pipeline | 51.2k |
>>> summary_line(51234.4, 9876.0, 64000.0, 3.456, 41.04)
'bench: pipeline_eps=51234 forward_eps=9876 raw_eps=64000 p99_ms_at_5k=3.46 replay_s=41.0'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The heading under which runs are appended (created when missing).
RUNS_HEADING = "## Harness runs"

SUMMARY_PATTERN = re.compile(
    r"^bench: pipeline_eps=(\d+) forward_eps=(\d+) raw_eps=(\d+) "
    r"p99_ms_at_5k=(\d+(?:\.\d+)?|nan) replay_s=(\d+(?:\.\d+)?|nan)$"
)

NEW_FILE = f"""# Benchmarks

Figures measured on the machines named with each run. Nothing here is asserted by a
test: every number is printed by a command and copied here with its conditions.

{RUNS_HEADING}

Appended by `streamscore bench [--quick]`, newest last. Each run states its date,
machine, versions and settings.
"""


@dataclass
class Table:
    """One result table: a title, column names, rows of text cells and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        """Append a row (cells are turned into text)."""
        row = ["" if c is None else str(c) for c in cells]
        if len(row) != len(self.columns):
            raise ValueError(f"{len(row)} cells for {len(self.columns)} columns in {self.title}")
        self.rows.append(row)

    def note(self, text: str) -> None:
        """Add a line printed under the table."""
        self.notes.append(text)

    def markdown(self) -> str:
        """The table as GitHub-flavoured Markdown, notes as a list below it."""
        lines = [f"#### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + " --- |" * len(self.columns))
        lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows)
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rate(value: float | None) -> str:
    """Compact events per second: ``950``, ``12.3k``, ``4.56M``; ``-`` for none.

    >>> rate(950.4), rate(12345.0), rate(4.56e6), rate(None)
    ('950', '12.3k', '4.56M', '-')
    """
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def ms(seconds: float | None) -> str:
    """Milliseconds with three significant digits; ``-`` for none.

    >>> ms(0.0123456), ms(1.5), ms(0.0000456), ms(None)
    ('12.3', '1500', '0.0456', '-')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    value = seconds * 1000.0
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def us(seconds: float | None) -> str:
    """Microseconds with one decimal; ``-`` for none.

    >>> us(0.0000123), us(None)
    ('12.3', '-')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return f"{seconds * 1e6:.1f}"


def percentiles(values: Sequence[float] | np.ndarray, qs: Iterable[float]) -> list[float | None]:
    """The ``qs`` percentiles of ``values`` (None for each when there are none).

    >>> percentiles([1.0, 2.0, 3.0, 4.0], [50, 100])
    [2.5, 4.0]
    >>> percentiles([], [50])
    [None]
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return [None for _ in qs]
    return [float(v) for v in np.percentile(arr, list(qs))]


def summary_line(
    pipeline_eps: float | None,
    forward_eps: float | None,
    raw_eps: float | None,
    p99_ms_at_5k: float | None,
    replay_s: float | None,
) -> str:
    """The last line `streamscore bench` prints (see :data:`SUMMARY_PATTERN`).

    Rates are whole events per second (0 when not measured); times are ``nan`` when
    not measured.
    """

    def whole(v: float | None) -> str:
        return str(round(v)) if v is not None and math.isfinite(v) else "0"

    def dec(v: float | None, digits: int) -> str:
        return f"{v:.{digits}f}" if v is not None and math.isfinite(v) else "nan"

    return (
        f"bench: pipeline_eps={whole(pipeline_eps)} forward_eps={whole(forward_eps)} "
        f"raw_eps={whole(raw_eps)} p99_ms_at_5k={dec(p99_ms_at_5k, 2)} "
        f"replay_s={dec(replay_s, 1)}"
    )


def section(
    title: str, conditions: Sequence[tuple[str, str]], tables: Sequence[Table], summary: str
) -> str:
    """The Markdown section of one run: heading, conditions, tables, summary line."""
    parts = [f"### {title}", ""]
    parts.extend(f"- **{k}**: {v}" for k, v in conditions)
    for table in tables:
        parts.extend(["", table.markdown()])
    parts.extend(["", "```", summary, "```", ""])
    return "\n".join(parts)


def append_section(path: Path, text: str) -> None:
    """Append a run's section at the end of ``path`` (created with its headings if new).

    The runs section is the last one of the file, so appending at the end keeps every
    run under it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else NEW_FILE
    if RUNS_HEADING not in existing:
        existing = existing.rstrip("\n") + f"\n\n{RUNS_HEADING}\n"
    path.write_text(existing.rstrip("\n") + "\n\n" + text, encoding="utf-8")
