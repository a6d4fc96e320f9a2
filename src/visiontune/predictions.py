"""Predict over images, folders, globs or manifests, in batches, bad images reported."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from visiontune.artifact.model import VisionModel
from visiontune.data.dataset import read_bytes
from visiontune.data.decode import image_size_of, is_image_name
from visiontune.data.sources import MANIFEST_SUFFIXES, iter_manifest, resolve_ref
from visiontune.errors import BadImageError, DataError, MissingDependencyError
from visiontune.prediction import SegmentationPrediction
from visiontune.runtime import INFERENCE_PRECISION

#: keys of a segmentation row that hold arrays, not JSON: the mask and the per-class probabilities
MASK, PROBABILITIES = "_mask", "_probabilities"


def list_remote(url: str) -> list[str]:
    """Images under an fsspec URL (s3://bucket/prefix/, gs://..., memory://...), sorted."""
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependencyError("fsspec", f"reading {url}", extra="remote") from exc
    fs, root = fsspec.core.url_to_fs(url)
    protocol = url.split("://", 1)[0]
    if fs.isfile(root):
        return [url]
    files = sorted(f for f in fs.find(root) if is_image_name(f))
    if not files:
        raise DataError(f"{url}: no image files there")
    return [f"{protocol}://{f.lstrip('/')}" for f in files]


def list_inputs(path: Path | str) -> list[str]:
    """The images an input names: one file, a folder (recursive, sorted), a manifest's source-refs, or a URL."""
    if "://" in str(path) and not str(path).startswith("file://"):
        return list_remote(str(path))
    path = Path(str(path).removeprefix("file://")).expanduser()
    if path.is_dir():
        files = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file()
            and is_image_name(p.name)
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"{path}: no image files in this folder")
        return files
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return [resolve_ref(str(rec["source-ref"]), path.parent) for _, rec in iter_manifest(path)]
    if path.is_file():
        return [str(path)]
    raise DataError(f"{path}: no such file or folder")


def expand_inputs(paths: str | Path | list) -> list[str]:
    """Several inputs -> one list of images, in the given order, each once.

    Each input is an image, a folder, a manifest, a URL, or a glob (``'data/**/*.jpg'``, quoted so the
    shell leaves it to visiontune)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        text = str(p)
        if "://" not in text and not Path(text).expanduser().exists() and glob.has_magic(text):
            matches = sorted(glob.glob(str(Path(text).expanduser()), recursive=True))
            if not matches:
                raise DataError(f"{text}: the pattern matches no file")
            for m in matches:
                out += list_inputs(m) if Path(m).is_dir() else [m] if is_image_name(m) else []
            continue
        out += list_inputs(p)
    return list(dict.fromkeys(out))


def predict(
    model,
    inputs,
    *,
    top_k: int = 3,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = INFERENCE_PRECISION,
    probabilities: bool = False,
) -> list[dict]:
    """``visiontune predict``: one row per image, in input order (``source``, ``label``, ``probability``,
    ``top_k``; ``error`` for an unreadable image).  ``model`` is a model folder, a ``model.tar.gz`` or a
    loaded :class:`VisionModel`; ``inputs`` one or several images, folders, manifests or globs."""
    return list(
        iter_predict(
            model,
            inputs,
            top_k=top_k,
            batch_size=batch_size,
            device=device,
            precision=precision,
            probabilities=probabilities,
        )
    )


def iter_predict(
    model,
    inputs,
    *,
    top_k: int = 3,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = INFERENCE_PRECISION,
    probabilities: bool = False,
) -> Iterator[dict]:
    """:func:`predict`, one row at a time (a segmentation model's masks can be written and dropped as they
    come)."""
    from visiontune.artifact import load_model

    m = model if isinstance(model, VisionModel) else load_model(model, device=device, precision=precision)
    yield from iter_predictions(
        m, expand_inputs(inputs), top_k=top_k, batch_size=batch_size, probabilities=probabilities
    )


def iter_predictions(
    model: VisionModel, inputs: Path | list[str], top_k: int = 3, batch_size: int = 64, probabilities: bool = False
) -> Iterator[dict]:
    """One row per image, in input order: label, probability, top-k (and all probabilities), or an error.

    A detector's rows hold ``prediction``: ``[class_id, score, xmin, ymin, xmax, ymax]`` per box, best first.
    A segmentation model's rows hold the mask's summary (``shape``, ``classes_present``, ``pixel_fractions``)
    and, under ``MASK``, the mask itself (a uint8 array at the image's size; ``PROBABILITIES``: (C, H, W)
    with ``probabilities``), for the caller to write and drop."""
    sources = inputs if isinstance(inputs, list) else list_inputs(inputs)
    for start in range(0, len(sources), batch_size):
        chunk = sources[start : start + batch_size]
        pixels, ok, rows, sizes = [], [], [None] * len(chunk), []
        for i, src in enumerate(chunk):
            try:
                data = read_bytes(src)
                size = image_size_of(data, name=src) if model.spatial else None  # first: both or neither
                pixels.append(model.pixels(data, name=src))
                sizes.append(size)
                ok.append(i)
            except (BadImageError, OSError) as exc:
                rows[i] = {"source": src, "error": getattr(exc, "reason", str(exc))}
        if pixels and model.task.name == "detection":  # SageMaker Object Detection's rows, [0, 1] coordinates
            from visiontune.tasks.detection import rows_of

            dense = model.predict_proba_pixels(np.stack(pixels))
            for i, found in zip(ok, rows_of(dense, len(model.classes), model.preprocessing.image_size)):
                rows[i] = {"source": chunk[i], "prediction": found}
            yield from rows
            continue
        if pixels and model.spatial:  # one image's full-size maps at a time, however large the photos
            yield from _segmentation_rows(
                model, chunk, rows, model.predict_proba_pixels(np.stack(pixels)), sizes, probabilities
            )
            continue
        if pixels:
            probs = model.predict_proba_pixels(np.stack(pixels))
            for i, p, pred in zip(ok, probs, model.top_k(probs, top_k)):
                rows[i] = {"source": chunk[i], **pred.to_dict()}
                if probabilities:
                    rows[i]["probabilities"] = [float(x) for x in p]
        yield from rows


def _segmentation_rows(
    model: VisionModel, chunk: list[str], rows: list, probs, sizes, probabilities: bool
) -> Iterator[dict]:
    """A chunk's rows in input order (errors where decoding failed), each mask computed as it is yielded."""
    from visiontune.tasks.segmentation import at_sizes

    maps = at_sizes(probs, sizes)
    for i, src in enumerate(chunk):
        if rows[i] is not None:
            yield rows[i]
            continue
        p = next(maps)
        pred = SegmentationPrediction(p.argmax(0).to(torch.uint8).numpy(), model.classes)
        row = {"source": src, **pred.to_dict(), MASK: pred.mask}
        if probabilities:
            row[PROBABILITIES] = p.numpy()
        yield row
