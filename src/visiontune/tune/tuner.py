"""The tuning loop: ask Optuna for hyperparameters, run trials as jobs, report their per-epoch
objective for pruning, tell Optuna how each ended; crash-safe and resumable.

State lives in the job store: the tuning job's row, the Optuna study (Optuna's own tables, in the
same database), and one job per trial attempt (``<tuning job>-<trial:03d>``).  Run the same tuning
job again after a crash (even SIGKILL) and it resumes: finished trials count, a trial whose job had
completed is told its result, a trial that was running is run again with the same hyperparameters,
and no more than ``max_jobs`` trials are ever created.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from visiontune.errors import ConfigError, VisiontuneError
from visiontune.jobs.runner import submit
from visiontune.jobs.store import TERMINAL, Job, JobStore
from visiontune.paths import run_folder
from visiontune.procs import this_host
from visiontune.progress import note
from visiontune.tune.config import TuningConfig, study_name
from visiontune.tune.executors import Executor, create_executor
from visiontune.tune.strategies import get_strategy

POLL_S = 0.1
#: Configuration keys that may change when a tuning job is resumed (how it runs, not what it searches).
RESUMABLE_CHANGES = {"max_parallel_jobs", "backend", "ray_address", "resources_per_trial"}


@dataclass
class _Running:
    trial_number: int
    job: str
    reported: int = 0  # objective points already reported to Optuna
    pruned: bool = False


class Tuner:
    """Runs (or resumes) one tuning job to the end."""

    def __init__(self, config: TuningConfig, store: JobStore | None = None):
        from visiontune.jobs.api import default_store

        self.config = config
        self.store = store or default_store()
        self.name = config.name
        self.output = Path(config.output or run_folder(config.name)).resolve()
        from visiontune.jobs.base import check_apart
        from visiontune.jobs.kinds import get_kind

        # every trial's folder lies in the output: refuse it once here, not in each trial
        check_apart(
            self.output,
            get_kind(config.kind).inputs({"config": config.base} if config.kind == "builtin" else config.base),
            "tuning output folder",
        )
        self._stop = threading.Event()
        self.running: dict[int, _Running] = {}

    # ------------------------------------------------------------------ set-up
    def _record(self):
        existing = self.store.find_tuning_job(self.name)
        doc = _recorded(self.config, self.output)
        if existing is None:
            self.store.create_tuning_job(self.name, doc)
            return False
        check_resumable(existing, doc)
        self.store.update_tuning_job(
            self.name,
            status="InProgress",
            pid=os.getpid(),
            host=this_host(),
            heartbeat_at=time.time(),
            ended_at=None,
            stop_requested=False,
            failure_reason=None,
            config=doc,
        )
        return True

    def _pruner_spec(self) -> dict:
        early = "Auto" if self.config.strategy == "Hyperband" else self.config.early_stopping
        return get_strategy(self.config.strategy).pruner_spec(early, self.config.max_epochs())

    def _study(self):
        import optuna

        from visiontune.tune.strategies import build_pruner

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        strategy = get_strategy(self.config.strategy)
        study = optuna.create_study(
            storage=self.store.optuna_storage(),
            study_name=study_name(self.name),
            load_if_exists=True,
            direction="maximize" if self.config.maximize else "minimize",
            sampler=strategy.sampler(self.config.ranges, self.config.seed, self.config.max_jobs),
            pruner=build_pruner(self._pruner_spec()),
        )
        before = len(study.trials)
        if before:  # resumed: a sampler seeded as the first run's would draw its first points again
            study.sampler = strategy.sampler(
                self.config.ranges, resumed_seed(self.config.seed, before), self.config.max_jobs
            )
        return study

    def _warm_start(self, study) -> None:
        """Completed trials of parent tuning jobs join the study first, so the search starts informed."""
        import optuna

        dists = {n: p.distribution(n) for n, p in self.config.ranges.items()}
        storage = self.store.optuna_storage()  # the same storage
        for parent in self.config.warm_start:
            if self.store.find_tuning_job(parent) is None:
                raise ConfigError(f"warm_start: no tuning job named {parent!r}")
            added = 0
            for t in optuna.load_study(study_name=study_name(parent), storage=storage).trials:
                if t.state != optuna.trial.TrialState.COMPLETE or set(t.params) != set(dists):
                    continue
                if not all(_contains(dists[n], v) for n, v in t.params.items()):
                    continue  # outside the new ranges (a value a categorical range no longer has...)
                study.add_trial(
                    optuna.trial.create_trial(
                        params=t.params, distributions=dists, value=t.value, user_attrs={"warm_start": parent}
                    )
                )
                added += 1
            note(f"warm start: {added} completed trial(s) of {parent}")

    # ------------------------------------------------------------------ trials
    def _own(self, study):
        return [t for t in study.get_trials(deepcopy=False) if "warm_start" not in t.user_attrs]

    def _hyperparameters(self, params: dict) -> dict:
        return {n: self.config.ranges[n].value(v) for n, v in params.items()}

    def _launch(self, study, executor: Executor, trial_number: int, params: dict, attempt: int) -> None:
        hps = self._hyperparameters(params)
        job_name = f"{self.name}-{trial_number:03d}" + (f"-{attempt}" if attempt > 1 else "")
        if self.config.kind == "builtin":  # the engine reports each epoch and prunes itself, at once
            # no per-epoch checkpoints: a trial interrupted with its tuner runs again from the start
            spec = {
                "config": {**self.config.base, **hps, "checkpoints": False, "plots": False},
                "pruning": {
                    "study": study_name(self.name),
                    "trial": trial_number,
                    "metric": self.config.objective_metric,
                    "pruner": self._pruner_spec(),
                },
            }
        else:
            spec = {**self.config.base, "hyperparameters": {**(self.config.base.get("hyperparameters") or {}), **hps}}
        try:
            job = submit(
                self.store,
                self.config.kind,
                spec,
                name=job_name,
                output_dir=self.output / job_name,
                tuning_job=self.name,
                trial_number=trial_number,
                attempt=attempt,
            )
        except VisiontuneError as exc:  # a bad combination: the trial fails, the tuning job goes on
            note(f"trial {trial_number}: {exc}")
            _tell(study, trial_number, state=_state("FAIL"))
            return
        _set_attr(self.store, study, trial_number, "job", job.name)
        executor.submit(job)
        self.running[trial_number] = _Running(trial_number, job.name)

    def _objective(self, job: str) -> list[tuple[int, float]]:
        series = self.store.metrics(job, self.config.objective_metric).get(self.config.objective_metric, [])
        return [(s, v) for s, v, _ in series]

    def _follow(self, study, executor: Executor, run: _Running) -> bool:
        """Report new objective points, prune, and finish the trial when its job has ended; True when done."""
        import optuna

        points = self._objective(run.job)
        trial_id = _trial_id(self.store, study, run.trial_number)
        trial = optuna.trial.Trial(study, trial_id)
        if self.config.kind == "builtin":
            run.reported = len(points)  # the engine reported these itself
        new = points[run.reported :]
        # a trial run again after its tuner died: its first attempt's steps stay as they were reported
        known = self.store.optuna_storage().get_trial(trial_id).intermediate_values if new else {}
        for step, value in new:
            run.reported += 1
            if step in known:
                continue
            trial.report(value, step)
            if not run.pruned and trial.should_prune():
                run.pruned = True
                note(
                    f"trial {run.trial_number} ({run.job}) pruned at step {step}: {self.config.objective_metric}={value:.4g}"
                )
                executor.stop(run.job)
        job = self.store.get_job(run.job)
        if job.status not in TERMINAL:
            if not executor.alive(run.job):
                self.store.reap_orphans()
                if self.store.get_job(run.job).status not in TERMINAL and job.pid is None:
                    self.store.finish(run.job, "Failed", reason="its worker process ended before the job started")
            return False
        self._finish_trial(study, run.trial_number, job, pruned=run.pruned, points=points)
        return True

    def _finish_trial(self, study, number: int, job: Job, pruned: bool, points) -> None:
        if job.status == "Completed" and points:
            _tell(study, number, points[-1][1])
            note(
                f"trial {number} ({job.name}): {self.config.objective_metric}={points[-1][1]:.4g}"
                + (" (it finished before the stop reached it: counted as completed)" if pruned else "")
            )
        elif pruned or (job.status == "Stopped" and points):
            _tell(study, number, state=_state("PRUNED"))
        else:
            why = job.failure_reason or (
                f"the objective metric {self.config.objective_metric!r} never appeared in the "
                "log; check its metric definition"
                if job.status == "Completed"
                else job.status
            )
            _set_attr(self.store, study, number, "failure_reason", why[:500])
            _tell(study, number, state=_state("FAIL"))
            note(f"trial {number} ({job.name}) failed: {why}")

    def _resume_running(self, study, executor: Executor) -> None:
        """Trials left RUNNING by a tuner that died: told their result, or run again with the same parameters."""
        import optuna

        for t in self._own(study):
            if t.state != optuna.trial.TrialState.RUNNING:
                continue
            jobs = sorted(
                (j for j in self.store.list_jobs(tuning_job=self.name) if j.trial_number == t.number),
                key=lambda j: j.attempt,
            )
            last = jobs[-1] if jobs else None
            if last is not None and last.active:
                self.store.reap_orphans()  # its runner died with the old tuner
                last = self.store.get_job(last.name)
                if last.active:  # still beating elsewhere (another host?): stop it, it is not ours any more
                    executor.stop(last.name)
                    self.store.finish(last.name, "Stopped", reason="its tuner was restarted")
                    last = self.store.get_job(last.name)
            if last is not None and last.status == "Completed":
                self._finish_trial(study, t.number, last, pruned=False, points=self._objective(last.name))
                continue
            attempt = (last.attempt + 1) if last is not None else 1
            note(f"trial {t.number} was running when the tuner stopped: running it again (attempt {attempt})")
            self._launch(study, executor, t.number, t.params, attempt)

    # ------------------------------------------------------------------ the loop
    def _should_stop_launching(self, study) -> str | None:
        import optuna

        done = [t for t in self._own(study) if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            return None
        values = [t.value for t in sorted(done, key=lambda t: t.datetime_complete or t.datetime_start)]
        best = max(values) if self.config.maximize else min(values)
        target = self.config.target_objective
        if target is not None and (best >= target if self.config.maximize else best <= target):
            return f"the target objective {target} was reached ({best:.4g})"
        n = self.config.max_jobs_not_improving
        if n:
            best_at = max(i for i, v in enumerate(values) if v == best)
            if len(values) - 1 - best_at >= n:
                return f"the best objective has not improved for {n} trials"
        return None

    def _beat(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self.store.update_tuning_job(self.name, heartbeat_at=time.time())
                if self.store.get_tuning_job(self.name).stop_requested:
                    self._stop.set()
            except Exception:  # noqa: BLE001 - the next beat retries
                pass

    def run(self):
        """Run to the end (or until stopped); returns the finished :class:`~visiontune.jobs.TuningJob`."""
        resumed = self._record()
        self._stop.clear()
        status, reason, executor, study, stopping_reason = "Failed", None, None, None, None
        beat = threading.Thread(target=self._beat, daemon=True, name="tuner-heartbeat")
        beat.start()
        previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        if previous is not None:
            signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            study = self._study()
            if not resumed and self.config.warm_start and not study.trials:
                self._warm_start(study)
            self.output.mkdir(parents=True, exist_ok=True)
            (self.output / "tuning.json").write_text(json.dumps(self.config.to_dict(), indent=2))
            executor = create_executor(
                self.config.backend,
                self.store,
                self.config.max_parallel_jobs,
                self.config.resources_per_trial,
                self.config.ray_address,
                log_dir=self.output,
            )
            if self.config.kind == "builtin":
                executor.warm_up()  # workers import torch while the study is set up
            threading.Thread(target=_preload_report_libraries, daemon=True).start()
            note(
                f"tuning job {self.name}: {self.config.strategy}, up to {self.config.max_jobs} trials, "
                f"{self.config.max_parallel_jobs} at a time, {self.config.objective_type.lower()} "
                f"{self.config.objective_metric}" + (" (resumed)" if resumed else "")
            )
            stopping_reason = self._loop(study, executor)
            status = "Stopped" if self._stop.is_set() else "Completed"
            reason = "stopped on request; run it again to resume" if status == "Stopped" else None
        except KeyboardInterrupt:
            status, reason = "Stopped", "interrupted (Ctrl-C); run the same command again to resume"
            raise
        except BaseException as exc:
            status, reason = "Failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            best_job = self._wind_down(study, executor, previous)
            if status == "Completed" and not best_job:
                status, reason = "Failed", "no trial completed; `visiontune jobs list --tuning-job NAME` shows why"
            self.store.update_tuning_job(
                self.name, ended_at=time.time(), best_job=best_job, failure_reason=reason or stopping_reason
            )
            # the report and the best trial's plots first, the final status last: whoever sees the status (the
            # studio's page, `tune describe`) finds every file
            self._write_results(best_job, status)
            self.store.update_tuning_job(self.name, status=status)
        return self.store.get_tuning_job(self.name)

    def _write_results(self, best_job: str | None, status: str) -> None:
        from visiontune.tune.report import write_report

        try:
            write_report(self.store, self.name, self.output, status=status)
            if best_job and self.config.kind == "builtin":  # the trials skipped their PNGs; the best one gets them
                from visiontune.train.plots import run_plots

                run_plots(self.store.get_job(best_job).output_dir)
        except Exception as exc:  # noqa: BLE001 - the tuning job's status must still be recorded
            note(
                f"the tuning report could not be written: {type(exc).__name__}: {exc} "
                f"(`visiontune tune report {self.name}` writes it again)"
            )

    def _loop(self, study, executor: Executor) -> str | None:
        """Follow, finish and launch trials until max_jobs have run, a completion criterion holds, or a stop."""
        self._resume_running(study, executor)
        dists = {n: p.distribution(n) for n, p in self.config.ranges.items()}
        own = len(self._own(study))
        stopping_reason = self._should_stop_launching(study)
        while not self._stop.is_set():
            finished = False
            for number in list(self.running):
                if self._follow(study, executor, self.running[number]):
                    del self.running[number]
                    finished = True
            if finished:  # Optuna is read only when something changed (SQLite writers wait less)
                stopping_reason = stopping_reason or self._should_stop_launching(study)
            while (
                not stopping_reason
                and not self._stop.is_set()
                and len(self.running) < self.config.max_parallel_jobs
                and own < self.config.max_jobs
            ):
                trial = study.ask(dists)
                self._launch(study, executor, trial.number, trial.params, 1)
                own += 1
            if not self.running and (own >= self.config.max_jobs or stopping_reason):
                break
            time.sleep(POLL_S)
        return stopping_reason

    def _wind_down(self, study, executor: Executor | None, previous_handler) -> str | None:
        """Stop what runs; trials the tuner itself stopped stay RUNNING, so a rerun runs them again."""
        import optuna

        if executor is not None:
            for run in self.running.values():
                executor.stop(run.job)
            executor.shutdown()
        if study is not None:
            for number, run in list(self.running.items()):
                job = self.store.get_job(run.job)
                if job.status == "Completed" or (run.pruned and job.status in TERMINAL):
                    self._finish_trial(study, number, job, pruned=run.pruned, points=self._objective(run.job))
        self._stop.set()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        if study is None:
            return None
        complete = [t for t in self._own(study) if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            return None
        best = max(complete, key=lambda t: t.value) if self.config.maximize else min(complete, key=lambda t: t.value)
        return best.user_attrs.get("job")


def _preload_report_libraries() -> None:
    """matplotlib and Optuna's plots take seconds to import: done while trials run, not after."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
        import optuna.visualization.matplotlib  # noqa: F401
    except Exception:  # noqa: BLE001 - the report imports them again and says what is wrong
        pass


