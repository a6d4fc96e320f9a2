"""``visiontune train``: its flags are generated from :class:`TrainConfig`'s fields."""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields

import click

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
            opt = click.option(f"{flag}/--no-{f.name.replace('_', '-')}", f.name, default=default, help=help_,
                               show_default=True)
        else:
            choices = f.metadata.get("choices")
            ctype = click.Choice(choices) if choices else {int: int, float: float, str: str}[tp]
            opt = click.option(flag, f.name, type=ctype, default=default, help=help_,
                               show_default=default is not None, required=f.name == "data")
        func = opt(func)
    return func


@click.command("train")
@config_options
def train_cmd(**options):
    """Fine-tune a pretrained model: writes the model artifact, metrics and plots to --out."""
    from visiontune.progress import note
    from visiontune.train import train

    result = train(TrainConfig.from_dict(options))
    m = result.metrics
    split = m["evaluated_on"]
    note(f"[bold green]done[/] in {result.seconds:.1f}s: {split} accuracy {m[f'{split}_accuracy']:.4f}; "
         f"model in {result.out} (and {result.out / 'model.tar.gz'})")


def register(cli: click.Group) -> None:
    cli.add_command(train_cmd)
