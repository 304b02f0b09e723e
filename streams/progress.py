"""Progress display for long commands: a rich bar per phase, on stderr.

A bar needs a terminal. Written to a file or a pipe (a job in the background, a CI
log), the same updates become plain lines, one per phase at most every
``line_every_s`` seconds and one when a phase completes:

>>> from io import StringIO
>>> out = StringIO()
>>> clock = iter([0.0, 1.0, 31.0, 32.0]).__next__
>>> with progress_bars(Console(file=out, width=80), clock=clock) as update:
...     for done in (10, 20, 30, 40):
...         update("publish", done, 40)
>>> print(out.getvalue(), end="")
publish 10/40 (25%)
publish 30/40 (75%)
publish 40/40 (100%)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

ProgressFn = Callable[[str, int, int], None]


@contextmanager
def progress_bars(
    console: Console | None = None,
    line_every_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[ProgressFn]:
    """Yield ``update(phase, done, total)``; one bar per phase, with a rate.

    On a console that is not a terminal, plain progress lines instead of bars.
    """
    console = console or Console(stderr=True)
    if not console.is_terminal:
        with _progress_lines(console, line_every_s, clock) as line:
            yield line
        return
    progress = Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(phase: str, done: int, total: int) -> None:
        task = tasks.get(phase)
        if task is None:
            task = tasks[phase] = progress.add_task(phase, total=total, rate="")
        elapsed = progress.tasks[task].elapsed or 0.0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        progress.update(task, completed=done, total=total, rate=rate)

    with progress:
        yield update


@contextmanager
def _progress_lines(
    console: Console, every_s: float, clock: Callable[[], float]
) -> Iterator[ProgressFn]:
    """``update(phase, done, total)`` printing a line per phase every ``every_s``."""
    last: dict[str, float] = {}
    finished: set[str] = set()

    def update(phase: str, done: int, total: int) -> None:
        now = clock()
        complete = total > 0 and done >= total
        if complete and phase in finished:
            return
        if not complete and phase in last and now - last[phase] < every_s:
            return
        last[phase] = now
        if complete:
            finished.add(phase)
        share = f" ({done / total:.0%})" if total > 0 else ""
        console.print(f"{phase} {done:,}/{total:,}{share}", highlight=False, soft_wrap=True)

    yield update
