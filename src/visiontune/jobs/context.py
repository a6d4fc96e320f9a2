"""What a running job has around it: its log (a file and chunks in the store), this process's output
copied into that log, and the :class:`RunContext` a job kind runs in."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from visiontune.jobs.store import STORE_OUTAGE_S, Job, JobStore, StoreUnavailableError, retrying, store_trouble

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
            try:
                self.file.write(text)
            except (OSError, ValueError):  # a full disk: the run goes on (and fails, if it must, where it writes
                pass  # its outputs, saying so); the store keeps the log meanwhile
            self.buffer.append(text)
            if tail:
                self.tail = (self.tail + text.splitlines())[-40:]

    def flush(self) -> None:
        """The chunk written since the last flush into the store; kept for the next flush if the store is
        unreachable (the file has it already)."""
        with self.lock:
            chunk, self.buffer = "".join(self.buffer), []
        if chunk:
            try:
                self.store.append_log(self.name, chunk)
            except BaseException:
                with self.lock:
                    self.buffer.insert(0, chunk)
                raise

    def close(self, until: float | None = None) -> None:
        """Flush (retried while the store is unreachable, until the time ``until``) and close the file."""
        try:
            retrying(self.flush, until=until, what="the job's log", where=f"the job store {self.store.safe_url}")
        finally:
            with contextlib.suppress(OSError):  # a full disk: what could not be flushed is in the store
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
    #: metric points not yet in the store (written in order; buffered while the store is unreachable)
    pending: list[tuple[dict, int, float]] = field(default_factory=list)
    #: since when the store has been unreachable (None: it answers)
    down_since: float | None = None
    #: set once the store stayed unreachable past ``STORE_OUTAGE_S``: the job stops and fails saying so
    store_error: StoreUnavailableError | None = None
    _flushing: threading.Lock = field(default_factory=threading.Lock)

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
        """Record a metric point: written at once while the store answers; while it is unreachable, kept
        here (training goes on) and written in order when it is back (the heartbeat thread retries)."""
        self.pending.append((dict(values), step, time.time()))
        if self.down_since is None:
            self.flush_metrics()

    def flush_metrics(self, until: float | None = None) -> None:
        """Write the pending metric points.  ``until`` None: one try (the point stays pending if the store is
        unreachable); a time: retried with backoff until then, then :class:`StoreUnavailableError`."""
        if not self._flushing.acquire(blocking=until is not None):
            return  # another thread is writing them
        try:
            while self.pending:
                values, step, ts = self.pending[0]
                if until is None:
                    try:
                        self.store.log_metrics(self.job.name, values, step, ts=ts)
                    except Exception as exc:
                        if not store_trouble(exc):
                            raise
                        self.store_down(exc)
                        return
                else:
                    retrying(
                        self.store.log_metrics,
                        self.job.name,
                        values,
                        step,
                        ts=ts,
                        until=until,
                        what="the job's metrics",
                        where=f"the job store {self.store.safe_url}",
                    )
                self.pending.pop(0)
                self.store_up()
        finally:
            self._flushing.release()

    def store_down(self, exc: BaseException) -> None:
        """A store write failed on an unreachable store: the outage is noted; past ``STORE_OUTAGE_S`` the job
        is stopped, to end Failed (saying why)."""
        now = time.time()
        if self.down_since is None:
            self.down_since = now
            self.log(
                f"[visiontune] the job store is unreachable ({_first_line(exc)}); training goes on, its "
                f"metrics and log are kept here and written when the store is back (waiting up to "
                f"{STORE_OUTAGE_S:.0f} s)"
            )
        elif now - self.down_since > STORE_OUTAGE_S and self.store_error is None:
            self.store_error = StoreUnavailableError(
                f"the job store {self.store.safe_url} was unreachable for more than {STORE_OUTAGE_S:.0f} s "
                f"({_first_line(exc)}): the job stopped; its files are in {self.job.output_dir}"
            )
            self.log(f"[visiontune] {self.store_error}")
            self.stop.set()

    def store_up(self) -> None:
        if self.down_since is not None:
            self.log(
                f"[visiontune] the job store answers again (after {time.time() - self.down_since:.0f} s); "
                f"{len(self.pending)} buffered metric point(s) left to write"
            )
            self.down_since = None

    def final_writes_until(self) -> float:
        """How long the run's last writes (metrics, log, status) wait for an unreachable store: what is left
        of ``STORE_OUTAGE_S`` since it went away, and at least 10 s."""
        since = self.down_since or time.time()
        return max(since + STORE_OUTAGE_S, time.time() + 10.0)

    def record_hyperparameters(self, path: Path) -> None:
        """The values the run actually used (defaults filled in), once it knows them."""
        try:
            used = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return
        recorded = self.job.hyperparameters
        retrying(
            self.store.set_hyperparameters,
            self.job.name,
            {**recorded, **{k: v for k, v in used.items() if k in recorded}},
            until=self.final_writes_until(),
            what="the job's hyperparameters",
            where=f"the job store {self.store.safe_url}",
        )


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
