"""The one dataset abstraction every source yields.

A :class:`Dataset` is a list of class names (index = label) and up to three
splits of :class:`Sample` (``train``, ``validation``, ``test``).  Images are
referenced, not loaded: decoding happens once, into a cache (see ``cache``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from visiontune.errors import DataError, MissingDependencyError

SPLITS = ("train", "validation", "test")
#: Folder names accepted for each split in the split layout.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "validation",
    "val": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class Sample:
    """One labelled image: where it is, its class index (a sorted tuple of them for multi-label data; ``()``
    for segmentation, whose labels are in ``mask``; for detection the sorted classes of its boxes, ``()`` for
    a negative), where that was said."""

    source: str
    label: int | tuple[int, ...]
    origin: str = ""
    #: segmentation: the mask file, and how its values become classes (a ``segmentation.MaskCodec``)
    mask: str = ""
    codec: object = None
    #: detection: ``(class index, xmin, ymin, xmax, ymax)`` per box, coordinates normalised to [0, 1] of the
    #: original upright image (x by its width, y by its height); ``()``: no boxes (a negative)
    boxes: tuple[tuple[int, float, float, float, float], ...] = ()
    #: detection: the (width, height) the annotation says the image has (checked against the file by
    #: ``data inspect``: ``detection.size_problems``); None where the layout does not say
    size: tuple[int, int] | None = None


def labels_of(label) -> tuple[int, ...]:
    """A sample's class indices, whether it has one label or several."""
    return label if isinstance(label, tuple) else (int(label),)


@dataclass
class Dataset:
    classes: list[str]
    splits: dict[str, list[Sample]]
    root: str
    kind: str
    #: Files left out while scanning, as (path, reason): reported, never silent.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: What a lenient scan (``strict=False``, used by ``data inspect``) found that training refuses.
    scan_problems: list[str] = field(default_factory=list)
    #: "classification" (one label per image), "multi-label" (labels are tuples of class indices),
    #: "segmentation" (a mask per image) or "detection" (boxes per image: ``Sample.boxes``)
    task: str = "classification"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def label_name(self, label) -> str:
        """``'cat'`` or, for several labels, ``'cat+dog'`` (``'(none)'`` for an image without any)."""
        return "+".join(self.classes[c] for c in labels_of(label)) or "(none)"

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split, images per class name."""
        out = {}
        for name, samples in sorted(self.splits.items(), key=lambda kv: SPLITS.index(kv[0]) if kv[0] in SPLITS else 9):
            c = Counter(c for s in samples for c in labels_of(s.label))
            out[name] = {self.classes[i]: c.get(i, 0) for i in range(len(self.classes))}
        return out

    def problems(self) -> list[str]:
        """Everything about the layout and labels that training refuses, all at once."""
        out = list(self.scan_problems)
        if self.task == "detection" and not self.classes:  # one class is enough: a detector finds it or not
            out.append(f"{self.root}: no classes (no box names a class); a detector needs at least one class.")
        elif len(self.classes) < 2 and self.task != "detection":
            found = f"only the class {self.classes[0]!r}" if self.classes else "no classes"
            out.append(
                f"{self.root}: found {found}; a model needs at least two classes "
                "(one sub-folder, or one label, per class; background and one class for masks)."
            )
        if not self.splits.get("train"):
            out.append(f"{self.root}: no training images found.")
        train_labels = {c for s in self.splits.get("train", []) for c in labels_of(s.label)}
        missing = [
            self.classes[i]
            for i in range(len(self.classes))
            if i not in train_labels and not any(f"class {self.classes[i]!r}" in p for p in self.scan_problems)
        ]  # said already
        if missing and self.splits.get("train") and self.task != "segmentation":  # masks are read later
            out.append(
                f"{self.root}: class(es) {', '.join(map(repr, missing))} have no training images; "
                "add images or remove the class."
            )
        return out

    def check(self) -> None:
        """Refuse datasets that would train badly or silently wrong (the first problem found)."""
        problems = self.problems()
        if problems:
            raise DataError(problems[0])


def read_bytes(source: str) -> bytes:
    """Read a local path, a ``file://`` URL or any fsspec URL (s3://, gs://, ...)."""
    if source.startswith("file://"):
        source = source[len("file://") :]
    if "://" not in source:
        with open(source, "rb") as fh:
            return fh.read()
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("fsspec", f"reading {source}", extra="remote") from exc
    try:
        with fsspec.open(source, "rb") as fh:
            return fh.read()
    except ImportError as exc:
        raise MissingDependencyError(
            str(exc).split("'")[1] if "'" in str(exc) else "s3fs", f"reading {source}"
        ) from exc


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def find_leaks(dataset: Dataset, hashes: dict[str, str]) -> list[str]:
    """Every image that is in two splits or has two labels (``hashes``: sample source -> content hash)."""
    seen: dict[str, tuple[str, Sample]] = {}
    found = []
    for split, samples in dataset.splits.items():
        for s in samples:
            h = hashes.get(s.source)
            if h is None or h.startswith("unreadable:"):
                continue
            if h in seen:
                other_split, other = seen[h]
                if other_split != split:
                    found.append(
                        f"the same image is in two splits: {other.source} ({other_split}) and "
                        f"{s.source} ({split}); remove one so evaluation is honest."
                    )
                elif other.label == s.label and other.boxes != s.boxes:
                    found.append(
                        f"the same image has two sets of boxes: {other.source} "
                        f"({other.origin or other_split}) and {s.source} ({s.origin or split}); "
                        "keep one."
                    )
                elif other.label != s.label:
                    found.append(
                        f"the same image has two labels: {other.source} is "
                        f"{dataset.label_name(other.label)!r} ({other.origin or other_split}) and "
                        f"{s.source} is {dataset.label_name(s.label)!r} ({s.origin or split}); "
                        "fix the label."
                    )
            else:
                seen[h] = (split, s)
    return found


def check_no_leaks(dataset: Dataset, hashes: dict[str, str]) -> None:
    """The same image in two splits, or with two labels, is an error (the first one found)."""
    leaks = find_leaks(dataset, hashes)
    if leaks:
        raise DataError(leaks[0])


def relpath_or_abs(path: str | Path, start: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(start.resolve()))
    except ValueError:
        return str(Path(path).resolve())
