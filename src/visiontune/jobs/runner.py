"""Running jobs: in this process (``visiontune train``, ``vt.train``) or as child processes.

Every run records itself in the job store while it runs: status, a heartbeat every
few seconds (so a runner killed with SIGKILL is found out: :meth:`JobStore.reap_orphans`),
its metric series, and its log (a file in the output folder and chunks in the store,
which ``visiontune jobs logs -f`` follows from any machine that reaches the store).
A stop request (``visiontune jobs stop``) is seen within a second.  A store that is unreachable for a while
(PostgreSQL restarting, a SQLite file locked) does not stop a run: its metric points and log are kept and
written when the store is back, retried with backoff for up to ``STORE_OUTAGE_S`` (120 s); past that the run
stops and fails saying so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from visiontune.errors import ConfigError, VisiontuneError, option
from visiontune.jobs.base import COMMON_OUTPUTS, RunResult, check_apart
from visiontune.jobs.context import LogSink, RunContext, teed
from visiontune.jobs.kinds import get_kind
from visiontune.jobs.store import (
    HEARTBEAT_SECONDS,
    TERMINAL,
    Job,
    JobStore,
    StoreUnavailableError,
    retrying,
    store_trouble,
)
from visiontune.names import check_name
from visiontune.paths import run_folder, timestamped
from visiontune.procs import die_with_parent, pid_alive, this_host
from visiontune.writes import OutputError, is_write_failure, output_error


def _job_name(store: JobStore, base: str, name: str | None) -> str:
    if name:
        return check_name(name, "job name")  # it becomes a folder and a URL segment: checked before anything
    for _ in range(20):
        candidate = timestamped(base)
        try:
            store.get_job(candidate)
        except VisiontuneError:
            return candidate
        time.sleep(0.002)
    raise ConfigError("could not find a free job name; pass one")


def submit(
    store: JobStore,
    kind: str,
    spec: dict,
    *,
    name: str | None = None,
    output_dir: str | Path | None = None,
    tuning_job: str | None = None,
    trial_number: int | None = None,
    attempt: int = 1,
) -> Job:
    """Check ``spec`` and record a new job (InProgress, not yet started) in the store."""
    k = get_kind(kind)
    name = _job_name(store, k.default_base_name(spec), name)
    out = (Path(output_dir) if output_dir else run_folder(name)).resolve()
    check_apart(out, k.inputs(spec))  # (a folder a running job writes to is refused by create_job, atomically)
    _check_writable(out)  # a read-only --out: refused now, no job recorded that was bound to fail
    spec, hyperparameters = k.prepare(dict(spec), out)
    return store.create_job(
        name,
        kind,
        spec,
        hyperparameters,
        str(out),
        tuning_job=tuning_job,
        trial_number=trial_number,
        attempt=attempt,
        exclusive=True,
    )


def _check_writable(out: Path) -> None:
    """The output folder, or the nearest folder above it that exists, must be writable (changes nothing)."""
    folder = out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {out}: {folder} is not writable (read-only?); choose another {option('out')}")


class _Heartbeat(threading.Thread):
    """Flushes the log every second, beats every few seconds, and turns a stop request into ``ctx.stop``."""

    def __init__(self, ctx: RunContext):
        super().__init__(name=f"heartbeat-{ctx.job.name}", daemon=True)
        self.ctx, self.done = ctx, threading.Event()

    def run(self) -> None:
        """While the store is unreachable, tries again with backoff (1 s doubling to 8 s); buffered metric
        points and log chunks are written, and a heartbeat sent, as soon as it answers (``STORE_OUTAGE_S``)."""
        ctx = self.ctx
        last, next_try, backoff = 0.0, 0.0, 1.0
        while not self.done.wait(1.0):
            if time.time() < next_try:
                continue
            try:
                ctx.flush_metrics()
                if ctx.down_since is not None and ctx.pending:  # still unreachable: the point stayed
                    raise _StillDown
                ctx.sink.flush()
                if time.time() - last >= HEARTBEAT_SECONDS or ctx.down_since is not None:
                    last = time.time()
                    if ctx.store.heartbeat(ctx.job.name):
                        ctx.stop.set()
                elif ctx.store.stop_requested(ctx.job.name):
                    ctx.stop.set()
                ctx.store_up()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - a store hiccup must not kill the run; the next beat retries
                if store_trouble(exc):  # (_StillDown: flush_metrics noted the outage with its error already)
                    ctx.store_down(exc)
                next_try, backoff = time.time() + backoff, min(backoff * 2, 8.0)


class _StillDown(Exception):
    pass


def run_job(store: JobStore, name: str, *, tee: bool = True, callbacks: tuple = ()) -> Job:
    """Run a submitted job in this process; returns it finished (Completed, Failed or Stopped).

    ``tee``: copy this process's stdout/stderr into the job's log (and keep showing them)."""
    from visiontune.train.loop import StopTraining

    job = store.get_job(name)
    if not store.started(name):  # stopped (or failed) while it waited to start
        store.finish(name, "Stopped", reason="stopped before it started")
        return store.get_job(name)
    try:
        sink = LogSink(store, name, Path(job.output_dir) / "log.txt")
    except OSError as exc:
        error = output_error(exc, Path(job.output_dir) / "log.txt") if is_write_failure(exc) else exc
        store.finish(name, "Failed", reason=f"cannot write its log in {job.output_dir}: {error}")
        if error is exc:
            raise
        raise error from exc
    ctx = RunContext(store, job, sink, callbacks=callbacks)
    ctx.log(f"[visiontune] job {name} ({job.kind}) started on {this_host()} pid {os.getpid()}")
    beat = _Heartbeat(ctx)
    beat.start()
    status, reason, result = "Failed", None, RunResult()
    try:
        with _signals_stop(ctx.stop), teed(sink, tee):
            result = get_kind(job.kind).run(ctx)
        status = "Stopped" if ctx.stop.is_set() and not result.model_data else "Completed"
    except StopTraining as exc:
        status, reason = "Stopped", str(exc) or "stopped on request"
        result = getattr(exc, "result", None) or result  # what a stopped job had made (its model, its metrics)
    except KeyboardInterrupt:
        status, reason = "Stopped", "interrupted (Ctrl-C)"
        raise
    except VisiontuneError as exc:
        reason = str(exc)
        result = getattr(exc, "result", None) or result  # a failed job's last metric values
        raise
    except OSError as exc:
        if not is_write_failure(exc):  # a bug: its traceback is worth having
            reason = f"{type(exc).__name__}: {exc}"
            raise
        error = output_error(exc, job.output_dir, resume=True)  # a full disk, a read-only folder: one line
        reason = str(error)
        raise error from exc
    except BaseException as exc:  # noqa: BLE001 - recorded, then raised to the caller
        reason = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        beat.done.set()
        beat.join(5)
        if ctx.store_error is not None:  # stopped because the store stayed unreachable: that is its failure
            status, reason = "Failed", str(ctx.store_error)
        if status == "Stopped" and ctx.stop.is_set() and reason is None:
            reason = "stopped on request"
        ctx.log(f"[visiontune] job {name} {status}" + (f": {reason}" if reason else ""))
        _final_writes(ctx, status, reason, result)
    if ctx.store_error is not None:
        raise ctx.store_error
    return retrying(store.get_job, name, until=ctx.final_writes_until())


def _final_writes(ctx: RunContext, status: str, reason: str | None, result: RunResult) -> None:
    """The buffered metric points, the log's last chunk and the job's status, each retried while the store is
    unreachable (within ``STORE_OUTAGE_S`` of its going away); if it stays away the job's log and stderr say
    what could not be recorded (the reaper records the job as orphaned once the store is back)."""
    name, until = ctx.job.name, ctx.final_writes_until()
    where = f"the job store {ctx.store.safe_url}"
    try:
        ctx.flush_metrics(until=until)
        ctx.sink.close(until=until)
        retrying(
            ctx.store.finish,
            name,
            status,
            reason=reason,
            final_metrics=result.final_metrics or None,
            model_data=result.model_data,
            until=until,
            what="the job's status",
            where=where,
        )
    except StoreUnavailableError as exc:
        note = (
            f"[visiontune] job {name} ended {status}, but {exc}; not recorded: its status"
            + (f" and {len(ctx.pending)} metric point(s)" if ctx.pending else "")
            + f" (its log is "
            f"{ctx.job.output_dir}/log.txt)\n"
        )
        with contextlib.suppress(OSError):
            ctx.sink.file.close()
        with contextlib.suppress(OSError), open(Path(ctx.job.output_dir) / "log.txt", "a", encoding="utf-8") as fh:
            fh.write(note)
        with contextlib.suppress(Exception):
            if sys.__stderr__ is not None:
                sys.__stderr__.write(note)
        raise StoreUnavailableError(note.removeprefix("[visiontune] ").strip()) from exc


@contextlib.contextmanager
def _signals_stop(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (``jobs stop``, a scheduler) sets ``stop`` instead of killing the run outright."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def delete_outputs(job: Job) -> list[str]:
    """Remove what ``job`` wrote into its output folder (its kind's outputs), and the folder when nothing
    else is left in it; returns the names kept (files the job did not write: a user's, another tool's)."""
    import shutil

    out = Path(job.output_dir)
    if not out.is_dir():
        return []
    kind = get_kind(job.kind)
    patterns = (*COMMON_OUTPUTS, *kind.outputs)
    reads = [Path(p).expanduser().resolve() for p in kind.inputs(job.spec).values()]
    kept = []
    for entry in sorted(out.iterdir()):
        # a name the job writes, unless it is (or holds) data the job read: `--data input --out .`
        if any(entry.match(p) for p in patterns) and not any(
            (r == entry.resolve() or r.is_relative_to(entry.resolve())) and _holds_files(r) for r in reads
        ):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        else:
            kept.append(entry.name)
    if not kept:
        out.rmdir()
    return kept


def sharing_outputs(store: JobStore, job: Job) -> list[str]:
    """The other jobs recorded with ``job``'s output folder (a run resumed with ``--resume`` after a stop or a
    crash is a new job writing into the same folder): their files are ``job``'s too, so deleting ``job``
    keeps them."""
    return [j.name for j in store.jobs_in(job.output_dir) if j.name != job.name]


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` holds a file of its own (not only links, as the SDK's joined channels are)."""
    if folder.is_symlink():
        return False
    if folder.is_file():
        return True
    return any(files for _, _, files in os.walk(folder))  # links to folders are listed, never followed


