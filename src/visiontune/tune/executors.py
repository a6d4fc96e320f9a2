"""Where trials run: local child processes, or a Ray cluster.  One small class each, registered by name.

Every executor only starts and stops runs; each run records itself in the job store (status,
metrics, heartbeats), which is how the tuner follows it, wherever it runs.

``local`` runs a script trial as its own child process (``python -m visiontune.jobs.worker``) and
built-in engine trials in warm worker processes that stay up for the whole tuning job: torch is
imported, the pretrained weights and the image hashes are read once per worker, not once per trial.
Every local child dies with the tuner (Linux ``PR_SET_PDEATHSIG``), so a killed tuner leaves no
trial running; the next run of the same tuning job starts those trials again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from pathlib import Path

from visiontune.errors import ConfigError, MissingDependencyError
from visiontune.jobs.runner import launch
from visiontune.jobs.store import TERMINAL, Job, JobStore
from visiontune.paths import run_folder
from visiontune.procs import die_with_parent
from visiontune.registry import Registry


class Executor(ABC):
    name = ""

    def __init__(self, store: JobStore, parallel: int, resources: dict, address: str | None = None):
        self.store, self.parallel, self.resources, self.address = store, parallel, dict(resources), address

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start running a submitted job."""

    @abstractmethod
    def alive(self, name: str) -> bool:
        """Whether the run of ``name`` is still going (False once it ended, however it ended)."""

    def stop(self, name: str) -> None:
        """Ask the run to stop: its runner sees the request within a second (the engine stops at the next batch)."""
        self.store.request_stop(name)

    def warm_up(self) -> None:
        """Start workers ahead of the first trial, where an executor has them."""

    def shutdown(self) -> None:
        """Stop what still runs and release workers."""


def threads_per_trial(parallel: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, parallel))