def _tell(study, number: int, value: float | None = None, state=None) -> None:
    """``study.tell`` for ask-and-tell use: a trial already finished is left as it is, and the grid sampler's
    ``study.stop()`` once the grid is exhausted (meant for ``optimize``) is not an error here."""
    try:
        study.tell(number, value, state=state, skip_if_finished=True)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


# Optuna's public API only (issue 33): the study's storage is the job store's (JobStore.optuna_storage(), an
# RDBStorage), read and written through BaseStorage's documented methods, never through Study's private fields.
def _trial_id(store: JobStore, study, number: int) -> int:
    storage = store.optuna_storage()
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


def _set_attr(store: JobStore, study, number: int, key: str, value) -> None:
    """A user attribute on a trial that may have been created by an earlier tuner process."""
    store.optuna_storage().set_trial_user_attr(_trial_id(store, study, number), key, value)


def _contains(distribution, value) -> bool:
    """Whether ``value`` lies in an Optuna distribution, read from its public fields (low, high, step, log;
    choices)."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if not distribution.low <= value <= distribution.high:
        return False
    step = getattr(distribution, "step", None)
    if step:  # on the grid low, low + step, ... (IntDistribution's step is 1)
        k = (value - distribution.low) / step
        return abs(k - round(k)) <= 1e-8 * max(1.0, abs(k))
    return True


def _state(name: str):
    import optuna

    return getattr(optuna.trial.TrialState, name)


# ---------------------------------------------------------------------- in the background, and stopping
def resumed_seed(seed: int, trials: int) -> int:
    """The sampler's seed for a study resumed with ``trials`` trials: its own stream, the same for the same
    resumption (a fresh study keeps ``seed``)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"{seed}:{trials}".encode(), digest_size=4).digest(), "little")


