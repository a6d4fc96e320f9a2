"""``visiontune quickstart``: Fashion-MNIST -> head-mode mobilenet_v2 -> test accuracy -> predictions."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("quickstart")
@click.option("--workdir", type=click.Path(), default="quickstart", show_default=True,
              help="where the PNG dataset and the model go")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1))
@click.option("--image-size", default=96, show_default=True, type=click.IntRange(16))
@click.option("--n-train", default=10_000, show_default=True, type=click.IntRange(10))
@click.option("--n-test", default=2_000, show_default=True, type=click.IntRange(10))
def quickstart_cmd(workdir, epochs, image_size, n_train, n_test):
    """Write Fashion-MNIST as PNG class folders, fine-tune mobilenet_v2 (head mode), predict a few images."""
    from visiontune.artifact import load_model
    from visiontune.data.fashion_mnist import write_png_folders
    from visiontune.predict import iter_predictions
    from visiontune.progress import note
    from visiontune.train import train

    work = Path(workdir)
    note(f"1/3 writing Fashion-MNIST PNGs to {work / 'fashion-mnist'} ({n_train} train, {n_test} val, {n_test} test)")
    data = write_png_folders(work / "fashion-mnist", n_train=n_train, n_val=n_test, n_test=n_test)
    note("2/3 fine-tuning mobilenet_v2 (head mode: frozen ImageNet backbone, features cached once)")
    result = train(data=str(data), out=str(work / "model"), model="mobilenet_v2", mode="head", epochs=epochs,
                   image_size=image_size, hidden_units=512, dropout=0.5, label_smoothing=0.1,
                   learning_rate=3e-3, batch_size=128)
    acc = result.metrics["test_accuracy"]
    click.secho(f"test accuracy: {acc:.4f} ({result.metrics['counts']['test']} test images)", bold=True)
    note(f"3/3 predicting a few test images with the saved model {result.out / 'model.tar.gz'}")
    model = load_model(result.out / "model.tar.gz")
    sample = work / "sample"
    sample.mkdir(exist_ok=True)
    for cls_dir in sorted((data / "test").iterdir())[:5]:
        first = sorted(cls_dir.iterdir())[0]
        (sample / f"{cls_dir.name}.png").write_bytes(first.read_bytes())
    for row in iter_predictions(model, sample, top_k=1):
        truth = Path(row["source"]).stem
        mark = "ok " if row["label"] == truth else "MISS"
        click.echo(f"  {mark} {Path(row['source']).name:<18} -> {row['label']} ({row['probability']:.3f})")
    click.echo(f"model: {result.out}  curves: {result.out / 'learning_curves.png'}  "
               f"confusion matrix: {result.out / 'confusion_matrix.png'}")
    click.echo(f"next: visiontune predict {result.out} IMAGE_OR_FOLDER")


def register(cli: click.Group) -> None:
    cli.add_command(quickstart_cmd)
