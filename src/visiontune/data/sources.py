"""Data sources: image folders, augmented manifests (Ground Truth, single- and multi-label), CSV
(``image,labels``), SageMaker .lst files; object detection's layouts are in ``detection``, and
``loading.open_dataset`` (above both) picks among all of them.

Each is one small class registered by name; :func:`open_dataset` detects
which one a path is.  Class names are sorted (Python string order, as
torchvision's ``ImageFolder`` does), so label indices never depend on file
system order; .lst files keep their numeric labels (sorted as numbers).
"""

from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse

from visiontune.data.dataset import SPLIT_ALIASES, SPLITS, Dataset, Sample
from visiontune.data.decode import is_image_name
from visiontune.errors import DataError, ManifestError, option
from visiontune.registry import Registry

from visiontune.choices import ON_BAD_IMAGE  # noqa: E402,F401  (re-exported; the CLI reads it without numpy)

MANIFEST_SUFFIXES = (".manifest", ".jsonl", ".json")
SPLIT_FILE_SUFFIXES = (*MANIFEST_SUFFIXES, ".lst", ".csv")


class Source(ABC):
    """One kind of dataset layout."""

    name: str = ""
    #: detected before the general sources: a layout whose files a general one would also take (detection's
    #: manifests, .lst files and folders: ``detection``)
    specific: bool = False

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """True when ``path`` looks like this source."""

    @abstractmethod
    def load(
        self,
        path: Path,
        *,
        on_bad_image: str = "error",
        label_attribute: str | None = None,
        strict: bool = True,
        allow_empty_labels: bool = False,
    ) -> Dataset:
        """Read the layout into a :class:`Dataset` (no image is decoded here).  ``allow_empty_labels``:
        multi-label lines without any label are images of no class instead of errors.

        ``strict=False`` records what training would refuse in ``scan_problems`` where the
        layout can still be read (``data inspect`` reports everything at once)."""


SOURCES: Registry[type[Source]] = Registry("data source")
register_source = SOURCES.register


# ------------------------------------------------------------------ folders
@register_source
class FolderSource(Source):
    """``ROOT/<class>/<images>`` or ``ROOT/{train,valid|val|validation,test}/<class>/<images>``."""

    name = "folder"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and not _split_files(path) and not SegmentationSource.detect(path)

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        self.strict, self.problems = strict, []
        subdirs = _visible_dirs(path)
        if not subdirs:
            raise DataError(
                f"{path}: no sub-folders; put each class's images in ROOT/<class>/ (or use ROOT/train/<class>/ ...)"
            )
        split_dirs = {SPLIT_ALIASES.get(d.name.lower()) for d in subdirs}
        if None in split_dirs and len(split_dirs) > 1:
            named = sorted(d.name for d in subdirs if d.name.lower() in SPLIT_ALIASES)
            raise DataError(
                f"{path}: mixes split folders ({', '.join(named)}) with class folders; use ROOT/<class>/ or "
                "ROOT/{train,val,test}/<class>/, not both (or rename a class that is called like a split)"
            )
        if None not in split_dirs:  # split layout
            seen: dict[str, Path] = {}
            for d in subdirs:
                split = SPLIT_ALIASES[d.name.lower()]
                if split in seen:
                    raise DataError(f"{path}: both {seen[split].name}/ and {d.name}/ mean the {split} split; keep one")
                seen[split] = d
            per_split = {split: self._scan_classes(d, on_bad_image) for split, d in seen.items()}
            if "train" not in per_split:
                raise DataError(f"{path}: split folders {sorted(seen)} found but no train/ folder")
            classes = sorted(set().union(*(set(c) for c, _ in per_split.values())))
            extra = set(classes) - set(per_split["train"][0])
            if extra:
                raise DataError(
                    f"{path}: class folder(s) {', '.join(sorted(extra))} exist outside train/ but not in it; "
                    "every class needs training images"
                )
            index = {c: i for i, c in enumerate(classes)}
            splits, skipped = {}, []
            for split, (cls_files, bad) in per_split.items():
                splits[split] = [Sample(str(f), index[c]) for c in sorted(cls_files) for f in cls_files[c]]
                skipped += bad
            ds = Dataset(classes, splits, str(path), self.name, skipped, self.problems)
        else:
            cls_files, bad = self._scan_classes(path, on_bad_image)
            classes = sorted(cls_files)
            samples = [Sample(str(f), i) for i, c in enumerate(classes) for f in cls_files[c]]
            ds = Dataset(classes, {"train": samples}, str(path), self.name, bad, self.problems)
        return ds

    def _scan_classes(self, root: Path, on_bad_image: str):
        files: dict[str, list[str]] = {}
        bad: list[tuple[str, str]] = []
        for d in _visible_dirs(root):
            images = []
            for dirpath, dirnames, filenames in os.walk(d):
                dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
                for fn in sorted(filenames):
                    if fn.startswith("."):
                        continue
                    f = os.path.join(dirpath, fn)  # strings: 14k Path objects cost a tuning trial 0.2 s
                    if is_image_name(fn):
                        images.append(f)
                    elif on_bad_image == "skip":
                        bad.append((f, "not an image file (by its name)"))
                    else:
                        raise DataError(
                            f"{f} is not an image file (by its name); remove it from the class folder, "
                            f"or pass {option('on_bad_image', 'skip')} to leave such files out"
                        )
            if not images:
                message = f"class folder {d} is empty: add images of class {d.name!r} or remove the folder"
                if self.strict:
                    raise DataError(message)
                self.problems.append(message)
            files[d.name] = images
        return files, bad


