"""Jobs from Python: the built-in engine and scripts, recorded in the job store as they run.

``visiontune.train(...)`` is :func:`train` here: the engine's :func:`visiontune.train.train`,
recorded as a job (``visiontune jobs list`` shows it).
"""

from __future__ import annotations

from visiontune.debug.trial import JOB_LOOKUP
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


def _job_record(name: str):
    return default_store().get_job(name)


JOB_LOOKUP.register(_job_record, "job store")  # create_trial("job-name") and `visiontune report JOB`
