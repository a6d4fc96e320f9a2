"""What a running job has around it: its log (a file and chunks in the store), this process's output
copied into that log, and the :class:`RunContext` a job kind runs in."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from visiontune.jobs.store import Job, JobStore

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CURSOR = re.compile(r"\x1b\[[0-9;?]*[ABCDGHJKlh]")  # cursor moves, line erases: a live progress bar



class LogSink:
    """A job's log: the file ``<output>/log.txt`` and, every second, chunks in the store."""

    def __init__(self, store: JobStore, name: str, path: Path):
        self.store, self.name = store, name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by close()
        self.buffer: list[str] = []
        self.lock = threading.Lock()
        self.tail: list[str] = []  # the last lines, for a failure reason

    def write(self, text: str, tail: bool = True) -> None:
        """``tail=False``: visiontune's own note, not part of what the job printed (a failure's last lines)."""
        if not text or _CURSOR.search(text):  # live progress bars stay on the terminal
            return
        text = _ANSI.sub("", text).replace("\r\n", "\n")
        if "\r" in text:
            text = "\n".join(part.rsplit("\r", 1)[-1] for part in text.split("\n"))
        with self.lock:
            self.file.write(text)
            self.buffer.append(text)
            if tail:
                self.tail = (self.tail + text.splitlines())[-40:]

    def flush(self) -> None:
        with self.lock:
            chunk, self.buffer = "".join(self.buffer), []
        if chunk:
            self.store.append_log(self.name, chunk)

    def close(self) -> None:
        self.flush()
        self.file.close()


class _Tee(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` during an in-process run: the terminal and the job's log."""

    def __init__(self, original, sink: LogSink):
        self.original, self.sink = original, sink
        self.closed_reader = False  # `visiontune train ... | head`: the terminal side went away, the log goes on

    def write(self, text: str) -> int:
        self.sink.write(text)
        if not self.closed_reader:
            try:
                self.original.write(text)
            except BrokenPipeError:
                self.closed_reader = True
        return len(text)

    def flush(self) -> None:
        if not self.closed_reader:
            try:
                self.original.flush()
            except BrokenPipeError:
                self.closed_reader = True

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self):
        return getattr(self.original, "encoding", "utf-8")


@dataclass
class RunContext:
    """What a job kind gets while it runs."""

    store: JobStore
    job: Job
    sink: LogSink
    stop: threading.Event = field(default_factory=threading.Event)
    #: extra per-epoch callbacks for the built-in engine (a tuner's pruning, the debugger)
    callbacks: tuple[Callable[[int, dict], None], ...] = ()

    @property
    def output_dir(self) -> Path:
        return Path(self.job.output_dir)

    def log(self, text: str) -> None:
        """A line for the log only (visiontune's own notes)."""
        self.sink.write(text if text.endswith("\n") else text + "\n", tail=False)

    def output(self, text: str) -> None:
        """What the job prints: to this process's stdout and into the log, once."""
        if isinstance(sys.stdout, _Tee) and sys.stdout.sink is self.sink:
            sys.stdout.write(text)
        else:
            self.sink.write(text)
            sys.stdout.write(text)

    def say(self, text: str) -> None:
        """visiontune's own line for the terminal and the log (not part of what the job printed)."""
        text = text if text.endswith("\n") else text + "\n"
        self.sink.write(text, tail=False)
        original = sys.stderr.original if isinstance(sys.stderr, _Tee) else sys.stderr
        original.write(text)

    def metrics(self, values: dict[str, float], step: int) -> None:
        self.store.log_metrics(self.job.name, values, step)

    def record_hyperparameters(self, path: Path) -> None:
        """The values the run actually used (defaults filled in), once it knows them."""
        try:
            used = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return
        recorded = self.job.hyperparameters
        self.store.set_hyperparameters(self.job.name, {**recorded, **{k: v for k, v in used.items() if k in recorded}})


@contextlib.contextmanager
def teed(sink: LogSink, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, sink), _Tee(err, sink)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
