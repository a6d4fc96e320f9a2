"""``visiontune train``: the built-in engine (flags generated from :class:`TrainConfig`), or a user's
SageMaker training script (``--entry-point``); either way the run is recorded as a job."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, fields

import click
from click.core import ParameterSource

from visiontune.choices import BOUNDS
from visiontune.train.config import TrainConfig


def _base_type(tp):
    if isinstance(tp, str):
        tp = eval(tp, {"str": str, "int": int, "float": float, "bool": bool, "None": type(None)})  # noqa: S307
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def config_options(func):
    """One click option per TrainConfig field: ``learning_rate`` -> ``--learning-rate``."""
    for f in reversed(fields(TrainConfig)):
        if not f.metadata.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        tp = _base_type(f.type)
        default = f.default if f.default is not MISSING else None
        help_ = f.metadata.get("help", "")
        if tp is bool:
            opt = click.option(
                f"{flag}/--no-{f.name.replace('_', '-')}", f.name, default=default, help=help_, show_default=True
            )
        else:
            choices = f.metadata.get("choices")
            ctype = click.Choice(choices) if choices else {int: int, float: float, str: str}[tp]
            if f.name in BOUNDS and tp is int:  # --image-size: the bounds TrainConfig checks
                ctype = click.IntRange(*BOUNDS[f.name])
            opt = click.option(
                flag, f.name, type=ctype, default=default, help=help_, show_default=default not in (None, "")
            )
        func = opt(func)
    return func


def _channels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{v!r}: write NAME=PATH, e.g. train=data/train", param_hint="--channel")
        out[name] = path
    return out


def _hyperparameters(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{text!r} is not JSON ({exc.msg} at column {exc.pos + 1}); write e.g. "
            '\'{"lr": 0.01, "batch-size": 32}\'',
            param_hint="--hyperparameters",
        ) from exc
    if not isinstance(value, dict):
        raise click.BadParameter("give a JSON object of name: value", param_hint="--hyperparameters")
    return value


@click.command("train")
@config_options
@click.option("--job-name", default=None, help="the job's name (default: <model or script>-<date-time>)")
@click.option(
    "--detach",
    is_flag=True,
    help="run in the background and print the job's name (follow it with `visiontune jobs logs -f NAME`)",
)
@click.option(
    "--entry-point",
    default=None,
    help="script mode: a SageMaker training script to run (instead of the built-in engine)",
)
@click.option("--source-dir", default=None, help="script mode: the script's folder (its working directory)")
@click.option(
    "--channel",
    "channels",
    multiple=True,
    help="script mode: NAME=PATH, becomes SM_CHANNEL_NAME (repeat for train, test, ...)",
)
@click.option(
    "--hyperparameters",
    "hyperparameters",
    default=None,
    help="script mode: a JSON object, passed to the script as --name value",
)
@click.option(
    "--metric-definition",
    "metric_definitions",
    multiple=True,
    help="script mode: NAME=REGEX, the first group of each match is a point of metric NAME (repeat)",
)
@click.option(
    "--instance-count",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="workers training one model data-parallel (PyTorch DDP launched by Ray Train)",
)
@click.option(
    "--debugger-compat",
    type=click.Choice(["auto", "smdebug", "off"]),
    default="auto",
    show_default=True,
    help="script mode: put smdebug's API (visiontune's shim) on the script's import path; auto: when it "
    "imports smdebug",
)
@click.option(
    "--ray-address", default=None, help="with --instance-count > 1: the Ray cluster's HOST:PORT (default: a local Ray)"
)
@click.pass_context
def train_cmd(
    ctx,
    job_name,
    detach,
    entry_point,
    source_dir,
    channels,
    hyperparameters,
    metric_definitions,
    instance_count,
    ray_address,
    debugger_compat,
    **options,
):
    """Fine-tune a pretrained model (writes the model artifact, metrics and plots to --out), or run a
    SageMaker training script with --entry-point.  Either way the run is a job (`visiontune jobs list`)."""
    from visiontune.errors import ConfigError
    from visiontune.jobs.api import default_store
    from visiontune.jobs.runner import launch, run_job, submit
    from visiontune.progress import note

    store = default_store()
    out = options.get("out") or None
    if entry_point:
        engine_flags = [
            f"--{n.replace('_', '-')}"
            for n in options
            if n not in ("out", *_SCRIPT_DEBUG) and ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE
        ]
        if engine_flags:
            raise ConfigError(
                f"{', '.join(engine_flags)} set the built-in engine; a script takes its settings as "
                "--hyperparameters '{...}'"
            )
        spec = {
            "entry_point": entry_point,
            "source_dir": source_dir,
            "channels": _channels(channels),
            "hyperparameters": _hyperparameters(hyperparameters),
            "metric_definitions": list(metric_definitions),
            "instance_count": instance_count,
            "ray_address": ray_address,
            "debugger": {
                "enabled": options["debugger"],
                "rules": options["debug_rules"],
                "profile_interval": options["profile_interval"],
                "compat": debugger_compat,
            },
        }
        kind = "script"
    else:
        if channels or hyperparameters or metric_definitions or source_dir:
            raise ConfigError(
                "--channel, --hyperparameters, --metric-definition and --source-dir are for scripts: "
                "add --entry-point SCRIPT"
            )
        if not options.get("data"):
            raise ConfigError("--data: give the dataset to train on (or --entry-point SCRIPT for script mode)")
        spec, kind = (
            {
                "config": TrainConfig.from_dict(options).to_dict(),
                "instance_count": instance_count,
                "ray_address": ray_address,
            },
            "builtin",
        )
    job = submit(store, kind, spec, name=job_name, output_dir=out)
    note(f"job [bold]{job.name}[/] ({kind}), output in {job.output_dir}")
    if detach:
        launch(store, job.name, tie_to_parent=False)
        click.echo(job.name)
        return
    done = run_job(store, job.name)
    if done.status != "Completed":
        raise ConfigError(f"job {done.name} {done.status}: {done.failure_reason}")
    if kind == "builtin":
        from visiontune.train.loop import TrainResult

        r = TrainResult.from_dir(done.output_dir)
        from visiontune.tasks import get_task

        split, headline = r.metrics["evaluated_on"], get_task(r.metrics.get("task", "classification")).headline
        note(
            f"[bold green]done[/] in {done.elapsed:.1f}s: {split} {headline} {r.metrics[f'{split}_{headline}']:.4f}; "
            f"model in {done.output_dir} (and {done.model_data})"
        )
    else:
        note(
            f"[bold green]done[/] in {done.elapsed:.1f}s: model {done.model_data}"
            + (
                "; metrics " + ", ".join(f"{k}={v:g}" for k, v in done.final_metrics.items())
                if done.final_metrics
                else ""
            )
        )


#: the engine flags a script job takes too (the debugger runs beside scripts as well)
_SCRIPT_DEBUG = ("debugger", "debug_rules", "profile_interval")


def register(cli: click.Group) -> None:
    cli.add_command(train_cmd)