def _recorded(config: TuningConfig, output: Path) -> dict:
    """The configuration as the store records it: the output folder resolved (a plain run's default is
    runs/NAME), so a detached run and a plain one of the same file compare equal."""
    return {**config.to_dict(), "output": str(output)}


def check_resumable(existing, doc: dict) -> None:
    """Refuses to resume a tuning job whose tuner still runs, or with a configuration that changed what it
    searches (how it runs may change: RESUMABLE_CHANGES)."""
    from visiontune.jobs.store import ORPHAN_SECONDS
    from visiontune.procs import pid_alive

    name = existing.name
    live = existing.status == "InProgress" and (
        (existing.host == this_host() and existing.pid != os.getpid() and pid_alive(existing.pid))
        or (existing.host != this_host() and (existing.heartbeat_at or 0) > time.time() - ORPHAN_SECONDS)
    )
    if live:
        raise ConfigError(
            f"tuning job {name!r} is running already (pid {existing.pid} on {existing.host}); "
            f"follow it with `visiontune tune describe {name}`, or stop it first"
        )
    before = {**existing.config, "output": str(Path(existing.config.get("output") or run_folder(name)).resolve())}
    changed = sorted(k for k in set(doc) | set(before) if doc.get(k) != before.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        where = f"; it writes to {before['output']}" if "output" in changed else ""
        raise ConfigError(
            f"a tuning job named {name!r} exists with another configuration ({', '.join(changed)} "
            f"differ{where}); resume it with the same configuration, or choose another name"
        )


def launch(config: "TuningConfig", *, wait_s: float = 60.0):
    """Run a tuning job in its own process (``visiontune tune --config FILE --detach``): the configuration is
    written to ``<output>/tune.yaml`` and ``visiontune tune run`` runs it, its output in ``tune.log`` beside it.
    A tuning job of that name that ended (stopped, its tuner killed) is resumed there, as a plain run would.
    Returns once the tuning job is recorded as running in that process (or raises, quoting the log, if the
    process ended first: a different configuration under that name, a tuner still running)."""
    import subprocess
    import sys

    import yaml

    from visiontune.jobs.api import default_store

    config.check()
    store = default_store()
    out = Path(config.output or run_folder(config.name)).resolve()
    before = store.find_tuning_job(config.name)
    if before is not None:  # the new process resumes it: refused here, before anything is written, if it cannot
        check_resumable(before, _recorded(config, out))
    config.output = str(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tune.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    env = {**os.environ, "VISIONTUNE_DB": store.url, "PYTHONUNBUFFERED": "1"}
    with open(out / "tune.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "visiontune.cli.main", "tune", "run", "--config", str(out / "tune.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = time.time() + wait_s
    while time.time() < deadline:
        tj = store.find_tuning_job(config.name)
        if tj is not None and (before is None or (tj.pid == proc.pid and tj.host == this_host())):
            return proc
        if proc.poll() is not None:
            tail = (out / "tune.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise ConfigError(f"tuning job {config.name} ended before it started: {' | '.join(tail)}")
        time.sleep(0.2)
    return proc


def stop_tuning(store, name: str, wait_s: float = 60.0):
    """Stop a tuning job (its running trials stop too); running its configuration again resumes it."""
    tj = store.get_tuning_job(name)
    store.update_tuning_job(name, stop_requested=True)
    if tj.status == "InProgress" and tj.host == this_host() and tj.pid and tj.pid != os.getpid():
        try:
            os.kill(tj.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + wait_s
    while time.time() < deadline and store.get_tuning_job(name).status == "InProgress":
        time.sleep(0.5)
    return store.get_tuning_job(name)
