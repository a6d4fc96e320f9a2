"""``visiontune data inspect``: what is in a dataset, before training on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from visiontune.data.dataset import Dataset, read_bytes
from visiontune.data.decode import open_image, resize_center_crop
from visiontune.errors import BadImageError, DataError
from visiontune.progress import bar


def _header(source: str):
    import io

    with Image.open(io.BytesIO(read_bytes(source))) as img:
        return img.size, img.mode


def inspect_dataset(dataset: Dataset, grid: Path | None = None, per_class: int = 6, verify: bool = True) -> dict:
    """Classes, counts per split, sizes and modes, unreadable files; optionally a sample grid PNG."""
    sizes, modes, unreadable = [], Counter(), []
    samples = [(split, s) for split, ss in dataset.splits.items() for s in ss]
    with bar(len(samples), "reading images") as advance:
        for split, s in samples:
            try:
                size, mode = _header(s.source)
                if verify:
                    open_image(read_bytes(s.source), name=s.source)
                sizes.append(size)
                modes[mode] += 1
            except BadImageError as exc:
                unreadable.append({"source": s.source, "split": split, "reason": exc.reason})
            except Exception as exc:  # noqa: BLE001 - report everything Pillow can raise
                unreadable.append({"source": s.source, "split": split, "reason": f"{type(exc).__name__}: {exc}"})
            advance(1)
    w = np.array([a for a, _ in sizes]) if sizes else np.zeros(1)
    h = np.array([b for _, b in sizes]) if sizes else np.zeros(1)
    report = {
        "root": dataset.root, "kind": dataset.kind, "classes": dataset.classes,
        "num_classes": dataset.num_classes,
        "counts": dataset.counts(),
        "totals": {k: len(v) for k, v in dataset.splits.items()},
        "image_sizes": {"width": {"min": int(w.min()), "median": int(np.median(w)), "max": int(w.max())},
                        "height": {"min": int(h.min()), "median": int(np.median(h)), "max": int(h.max())}},
        "modes": dict(modes),
        "unreadable": unreadable,
        "skipped_while_scanning": [{"source": s, "reason": r} for s, r in dataset.skipped],
    }
    if grid is not None:
        bad = {u["source"] for u in unreadable}
        report["grid"] = str(sample_grid(dataset, Path(grid), per_class, bad))
    return report


def sample_grid(dataset: Dataset, path: Path, per_class: int = 6, exclude: set[str] = frozenset(),
                cell: int = 96) -> Path:
    """A PNG with one row per class (at most 30 rows) of sample images, the class name at the left."""
    from PIL import ImageDraw

    rows = dataset.classes[:30]
    label_w = 160
    sheet = Image.new("RGB", (label_w + per_class * cell, max(1, len(rows)) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    train = dataset.splits.get("train", [])
    for r, name in enumerate(rows):
        label = dataset.classes.index(name)
        picks = [s for s in train if s.label == label and s.source not in exclude][:per_class]
        draw.text((6, r * cell + cell // 2 - 6), name[:22], fill="black")
        for c, s in enumerate(picks):
            try:
                img = resize_center_crop(open_image(read_bytes(s.source), name=s.source), cell - 4)
                sheet.paste(img, (label_w + c * cell + 2, r * cell + 2))
            except (BadImageError, OSError):
                continue
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def write_split_manifests(dataset: Dataset, parts: list[str], splits: list, out: Path,
                          attribute: str = "class") -> list[Path]:
    """Ground Truth-style manifests, one per part (``train.manifest`` ...)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    if not splits or not any(splits):
        raise DataError("nothing to write")
    written = []
    class_map = {str(i): c for i, c in enumerate(dataset.classes)}
    for name, samples in zip(parts, splits):
        path = out / f"{name}.manifest"
        with open(path, "w", encoding="utf-8") as fh:
            for s in samples:
                source = s.source if "://" in s.source else str(Path(s.source).resolve())
                fh.write(json.dumps({
                    "source-ref": source, attribute: s.label,
                    f"{attribute}-metadata": {"class-name": dataset.classes[s.label], "class-map": class_map,
                                              "type": "groundtruth/image-classification",
                                              "human-annotated": "yes"},
                }) + "\n")
        written.append(path)
    return written