def _visible_dirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _split_files(path: Path) -> dict[str, Path]:
    """``train.manifest`` / ``validation.lst`` ... inside a folder."""
    out = {}
    if not path.is_dir():
        return out
    for f in sorted(path.iterdir()):
        stem, suffix = f.stem.lower(), f.suffix.lower()
        if f.is_file() and suffix in SPLIT_FILE_SUFFIXES and stem in SPLIT_ALIASES:
            if suffix == ".csv" and not CsvSource.readable(f):
                continue  # a CSV of something else (Kaggle's test.csv of ids) beside class folders
            out[SPLIT_ALIASES[stem]] = f
    return out


# ------------------------------------------------------------------ manifests
def resolve_ref(ref: str, base: Path) -> str:
    """A ``source-ref``: local path, ``file://`` URL, path relative to the manifest, or fsspec URL."""
    if ref.startswith("file://"):
        return urlparse(ref).path
    if "://" in ref:
        return ref
    p = Path(ref).expanduser()
    return str(p if p.is_absolute() else (base / p))


@register_source
class ManifestSource(Source):
    """Ground Truth image-classification output (JSON Lines)."""

    name = "manifest"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        first = next((rec for _, rec in iter_manifest(path)), None)
        if (
            first is not None
            and label_attribute is None
            and segmentation_attributes(first)
            and not detect_label_attribute(first)
        ):
            return read_segmentation_manifest(path)
        return labelled_dataset(read_manifest(path, label_attribute, allow_empty_labels), path, self.name)


def labelled_dataset(rows: list[tuple[str, str | tuple[str, ...], str]], path: Path, kind: str) -> Dataset:
    """(source, class name or names, origin) rows -> a Dataset; several names on any row make it multi-label."""
    multi = any(isinstance(name, tuple) for _, name, _ in rows)
    names = [name if isinstance(name, tuple) else (name,) for _, name, _ in rows]
    classes = sorted({n for group in names for n in group})
    index = {c: i for i, c in enumerate(classes)}
    if multi:
        samples = [
            Sample(src, tuple(sorted(index[n] for n in group)), origin) for (src, _, origin), group in zip(rows, names)
        ]
    else:
        samples = [Sample(src, index[name], origin) for src, name, origin in rows]
    return Dataset(classes, {"train": samples}, str(path), kind, task="multi-label" if multi else "classification")


def detect_label_attribute(record: dict) -> list[str]:
    """Fields with a matching ``<attr>-metadata``: a class name (image classification) or a list of class
    indices with a ``class-map`` (multi-label)."""
    return [
        k[: -len("-metadata")]
        for k, v in record.items()
        if k.endswith("-metadata")
        and isinstance(v, dict)
        and k[: -len("-metadata")] in record
        and ("class-name" in v or (isinstance(record[k[: -len("-metadata")]], list) and "class-map" in v))
    ]


