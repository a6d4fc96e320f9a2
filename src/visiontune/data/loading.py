"""Opening a dataset: which layout a path is (every registered source: the general ones of ``sources`` and
detection's of ``detection``, the specific ones asked first) and reading it, split files included."""

from __future__ import annotations

from pathlib import Path

from visiontune.data.dataset import Dataset, Sample, labels_of
from visiontune.data.detection import (
    detection_attributes,
    detection_source,
    detection_split_files,
    detection_splits,
    read_detection_manifest,
)
from visiontune.data.sources import (
    MANIFEST_SUFFIXES,
    SOURCES,
    SegmentationSource,
    _split_files,
    iter_manifest,
)
from visiontune.choices import ON_BAD_IMAGE
from visiontune.errors import ConfigError, DataError


def list_sources() -> list[str]:
    """The names of every registered data source, general ones first."""
    return SOURCES.names()


def _named_boxes(path: Path, label_attribute: str | None) -> bool:
    """A manifest whose ``label_attribute`` names a chained job's boxes (read as detection)."""
    if label_attribute is None or not path.is_file() or path.suffix.lower() not in MANIFEST_SUFFIXES:
        return False
    first = next((rec for _, rec in iter_manifest(path)), None)
    return (
        first is not None
        and isinstance(first.get(label_attribute), dict)
        and label_attribute in detection_attributes(first)
    )


def open_dataset(
    path: str | Path,
    *,
    source: str | None = None,
    on_bad_image: str = "error",
    label_attribute: str | None = None,
    strict: bool = True,
    allow_empty_labels: bool = False,
    task: str = "auto",
) -> Dataset:
    """Open any supported layout: a folder, a manifest, a .lst, or a folder of split files.

    ``strict=False``: record what training refuses (empty class folders...) instead of raising.
    ``task="segmentation"`` reads a folder's masks where it also holds label files (``data synth``'s
    fashion-scenes hold both); ``task="detection"`` its ``<split>.boxes.manifest`` files, or a file's boxes
    where it also holds labels."""
    if on_bad_image not in ON_BAD_IMAGE:
        raise ConfigError(f"on_bad_image={on_bad_image!r}: choose one of {', '.join(ON_BAD_IMAGE)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    opts = dict(
        on_bad_image=on_bad_image, label_attribute=label_attribute, strict=strict, allow_empty_labels=allow_empty_labels
    )
    if _named_boxes(path, label_attribute):
        return read_detection_manifest(path, label_attribute, strict)
    split_files = _split_files(path)
    if source is None and task == "segmentation" and SegmentationSource.detect(path):
        source = "segmentation"
    if source is None and task == "detection":
        split_files = detection_split_files(path) or split_files
        source = None if split_files else detection_source(path)
    if source is None and split_files:
        return _open_split_files(path, split_files, opts)
    if source is not None:
        return SOURCES.get(source)().load(path, **opts)
    for cls in sorted(SOURCES, key=lambda c: not c.specific):  # stable: registration order otherwise
        if cls.detect(path):
            return cls().load(path, **opts)
    raise DataError(
        f"{path}: not a dataset visiontune knows. Give a folder of class folders, a split folder "
        "(train/, val/, test/), an augmented manifest (.manifest/.jsonl) or a .lst file"
    )


def _segmentation_splits(path: Path, parts: dict[str, Dataset]) -> Dataset:
    """Ground Truth semantic-segmentation manifests per split: one class list, masks kept with their images."""
    odd = sorted(f"{split} ({p.task})" for split, p in parts.items() if p.task != "segmentation")
    if odd:
        raise DataError(
            f"{path}: the train split holds masks but {', '.join(odd)} does not; give every split "
            "a semantic-segmentation manifest"
        )
    classes = parts["train"].classes
    for split, p in parts.items():
        if p.classes != classes:
            raise DataError(
                f"{path}: the {split} manifest's classes ({', '.join(p.classes)}) are not the train "
                f"manifest's ({', '.join(classes)}), index for index; use one colour map"
            )
    return Dataset(
        classes,
        {split: p.splits["train"] for split, p in parts.items()},
        str(path),
        "segmentation-manifest",
        [x for p in parts.values() for x in p.skipped],
        [x for p in parts.values() for x in p.scan_problems],
        task="segmentation",
    )


def _open_split_files(path: Path, files: dict[str, Path], opts) -> Dataset:
    if "train" not in files:
        raise DataError(f"{path}: split files {sorted(f.name for f in files.values())} found but no train file")
    parts = {split: open_dataset(f, **opts) for split, f in files.items()}
    if any(p.task == "segmentation" for p in parts.values()):
        return _segmentation_splits(path, parts)
    if any(p.task == "detection" for p in parts.values()):
        return detection_splits(path, parts)
    kinds = {p.kind for p in parts.values()}
    if kinds == {"lst"}:
        labels = sorted({int(c) for p in parts.values() for c in p.classes})
        classes = [str(x) for x in labels]
    else:
        classes = sorted(set().union(*(p.classes for p in parts.values())))
    index = {c: i for i, c in enumerate(classes)}
    multi = any(p.task == "multi-label" for p in parts.values())

    def label(p: Dataset, s: Sample):
        if multi:  # a split file with one label per line is still part of multi-label data
            return tuple(sorted(index[p.classes[c]] for c in labels_of(s.label)))
        return index[p.classes[s.label]]

    splits = {split: [Sample(s.source, label(p, s), s.origin) for s in p.splits["train"]] for split, p in parts.items()}
    return Dataset(
        classes,
        splits,
        str(path),
        "+".join(sorted(kinds)),
        [x for p in parts.values() for x in p.skipped],
        [x for p in parts.values() for x in p.scan_problems],
        task="multi-label" if multi else "classification",
    )
