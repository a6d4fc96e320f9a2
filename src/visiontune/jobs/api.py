"""Jobs from Python: the built-in engine and scripts, recorded in the job store as they run.

``visiontune.train(...)`` is :func:`train` here: the engine's :func:`visiontune.train.train`,
recorded as a job (``visiontune jobs list`` shows it).
"""

from __future__ import annotations

from visiontune.debug.lookup import JOB_LOOKUP
from visiontune.jobs.runner import run_job, submit
from visiontune.jobs.store import JobStore

_STORES: dict[tuple[str, int], JobStore] = {}


def default_store() -> JobStore:
    """One store per database URL and process (opening one migrates it)."""
    import os

    from visiontune.jobs.store import database_url

    key = (database_url(), os.getpid())
    if key not in _STORES:
        _STORES[key] = JobStore(key[0])
        _STORES[key].reap_orphans()
    return _STORES[key]


def train(config=None, *, job_name: str | None = None, callbacks: tuple = (), **options):
    """Fine-tune a model (every :class:`~visiontune.train.TrainConfig` option by name), recorded as a job.

    Returns the engine's :class:`~visiontune.train.TrainResult`, with ``.job`` naming the job."""
    from visiontune.train import TrainConfig
    from visiontune.train.loop import TrainResult

    cfg = config if config is not None else TrainConfig.from_dict(options)
    if config is not None and options:
        cfg = TrainConfig.from_dict({**config.to_dict(), **options})
    store = default_store()
    job = submit(store, "builtin", {"config": cfg.to_dict()}, name=job_name, output_dir=cfg.out or None)
    done = run_job(store, job.name, callbacks=callbacks)
    return TrainResult.from_dir(done.output_dir, job=done.name)


def start_training(options: dict, *, job_name: str | None = None, store: JobStore | None = None):
    """Submit an engine run and start it in its own process (``visiontune train --detach``); returns the
    :class:`~visiontune.jobs.store.Job` at once.  Bad options fail here, before anything starts."""
    from visiontune.jobs.runner import launch
    from visiontune.train import TrainConfig

    store = store or default_store()
    cfg = TrainConfig.from_dict(options)
    job = submit(store, "builtin", {"config": cfg.to_dict()}, name=job_name, output_dir=cfg.out or None)
    launch(store, job.name, tie_to_parent=False)
    return job


def model_folder(name: str, store: JobStore | None = None):
    """The model a finished job wrote (its output folder), or a clear error saying why there is none."""
    from pathlib import Path

    from visiontune.errors import ConfigError

    job = (store or default_store()).get_job(name)
    if job.status != "Completed":
        why = f" ({job.failure_reason})" if job.failure_reason else ""
        raise ConfigError(f"job {name} is {job.status}{why}: only a Completed job has a model to deploy")
    out = Path(job.output_dir)
    if not (out / "config.json").is_file():
        raise ConfigError(
            f"job {name} left no model in {out} (no config.json); a script job's model is "
            f"{job.model_data}: serve that file"
        )
    return out


def _job_record(name: str):
    return default_store().get_job(name)


JOB_LOOKUP.register(_job_record, "job store")  # create_trial("job-name") and `visiontune report JOB`
