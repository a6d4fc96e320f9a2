"""Predict over images, folders, globs or manifests, in batches, bad images reported."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterator

import numpy as np

from visiontune.artifact.model import VisionModel
from visiontune.data.dataset import read_bytes
from visiontune.data.decode import is_image_name
from visiontune.data.sources import MANIFEST_SUFFIXES, iter_manifest, resolve_ref
from visiontune.errors import BadImageError, DataError, MissingDependencyError


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
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and is_image_name(p.name)
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
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


def predict(model, inputs, *, top_k: int = 3, batch_size: int = 64, device: str = "auto",
            precision: str = "fp32", probabilities: bool = False) -> list[dict]:
    """``visiontune predict``: one row per image, in input order (``source``, ``label``, ``probability``,
    ``top_k``; ``error`` for an unreadable image).  ``model`` is a model folder, a ``model.tar.gz`` or a
    loaded :class:`VisionModel`; ``inputs`` one or several images, folders, manifests or globs."""
    from visiontune.artifact import load_model

    m = model if isinstance(model, VisionModel) else load_model(model, device=device, precision=precision)
    return list(iter_predictions(m, expand_inputs(inputs), top_k=top_k, batch_size=batch_size,
                                 probabilities=probabilities))


def iter_predictions(model: VisionModel, inputs: Path | list[str], top_k: int = 3, batch_size: int = 64,
                     probabilities: bool = False) -> Iterator[dict]:
    """One row per image, in input order: label, probability, top-k (and all probabilities), or an error."""
    sources = inputs if isinstance(inputs, list) else list_inputs(inputs)
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        pixels, ok, rows = [], [], [None] * len(chunk)
        for i, src in enumerate(chunk):
            try:
                pixels.append(model.pixels(read_bytes(src), name=src))
                ok.append(i)
            except (BadImageError, OSError) as exc:
                rows[i] = {"source": src, "error": getattr(exc, "reason", str(exc))}
        if pixels:
            probs = model.predict_proba_pixels(np.stack(pixels))
            for i, p, pred in zip(ok, probs, model.top_k(probs, top_k)):
                rows[i] = {"source": chunk[i], **pred.to_dict()}
                if probabilities:
                    rows[i]["probabilities"] = [float(x) for x in p]
        yield from rows
