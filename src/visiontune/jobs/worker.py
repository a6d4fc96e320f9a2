"""``python -m visiontune.jobs.worker NAME``: run one submitted job (a child process of a runner or tuner)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m visiontune.jobs.worker JOB_NAME", file=sys.stderr)
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
