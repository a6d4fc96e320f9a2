"""``python -m visiontune.jobs.worker NAME``: run one submitted job (a child process of a runner or tuner)."""

from __future__ import annotations

import sys


def serve() -> int:
    """A warm worker: run the jobs named on stdin, one per line, until stdin closes."""
    import os

    import torch

    torch.set_num_threads(int(os.environ.get("VISIONTUNE_THREADS") or torch.get_num_threads()))
    from visiontune.jobs.runner import run_job
    from visiontune.jobs.store import JobStore

    store = JobStore()
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        try:
            run_job(store, name, tee=True)
        except BaseException:  # noqa: BLE001 - recorded in the store; take the next job
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--serve"]:
        return serve()
    if len(args) != 1:
        print("usage: python -m visiontune.jobs.worker JOB_NAME | --serve", file=sys.stderr)
        return 2
    from visiontune.jobs.runner import run_job
    from visiontune.jobs.store import JobStore

    store = JobStore()
    try:
        job = run_job(store, args[0], tee=True)
    except BaseException:  # noqa: BLE001 - recorded in the store by run_job; the exit code says it failed
        return 1
    return 0 if job.status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
