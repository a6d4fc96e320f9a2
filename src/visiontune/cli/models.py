"""``visiontune models list | info``."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Column, Table


def _row(spec) -> dict:
    return spec.describe()


@click.group("models")
def models_group() -> None:
    """The model zoo."""


@models_group.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="a table for people, or JSON for scripts",
)
@click.option("--json", "as_json", is_flag=True, hidden=True, help="the same as --format json")
def list_cmd(fmt, as_json):
    """Registered models and whether their pretrained weights are usable offline (and how to install them)."""
    from visiontune.zoo import list_models

    rows = [_row(s) for s in list_models()]
    if as_json or fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(Column("name", no_wrap=True), "architecture", "offline weights", "input", "licence")
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['library']}:{r['arch']}",
            "[green]yes[/]" if r["offline"] else "[red]no[/]",
            str(r["input_size"]),
            r["license"] or "",
        )
    con = Console()
    con.print(table)
    missing = [r for r in rows if r["install"]]
    if missing:  # whole lines, never cut by the table's width, so they can be copied
        con.print("To make these usable offline:")
        for r in missing:
            con.print(f"  {r['name']}: ", end="", highlight=False)
            con.print(r["install"], soft_wrap=True, highlight=False, markup=False)
    con.print(
        "Any other torchvision or timm architecture works by name (resnet34, timm:convnext_small) "
        "with --weights FILE, hub weights when online, or --no-pretrained."
    )


@models_group.command("info")
@click.argument("name")
def info_cmd(name):
    """What a model name resolves to, its weights and its stages (for --mode partial)."""
    from visiontune.zoo import create_model, get_model_spec

    spec = get_model_spec(name)
    row = _row(spec)
    try:
        model, _, _ = create_model(name, pretrained=False, num_classes=2)
        row["num_features"] = model.backbone.num_features
        row["stages"] = len(model.backbone.stages())
        row["parameters"] = sum(p.numel() for p in model.parameters())
    except Exception as exc:  # noqa: BLE001 - info is best effort
        row["error"] = str(exc)
    click.echo(json.dumps(row, indent=2))


def register(cli: click.Group) -> None:
    cli.add_command(models_group)