def iter_manifest(path: Path):
    """``(line number, record)`` for each non-blank line; each record has a ``source-ref``."""
    with open(path, encoding="utf-8-sig") as fh:  # -sig: a byte-order mark some editors write is not an error
        for n, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                ended = exc.pos >= len(line.rstrip())
                hint = "; the line ends before the JSON object does: each record must be on one line" if ended else ""
                raise ManifestError(path, n, f"not valid JSON ({exc.msg} at column {exc.pos + 1}){hint}") from exc
            if not isinstance(rec, dict):
                raise ManifestError(path, n, "each line must be a JSON object")
            if "source-ref" not in rec:
                raise ManifestError(path, n, "no 'source-ref' field (the image's location)")
            yield n, rec


def read_manifest(
    path: Path, label_attribute: str | None = None, allow_empty_labels: bool = False
) -> list[tuple[str, str | tuple[str, ...], str]]:
    """``(source, class name, origin)`` per line (a tuple of names for a multi-label line); every problem
    names its line."""
    rows, ids = [], {}
    base = path.parent
    for n, rec in iter_manifest(path):
        if label_attribute is None:
            found = detect_label_attribute(rec)
            if len(found) != 1:
                what = f"several label attributes ({', '.join(found)})" if found else "no label attribute"
                raise ManifestError(
                    path,
                    n,
                    f"{what} found; a label attribute is a field with a matching "
                    f"'<attr>-metadata' object holding 'class-name' (or, multi-label, a list of class indices and "
                    f"a 'class-map'). Name it with {option('label_attribute')}",
                )
            label_attribute = found[0]
        if label_attribute not in rec:
            raise ManifestError(path, n, f"missing the label attribute {label_attribute!r}")
        meta = rec.get(f"{label_attribute}-metadata")
        if isinstance(rec[label_attribute], list):
            rows.append(
                (
                    resolve_ref(str(rec["source-ref"]), base),
                    _multi_label_names(path, n, rec[label_attribute], meta, label_attribute, ids, allow_empty_labels),
                    f"{path.name}:{n}",
                )
            )
            continue
        if not isinstance(meta, dict) or "class-name" not in meta:
            raise ManifestError(path, n, f"missing '{label_attribute}-metadata' with a 'class-name'")
        name, label_id = str(meta["class-name"]), rec[label_attribute]
        if label_id in ids and ids[label_id][0] != name:
            raise ManifestError(
                path,
                n,
                f"label {label_id} is called {name!r} here but {ids[label_id][0]!r} on line "
                f"{ids[label_id][1]}; fix one so no image is mislabelled",
            )
        ids.setdefault(label_id, (name, n))
        rows.append((resolve_ref(str(rec["source-ref"]), base), name, f"{path.name}:{n}"))
    if not rows:
        raise DataError(f"{path}: the manifest has no lines")
    return rows


def _multi_label_names(
    path: Path, n: int, value: list, meta, attribute: str, ids: dict, allow_empty: bool = False
) -> tuple[str, ...]:
    """A Ground Truth multi-label line's class names, checked against its class-map and earlier lines."""
    if not isinstance(meta, dict) or not isinstance(meta.get("class-map"), dict):
        raise ManifestError(path, n, f"missing '{attribute}-metadata' with a 'class-map' (index -> class name)")
    if not value and not allow_empty:
        raise ManifestError(
            path,
            n,
            f"{attribute} is an empty list: the image has no label; label it, remove the "
            f"line, or pass {option('allow_empty_labels', True)} if no class is a label",
        )
    names = []
    for label_id in value:
        if isinstance(label_id, bool) or not isinstance(label_id, int):
            raise ManifestError(path, n, f"{attribute} holds {label_id!r}: multi-label values are class indices")
        name = meta["class-map"].get(str(label_id))
        if name is None:
            raise ManifestError(path, n, f"class {label_id} is not in '{attribute}-metadata'.class-map; add its name")
        name = str(name)
        if label_id in ids and ids[label_id][0] != name:
            raise ManifestError(
                path,
                n,
                f"label {label_id} is called {name!r} here but {ids[label_id][0]!r} on "
                f"line {ids[label_id][1]}; fix one so no image is mislabelled",
            )
        ids.setdefault(label_id, (name, n))
        names.append(name)
    return tuple(sorted(set(names)))