class _Worker:
    """A warm worker process (``python -m visiontune.jobs.worker --serve``): job names in on stdin."""

    def __init__(self, store: JobStore, threads: int, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "VISIONTUNE_DB": store.url, "PYTHONUNBUFFERED": "1", "VISIONTUNE_THREADS": str(threads)}
        self.log = open(log_dir / f"worker-{len(list(log_dir.glob('worker-*.out')))}.out", "ab")  # noqa: SIM115
        # its own process group (a Ctrl-C in the tuner's terminal is the tuner's to handle), dies with the tuner
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visiontune.jobs.worker", "--serve"],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=die_with_parent,  # noqa: PLW1509
            start_new_session=True,
        )
        self.job: str | None = None

    def give(self, name: str) -> bool:
        """Hand a job to this worker; False if the worker has just died."""
        try:
            self.proc.stdin.write((name + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        self.job = name
        return True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            try:
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.log.close()


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, store, parallel, resources, address=None, log_dir: Path | None = None):
        super().__init__(store, parallel, resources, address)
        self.procs: dict[str, subprocess.Popen] = {}
        self.threads = threads_per_trial(parallel)
        self.log_dir = log_dir or run_folder("workers")
        self._workers: list[_Worker] = []
        self._waiting: list[str] = []  # built-in jobs not yet given to a worker

    # -- warm workers, for built-in engine jobs
    def _idle_worker(self) -> _Worker | None:
        for w in self._workers:
            if w.alive() and (w.job is None or self.store.get_job(w.job).status in TERMINAL):
                return w
        for w in [w for w in self._workers if not w.alive()]:
            w.close()
            self._workers.remove(w)
        if len(self._workers) < self.parallel:
            w = _Worker(self.store, self.threads, self.log_dir)
            self._workers.append(w)
            return w
        return None

    def warm_up(self) -> None:
        while len(self._workers) < self.parallel:
            self._workers.append(_Worker(self.store, self.threads, self.log_dir))

    def _dispatch(self) -> None:
        while self._waiting:
            w = self._idle_worker()
            if w is None:
                return
            if w.give(self._waiting[0]):
                self._waiting.pop(0)

    def submit(self, job: Job) -> None:
        if job.kind == "builtin":
            self._waiting.append(job.name)
            self._dispatch()
            return
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        self.procs[job.name] = launch(self.store, job.name, tie_to_parent=True, env=env)

    def alive(self, name: str) -> bool:
        if name in self.procs:
            return self.procs[name].poll() is None
        self._dispatch()
        if name in self._waiting:
            return True
        w = next((w for w in self._workers if w.job == name), None)
        return w is not None and w.alive()

    def stop(self, name: str) -> None:
        super().stop(name)
        if name in self._waiting:
            self._waiting.remove(name)
            self.store.finish(name, "Stopped", reason="stopped before it started")
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    def shutdown(self) -> None:
        for name in list(self._waiting):
            self.stop(name)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in self.procs:
            # a runner SIGTERMed while Python was still starting (before its handler existed) dies without
            # recording an end: the job would stay Stopping forever
            job = self.store.get_job(name)
            if job.status not in TERMINAL:
                self.store.finish(
                    name,
                    "Stopped" if job.stop_requested else "Failed",
                    reason="its runner ended as it started, before it could record an end",
                )
        for w in self._workers:
            w.close()


def _ray_run(url: str, name: str, threads: int, home: str) -> str:
    """A Ray task: run one job where Ray placed it, recording into the shared store."""
    os.environ["VISIONTUNE_DB"] = url
    if home:
        os.environ["VISIONTUNE_HOME"] = home
    import torch

    torch.set_num_threads(threads)
    from visiontune.jobs.runner import run_job
    from visiontune.jobs.store import JobStore

    try:
        return run_job(JobStore(url), name, tee=True).status
    except BaseException:  # noqa: BLE001 - recorded in the store
        return "Failed"


class RayExecutor(Executor):
    """Trials as Ray tasks, each with the CPUs/GPUs it asks for (``resources_per_trial``)."""

    name = "ray"

    def __init__(self, store, parallel, resources, address=None):
        super().__init__(store, parallel, resources, address)
        try:
            import ray
        except ImportError as exc:
            raise MissingDependencyError("ray", "backend 'ray'", extra="ray") from exc
        if store.is_sqlite and address and not address.startswith(("127.", "localhost")):
            raise ConfigError(
                "backend 'ray' across machines needs a shared store: set VISIONTUNE_DB to a "
                "PostgreSQL URL that every node reaches"
            )
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address or None, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {address or 'a new local one'}: {exc}; start it "
                    "with `ray start --head` and give its address (HOST:PORT)"
                ) from exc
        cpus = float(self.resources.get("cpu", 1))
        self._task = ray.remote(num_cpus=cpus, num_gpus=float(self.resources.get("gpu", 0)))(_ray_run)
        self._threads = max(1, int(cpus))
        self.refs: dict[str, object] = {}

    def submit(self, job: Job) -> None:
        self.refs[job.name] = self._task.remote(
            self.store.url, job.name, self._threads, os.environ.get("VISIONTUNE_HOME", "")
        )

    def alive(self, name: str) -> bool:
        ref = self.refs.get(name)
        if ref is None:
            return False
        done, _ = self.ray.wait([ref], timeout=0)
        return not done

    def shutdown(self) -> None:
        for name, ref in self.refs.items():
            if self.alive(name):
                self.store.request_stop(name)
        for ref in self.refs.values():
            try:
                self.ray.get(ref, timeout=60)
            except Exception:  # noqa: BLE001 - a cancelled or failed task
                pass


EXECUTORS: Registry[type[Executor]] = Registry("backend")
EXECUTORS.register(LocalExecutor)
EXECUTORS.register(RayExecutor)


def create_executor(
    name: str, store: JobStore, parallel: int, resources: dict, address: str | None = None, log_dir: Path | None = None
) -> Executor:
    cls = EXECUTORS.get(name)
    if cls is LocalExecutor:
        return cls(store, parallel, resources, address, log_dir=log_dir)
    return cls(store, parallel, resources, address)
