"""``visiontune report JOB`` and ``visiontune debug ...``: the debugger's report, rules and tensors."""

from __future__ import annotations

import click


@click.command("report")
@click.argument("job")
@click.option("--out", default=None, help="the HTML file to write (default: <job output>/debug/report.html)")
def report_cmd(job, out):
    """One self-contained HTML report of a job: curves, every rule's finding with its evidence, system
    usage, the step-time breakdown, the confusion matrix.  JOB: a job name or its output folder."""
    from visiontune.debug.report import build_report, terminal_summary

    path = build_report(job, out)
    click.echo(terminal_summary(job, report=path))


@click.group("debug")
def debug_group():
    """The training debugger: rules, saved tensors, TensorBoard export."""


@debug_group.command("rules")
def rules_cmd():
    """List the built-in rules with their parameters and defaults."""
    from rich.table import Table

    from visiontune.debug.rules import RULES
    from visiontune.progress import table_console

    from visiontune.debug.rules.runner import ENGINE_PARAMETERS, ENGINE_SKIPS

    table = Table("rule", "kind", "parameters (defaults)", "what it finds", box=None)
    for name in RULES.names():
        rule = RULES.get(name)
        params = ", ".join(f"{k}={v}" for k, v in rule.defaults.items() if k != "scan_interval_us") or "-"
        if name in ENGINE_PARAMETERS:
            params += " (built-in engine: " + ", ".join(f"{k}={v}" for k, v in ENGINE_PARAMETERS[name].items()) + ")"
        if name in ENGINE_SKIPS:
            params += " (not run for the built-in engine)"
        table.add_row(name, rule.kind, params, rule.explanation)
    table_console().print(table)


@debug_group.command("tensors")
@click.argument("job")
@click.option("--collection", default=None, help="only this collection (losses, scalars, weights, gradients...)")
@click.option("--regex", default=None, help="only names matching this regular expression")
def tensors_cmd(job, collection, regex):
    """The tensors a job saved, with their collections and steps per mode."""
    from rich.table import Table

    from visiontune.debug import create_trial
    from visiontune.debug.modes import ModeKeys
    from visiontune.progress import table_console

    trial = create_trial(job)
    if collection is not None and collection not in trial.collections():
        raise click.UsageError(
            f"--collection {collection}: this job saved none; it has "
            f"{', '.join(sorted(trial.collections())) or 'no tensors'}"
        )
    table = Table("tensor", "collections", *[m.name for m in ModeKeys if m != ModeKeys.GLOBAL], box=None)
    for name in trial.tensor_names(collection=collection, regex=regex):
        t = trial.tensor(name)
        cells = []
        for m in (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT):
            steps = t.steps(mode=m)
            cells.append(f"{len(steps)} ({steps[0]}..{steps[-1]})" if steps else "-")
        table.add_row(name, ",".join(t.collections()), *cells)
    table_console().print(table)
    for msg in trial.damaged:
        click.secho(f"warning: {msg}", fg="yellow", err=True)


@debug_group.command("evaluate")
@click.argument("job")
@click.option(
    "--rules",
    "rules",
    default="default",
    show_default=True,
    help="rules: default, or a comma list of name[:key=value...]",
)
def evaluate_cmd(job, rules):
    """Evaluate rules now on what a job saved (a finished job, or a look at a running one)."""
    from visiontune.debug.rules import evaluate_rules

    results = evaluate_rules(job, rules)
    for r in results["rules"]:
        colour = {"IssuesFound": "red", "Error": "red", "NoIssuesFound": "green"}.get(r["status"], "yellow")
        click.echo(f"{click.style(r['status'], fg=colour):>24}  {r['name']}: {r['message']}")
        for w in r.get("warnings") or []:
            click.secho(f"{'':>15}warning: {w}", fg="yellow")


@debug_group.command("export-tensorboard")
@click.argument("job")
@click.option("--out", default=None, help="folder for the event files (default: <job output>/debug/tensorboard)")
def export_tensorboard_cmd(job, out):
    """Write a job's tensors as TensorBoard event files (tensorboard --logdir FOLDER)."""
    from visiontune.debug.tensorboard import export_tensorboard

    folder, n = export_tensorboard(job, out)
    click.echo(
        f"{n} values written to {folder}; view them with `tensorboard --logdir {folder}` (pip install tensorboard)"
    )


def register(cli: click.Group) -> None:
    cli.add_command(report_cmd)
    cli.add_command(debug_group)