# ------------------------------------------------------------------ segmentation
def segmentation_attributes(record: dict) -> list[str]:
    """Ground Truth semantic-segmentation fields: ``<attr>-ref`` (the mask) with ``<attr>-ref-metadata``
    holding an ``internal-color-map``."""
    return [
        k
        for k, v in record.items()
        if k.endswith("-ref")
        and k != "source-ref"
        and isinstance(record.get(f"{k}-metadata"), dict)
        and "internal-color-map" in record[f"{k}-metadata"]
    ]


def read_segmentation_manifest(path: Path) -> Dataset:
    """A Ground Truth semantic-segmentation output manifest: each line's mask PNG and the colours of its
    classes.  Classes are the colour maps' indices, in order (Ground Truth's 0 is the background); one colour
    or one index meaning two classes on two lines is an error naming both lines."""
    from visiontune.data.segmentation import MaskCodec

    rows, names, colours = [], {}, {}
    attribute = None
    for n, rec in iter_manifest(path):
        found = segmentation_attributes(rec)
        if attribute is None:
            if len(found) != 1:
                raise ManifestError(
                    path,
                    n,
                    f"{'several' if found else 'no'} semantic-segmentation mask "
                    "attributes ('<attr>-ref' with an internal-color-map)",
                )
            attribute = found[0]
        if attribute not in rec:
            raise ManifestError(path, n, f"no {attribute!r} (the mask) on this line; every image needs its mask")
        cmap = (
            rec[f"{attribute}-metadata"].get("internal-color-map")
            if isinstance(rec.get(f"{attribute}-metadata"), dict)
            else None
        )
        if not isinstance(cmap, dict) or not cmap:
            raise ManifestError(
                path, n, f"'{attribute}-metadata' has no internal-color-map (index -> class-name, hex-color)"
            )
        for key, entry in cmap.items():
            try:
                idx, name, colour = int(key), str(entry["class-name"]), str(entry["hex-color"]).lower()
                int(colour.lstrip("#"), 16)
            except (ValueError, TypeError, KeyError) as exc:
                raise ManifestError(
                    path,
                    n,
                    f"internal-color-map entry {key!r}: needs an index key, a "
                    f"'class-name' and a '#rrggbb' 'hex-color' ({exc})",
                ) from exc
            for table, k, v, what in ((names, idx, name, "class index"), (colours, colour, idx, "colour")):
                if k in table and table[k][0] != v:
                    raise ManifestError(
                        path,
                        n,
                        f"{what} {k!r} means {v!r} here but {table[k][0]!r} on line "
                        f"{table[k][1]}; fix one so no pixel is mislabelled",
                    )
                table.setdefault(k, (v, n))
        rows.append(
            (
                resolve_ref(str(rec["source-ref"]), path.parent),
                resolve_ref(str(rec[attribute]), path.parent),
                f"{path.name}:{n}",
            )
        )
    if not rows:
        raise DataError(f"{path}: the manifest has no lines")
    order = sorted(names)
    index = {k: i for i, k in enumerate(order)}
    codec = MaskCodec(colours=tuple(sorted((c, index[k]) for c, (k, _) in colours.items())))
    samples = [Sample(src, (), origin, mask=mask, codec=codec) for src, mask, origin in rows]
    return Dataset(
        [names[k][0] for k in order], {"train": samples}, str(path), "segmentation-manifest", task="segmentation"
    )


#: the folders of an image / mask pair layout: ROOT/images/ beside ROOT/masks/ (or annotations/, labels/)
MASK_FOLDERS = ("masks", "annotations", "labels")