# ---------------------------------------------------------------------- child processes
def launch(store: JobStore, name: str, *, tie_to_parent: bool = True, env: dict | None = None) -> subprocess.Popen:
    """Start ``python -m visiontune.jobs.worker NAME`` for a submitted job; its output goes to its log."""
    job = store.get_job(name)
    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {}), "VISIONTUNE_DB": store.url, "PYTHONUNBUFFERED": "1"}
    with open(out / "worker.out", "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "visiontune.jobs.worker", name],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            preexec_fn=die_with_parent if tie_to_parent else None,  # noqa: PLW1509
            start_new_session=True,
        )  # its own group: a Ctrl-C here is its runner's to pass on
    store.hand_over(name, proc.pid)  # the submitter may exit now (--detach): the child starts the job
    return proc


def wait(store: JobStore, name: str, timeout: float | None = None, poll: float = 0.5) -> Job:
    """Wait until a job has finished (or ``timeout`` seconds); orphans are reaped meanwhile."""
    deadline = None if timeout is None else time.time() + timeout
    polls = 0
    while True:
        job = store.get_job(name)
        if job.status in TERMINAL:
            return job
        polls += 1
        if (job.host == this_host() and job.pid and not pid_alive(job.pid)) or polls % 10 == 0:
            if name in store.reap_orphans():  # also a queued job's dead starter, a remote runner gone silent
                continue
        if deadline is not None and time.time() > deadline:
            return job
        time.sleep(poll)


def stop(store: JobStore, name: str, wait_s: float = 30.0) -> Job:
    """Ask a job to stop; a runner on this machine also gets SIGTERM.  Waits up to ``wait_s`` seconds."""
    job = store.request_stop(name)
    if job.status in TERMINAL:
        return job
    if job.started_at is None:  # still queued: it will not start now
        store.finish(name, "Stopped", reason="stopped before it started")
        return store.get_job(name)
    if job.host == this_host() and job.pid and job.pid != os.getpid() and pid_alive(job.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(job.pid, signal.SIGTERM)
    return wait(store, name, timeout=wait_s)
