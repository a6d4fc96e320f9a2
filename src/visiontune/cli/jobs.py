"""``visiontune jobs list | describe | logs [-f] | stop | delete``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from visiontune.progress import table_console


def _store():
    from visiontune.jobs.api import default_store

    store = default_store()
    store.reap_orphans()
    return store


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return ""
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def headline(job) -> str:
    """The metric a person looks for first in a finished job."""
    for key in ("test_accuracy", "test_mIoU", "test_mAP", "validation_accuracy", "validation_mAP", "val_acc"):
        if key in job.final_metrics:
            return f"{key}={job.final_metrics[key]:.4f}"
    if job.final_metrics:
        k, v = next(iter(job.final_metrics.items()))
        return f"{k}={v:.4g}"
    return ""


@click.group("jobs")
def jobs_group() -> None:
    """Training jobs: every `visiontune train` run (built-in engine or script), and tuning trials."""


@jobs_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["InProgress", "Completed", "Failed", "Stopping", "Stopped"]),
    default=None,
    help="only jobs with this status",
)
@click.option("--tuning-job", default=None, help="only the trials of this tuning job")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="newest first, at most this many")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="a table for people, or JSON for scripts",
)
def list_cmd(status, tuning_job, limit, fmt):
    """Jobs, newest first: name, kind, status, elapsed time, the headline metric."""
    jobs = _store().list_jobs(status=status, tuning_job=tuning_job, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([j.to_dict() for j in jobs], indent=2))
        return
    table = Table("name", "kind", "status", "elapsed", "metric", "created")
    table.columns[0].overflow = "fold"
    colour = {"Completed": "green", "Failed": "red", "InProgress": "cyan", "Stopping": "yellow", "Stopped": "yellow"}
    for j in jobs:
        table.add_row(
            j.name,
            j.kind,
            f"[{colour[j.status]}]{j.status}[/]",
            _fmt_seconds(j.elapsed),
            headline(j),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created_at)),
        )
    table_console().print(table)


@jobs_group.command("describe")
@click.argument("name")
def describe_cmd(name):
    """Everything about a job (JSON): status, failure reason, hyperparameters, final metrics, artifacts."""
    from visiontune.jobs.store import TERMINAL

    store = _store()
    job = store.get_job(name)
    doc = job.to_dict()
    series = store.metrics(name)
    doc["MetricSeries"] = {
        k: {"points": len(v), "last": v[-1][1], "best_max": max(x[1] for x in v), "best_min": min(x[1] for x in v)}
        for k, v in series.items()
    }
    from visiontune.debug.rules import read_rules

    rules = read_rules(Path(job.output_dir) / "debug") or {"rules": []}

    def status(rule: dict) -> tuple[str, str]:
        if rule["status"] == "InProgress" and job.status in TERMINAL:  # the rules ended with the job's process
            return "Stopped", (
                f"the job ended ({job.status}) before this rule finished; `visiontune debug "
                f"evaluate {job.name}` evaluates it on what the job saved"
            )
        return rule["status"], rule["message"]

    for key, kind in (("DebugRuleEvaluationStatuses", "debug"), ("ProfilerRuleEvaluationStatuses", "profiler")):
        doc[key] = [
            dict(zip(("RuleConfigurationName", "RuleEvaluationStatus", "StatusDetails"), (r["name"], *status(r))))
            for r in rules["rules"]
            if r["kind"] == kind
        ]
    click.echo(json.dumps(doc, indent=2))


@jobs_group.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines until the job has finished")
def logs_cmd(name, follow):
    """A job's log (its script's or the engine's output), from the store.  Following ends when the job has
    ended, with exit status 1 if it failed."""
    from visiontune.jobs.store import TERMINAL

    store = _store()
    text, last = store.logs(name)
    sys.stdout.write(text)
    sys.stdout.flush()
    polls = 0
    while follow:
        polls += 1
        if polls % 5 == 0:  # a runner (or the process that was to start the job) that died wrote no end
            store.reap_orphans()
        job = store.get_job(name)
        text, last = store.logs(name, last)
        sys.stdout.write(text)
        sys.stdout.flush()
        if job.status in TERMINAL and not text:
            if (job.failure_reason or "").startswith("orphaned"):
                click.echo(f"[visiontune] job {name} {job.status}: {job.failure_reason}")
            if job.status == "Failed":
                sys.exit(1)
            break
        time.sleep(1.0)


@jobs_group.command("stop")
@click.argument("name")
@click.option(
    "--wait", "wait_s", default=30.0, show_default=True, type=float, help="seconds to wait for the job to stop"
)
def stop_cmd(name, wait_s):
    """Stop a job: the engine stops at the next batch (its checkpoint stays for --resume); a script gets SIGTERM."""
    from visiontune.jobs.runner import stop

    job = stop(_store(), name, wait_s=wait_s)
    click.echo(f"{job.name}: {job.status}" + (f" ({job.failure_reason})" if job.failure_reason else ""))


@jobs_group.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--files",
    is_flag=True,
    help="also delete what each job wrote (model, logs, debugger data), and its "
    "output folder when nothing else is in it",
)
def delete_cmd(names, files):
    """Forget finished jobs (their metric series and logs); --files also removes the files they wrote."""
    from visiontune.errors import ConfigError
    from visiontune.jobs.runner import delete_outputs, sharing_outputs
    from visiontune.jobs.store import TERMINAL

    store = _store()
    for name in names:
        job = store.get_job(name)
        if job.status not in TERMINAL:
            raise ConfigError(f"{name} is {job.status}; stop it first (`visiontune jobs stop {name}`)")
        others = sharing_outputs(store, job) if files else []
        kept = delete_outputs(job) if files and not others else []  # files first: a failure leaves the record
        store.delete_job(name)
        if others:
            click.echo(
                f"deleted {name}; kept its files: {job.output_dir} is also the output folder of "
                f"{', '.join(others)} (a resumed run writes into the folder it resumes); deleting the last "
                f"of them with --files removes them"
            )
        elif not files:
            click.echo(f"deleted {name}")
        elif kept:
            shown = ", ".join(kept[:8]) + (f" and {len(kept) - 8} more" if len(kept) > 8 else "")
            click.echo(
                f"deleted {name} and its files in {job.output_dir}; kept the folder, which also holds what "
                f"the job did not write: {shown}"
            )
        else:
            click.echo(f"deleted {name} and {job.output_dir}")


def register(cli: click.Group) -> None:
    cli.add_command(jobs_group)