@register_source
class SegmentationSource(Source):
    """SageMaker's semantic-segmentation layout: ``train/`` + ``train_annotation/`` (and ``validation/`` +
    ``validation_annotation/``), masks with the images' base names, optional ``label_map/<split>_label_map.json``
    and ``classes.json`` (class names); or plain pairs, ``images/`` + ``masks/``."""

    name = "segmentation"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and cls._pairs(path) is not None

    @staticmethod
    def _pairs(path: Path) -> dict[str, tuple[Path, Path]] | None:
        if (path / "train").is_dir() and (path / "train_annotation").is_dir():
            return {
                SPLIT_ALIASES[d.name.lower()]: (d, path / f"{d.name}_annotation")
                for d in _visible_dirs(path)
                if d.name.lower() in SPLIT_ALIASES
            }
        masks = next(
            (
                path / m
                for m in MASK_FOLDERS
                if (path / m).is_dir() and any(is_image_name(f.name) for f in (path / m).iterdir())
            ),
            None,
        )  # not YOLO's labels/*.txt
        if (path / "images").is_dir() and masks is not None:
            return {"train": (path / "images", masks)}
        return None

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        from visiontune.data.segmentation import INDEX_MASKS, MaskCodec, scan_num_classes

        pairs = self._pairs(path)
        if pairs is None:
            raise DataError(
                f"{path}: not a segmentation layout; give train/ + train_annotation/ (SageMaker) or "
                "images/ + masks/ folders, masks named like their images"
            )
        splits, skipped, problems = {}, [], []
        train_codec = INDEX_MASKS
        for split, (images, masks) in sorted(pairs.items(), key=lambda kv: kv[0] != "train"):  # train first
            if not masks.is_dir():
                raise DataError(
                    f"{images}: no {masks.name}/ beside it with its masks; add the masks, or move "
                    f"{images.name}/ out (its images would otherwise be left out)"
                )
            label_map = path / "label_map" / f"{'train' if split == 'train' else images.name}_label_map.json"
            # a split without its own label map reads its masks as train's does (SageMaker's default)
            codec = MaskCodec.from_label_map(label_map) if label_map.exists() else train_codec
            if split == "train":
                train_codec = codec
            by_stem = {}
            for m in sorted(masks.iterdir()):
                if m.is_file() and not m.name.startswith("."):
                    if m.stem in by_stem:
                        raise DataError(f"{m}: two masks named {m.stem}.* in {masks}; keep one")
                    by_stem[m.stem] = m
            samples = []
            for f in sorted(images.iterdir()):
                if not f.is_file() or f.name.startswith(".") or not is_image_name(f.name):
                    continue
                mask = by_stem.pop(f.stem, None)
                if mask is None:
                    message = (
                        f"{f}: no mask for this image in {masks}/ (expected {masks / (f.stem + '.png')}); "
                        "add it, or move the image out"
                    )
                    if strict:
                        raise DataError(message)
                    problems.append(message)
                    continue
                samples.append(Sample(str(f), (), f"{images.name}/{f.name}", mask=str(mask), codec=codec))
            skipped += [(str(m), f"a mask without an image in {images}/") for m in by_stem.values()]
            splits[split] = samples
        if "train" not in splits or not splits["train"]:
            raise DataError(f"{path}: no training images with masks")
        classes = _segmentation_classes(path)
        if classes is None:
            hint = train_codec.num_classes_hint()
            n = hint or scan_num_classes([s for part in splits.values() for s in part], strict=strict)
            classes = [str(i) for i in range(n)]
        order = [s for s in SPLITS if s in splits]
        return Dataset(
            classes, {k: splits[k] for k in order}, str(path), self.name, skipped, problems, task="segmentation"
        )


def _segmentation_classes(path: Path) -> list[str] | None:
    """Class names from ``classes.json``: a list, or ``{"segmentation": [...]}`` (what ``data synth`` writes)."""
    f = path / "classes.json"
    if not f.exists():
        return None
    try:
        doc = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{f}: not readable JSON ({exc}); give a list of class names, index 0 first") from exc
    names = doc.get("segmentation") if isinstance(doc, dict) else doc
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names) or len(set(names)) != len(names):
        raise DataError(f'{f}: expected a list of distinct class names (or {{"segmentation": [...]}}), index 0 first')
    return names


