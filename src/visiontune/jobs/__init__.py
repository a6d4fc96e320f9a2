"""Jobs: every training run (built-in engine or user script) recorded, followed, stopped, compared.

JobStore()              the store ($VISIONTUNE_DB, or SQLite in $VISIONTUNE_HOME)
submit(store, kind, spec) -> Job      record a job (kinds: builtin, script)
run_job(store, name)    run it here;  launch(store, name) run it in a child process
stop(store, name)       ask it to stop;  wait(store, name)  until it has finished
"""

from visiontune.jobs.base import JobKind, RunResult
from visiontune.jobs.context import RunContext
from visiontune.jobs.kinds import get_kind, list_kinds, register_kind
from visiontune.jobs.runner import launch, run_job, stop, submit, wait
from visiontune.jobs.store import Job, JobNotFoundError, JobStore, TuningJob

__all__ = [
    "Job",
    "JobKind",
    "JobNotFoundError",
    "JobStore",
    "RunContext",
    "RunResult",
    "TuningJob",
    "get_kind",
    "launch",
    "list_kinds",
    "register_kind",
    "run_job",
    "stop",
    "submit",
    "wait",
]
