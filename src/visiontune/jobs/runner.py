"""Running jobs: in this process (``visiontune train``, ``vt.train``) or as child processes.

Every run records itself in the job store while it runs: status, a heartbeat every
few seconds (so a runner killed with SIGKILL is found out: :meth:`JobStore.reap_orphans`),
its metric series, and its log (a file in the output folder and chunks in the store,
which ``visiontune jobs logs -f`` follows from any machine that reaches the store).
A stop request (``visiontune jobs stop``) is seen within a second.
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

from visiontune.errors import ConfigError, VisiontuneError
from visiontune.jobs.base import COMMON_OUTPUTS, RunResult, check_apart
from visiontune.jobs.context import LogSink, RunContext, teed
from visiontune.jobs.kinds import get_kind
from visiontune.jobs.store import HEARTBEAT_SECONDS, TERMINAL, Job, JobStore, die_with_parent, pid_alive, this_host
from visiontune.paths import timestamped

def _job_name(store: JobStore, base: str, name: str | None) -> str:
    if name:
        return name
    for _ in range(20):
        candidate = timestamped(base)
        try:
            store.get_job(candidate)
        except VisiontuneError:
            return candidate
        time.sleep(0.002)
    raise ConfigError("could not find a free job name; pass one")


def submit(store: JobStore, kind: str, spec: dict, *, name: str | None = None, output_dir: str | Path | None = None,
           tuning_job: str | None = None, trial_number: int | None = None, attempt: int = 1) -> Job:
    """Check ``spec`` and record a new job (InProgress, not yet started) in the store."""
    k = get_kind(kind)
    name = _job_name(store, k.default_base_name(spec), name)
    out = (Path(output_dir) if output_dir else Path("runs") / name).resolve()
    check_apart(out, k.inputs(spec))  # (a folder a running job writes to is refused by create_job, atomically)
    spec, hyperparameters = k.prepare(dict(spec), out)
    return store.create_job(name, kind, spec, hyperparameters, str(out), tuning_job=tuning_job,
                            trial_number=trial_number, attempt=attempt, exclusive=True)


class _Heartbeat(threading.Thread):
    """Flushes the log every second, beats every few seconds, and turns a stop request into ``ctx.stop``."""

    def __init__(self, ctx: RunContext):
        super().__init__(name=f"heartbeat-{ctx.job.name}", daemon=True)
        self.ctx, self.done = ctx, threading.Event()

    def run(self) -> None:
        last = 0.0
        while not self.done.wait(1.0):
            try:
                self.ctx.sink.flush()
                if time.time() - last >= HEARTBEAT_SECONDS:
                    last = time.time()
                    if self.ctx.store.heartbeat(self.ctx.job.name):
                        self.ctx.stop.set()
                elif self.ctx.store.stop_requested(self.ctx.job.name):
                    self.ctx.stop.set()
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the run; the next beat retries
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
        store.finish(name, "Failed", reason=f"cannot write its log in {job.output_dir}: {exc}")
        raise
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
    except BaseException as exc:  # noqa: BLE001 - recorded, then raised to the caller
        reason = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        beat.done.set()
        beat.join(5)
        if status == "Stopped" and ctx.stop.is_set() and reason is None:
            reason = "stopped on request"
        ctx.log(f"[visiontune] job {name} {status}" + (f": {reason}" if reason else ""))
        sink.close()
        store.finish(name, status, reason=reason, final_metrics=result.final_metrics or None,
                     model_data=result.model_data)
    return store.get_job(name)


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
                (r == entry.resolve() or r.is_relative_to(entry.resolve())) and _holds_files(r) for r in reads):
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
        proc = subprocess.Popen([sys.executable, "-m", "visiontune.jobs.worker", name], stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env,
                                preexec_fn=die_with_parent if tie_to_parent else None,  # noqa: PLW1509
                                start_new_session=True)  # its own group: a Ctrl-C here is its runner's to pass on
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
