"""``visiontune quickstart``: Fashion-MNIST -> head-mode mobilenet_v2 -> test accuracy -> predictions."""

from __future__ import annotations

from pathlib import Path

import click

from visiontune.choices import BOUNDS


@click.command("quickstart")
@click.option(
    "--out",
    "--workdir",
    "out",
    type=click.Path(),
    default="quickstart",
    show_default=True,
    help="folder for the PNG dataset, the model and the sample predictions",
)
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1), help="passes over the training data")
@click.option(
    "--image-size",
    default=96,
    show_default=True,
    type=click.IntRange(*BOUNDS["image_size"]),
    help="input size in pixels",
)
@click.option("--n-train", default=10_000, show_default=True, type=click.IntRange(10), help="training images")
@click.option(
    "--n-test",
    default=2_000,
    show_default=True,
    type=click.IntRange(10),
    help="validation images, and as many test images",
)
def quickstart_cmd(out, epochs, image_size, n_train, n_test):
    """Write Fashion-MNIST as PNG class folders, fine-tune mobilenet_v2 (head mode), predict a few images."""
    from visiontune.quickstart import quickstart

    r = quickstart(out, epochs=epochs, image_size=image_size, n_train=n_train, n_test=n_test)
    click.secho(f"test accuracy: {r.test_accuracy:.4f} ({r.test_images} test images)", bold=True)
    for row in r.predictions:
        truth = Path(row["source"]).stem
        mark = "ok " if row["label"] == truth else "MISS"
        click.echo(f"  {mark} {Path(row['source']).name:<18} -> {row['label']} ({row['probability']:.3f})")
    click.echo(
        f"model: {r.model}  curves: {r.model / 'learning_curves.png'}  "
        f"confusion matrix: {r.model / 'confusion_matrix.png'}"
    )
    click.echo(f"next: visiontune predict {r.model} IMAGE_OR_FOLDER")


def register(cli: click.Group) -> None:
    cli.add_command(quickstart_cmd)