# ------------------------------------------------------------------ CSV (image,labels)
@register_source
class CsvSource(Source):
    """``image,labels`` with space-separated class names per row (Kaggle's multi-label layout), image paths
    relative to the CSV file; a row with one name everywhere is single-label data."""

    name = "csv"
    IMAGE_COLUMNS = ("image", "image_id", "id", "filename", "file", "path", "source-ref")
    LABEL_COLUMNS = ("labels", "tags", "label", "classes")

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".csv"

    @classmethod
    def readable(cls, path: Path) -> bool:
        """Its header names an image column and a labels column."""
        try:
            with open(path, encoding="utf-8-sig") as fh:
                header = [h.strip().lower() for h in fh.readline().split(",")]
        except (OSError, UnicodeDecodeError):
            return False
        return any(c in header for c in cls.IMAGE_COLUMNS) and any(c in header for c in cls.LABEL_COLUMNS)

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        import csv

        rows = []
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: the CSV file is empty")
            lower = [h.strip().lower() for h in header]
            image_col = next((lower.index(c) for c in self.IMAGE_COLUMNS if c in lower), None)
            wanted = (label_attribute.lower(),) if label_attribute else self.LABEL_COLUMNS
            label_col = next((lower.index(c) for c in wanted if c in lower), None)
            if image_col is None or label_col is None:
                raise ManifestError(
                    path,
                    1,
                    f"the header {','.join(header)!r} needs an image column "
                    f"({' / '.join(self.IMAGE_COLUMNS)}) and a labels column "
                    f"({' / '.join(wanted)}; {option('label_attribute')} names another)",
                )
            for n, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(image_col, label_col):
                    raise ManifestError(path, n, f"expected {len(header)} columns, found {len(row)}")
                names = tuple(sorted(set(row[label_col].split())))
                if not names and not allow_empty_labels:
                    raise ManifestError(
                        path,
                        n,
                        f"no labels for {row[image_col]!r}; label it, remove the row, or pass "
                        f"{option('allow_empty_labels', True)} if no class is a label",
                    )
                rows.append((resolve_ref(row[image_col].strip(), path.parent), names, f"{path.name}:{n}"))
        if not rows:
            raise DataError(f"{path}: the CSV file has no rows")
        if all(len(names) == 1 for _, names, _ in rows):  # one label everywhere: single-label data
            rows = [(src, names[0], origin) for src, names, origin in rows]
        return labelled_dataset(rows, path, self.name)


# ------------------------------------------------------------------ .lst
@register_source
class LstSource(Source):
    """SageMaker ``.lst``: ``index<TAB>label<TAB>relative path`` (relative to the file's folder)."""

    name = "lst"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".lst"

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        rows = read_lst(path, allow_empty_labels)
        multi = any(isinstance(lab, tuple) for _, lab, _ in rows)
        labels = sorted({c for _, lab, _ in rows for c in (lab if isinstance(lab, tuple) else (lab,))})
        classes = [str(lab) for lab in labels]
        index = {lab: i for i, lab in enumerate(labels)}
        samples = [Sample(s, tuple(index[c] for c in lab) if multi else index[lab], o) for s, lab, o in rows]
        return Dataset(
            classes, {"train": samples}, str(path), self.name, task="multi-label" if multi else "classification"
        )


def read_lst(path: Path, allow_empty_labels: bool = False) -> list[tuple[str, int | tuple[int, ...], str]]:
    """``(source, class number, origin)`` per line.  Several label columns make a multi-label file: one-hot
    columns (the same count on every line, 0/1 only) give the classes whose column is 1, and otherwise the
    columns are the class numbers themselves; either way the label is a tuple of class numbers."""
    rows: list[tuple[str, list[int], str, int]] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                raise ManifestError(path, n, "expected index<TAB>label<TAB>path (3 tab-separated fields)")
            labels = []
            for field in parts[1:-1]:
                try:
                    label = float(field)
                except ValueError as exc:
                    raise ManifestError(path, n, f"label {field!r} is not a number") from exc
                if not math.isfinite(label) or label < 0:
                    raise ManifestError(path, n, f"label {field!r} is not a class number (0, 1, 2, ...)")
                if label != int(label):
                    raise ManifestError(path, n, f"label {field} is not a whole number")
                labels.append(int(label))
            rows.append((resolve_ref(parts[-1], path.parent), labels, f"{path.name}:{n}", n))
    if not rows:
        raise DataError(f"{path}: the .lst file has no lines")
    if all(len(labels) == 1 for _, labels, _, _ in rows):
        return [(src, labels[0], origin) for src, labels, origin, _ in rows]
    widths = {len(labels) for _, labels, _, _ in rows}
    one_hot = len(widths) == 1 and all(v in (0, 1) for _, labels, _, _ in rows for v in labels)
    out = []
    for src, labels, origin, n in rows:
        classes = tuple(i for i, v in enumerate(labels) if v) if one_hot else tuple(sorted(set(labels)))
        if not classes and not allow_empty_labels:
            raise ManifestError(
                path,
                n,
                "no class is 1 in this one-hot line: the image has no label; label it, "
                f"remove the line, or pass {option('allow_empty_labels', True)}",
            )
        out.append((src, classes, origin))
    return out
