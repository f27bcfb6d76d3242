"""Build progress on stderr: a rich bar (docs/s, ETA) on a terminal, or, for batch jobs whose
stderr is a log file, one plain line every ``interval`` seconds."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

LOG_INTERVAL_S = 30.0


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:  # type: ignore[no-untyped-def]
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} docs/s" if speed else "", style="progress.data.speed")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def progress_line(description: str, done: int, total: int | None, elapsed: float) -> str:
    """``indexing X: 1,200,000/10,000,000 docs (12%), 8,400 docs/s, elapsed 0:02:23, ETA 0:17:27``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    parts = [f"{description}: {done:,}" + (f"/{total:,}" if total else "") + " docs"]
    if total:
        parts[0] += f" ({100 * done / total:.0f}%)"
    parts.append(f"{rate:,.0f} docs/s")
    parts.append(f"elapsed {_clock(elapsed)}")
    if total and rate > 0:
        parts.append(f"ETA {_clock(max(total - done, 0) / rate)}")
    return ", ".join(parts)


@contextmanager
def progress_bar(
    description: str,
    *,
    total: int | None,
    enabled: bool | None = None,
    interval: float = LOG_INTERVAL_S,
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``. On a terminal, a bar (``enabled`` not ``False``); elsewhere (a batch
    job's log file) a plain :func:`progress_line` every ``interval`` seconds. ``enabled=None``
    (the default): off a terminal, lines only once the work has run ``interval`` seconds, so a
    short build prints nothing and an hour-long one is never silent; ``True``: also a closing line
    however short the work; ``False``: nothing. When the block ends normally, the bar (or last
    line) ends at 100%: ``total`` is an estimate (a file's line count) and the documents advanced
    are the true total."""
    if enabled is False:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        started = last = time.monotonic()
        done, printed = 0, False

        def log(n: int) -> None:
            nonlocal done, last, printed
            done += n
            now = time.monotonic()
            if now - last >= interval:
                last, printed = now, True
                print(progress_line(description, done, total, now - started), file=sys.stderr)

        yield log
        if enabled or printed:
            # The stream is done: ``total`` (often a line count) may have included records the
            # loader skipped or dropped, so the last line reports the documents as the whole.
            elapsed = time.monotonic() - started
            print(progress_line(description, done, done, elapsed), file=sys.stderr)
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if total:
        columns.append(TaskProgressColumn())
    columns += [_RateColumn(), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
        done = int(bar.tasks[0].completed)
        bar.update(task, total=done, completed=done)  # as above: the bar ends full
