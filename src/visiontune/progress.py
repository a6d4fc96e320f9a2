"""Progress bars (stderr, only on a terminal) and ``key=value`` log lines (stdout).

A tuner parses the ``key=value`` lines; people watch the bars.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_err = Console(stderr=True)


def table_console() -> Console:
    """stdout for tables: the terminal's width, or 200 columns when redirected (a file has no width to fit)."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def log_metrics(stream=None, **values) -> None:
    """One line of ``key=value`` pairs, flushed at once."""
    stream = stream or sys.stdout
    stream.write(" ".join(f"{k}={fmt(v)}" for k, v in values.items()) + "\n")
    stream.flush()


def note(message: str) -> None:
    """A human message on stderr."""
    _err.print(message, highlight=False, soft_wrap=True)


@contextmanager
def bar(total: int, description: str) -> Iterator:
    """``with bar(n, "decoding") as advance: advance(k)``."""
    if not _err.is_terminal:
        yield lambda k=1: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda k=1: progress.advance(task, k)
