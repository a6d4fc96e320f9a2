"""``visiontune data inspect | split | doctor | synth fashion-scenes``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from visiontune.choices import ON_BAD_IMAGE


@click.group("data")
def data_group() -> None:
    """Look at, split and build datasets."""


@data_group.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--grid", type=click.Path(), default=None, help="sample-grid PNG (default: PATH-samples.png beside it)")
@click.option("--no-grid", is_flag=True, help="do not write the sample grid")
@click.option("--label-attribute", default=None, help="manifest label attribute (detected when there is one)")
@click.option("--allow-empty-labels", is_flag=True, help="multi-label data: images with no label are allowed")
@click.option(
    "--task",
    type=click.Choice(["auto", "segmentation", "detection"]),
    default="auto",
    show_default=True,
    help="segmentation: read a folder's masks where it also holds label files; detection: its "
    "<split>.boxes.manifest files (or a manifest's boxes)",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def inspect_cmd(path, grid, no_grid, label_attribute, allow_empty_labels, task, as_json):
    """Classes, counts per split, image sizes and modes, a sample grid PNG, and every check `train` runs.

    Exits 1 when `train` would refuse the data, after listing every reason at once."""
    if not no_grid and grid is None:
        grid = str(Path(path).expanduser().resolve().with_name(Path(path).name + "-samples.png"))
    from visiontune.data.inspect import inspect

    report = inspect(
        path,
        grid=None if no_grid else grid,
        label_attribute=label_attribute,
        allow_empty_labels=allow_empty_labels,
        task=task,
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if not report["ok"]:
        raise SystemExit(1)


def _print_report(report: dict) -> None:
    con = Console()
    con.print(f"[bold]{report['root']}[/] ({report['kind']}): {report['num_classes']} classes", highlight=False)
    table = Table("class", *report["counts"].keys())
    for c in report["classes"]:
        cells = [report["counts"][s][c] for s in report["counts"]]
        table.add_row(
            c, *(f"[red]{n}[/]" if n == 0 and s == "train" else str(n) for n, s in zip(cells, report["counts"]))
        )
    table.add_row("[bold]total[/]", *(f"[bold]{report['totals'][s]}[/]" for s in report["counts"]))
    con.print(table)
    sz = report["image_sizes"]
    con.print(
        f"sizes: width {sz['width']['min']}..{sz['width']['max']} (median {sz['width']['median']}), "
        f"height {sz['height']['min']}..{sz['height']['max']} (median {sz['height']['median']})"
    )
    con.print("modes: " + ", ".join(f"{m}={n}" for m, n in report["modes"].items()))
    if "grid" in report:
        con.print(f"sample grid: {report['grid']}", highlight=False)
    if "detection" in report:
        _print_boxes(con, report)
    if report["ok"] and "detection" in report:
        con.print("[green]every check passed: `visiontune train --task detection` will accept this data[/]")
        return
    if report["ok"]:
        con.print("[green]every check passed: `visiontune train` will accept this data[/]")
        return
    con.print(f"[red]{len(report['problems'])} problem(s) `visiontune train` would refuse:[/]")
    for p in report["problems"]:
        con.print(f"  [red]{p['check']}[/]: ", end="")
        con.print(p["message"], highlight=False, markup=False, soft_wrap=True)


def _print_boxes(con: Console, report: dict) -> None:
    """Detection data: boxes and images per class and split, boxes per image, box sizes, negatives."""
    d = report["detection"]
    table = Table("class", *(f"{s} boxes / images" for s in d["boxes_per_class"]))
    for c in report["classes"]:
        table.add_row(
            c, *(f"{d['boxes_per_class'][s][c]} / {d['images_per_class'][s][c]}" for s in d["boxes_per_class"])
        )
    con.print(table)
    per, w, h = d["boxes_per_image"], d["box_sizes"]["width"], d["box_sizes"]["height"]
    con.print(
        f"boxes: {d['boxes']}, per image {per['min']:g}..{per['max']:g} (mean {per['mean']:g}); box width "
        f"{w['min']:g}..{w['max']:g} px (median {w['median']:g}), height {h['min']:g}..{h['max']:g} px "
        f"(median {h['median']:g}); small {d['box_sizes']['small']}, medium {d['box_sizes']['medium']}, "
        f"large {d['box_sizes']['large']}"
    )
    for note in d["notes"]:
        con.print(note, highlight=False, markup=False, soft_wrap=True)


@data_group.command("split")
@click.argument("path", type=click.Path())
@click.option("--ratios", default="0.8,0.2", show_default=True, help="train,validation[,test] shares, adding up to 1")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed: the same seed gives the same split")
@click.option(
    "--out", type=click.Path(), required=True, help="folder for train.manifest, validation.manifest[, test.manifest]"
)
@click.option("--label-attribute", default=None, help="manifest label attribute (detected when there is one)")
@click.option(
    "--on-bad-image",
    type=click.Choice(ON_BAD_IMAGE),
    default="error",
    show_default=True,
    help="non-image files in class folders: stop with an error, or leave them out",
)
@click.option("--allow-empty-labels", is_flag=True, help="multi-label data: images with no label are allowed")
def split_cmd(path, ratios, seed, out, label_attribute, on_bad_image, allow_empty_labels):
    """Write stratified split manifests (Ground Truth format, paths relative to them); train on OUT with --data OUT."""
    from visiontune.data.split import split

    for f, n in split(
        path,
        out=out,
        ratios=ratios,
        seed=seed,
        label_attribute=label_attribute,
        on_bad_image=on_bad_image,
        allow_empty_labels=allow_empty_labels,
    ):
        click.echo(f"{f}: {n} images")


@data_group.command("doctor")
@click.argument("path", type=click.Path())
@click.option(
    "--model", default="mobilenet_v2", show_default=True, help="the pretrained backbone whose features judge the images"
)
@click.option("--image-size", type=int, default=None, help="the backbone's input size (default: its weights' own)")
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="folder for doctor.json, label_issues.csv, duplicates.csv, doctor.html",
)
@click.option(
    "--folds", default=5, show_default=True, type=int, help="each image judged by heads trained on the other folds"
)
@click.option(
    "--duplicate-similarity",
    default=0.97,
    show_default=True,
    type=float,
    help="cosine similarity of the features from which two images count as near-copies",
)
@click.option("--fix", is_flag=True, help="write cleaned split manifests into OUT/fixed (train takes the folder)")
@click.option(
    "--fix-confidence",
    default=0.9,
    show_default=True,
    type=float,
    help="--fix relabels a likely error when the suggested class is at least this probable",
)
@click.option("--label-attribute", default=None, help="manifest label attribute (detected when there is one)")
@click.option("--json", "as_json", is_flag=True, help="print doctor.json's content")
def doctor_cmd(
    path, model, image_size, out, folds, duplicate_similarity, fix, fix_confidence, label_attribute, as_json
):
    """Why a model may be bad, found in the data: likely label errors, duplicates and train/test leaks,
    outliers, poor images, class counts (one pass of a pretrained backbone; its features are cached)."""
    from visiontune.doctor import doctor

    r = doctor(
        path,
        model=model,
        image_size=image_size,
        out=out,
        folds=folds,
        duplicate_similarity=duplicate_similarity,
        fix=fix,
        fix_confidence=fix_confidence,
        label_attribute=label_attribute,
    )
    if as_json:
        click.echo(json.dumps(r.findings, indent=2))
        return
    click.echo(r.summary)
    for name, where in r.files.items():
        click.echo(f"  {name}: {where}")


@data_group.group("synth")
def synth_group() -> None:
    """Build datasets from real pixels on this machine, offline (for trying tasks and benchmarks)."""


@synth_group.command("fashion-scenes")
@click.option("--out", type=click.Path(), required=True, help="folder to write the scenes in")
@click.option("--train", "n_train", default=8_000, show_default=True, type=int, help="training scenes")
@click.option("--validation", "n_validation", default=2_000, show_default=True, type=int, help="validation scenes")
@click.option("--size", default=128, show_default=True, type=int, help="scene side in pixels (32 or more)")
@click.option("--min-items", default=1, show_default=True, type=int, help="fewest Fashion-MNIST items per scene")
@click.option("--max-items", default=4, show_default=True, type=int, help="most items per scene (up to 4)")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed: the same seed gives the same bytes")
def fashion_scenes_cmd(out, n_train, n_validation, size, min_items, max_items, seed):
    """Fashion-MNIST items pasted on scikit-image's sample photos: multi-label manifests and segmentation masks.

    Writes SageMaker's semantic-segmentation layout (train/, train_annotation/, validation/,
    validation_annotation/, label_map/) and Ground Truth multi-label manifests (train.manifest,
    validation.manifest) over the same images. A finished folder with the same options is kept as it is."""
    from visiontune.data.synth import fashion_scenes
    from visiontune.progress import bar

    with bar(n_train + n_validation, "building scenes") as advance:
        summary = fashion_scenes(
            out,
            n_train=n_train,
            n_validation=n_validation,
            size=size,
            min_items=min_items,
            max_items=max_items,
            seed=seed,
            progress=advance,
        )
    for part, s in summary["splits"].items():
        click.echo(
            f"{part}: {s['images']} scenes of {summary['size']}x{summary['size']} px, "
            f"{s['items'] / s['images']:.2f} items per scene on average; manifest {s['manifest']}, "
            f"masks {s['annotations_dir']}"
        )
    click.echo(
        f"written to {summary['out']} (class names in {summary['classes_file']}; "
        f"manifest label attribute {summary['label_attribute']!r}; boxes in "
        f"{', '.join(Path(s['box_manifest']).name for s in summary['splits'].values())})"
    )


def register(cli: click.Group) -> None:
    cli.add_command(data_group)
