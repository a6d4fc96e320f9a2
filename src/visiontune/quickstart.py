"""The quickstart: Fashion-MNIST -> head-mode mobilenet_v2 -> test accuracy -> a few predictions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class QuickstartResult:
    out: Path
    model: Path
    test_accuracy: float
    test_images: int
    predictions: list[dict]


def quickstart(
    out: str | Path = "quickstart",
    *,
    epochs: int = 10,
    image_size: int = 96,
    n_train: int = 10_000,
    n_test: int = 2_000,
    overwrite: bool = True,
) -> QuickstartResult:
    """Write Fashion-MNIST as PNG class folders under ``out``, fine-tune mobilenet_v2 in head mode
    into ``out/model``, and predict one test image per class (of the first five) with the saved model."""
    from visiontune.artifact import load_model
    from visiontune.data.fashion_mnist import write_png_folders
    from visiontune.predictions import iter_predictions
    from visiontune.progress import note
    from visiontune.train import train

    work = Path(out)
    note(f"1/3 writing Fashion-MNIST PNGs to {work / 'fashion-mnist'} ({n_train} train, {n_test} val, {n_test} test)")
    data = write_png_folders(work / "fashion-mnist", n_train=n_train, n_val=n_test, n_test=n_test)
    note("2/3 fine-tuning mobilenet_v2 (head mode: frozen ImageNet backbone, features cached once)")
    result = train(
        data=str(data),
        out=str(work / "model"),
        model="mobilenet_v2",
        mode="head",
        epochs=epochs,
        image_size=image_size,
        hidden_units=512,
        dropout=0.5,
        label_smoothing=0.1,
        learning_rate=3e-3,
        batch_size=128,
        overwrite=overwrite,
    )
    note(f"3/3 predicting a few test images with the saved model {result.out / 'model.tar.gz'}")
    model = load_model(result.out / "model.tar.gz")
    sample = work / "sample"
    sample.mkdir(exist_ok=True)
    for cls_dir in sorted((data / "test").iterdir())[:5]:
        first = sorted(cls_dir.iterdir())[0]
        (sample / f"{cls_dir.name}.png").write_bytes(first.read_bytes())
    rows = list(iter_predictions(model, sample, top_k=1))
    return QuickstartResult(work, result.out, result.metrics["test_accuracy"], result.metrics["counts"]["test"], rows)
