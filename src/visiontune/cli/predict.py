"""``visiontune predict MODEL IMAGE|DIR|MANIFEST``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from visiontune.artifact import load_model
from visiontune.predict import iter_predictions


@click.command("predict")
@click.argument("model", type=click.Path())
@click.argument("inputs", type=click.Path())
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one object per image")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="fp32 = the trained network's exact answers; auto = bf16 where the hardware computes it (faster)")
def predict_cmd(model, inputs, top_k, as_json, batch_size, device, precision):
    """Predict classes for an image, a folder of images or a manifest."""
    m = load_model(model, device=device, precision=precision)
    table = Table("image", "label", "probability", f"top {top_k}")
    n_bad = 0
    for row in iter_predictions(m, Path(inputs), top_k=top_k, batch_size=batch_size):
        n_bad += "error" in row
        if as_json:
            click.echo(json.dumps(row))
        elif "error" in row:
            table.add_row(row["source"], "[red]error[/]", "", row["error"])
        else:
            table.add_row(row["source"], row["label"], f"{row['probability']:.4f}",
                          ", ".join(f"{t['label']} {t['probability']:.3f}" for t in row["top_k"]))
    if not as_json:
        Console().print(table)
    if n_bad:
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(predict_cmd)
