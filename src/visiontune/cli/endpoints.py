"""``visiontune endpoints start | list | invoke | stop``: background endpoints (the studio's Deploy page)."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import click


@click.group("endpoints")
def endpoints_group() -> None:
    """Endpoints running in the background (`visiontune serve` in its own process, recorded in the home folder)."""


@endpoints_group.command("start")
@click.argument("model")
@click.option("--name", default=None, help="endpoint name (default: from the model or job)")
@click.option("--port", default=None, type=int, help="port on 127.0.0.1 (default: a free one)")
@click.option("--job", "from_job", is_flag=True, help="MODEL is a training job's name: serve its model")
@click.argument("serve_options", nargs=-1, type=click.UNPROCESSED)
def start_cmd(model, name, port, from_job, serve_options):
    """Start an endpoint for MODEL (a model folder, model.tar.gz, pretrained:NAME for a zoo model's ImageNet
    classifier, or a job's name with --job); more `visiontune serve` flags may follow `--`."""
    from visiontune.serve.endpoints import start

    job = None
    if from_job:
        from visiontune.jobs.api import model_folder

        job, model = model, model_folder(model)
    ep = start(model, name=name, port=port, job=job, options=list(serve_options))
    click.echo(f"{ep.name}: {ep.url}/invocations (pid {ep.pid})")


@endpoints_group.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="a table for people, or JSON for scripts",
)
def list_cmd(fmt):
    """Running endpoints."""
    from visiontune.serve.endpoints import list_endpoints

    rows = [e.to_dict() for e in list_endpoints()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no endpoints running (`visiontune endpoints start MODEL`)")
    for r in rows:
        click.echo(f"{r['name']:<24} {r['invocations']:<40} {r['job'] or ''} {r['model']}")


@endpoints_group.command("invoke")
@click.argument("name")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="how many best classes to list")
def invoke_cmd(name, image, top_k):
    """Send IMAGE to endpoint NAME; prints its answer and the latency."""
    from visiontune.serve.endpoints import invoke

    ctype = mimetypes.guess_type(image)[0] or "application/octet-stream"
    click.echo(json.dumps(invoke(name, Path(image).read_bytes(), ctype, top_k=top_k), indent=2))


@endpoints_group.command("stop")
@click.argument("names", nargs=-1, required=True)
def stop_cmd(names):
    """Stop endpoints."""
    from visiontune.serve.endpoints import stop

    for name in names:
        stop(name)
        click.echo(f"stopped {name}")


def register(cli: click.Group) -> None:
    cli.add_command(endpoints_group)
