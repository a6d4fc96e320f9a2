"""``visiontune tune --config tune.yaml`` and ``visiontune tune list | describe | stop | report``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.table import Table

from visiontune.paths import run_folder
from visiontune.progress import table_console


def _store():
    from visiontune.jobs.api import default_store

    return default_store()


class _TuneGroup(click.Group):
    """``visiontune tune --config FILE`` runs a tuning job; ``visiontune tune list`` etc. look at them."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx, formatter):
        """``tune --help`` lists what ``tune --config FILE`` takes (the ``run`` command's options) too."""
        super().format_options(ctx, formatter)
        run = self.commands["run"]
        records = [r for p in run.get_params(ctx) if "--help" not in p.opts and (r := p.get_help_record(ctx))]
        with formatter.section("Options of `visiontune tune --config FILE` (the same as `tune run`)"):
            formatter.write_dl(records)


@click.group("tune", cls=_TuneGroup)
def tune_group() -> None:
    """Hyperparameter tuning: `visiontune tune --config tune.yaml` runs (or resumes) a tuning job.

    The YAML names what to train (`train:` options of the built-in engine, or a `script:`), the objective,
    the ranges, the strategy (Bayesian, Random, Grid, Hyperband) and the limits; see the README."""


@tune_group.command("run")
@click.option("--config", "config_path", type=click.Path(), required=True, help="the tuning job's YAML file")
@click.option("--name", default=None, help="override the tuning job's name in the file")
@click.option("--max-parallel-jobs", type=click.IntRange(1), default=None, help="override: trials at a time")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="override: where trials run (local processes, or a Ray cluster)",
)
@click.option("--ray-address", default=None, help="with --backend ray: the cluster's HOST:PORT")
@click.option(
    "--detach",
    is_flag=True,
    help="run in the background and print the tuning job's name (`visiontune tune describe NAME` follows it)",
)
def run_cmd(config_path, name, max_parallel_jobs, backend, ray_address, detach):
    """Run a tuning job to the end; run it again after an interruption and it resumes where it was."""
    from visiontune.tune import Tuner, TuningConfig

    config = TuningConfig.load(config_path)
    for key, value in (
        ("name", name),
        ("max_parallel_jobs", max_parallel_jobs),
        ("backend", backend),
        ("ray_address", ray_address),
    ):
        if value is not None:
            setattr(config, key, value)
    config.check()
    if detach:
        from visiontune.tune.tuner import launch

        launch(config)
        click.echo(config.name)
        return
    tj = Tuner(config).run()
    _print_summary(tj.name)


def _print_summary(name: str) -> None:
    from visiontune.tune.report import leaderboard

    store = _store()
    tj = store.get_tuning_job(name)
    rows = leaderboard(store, name)
    con = table_console()
    if rows:
        params = [
            k
            for k in rows[0]
            if k
            not in (
                "TrainingJobName",
                "TrainingJobStatus",
                "FinalObjectiveValue",
                "TrainingElapsedTimeSeconds",
                "TrialNumber",
                "Attempts",
                "FailureReason",
                "LastReportedObjectiveValue",
                "LastReportedStep",
            )
        ]
        table = Table("trial", "job", "status", "objective", "seconds", *params)
        table.columns[1].overflow = "fold"
        for r in rows:
            obj, last = r["FinalObjectiveValue"], r["LastReportedObjectiveValue"]
            shown = (
                f"{obj:.4f}"
                if obj is not None
                # a stopped trial: what it reached, and when
                else (f"({last:.4f} at step {r['LastReportedStep']})" if last is not None else "")
            )
            table.add_row(
                str(r["TrialNumber"]),
                r["TrainingJobName"] or "",
                r["TrainingJobStatus"],
                shown,
                "" if r["TrainingElapsedTimeSeconds"] is None else f"{r['TrainingElapsedTimeSeconds']:.1f}",
                *(f"{r[p]:.4g}" if isinstance(r[p], float) else str(r[p]) for p in params),
            )
        con.print(table)
    con.print(f"tuning job [bold]{tj.name}[/]: {tj.status}" + (f" ({tj.failure_reason})" if tj.failure_reason else ""))
    if tj.best_job:
        con.print(f"best training job: [bold]{tj.best_job}[/]; its model: {store.get_job(tj.best_job).model_data}")
    out = Path(tj.config.get("output") or run_folder(tj.name))
    con.print(f"report: {out.resolve() / 'report.html'}", highlight=False)


@tune_group.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="a table for people, or JSON for scripts",
)
def list_cmd(fmt):
    """Tuning jobs, newest first: status, trials so far, the best objective and job."""
    from visiontune.tune.report import summaries

    rows = [
        {**r, "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))} for r in summaries(_store())
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "status", "trials", "objective", "best", "best job", "created")
    for r in rows:
        table.add_row(
            r["name"],
            r["status"],
            f"{r['trials']}/{r['max_jobs']}",
            r["objective"] or "",
            "" if r["best"] is None else f"{r['best']:.4f}",
            r["best_job"] or "",
            r["created"],
        )
    table_console().print(table)


@tune_group.command("describe")
@click.argument("name")
def describe_cmd(name):
    """A tuning job as JSON: configuration, status, counts of trials by status, the best training job."""
    from visiontune.tune.report import leaderboard

    store = _store()
    tj = store.get_tuning_job(name)
    rows = leaderboard(store, name)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["TrainingJobStatus"]] = counts.get(r["TrainingJobStatus"], 0) + 1
    best = next((r for r in rows if r["FinalObjectiveValue"] is not None), None)
    click.echo(
        json.dumps(
            {
                "HyperParameterTuningJobName": tj.name,
                "HyperParameterTuningJobStatus": tj.status,
                "FailureReason": tj.failure_reason,
                "TrainingJobStatusCounters": counts,
                "BestTrainingJob": best,
                "Config": tj.config,
            },
            indent=2,
        )
    )


@tune_group.command("stop")
@click.argument("name")
def stop_cmd(name):
    """Stop a tuning job: its running trials are stopped; running it again later resumes it."""
    from visiontune.tune.tuner import stop_tuning

    store = _store()
    click.echo(f"{name}: {stop_tuning(store, name).status}")


@tune_group.command("report")
@click.argument("name")
def report_cmd(name):
    """The leaderboard, and the report files (PNG plots, report.html) written again."""
    from visiontune.tune.report import write_report

    store = _store()
    tj = store.get_tuning_job(name)
    out = Path(tj.config.get("output") or run_folder(name))
    write_report(store, name, out)
    _print_summary(name)


def register(cli: click.Group) -> None:
    cli.add_command(tune_group)
