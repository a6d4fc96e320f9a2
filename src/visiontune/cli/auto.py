"""``visiontune auto``: the best model for a dataset within a time budget."""

from __future__ import annotations

import click

from visiontune.choices import DEVICES


@click.command("auto")
@click.option("--data", required=True, type=click.Path(), help="the dataset (any layout `train` reads)")
@click.option(
    "--time-limit",
    default=None,
    help="the budget, first feature pass to final test included: 600, 90s, 20m, 1h30m "
    "(default 20m; with --resume, the limit the run started with)",
)
@click.option(
    "--metric",
    type=click.Choice(["accuracy", "mAP", "mIoU"]),
    default=None,
    help="the score to maximise (default: the task's: accuracy, mAP for multi-label and detection, mIoU)",
)
@click.option(
    "--max-model-size", default=None, help="the largest model: millions of parameters (5M) or float32 megabytes (20MB)"
)
@click.option(
    "--models", default=None, help="screen only these zoo models (comma-separated; default: every offline one)"
)
@click.option(
    "--task",
    type=click.Choice(["auto", "classification", "multi-label", "segmentation", "detection"]),
    default="auto",
    show_default=True,
    help="what the data is (auto: what it holds)",
)
@click.option(
    "--out", type=click.Path(), default="runs/auto", show_default=True, help="folder for the model and report"
)
@click.option("--resume", is_flag=True, help="continue an auto run in --out with the time it has left")
@click.option("--overwrite", is_flag=True, help="replace an earlier auto run in --out")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed of every run and of the search")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="where to train")
def auto_cmd(data, time_limit, metric, max_model_size, models, task, out, resume, overwrite, seed, device):
    """Screen every offline backbone on cached features, fine-tune the leaders by successive halving, keep the
    best model (OUT/model), score it once on the test split, and write a leaderboard and report.html.

    Every run is a job (`visiontune jobs list`); Ctrl-C or `visiontune jobs stop` on the running one keeps the
    best model so far, and --resume continues."""
    from visiontune.auto import auto

    r = auto(
        data,
        time_limit=time_limit,  # None: 20m, or with --resume the limit the run started with
        metric=metric,
        max_model_size=max_model_size,
        out=out,
        resume=resume,
        overwrite=overwrite,
        seed=seed,
        device=device,
        models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        task=task,
    )
    if r.model is None:
        click.secho("no model: no run finished with a score (see the report)", fg="red")
    else:
        cfg = r.best["config"]
        click.secho(
            f"chosen: {cfg['model']} at {cfg['image_size']} px, {cfg.get('mode', 'head')} mode: validation "
            f"{r.metric} {r.best['score']:.4f}" + (f", test {r.metric} {r.test['value']:.4f}" if r.test else ""),
            bold=True,
        )
    click.echo(
        f"{r.seconds:.0f} s of {r.time_limit:.0f} s" + (" (stopped early; --resume continues)" if r.stopped else "")
    )
    click.echo(f"model: {r.model}  report: {r.files.get('html')}  leaderboard: {r.files.get('csv')}")
    if r.model is not None:
        click.echo(f"next: visiontune serve {r.model}   or   visiontune predict {r.model} IMAGE_OR_FOLDER")


def register(cli: click.Group) -> None:
    cli.add_command(auto_cmd)
