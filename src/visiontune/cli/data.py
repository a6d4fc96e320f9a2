"""``visiontune data inspect | split``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from visiontune.data.inspect import inspect_dataset, write_split_manifests
from visiontune.data.sources import ON_BAD_IMAGE, open_dataset
from visiontune.data.split import parse_ratios, stratified_split


@click.group("data")
def data_group() -> None:
    """Look at and split datasets."""


@data_group.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--grid", type=click.Path(), default=None, help="sample-grid PNG (default: PATH-samples.png beside it)")
@click.option("--no-grid", is_flag=True, help="do not write the sample grid")
@click.option("--label-attribute", default=None, help="manifest label attribute (detected when there is one)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def inspect_cmd(path, grid, no_grid, label_attribute, as_json):
    """Classes, counts per split, image sizes and modes, unreadable files, and a sample grid PNG."""
    ds = open_dataset(path, on_bad_image="skip", label_attribute=label_attribute)
    if not no_grid and grid is None:
        grid = str(Path(path).expanduser().resolve().with_name(Path(path).name + "-samples.png"))
    report = inspect_dataset(ds, grid=None if no_grid else Path(grid))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    con = Console()
    con.print(f"[bold]{report['root']}[/] ({report['kind']}): {report['num_classes']} classes")
    table = Table("class", *report["counts"].keys())
    for c in report["classes"]:
        table.add_row(c, *(str(report["counts"][s][c]) for s in report["counts"]))
    table.add_row("[bold]total[/]", *(f"[bold]{report['totals'][s]}[/]" for s in report["counts"]))
    con.print(table)
    sz = report["image_sizes"]
    con.print(f"sizes: width {sz['width']['min']}..{sz['width']['max']} (median {sz['width']['median']}), "
              f"height {sz['height']['min']}..{sz['height']['max']} (median {sz['height']['median']})")
    con.print("modes: " + ", ".join(f"{m}={n}" for m, n in report["modes"].items()))
    for u in report["unreadable"]:
        con.print(f"[red]unreadable[/] {u['source']}: {u['reason']}")
    for u in report["skipped_while_scanning"]:
        con.print(f"[yellow]not an image[/] {u['source']}: {u['reason']}")
    if not report["unreadable"] and not report["skipped_while_scanning"]:
        con.print("[green]every image is readable[/]")
    if "grid" in report:
        con.print(f"sample grid: {report['grid']}")


@data_group.command("split")
@click.argument("path", type=click.Path())
@click.option("--ratios", default="0.8,0.2", show_default=True, help="train,validation[,test] shares")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(), required=True, help="folder for train.manifest, validation.manifest[, test.manifest]")
@click.option("--label-attribute", default=None, help="manifest label attribute (detected when there is one)")
@click.option("--on-bad-image", type=click.Choice(ON_BAD_IMAGE), default="error", show_default=True)
def split_cmd(path, ratios, seed, out, label_attribute, on_bad_image):
    """Write stratified split manifests (Ground Truth format); train on the folder with --data OUT."""
    ratios_ = parse_ratios(ratios)
    ds = open_dataset(path, on_bad_image=on_bad_image, label_attribute=label_attribute)
    ds.check()
    samples = [s for split in ds.splits.values() for s in split]
    parts = stratified_split(samples, ratios_, seed)
    names = ["train", "validation", "test"][: len(parts)]
    for f, part in zip(write_split_manifests(ds, names, parts, Path(out)), parts):
        click.echo(f"{f}: {len(part)} images")


def register(cli: click.Group) -> None:
    cli.add_command(data_group)
