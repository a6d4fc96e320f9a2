"""Stratified splitting: the same seed gives the same split on any machine."""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from pathlib import Path

from visiontune.data.dataset import Dataset, Sample
from visiontune.errors import ConfigError, DataError, option
from visiontune.progress import note


def parse_ratios(text: str) -> list[float]:
    try:
        ratios = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option('ratios')} {text!r}: give numbers separated by commas, e.g. 0.8,0.2") from exc
    if not 2 <= len(ratios) <= 3 or any(r <= 0 for r in ratios):
        raise ConfigError(f"{option('ratios')} {text!r}: give two or three positive numbers (train,validation[,test])")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError(f"{option('ratios')} {text!r}: the numbers must add up to 1 (they add up to {sum(ratios):g})")
    return ratios


def stratified_split(samples: list[Sample], ratios: list[float], seed: int) -> list[list[Sample]]:
    """Split per class in the given ratios; each part keeps the input order.

    Every class with at least as many images as parts gets at least one image
    in every part, so validation never misses a class by bad luck.
    """
    by_class: dict[int, list[int]] = defaultdict(list)
    rarity = Counter(c for s in samples if isinstance(s.label, tuple) for c in s.label)
    for i, s in enumerate(samples):
        # several labels: stratify by the rarest one (label combinations are often unique)
        key = min(s.label, key=lambda c: (rarity[c], c), default=-1) if isinstance(s.label, tuple) else s.label
        by_class[key].append(i)
    rng = random.Random(seed)
    parts: list[list[int]] = [[] for _ in ratios]
    for label in sorted(by_class):
        idx = by_class[label][:]
        rng.shuffle(idx)
        n = len(idx)
        sizes = [int(round(r * n)) for r in ratios[1:]]
        if n >= len(ratios):
            sizes = [max(1, k) for k in sizes]
        sizes = [min(k, n - sum(sizes[:j]) - 1) if n > 1 else 0 for j, k in enumerate(sizes)]
        first = n - sum(sizes)
        start = 0
        for p, size in enumerate([first, *sizes]):
            parts[p].extend(idx[start : start + size])
            start += size
    return [[samples[i] for i in sorted(p)] for p in parts]


PART_NAMES = ("train", "validation", "test")


def split(
    path: str | Path,
    *,
    out: str | Path,
    ratios: str | list[float] = "0.8,0.2",
    seed: int = 0,
    label_attribute: str | None = None,
    on_bad_image: str = "error",
    allow_empty_labels: bool = False,
) -> list[tuple[Path, int]]:
    """``visiontune data split``: stratified split manifests (``train.manifest``, ``validation.manifest``
    [, ``test.manifest``]) in ``out``; ``train`` reads the folder.  Returns (file, images) per part."""
    from visiontune.data.loading import open_dataset

    shares = parse_ratios(ratios) if isinstance(ratios, str) else parse_ratios(",".join(map(str, ratios)))
    ds = open_dataset(
        path, on_bad_image=on_bad_image, label_attribute=label_attribute, allow_empty_labels=allow_empty_labels
    )
    ds.check()
    if ds.task in ("segmentation", "detection"):
        what = "masks" if ds.task == "segmentation" else "boxes"
        raise DataError(
            f"{path}: {ds.task} data; `data split` writes classification manifests and would drop "
            "the " + what + ". Training holds out validation and test images itself (--valid-fraction, "
            f"--test-fraction), {what} with them"
        )
    samples = [s for part in ds.splits.values() for s in part]
    parts = stratified_split(samples, shares, seed)
    files = write_split_manifests(ds, list(PART_NAMES[: len(parts)]), parts, Path(out))
    return [(f, len(part)) for f, part in zip(files, parts)]


def write_split_manifests(
    dataset: Dataset, parts: list[str], splits: list, out: Path, attribute: str = "class"
) -> list[Path]:
    """Ground Truth-style manifests, one per part (``train.manifest`` ...).

    Local images are referenced relative to the manifest (the reader resolves them so), so the
    dataset folder and its manifests can move together; URLs stay as they are."""
    out.mkdir(parents=True, exist_ok=True)
    if not splits or not any(splits):
        raise DataError("nothing to write")
    written = []
    class_map = {str(i): c for i, c in enumerate(dataset.classes)}
    base = out.resolve()
    for name, samples in zip(parts, splits):
        path = out / f"{name}.manifest"
        with open(path, "w", encoding="utf-8") as fh:
            for s in samples:
                source = s.source if "://" in s.source else os.path.relpath(Path(s.source).resolve(), base)
                if isinstance(s.label, tuple):  # Ground Truth's multi-label record
                    meta = {
                        "class-map": {str(c): dataset.classes[c] for c in s.label},
                        "confidence-map": {str(c): 1.0 for c in s.label},
                        "type": "groundtruth/image-classification-multilabel",
                        "human-annotated": "yes",
                    }
                    label = list(s.label)
                else:
                    meta = {
                        "class-name": dataset.classes[s.label],
                        "class-map": class_map,
                        "type": "groundtruth/image-classification",
                        "human-annotated": "yes",
                    }
                    label = s.label
                fh.write(json.dumps({"source-ref": source, attribute: label, f"{attribute}-metadata": meta}) + "\n")
        written.append(path)
    return written


def hold_out(dataset: Dataset, valid_fraction: float, test_fraction: float, seed: int, say: bool = True) -> Dataset:
    """Carve the splits the data lacks (validation, test) out of train, stratified and seeded.

    Every layout then reports the same metrics (``test_accuracy`` ...) unless ``test_fraction`` is 0.
    ``evaluate`` carves the same test split again from the folder a model was trained on (``say=False``)."""
    wanted = [
        (name, f)
        for name, f in (("validation", valid_fraction), ("test", test_fraction))
        if f > 0 and not dataset.splits.get(name)
    ]
    if not wanted:
        return dataset
    train = dataset.splits["train"]
    parts = stratified_split(train, [1 - sum(f for _, f in wanted), *(f for _, f in wanted)], seed)
    splits = {**dataset.splits, "train": parts[0]}
    splits.update({name: part for (name, _), part in zip(wanted, parts[1:])})
    held = " and ".join(f"{len(part)} {name}" for (name, _), part in zip(wanted, parts[1:]))
    fractions = ", ".join(f"{'valid' if name == 'validation' else name}_fraction={f}" for name, f in wanted)
    if say:
        note(
            f"no {' or '.join(n for n, _ in wanted)} split in the data: holding out {held} of the {len(train)} "
            f"training images ({fractions}, seed={seed})"
        )
    order = [s for s in ("train", "validation", "test") if s in splits]
    return Dataset(
        dataset.classes, {k: splits[k] for k in order}, dataset.root, dataset.kind, dataset.skipped, task=dataset.task
    )


def split_digest(samples: list[Sample], root: Path) -> str:
    """What identifies a split's images: their paths relative to the data folder (so the folder may move)
    and their sizes, sorted, hashed."""
    import hashlib

    def size(path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError:
            return -1

    names = sorted(f"{os.path.relpath(s.source, root)}\t{size(s.source)}" for s in samples)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
