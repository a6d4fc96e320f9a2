"""``visiontune data inspect``: what is in a dataset, before training on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from visiontune.data.dataset import Dataset, content_hash, find_leaks, labels_of, read_bytes
from visiontune.data.decode import describe_image, open_image, resize_center_crop
from visiontune.data.loading import open_dataset
from visiontune.errors import BadImageError, option
from visiontune.progress import bar


def inspect(
    path: str | Path,
    *,
    grid: str | Path | None = None,
    label_attribute: str | None = None,
    per_class: int = 6,
    allow_empty_labels: bool = False,
    task: str = "auto",
    confine: Callable[[Dataset], None] | None = None,
) -> dict:
    """``visiontune data inspect``: classes, counts per split, sizes and modes, and every check
    ``train`` runs (layout, classes, unreadable and non-image files, the same image in two splits or
    under two labels), reported all at once.  ``report["problems"]`` lists what ``train`` would refuse;
    ``report["ok"]`` is whether it would start.  ``confine``: called with the opened dataset before any image
    is read (a web app refuses images outside its data roots there)."""
    dataset = open_dataset(
        path,
        on_bad_image="skip",
        label_attribute=label_attribute,
        strict=False,
        allow_empty_labels=allow_empty_labels,
        task=task,
    )
    if confine is not None:
        confine(dataset)
    return inspect_dataset(dataset, grid=Path(grid) if grid else None, per_class=per_class)


def inspect_dataset(dataset: Dataset, grid: Path | None = None, per_class: int = 6) -> dict:
    """The report of :func:`inspect` for an opened dataset; optionally a sample grid PNG."""
    sizes, modes, unreadable = [], Counter(), []
    samples = [(split, s) for split, ss in dataset.splits.items() for s in ss]
    hashes: dict[str, str] = {}
    real_sizes: dict[str, tuple[int, int]] = {}  # detection: annotated sizes are checked against these
    with bar(len(samples), "reading images") as advance:
        for split, s in samples:
            try:
                data = read_bytes(s.source)
                hashes[s.source] = content_hash(data)
                size, mode = describe_image(data, name=s.source)
                sizes.append(size)
                real_sizes[s.source] = size
                modes[mode] += 1
            except BadImageError as exc:
                unreadable.append({"source": s.source, "split": split, "reason": exc.reason})
            except OSError as exc:
                unreadable.append({"source": s.source, "split": split, "reason": f"cannot read the file ({exc})"})
            advance(1)
    mask_problems = []
    if dataset.task == "segmentation":  # every mask checked as training will; counts: images showing a class
        dataset, mask_problems = _mask_labels(dataset)
    boxes, size_problems = None, []
    if dataset.task == "detection":  # boxes per class and image, box sizes, negatives; annotated sizes checked
        from visiontune.data.detection import detection_report
        from visiontune.data.detection import size_problems as annotated_sizes

        boxes, size_problems = detection_report(dataset, real_sizes), annotated_sizes(dataset, real_sizes)
    w = np.array([a for a, _ in sizes]) if sizes else np.zeros(1)
    h = np.array([b for _, b in sizes]) if sizes else np.zeros(1)
    skip = option("on_bad_image", "skip")
    problems = [{"check": "layout", "message": m} for m in dataset.problems()]
    problems += [{"check": "duplicates", "message": m} for m in find_leaks(dataset, hashes)]
    problems += [{"check": "mask", "message": m} for m in mask_problems]
    problems += [{"check": "image size", "message": m} for m in size_problems]
    problems += [
        {"check": "unreadable", "message": f"{u['source']}: {u['reason']} (train stops here unless {skip})"}
        for u in unreadable
    ]
    problems += [
        {"check": "not an image", "message": f"{src}: {why} (train stops here unless {skip})"}
        for src, why in dataset.skipped
    ]
    report = {
        "root": dataset.root,
        "kind": dataset.kind,
        "classes": dataset.classes,
        "num_classes": dataset.num_classes,
        "counts": dataset.counts(),
        "totals": {k: len(v) for k, v in dataset.splits.items()},
        "image_sizes": {
            "width": {"min": int(w.min()), "median": int(np.median(w)), "max": int(w.max())},
            "height": {"min": int(h.min()), "median": int(np.median(h)), "max": int(h.max())},
        },
        "modes": dict(modes),
        "unreadable": unreadable,
        "skipped_while_scanning": [{"source": s, "reason": r} for s, r in dataset.skipped],
        "problems": problems,
        "ok": not problems,
    }
    if boxes is not None:
        report["detection"] = boxes
    if grid is not None:
        bad = {u["source"] for u in unreadable}
        report["grid"] = str(sample_grid(dataset, Path(grid), per_class, bad))
    return report


def _mask_labels(dataset: Dataset) -> tuple[Dataset, list[str]]:
    """The dataset with each sample labelled by the classes its mask shows (what ``counts`` and the sample
    grid read), and every mask problem training would stop at."""
    import dataclasses

    from visiontune.data.segmentation import IGNORE, INDEX_MASKS, open_mask
    from visiontune.errors import DataError

    problems, splits = [], {}
    samples = [s for ss in dataset.splits.values() for s in ss]
    with bar(len(samples), "reading masks") as advance:
        for name, ss in dataset.splits.items():
            out = []
            for s in ss:
                try:
                    m = open_mask(s.mask, s.source, s.codec or INDEX_MASKS, dataset.num_classes)
                    out.append(dataclasses.replace(s, label=tuple(int(c) for c in np.unique(m) if c != IGNORE)))
                except DataError as exc:
                    problems.append(str(exc))
                    out.append(s)
                advance(1)
            splits[name] = out
    return dataclasses.replace(dataset, splits=splits), problems


def sample_grid(
    dataset: Dataset, path: Path, per_class: int = 6, exclude: set[str] = frozenset(), cell: int = 96
) -> Path:
    """A PNG with one row per class (at most 30 rows) of sample images, the class name at the left."""
    from PIL import ImageDraw

    rows = dataset.classes[:30]
    label_w = 160
    sheet = Image.new("RGB", (label_w + per_class * cell, max(1, len(rows)) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    train = dataset.splits.get("train", [])
    for r, name in enumerate(rows):
        label = dataset.classes.index(name)
        picks = [s for s in train if label in labels_of(s.label) and s.source not in exclude][:per_class]
        draw.text((6, r * cell + cell // 2 - 6), name[:22], fill="black")
        for c, s in enumerate(picks):
            try:
                img = resize_center_crop(open_image(read_bytes(s.source), name=s.source, draft=cell - 4), cell - 4)
                sheet.paste(img, (label_w + c * cell + 2, r * cell + 2))
            except (BadImageError, OSError):
                continue
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
