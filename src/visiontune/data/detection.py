"""Object-detection data: boxes beside each :class:`Sample`, as segmentation samples carry masks.

One representation for every layout, converted on read:

* ``Sample.boxes``: ``(class index, xmin, ymin, xmax, ymax)`` per box, the coordinates normalised to [0, 1]
  of the original upright image (x by its width, y by its height).  Normalised because the pixel cache
  stores images resized ("squash") and a normalised box is the same box at every size; because SageMaker's
  Object Detection answers and its ``.lst`` files, and YOLO's labels, are normalised already; and because
  "inside the image" is then checked without reading a single image;
* ``Sample.label``: the sorted tuple of its boxes' distinct classes (what counts, splits, leak checks and
  the sample grid read); ``()`` with no boxes: a *negative*, an image with nothing to find (allowed;
  ``data inspect`` counts and names them);
* ``Sample.size``: the (width, height) the annotation says the image has, where the layout says it (Ground
  Truth's ``image_size``, COCO's ``width``/``height``, a ``.lst`` header of width 4); :func:`size_problems`
  checks it against the real file (``data inspect`` does).

Classes are in the order of the layout's own ids (Ground Truth's ``class_id``, COCO's category ids, YOLO's
indices, ``.lst`` class numbers), ids that name no box or class left out; names come from the layout
(``class-map``, ``categories``, ``data.yaml`` / ``classes.txt`` / ``obj.names``; ``.lst``: the numbers).

Layouts, each a registered :class:`Source` tried before the general ones (their files look like manifests,
``.lst`` files or class folders to those):

* ``detection-manifest``: Ground Truth's bounding-box output manifest (JSON Lines);
* ``detection-lst``: SageMaker Object Detection's ``.lst`` (told from image classification's by its
  header: see :func:`lst_is_detection`);
* ``coco``: a COCO JSON file (``images``, ``annotations`` with ``bbox`` [x, y, w, h], ``categories``);
* ``yolo``: ``images/`` + ``labels/`` folders of ``class cx cy w h`` text files.

Bad data is a :class:`DataError` naming the file and line (COCO: the annotation): a box outside the image
(more than a pixel, or 0.001 of a normalised side, past an edge: rounding within that is clipped), a box of
zero or negative size, a class id outside the layout's class map, an annotated size that is not the file's.
``strict=False`` (``data inspect``) records each in ``Dataset.scan_problems``, leaves the box out and reads on.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from visiontune.data.dataset import SPLIT_ALIASES, SPLITS, Dataset, Sample
from visiontune.data.decode import is_image_name
from visiontune.data.sources import (
    MANIFEST_SUFFIXES,
    Source,
    detect_label_attribute,
    iter_manifest,
    register_source,
    resolve_ref,
)
from visiontune.errors import DataError, ManifestError

TASK = "detection"
#: ``data synth fashion-scenes`` writes ``train.boxes.manifest`` beside ``train.manifest``; ``open_dataset(folder,
#: task="detection")`` reads a folder's ``<split>.boxes.manifest`` files
BOXES_MANIFEST = ".boxes.manifest"
#: slack past an image edge that is rounding, not a mistake (clipped): pixel layouts, normalised layouts
SLACK_PX, SLACK_NORM = 1.0, 1e-3
#: the files that name YOLO's classes, in the order they are looked for
YOLO_NAME_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names")

Box = tuple[int, float, float, float, float]


class _Problems:
    """Raise the first problem (``strict``) or record each and read on (``data inspect``)."""

    def __init__(self, strict: bool):
        self.strict, self.found = strict, []

    def __call__(self, exc: DataError) -> None:
        if self.strict:
            raise exc
        self.found.append(str(exc))


def check_box(
    x0: float, y0: float, x1: float, y1: float, width: float, height: float, unit: str
) -> tuple[float, float, float, float] | str:
    """A box (corners, in ``unit``: "px" of a ``width`` x ``height`` image, or "normalised" with 1 x 1)
    as normalised, clipped corners, or what is wrong with it."""
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return f"a coordinate of the box ({x0}, {y0})-({x1}, {y1}) is not a finite number"
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return (
            f"the box has zero or negative size ({_num(x1 - x0)} x {_num(y1 - y0)} {unit}); give it a "
            "positive width and height, or remove it"
        )
    slack = SLACK_PX if unit == "px" else SLACK_NORM
    if x0 < -slack or y0 < -slack or x1 > width + slack or y1 > height + slack:
        return (
            f"the box ({_num(x0)}, {_num(y0)})-({_num(x1)}, {_num(y1)}) {unit} lies outside the image "
            f"(0, 0)-({_num(width)}, {_num(height)}); fix the box (or the image size) so it lies inside"
        )
    clip = lambda v, side: min(max(v / side, 0.0), 1.0)  # noqa: E731
    return clip(x0, width), clip(y0, height), clip(x1, width), clip(y1, height)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


def _whole(v) -> int | None:
    """``v`` as an int when it is a whole number (``3``, ``3.0``, ``"3"``), else None (``True`` is not one)."""
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) and f.is_integer() else None


def detection_dataset(
    rows: list[tuple[str, list[tuple[int, float, float, float, float]], str, tuple | None]],
    names: dict[int, str],
    path: Path,
    kind: str,
    skipped=(),
    problems=(),
) -> Dataset:
    """``(source, [(layout class id, normalised corners...)], origin, declared size)`` rows and the layout's
    ``id -> name`` map -> a one-split detection Dataset (classes in id order)."""
    order = sorted(names)
    index = {k: i for i, k in enumerate(order)}
    samples = []
    for src, boxes, origin, size in rows:
        kept = tuple((index[c], *xyxy) for c, *xyxy in boxes if c in index)
        samples.append(Sample(src, tuple(sorted({b[0] for b in kept})), origin, boxes=kept, size=size))
    return Dataset(
        [names[k] for k in order], {"train": samples}, str(path), kind, list(skipped), list(problems), task=TASK
    )


# ------------------------------------------------------------------ Ground Truth bounding-box manifests
def detection_attributes(record: dict) -> list[str]:
    """Ground Truth bounding-box fields: ``<attr>`` holding an ``annotations`` list, with ``<attr>-metadata``."""
    return [
        k
        for k, v in record.items()
        if isinstance(v, dict)
        and isinstance(v.get("annotations"), list)
        and isinstance(record.get(f"{k}-metadata"), dict)
    ]


def _first_record(path: Path) -> dict | None:
    try:
        return next((rec for _, rec in iter_manifest(path)), None)
    except (DataError, OSError, UnicodeDecodeError):
        return None


@register_source
class DetectionManifestSource(Source):
    """Ground Truth's bounding-box output manifest: ``source-ref``, ``<attr>: {"image_size": [{"width",
    "height", "depth"}], "annotations": [{"class_id", "left", "top", "width", "height"}]}`` (pixels) and
    ``<attr>-metadata`` with ``class-map`` (id -> name), ``objects`` (a confidence per box) and ``type:
    groundtruth/object-detection``.  A line with no annotations is a negative."""

    name = "detection-manifest"
    specific = True

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES):
            return False
        first = _first_record(path)  # a chained job's classification attribute beside the boxes reads as before
        return first is not None and bool(detection_attributes(first)) and not detect_label_attribute(first)

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        return read_detection_manifest(path, label_attribute, strict)


def read_detection_manifest(path: Path, label_attribute: str | None = None, strict: bool = True) -> Dataset:
    """Every line's boxes, normalised by its ``image_size``; every problem names its line."""
    bad = _Problems(strict)
    rows, names, raw = [], {}, []  # raw: (row index, line, class id) to check once every class-map is read
    attribute = label_attribute
    for n, rec in iter_manifest(path):
        if attribute is None:
            found = detection_attributes(rec)
            if len(found) != 1:
                raise ManifestError(
                    path,
                    n,
                    f"{'several' if found else 'no'} bounding-box attributes "
                    f"({', '.join(found) or 'a field holding image_size and annotations'}"
                    " with a matching '<attr>-metadata'); name one with --label-attribute",
                )
            attribute = found[0]
        value, meta = rec.get(attribute), rec.get(f"{attribute}-metadata")
        if not isinstance(value, dict) or not isinstance(value.get("annotations"), list):
            bad(
                ManifestError(
                    path,
                    n,
                    f"no {attribute!r} with an 'annotations' list on this line; every image needs "
                    "one (an empty list for an image with nothing to find)",
                )
            )
            continue
        meta = meta if isinstance(meta, dict) else {}
        kind = meta.get("type")
        if kind is not None and "object-detection" not in str(kind):
            bad(ManifestError(path, n, f"'{attribute}-metadata'.type is {kind!r}, not groundtruth/object-detection"))
            continue
        size = _gt_image_size(value.get("image_size"))
        if size is None:
            bad(
                ManifestError(
                    path,
                    n,
                    f'{attribute}.image_size must be [{{"width": W, "height": H, "depth": '
                    f"3}}] with whole positive pixels (found {value.get('image_size')!r}); the "
                    "boxes are pixels of that size",
                )
            )
            continue
        annotations = value["annotations"]
        cmap = meta.get("class-map", {})
        if not isinstance(cmap, dict):
            bad(ManifestError(path, n, f"'{attribute}-metadata'.class-map must map class ids to names"))
            continue
        if _merge_names(path, n, cmap, names, bad):
            continue
        objects = meta.get("objects")
        if objects is not None and (not isinstance(objects, list) or len(objects) != len(annotations)):
            bad(
                ManifestError(
                    path,
                    n,
                    f"'{attribute}-metadata'.objects holds "
                    f"{len(objects) if isinstance(objects, list) else repr(objects)} "
                    f"confidence(s) for {len(annotations)} box(es); give one per box",
                )
            )
        boxes = []
        for k, a in enumerate(annotations, start=1):
            where = f"box {k} of {len(annotations)}"
            fields = [a.get(f) if isinstance(a, dict) else None for f in ("class_id", "left", "top", "width", "height")]
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in fields):
                bad(
                    ManifestError(
                        path, n, f"{where}: needs numbers class_id, left, top, width, height (pixels); found {a!r}"
                    )
                )
                continue
            cid = _whole(fields[0])
            if cid is None or cid < 0:
                bad(ManifestError(path, n, f"{where}: class_id {fields[0]!r} is not a class id (0, 1, 2, ...)"))
                continue
            left, top, w, h = (float(v) for v in fields[1:])
            checked = check_box(left, top, left + w, top + h, *size, "px")
            if isinstance(checked, str):
                bad(
                    ManifestError(
                        path,
                        n,
                        f"{where} (class_id {cid}, left {_num(left)}, top {_num(top)}, width "
                        f"{_num(w)}, height {_num(h)}): {checked}",
                    )
                )
                continue
            raw.append((len(rows), n, cid))
            boxes.append((cid, *checked))
        rows.append((resolve_ref(str(rec["source-ref"]), path.parent), boxes, f"{path.name}:{n}", size))
    if not rows and not bad.found:
        raise DataError(f"{path}: the manifest has no lines")
    for _, n, cid in raw:
        if cid not in names:
            bad(
                ManifestError(
                    path,
                    n,
                    f"class_id {cid} is not in any line's '{attribute}-metadata'.class-map "
                    f"(known: {', '.join(f'{k}={v[0]}' for k, v in sorted(names.items()))}); add "
                    "its name",
                )
            )
    return detection_dataset(rows, {k: v[0] for k, v in names.items()}, path, "detection-manifest", problems=bad.found)


def _gt_image_size(value) -> tuple[int, int] | None:
    entry = value[0] if isinstance(value, list) and len(value) == 1 else value
    if not isinstance(entry, dict):
        return None
    w, h = _whole(entry.get("width")), _whole(entry.get("height"))
    return (w, h) if w and h and w > 0 and h > 0 else None


def _merge_names(path: Path, n: int, cmap: dict, names: dict, bad: _Problems) -> bool:
    """Add a line's class-map to ``names`` (id -> (name, line)); True when it contradicts an earlier line."""
    for key, name in cmap.items():
        cid = _whole(key)
        if cid is None or cid < 0:
            bad(ManifestError(path, n, f"class-map key {key!r} is not a class id (0, 1, 2, ...)"))
            return True
        name = str(name)
        if cid in names and names[cid][0] != name:
            bad(
                ManifestError(
                    path,
                    n,
                    f"class_id {cid} is called {name!r} here but {names[cid][0]!r} on line "
                    f"{names[cid][1]}; fix one so no box is mislabelled",
                )
            )
            return True
        other = next((k for k, (v, _) in names.items() if v == name and k != cid), None)
        if other is not None:
            bad(
                ManifestError(
                    path,
                    n,
                    f"the class {name!r} is id {cid} here but id {other} on line {names[other][1]}; one name, one id",
                )
            )
            return True
        names.setdefault(cid, (name, n))
    return False


# ------------------------------------------------------------------ SageMaker Object Detection .lst
def _lst_fields(line: str) -> tuple[list[str], list[float] | None]:
    parts = line.rstrip("\r\n").split("\t")
    try:
        return parts, [float(v) for v in parts[1:-1]]
    except ValueError:
        return parts, None


def _lst_layout(values: list[float]) -> tuple[int, int] | None:
    """(header width A, label width B) when ``values`` (a line's numbers after its index) are ``A B
    [extra header] objects``: A >= 2, B >= 5, A + k * B numbers."""
    if len(values) < 2:
        return None
    a, b = _whole(values[0]), _whole(values[1])
    if a is None or b is None or a < 2 or b < 5 or len(values) < a or (len(values) - a) % b:
        return None
    return a, b


def lst_is_detection(path: Path) -> bool:
    """An Object Detection ``.lst`` by its header: the first line holding a fractional number (a normalised
    coordinate: image classification's labels are whole numbers) starts with a header width A >= 2 and a
    label width B >= 5 and has A + k * B numbers.  A file of whole numbers only is image classification's."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                _, values = _lst_fields(line)
                if values is None:
                    return False
                if any(_whole(v) is None for v in values):
                    return _lst_layout(values) is not None
    except (OSError, UnicodeDecodeError):
        return False
    return False


@register_source
class DetectionLstSource(Source):
    """SageMaker Object Detection's ``.lst``: ``index<TAB>A<TAB>B<TAB>[A - 2 extra header values]<TAB>`` then
    per object B values, ``class xmin ymin xmax ymax`` normalised to [0, 1] (values past the fifth, such as a
    "difficult" flag, are passed over), then the image path (relative to the file).  A = 2 and B = 5 are
    SageMaker's defaults; with A >= 4 the extra header's first two whole numbers > 1 are the image's width and
    height (GluonCV's ``im2rec`` writes them).  Class -1 (MXNet's padding) is no object; a line with no
    objects is a negative.  Class names are the class numbers."""

    name = "detection-lst"
    specific = True

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".lst" and lst_is_detection(path)

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        bad = _Problems(strict)
        rows, seen = [], set()
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                parts, values = _lst_fields(line)
                if len(parts) < 4 or values is None:
                    bad(
                        ManifestError(
                            path,
                            n,
                            "expected index, header width A, label width B, [extra header], "
                            "class xmin ymin xmax ymax per object, then the image path "
                            "(tab-separated numbers before the path)",
                        )
                    )
                    continue
                layout = _lst_layout(values)
                if layout is None:
                    bad(
                        ManifestError(
                            path,
                            n,
                            f"the header {parts[1]!r} {parts[2]!r} and {len(values)} numbers do "
                            "not fit: A (header width, 2 or more, counting A and B) and B (label "
                            "width, 5 or more) then A - 2 header values and B per object",
                        )
                    )
                    continue
                a, b = layout
                extra = values[2:a]
                size = None
                if len(extra) >= 2 and all(_whole(v) is not None and v > 1 for v in extra[:2]):
                    size = (int(extra[0]), int(extra[1]))
                boxes = []
                for k in range((len(values) - a) // b):
                    obj = values[a + k * b : a + k * b + 5]
                    cid = _whole(obj[0])
                    if cid == -1:
                        continue
                    if cid is None or cid < 0:
                        bad(
                            ManifestError(
                                path, n, f"object {k + 1}: class {_num(obj[0])} is not a class number (0, 1, 2, ...)"
                            )
                        )
                        continue
                    checked = check_box(*obj[1:], 1.0, 1.0, "normalised")
                    if isinstance(checked, str):
                        bad(ManifestError(path, n, f"object {k + 1} (class {cid}): {checked}"))
                        continue
                    seen.add(cid)
                    boxes.append((cid, *checked))
                rows.append((resolve_ref(parts[-1], path.parent), boxes, f"{path.name}:{n}", size))
        if not rows and not bad.found:
            raise DataError(f"{path}: the .lst file has no lines")
        return detection_dataset(rows, {c: str(c) for c in seen}, path, self.name, problems=bad.found)


# ------------------------------------------------------------------ COCO JSON
def _coco_head(path: Path) -> bool:
    """A JSON document (not JSON Lines) whose first megabyte names COCO's keys."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            head = fh.read(1 << 20)
    except (OSError, UnicodeDecodeError):
        return False
    if not head.lstrip().startswith("{"):
        return False
    first = head.lstrip().split("\n", 1)[0]
    try:
        rec = json.loads(first)
    except json.JSONDecodeError:
        rec = None  # a pretty-printed document
    if isinstance(rec, dict) and "source-ref" in rec:
        return False  # a manifest's line
    return '"images"' in head or '"annotations"' in head or '"categories"' in head


@register_source
class CocoSource(Source):
    """A COCO JSON file: ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations``
    (``image_id``, ``category_id``, ``bbox`` [x, y, width, height] in pixels) and ``categories`` (``id``,
    ``name``).  ``file_name`` is found relative to the JSON's folder, its ``images/`` folder, or the folder
    above (COCO's ``annotations/`` beside the image folders).  Crowd regions (``iscrowd: 1``) are no boxes
    to find (COCO's evaluation ignores them): they are left out.  An image with no annotations is a negative."""

    name = "coco"
    specific = True

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".json" and _coco_head(path)

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        return read_coco(path, strict)


def read_coco(path: Path, strict: bool = True) -> Dataset:
    bad = _Problems(strict)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the COCO file ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise DataError(f"{path}: a COCO file is a JSON object with lists 'images', 'annotations' and 'categories'")
    names: dict[int, str] = {}
    for k, cat in enumerate(doc["categories"]):
        cid = _whole(cat.get("id")) if isinstance(cat, dict) else None
        if cid is None or not isinstance(cat.get("name"), str):
            raise DataError(f"{path}: categories[{k}] needs a whole-number 'id' and a 'name' (found {cat!r})")
        if cid in names:
            raise DataError(f"{path}: categories[{k}]: the id {cid} is also {names[cid]!r}'s; one id per category")
        if cat["name"] in names.values():
            raise DataError(
                f"{path}: categories[{k}]: the name {cat['name']!r} is used by two ids; one name per category"
            )
        names[cid] = cat["name"]
    images: dict[int, tuple[str, tuple[int, int], str]] = {}
    sizeless: set[int] = set()  # said once, their annotations not again
    for k, img in enumerate(doc["images"]):
        iid = _whole(img.get("id")) if isinstance(img, dict) else None
        file_name = img.get("file_name") if isinstance(img, dict) else None
        if iid is None or not isinstance(file_name, str) or not file_name:
            raise DataError(f"{path}: images[{k}] needs a whole-number 'id' and a 'file_name' (found {img!r})")
        if iid in images:
            raise DataError(f"{path}: images[{k}] ({file_name!r}): the id {iid} is also {images[iid][0]!r}'s")
        w, h = _whole(img.get("width")), _whole(img.get("height"))
        if not (w and h and w > 0 and h > 0):
            sizeless.add(iid)
            bad(
                DataError(
                    f"{path}: images[{k}] ({file_name!r}) needs its 'width' and 'height' in pixels (the "
                    "boxes are pixels of that size); it is left out"
                )
            )
            continue
        images[iid] = (file_name, (w, h), f"{path.name}:images[{k}]")
    boxes: dict[int, list] = {iid: [] for iid in images}
    for k, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            bad(DataError(f"{path}: annotations[{k}] is not an object"))
            continue
        where = f"{path}: annotations[{k}] (id {ann.get('id')!r}"
        iid = _whole(ann.get("image_id"))
        if iid in sizeless:
            continue
        if iid not in images:
            bad(DataError(f"{where}): image_id {ann.get('image_id')!r} is not in 'images'"))
            continue
        where += f", image {images[iid][0]!r})"
        if ann.get("iscrowd") in (1, True):
            continue
        cid = _whole(ann.get("category_id"))
        if cid not in names:
            bad(
                DataError(
                    f"{where}: category_id {ann.get('category_id')!r} is not in 'categories' (ids "
                    f"{', '.join(map(str, sorted(names)))}); add the category or fix the id"
                )
            )
            continue
        bbox = ann.get("bbox")
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bbox)
        ):
            bad(DataError(f"{where}: bbox must be [x, y, width, height] in pixels (found {bbox!r})"))
            continue
        x, y, w, h = (float(v) for v in bbox)
        checked = check_box(x, y, x + w, y + h, *images[iid][1], "px")
        if isinstance(checked, str):
            bad(DataError(f"{where}: bbox {bbox}: {checked}"))
            continue
        boxes[iid].append((cid, *checked))
    rows = [(_coco_file(path.parent, fn), boxes[iid], origin, size) for iid, (fn, size, origin) in images.items()]
    if not rows and not bad.found:
        raise DataError(f"{path}: the COCO file lists no images")
    return detection_dataset(rows, names, path, "coco", problems=bad.found)


def _coco_file(base: Path, file_name: str) -> str:
    if "://" in file_name or Path(file_name).is_absolute():
        return resolve_ref(file_name, base)
    for folder in (base, base / "images", base.parent, base.parent / "images"):
        if (folder / file_name).is_file():
            return str(folder / file_name)
    return str(base / file_name)  # not there: the pixel cache (or data inspect) names it


# ------------------------------------------------------------------ YOLO folders
def _has_txt(folder: Path) -> bool:
    return folder.is_dir() and any(
        f.suffix.lower() == ".txt" for _, _, files in os.walk(folder) for f in map(Path, files)
    )


def yolo_pairs(path: Path) -> dict[str, tuple[Path, Path]] | None:
    """``{split: (images folder, labels folder)}``: ``images/`` + ``labels/`` (one split, or ``images/<split>/``
    + ``labels/<split>/``, Ultralytics' layout), or ``<split>/images/`` + ``<split>/labels/`` (Roboflow's
    export); None when ``path`` is none of these (labels folders must hold ``.txt`` files)."""
    if not path.is_dir():
        return None
    images, labels = path / "images", path / "labels"
    if images.is_dir() and labels.is_dir() and _has_txt(labels):
        splits = {
            SPLIT_ALIASES[d.name.lower()]: (d, labels / d.name)
            for d in sorted(images.iterdir())
            if d.is_dir() and d.name.lower() in SPLIT_ALIASES
        }
        return splits or {"train": (images, labels)}
    splits = {
        SPLIT_ALIASES[d.name.lower()]: (d / "images", d / "labels")
        for d in sorted(path.iterdir())
        if d.is_dir() and d.name.lower() in SPLIT_ALIASES and (d / "images").is_dir() and _has_txt(d / "labels")
    }
    return splits or None


def yolo_names(path: Path) -> tuple[list[str] | None, Path | None]:
    """Class names from ``data.yaml`` / ``dataset.yaml`` (``names``: a list or ``{index: name}``),
    ``classes.txt`` or ``obj.names`` (one per line), and the file they came from."""
    for name in YOLO_NAME_FILES:
        f = path / name
        if not f.is_file():
            continue
        if f.suffix == ".yaml":
            import yaml

            try:
                doc = yaml.safe_load(f.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise DataError(f"{f}: not readable YAML ({exc})") from exc
            names = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(names, dict):
                keys = [_whole(k) for k in names]
                if None in keys or sorted(keys) != list(range(len(keys))):
                    raise DataError(f"{f}: names must be indexed 0, 1, 2, ... (found {sorted(names)})")
                names = [names[k] for k in sorted(names, key=_whole)]
            if not isinstance(names, list) or not names:
                raise DataError(f"{f}: no 'names' (a list of class names, or {{0: name, 1: name, ...}})")
            names = [str(v) for v in names]
        else:
            names = [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(set(names)) != len(names):
            raise DataError(f"{f}: a class name is listed twice; one name per class")
        return names, f
    return None, None


@register_source
class YoloSource(Source):
    """YOLO's text labels: ``images/`` + ``labels/`` (or ``images/<split>/`` + ``labels/<split>/``, or
    ``<split>/images/`` + ``<split>/labels/``), each image's ``labels/<same path>.txt`` holding ``class cx cy w
    h`` per box, normalised to [0, 1]; class names from ``data.yaml`` (``names``), ``classes.txt`` or
    ``obj.names``, else the class numbers.  An image without a label file, or with an empty one, is a
    negative; a label file without an image is listed in ``skipped``.  Polygon (segment) lines are refused."""

    name = "yolo"
    specific = True

    @classmethod
    def detect(cls, path: Path) -> bool:
        return yolo_pairs(path) is not None

    def load(self, path, *, on_bad_image="error", label_attribute=None, strict=True, allow_empty_labels=False):
        pairs = yolo_pairs(path)
        if pairs is None:
            raise DataError(
                f"{path}: not a YOLO layout; give images/ + labels/ folders (labels/*.txt: class cx cy w h per line)"
            )
        names, names_file = yolo_names(path)
        bad = _Problems(strict)
        parts, skipped, seen = {}, [], set()
        for split, (images, labels) in sorted(pairs.items(), key=lambda kv: SPLITS.index(kv[0])):
            if not labels.is_dir():  # e.g. an unlabelled test split: not a split of negatives
                skipped.append((str(images), f"no {labels} beside it (its labels); the {split} split is left out"))
                continue
            rows = []
            label_files = {
                str(f.relative_to(labels).with_suffix("")): f for f in _files(labels) if f.suffix.lower() == ".txt"
            }
            for f in _files(images):
                if not is_image_name(f.name):
                    continue
                label = label_files.pop(str(f.relative_to(images).with_suffix("")), None)
                boxes = [] if label is None else self._read(label, names, names_file, bad)
                seen.update(c for c, *_ in boxes)
                rows.append((str(f), boxes, f"{split}:{f.relative_to(images)}", None))
            skipped += [(str(f), f"a label file without an image in {images}") for f in label_files.values()]
            parts[split] = rows
        if not parts.get("train"):
            raise DataError(f"{path}: no training images in {pairs.get('train', next(iter(pairs.values())))[0]}")
        table = dict(enumerate(names)) if names is not None else {c: str(c) for c in seen}
        split_sets = {s: detection_dataset(rows, table, path, self.name).splits["train"] for s, rows in parts.items()}
        classes = [table[k] for k in sorted(table)]
        return Dataset(classes, split_sets, str(path), self.name, skipped, bad.found, task=TASK)

    @staticmethod
    def _read(label: Path, names: list[str] | None, names_file: Path | None, bad: _Problems) -> list:
        boxes = []
        try:
            text = label.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            bad(DataError(f"{label}: cannot read the label file ({exc})"))
            return boxes
        for n, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                values = [float(v) for v in fields]
            except ValueError:
                bad(ManifestError(label, n, f"expected numbers 'class cx cy w h', found {line.strip()!r}"))
                continue
            if len(values) != 5:
                what = (
                    "a polygon (segment) label; detection reads boxes"
                    if len(values) > 5 and len(values) % 2
                    else f"{len(values)} numbers"
                )
                bad(ManifestError(label, n, f"{what}: each line is 'class cx cy w h', normalised to [0, 1]"))
                continue
            cid = _whole(values[0])
            if cid is None or cid < 0 or (names is not None and cid >= len(names)):
                known = (
                    f"{names_file.name} names {len(names)} classes, 0..{len(names) - 1}"
                    if names
                    else "class ids are 0, 1, 2, ..."
                )
                bad(ManifestError(label, n, f"class {fields[0]} is outside the class list ({known})"))
                continue
            cx, cy, w, h = values[1:]
            checked = check_box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.0, 1.0, "normalised")
            if isinstance(checked, str):
                bad(
                    ManifestError(
                        label, n, f"class {cid}, centre ({_num(cx)}, {_num(cy)}), size {_num(w)} x {_num(h)}: {checked}"
                    )
                )
                continue
            boxes.append((cid, *checked))
        return boxes


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


# ------------------------------------------------------------------ folders of split files, checks, reports
def detection_split_files(path: Path) -> dict[str, Path]:
    """A folder's ``<split>.boxes.manifest`` files (``data synth fashion-scenes`` writes them)."""
    if not path.is_dir():
        return {}
    out = {}
    for f in sorted(path.iterdir()):
        if f.is_file() and f.name.lower().endswith(BOXES_MANIFEST):
            split = SPLIT_ALIASES.get(f.name[: -len(BOXES_MANIFEST)].lower())
            if split is not None:
                out[split] = f
    return out


def detection_splits(path: Path, parts: dict[str, Dataset]) -> Dataset:
    """Detection split files (train.json + val.json, train.lst + validation.lst, ...) as one Dataset: classes
    matched by name (the train file's order, then names only other splits use; ``.lst``: by number)."""
    odd = sorted(f"{split} ({p.task})" for split, p in parts.items() if p.task != TASK)
    if odd:
        raise DataError(
            f"{path}: some split files hold boxes but {', '.join(odd)} does not; give every split a detection file"
        )
    order = ["train", *(s for s in parts if s != "train")]
    classes: list[str] = []
    for split in order:
        classes += [c for c in parts[split].classes if c not in classes]
    if all(p.kind == "detection-lst" for p in parts.values()):
        classes.sort(key=int)
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split in (s for s in SPLITS if s in parts):
        p = parts[split]
        samples = []
        for s in p.splits["train"]:
            boxes = tuple((index[p.classes[b[0]]], *b[1:]) for b in s.boxes)
            samples.append(Sample(s.source, tuple(sorted({b[0] for b in boxes})), s.origin, boxes=boxes, size=s.size))
        splits[split] = samples
    return Dataset(
        classes,
        splits,
        str(path),
        "+".join(sorted({p.kind for p in parts.values()})),
        [x for p in parts.values() for x in p.skipped],
        [x for p in parts.values() for x in p.scan_problems],
        task=TASK,
    )


def detection_source(path: Path) -> str | None:
    """The detection layout ``path`` is, ignoring what would make a general source read it first (a chained
    manifest's classification attribute): what ``open_dataset(path, task="detection")`` opens."""
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        first = _first_record(path)
        if first is not None and detection_attributes(first):
            return DetectionManifestSource.name
    for cls in (CocoSource, DetectionLstSource, YoloSource):
        if cls.detect(path):
            return cls.name
    return None


def size_problems(dataset: Dataset, sizes: dict[str, tuple[int, int]]) -> list[str]:
    """Each sample whose annotated (width, height) is not its file's (``sizes``: source -> upright (width,
    height), as ``data inspect`` reads them): its boxes were drawn on another image."""
    out = []
    for split, samples in dataset.splits.items():
        for s in samples:
            real = sizes.get(s.source)
            if s.size is not None and real is not None and tuple(real) != tuple(s.size):
                out.append(
                    f"{s.origin or s.source}: the annotation says {s.source} is {s.size[0]}x{s.size[1]} but "
                    f"the file is {real[0]}x{real[1]}; its boxes were drawn on another image (fix the "
                    "image_size / width and height, or the image)"
                )
    return out


def detection_report(dataset: Dataset, sizes: dict[str, tuple[int, int]]) -> dict:
    """What ``data inspect`` says of boxes: per split and class, boxes and images; boxes per image; box sizes
    (pixels of the file, else of the annotated size; COCO's small < 32², medium, large > 96² areas); negatives."""
    import numpy as np

    per_class, images_per_class, per_image, widths, heights, buckets = {}, {}, [], [], [], [0, 0, 0]
    negatives = []
    for split, samples in dataset.splits.items():
        boxes = [0] * dataset.num_classes
        images = [0] * dataset.num_classes
        for s in samples:
            per_image.append(len(s.boxes))
            if not s.boxes:
                negatives.append(s.origin or s.source)
            for c in {b[0] for b in s.boxes}:
                images[c] += 1
            size = sizes.get(s.source) or s.size
            for c, x0, y0, x1, y1 in s.boxes:
                boxes[c] += 1
                if size is not None:
                    w, h = (x1 - x0) * size[0], (y1 - y0) * size[1]
                    widths.append(w)
                    heights.append(h)
                    buckets[0 if w * h < 32**2 else 1 if w * h <= 96**2 else 2] += 1
        per_class[split] = dict(zip(dataset.classes, boxes))
        images_per_class[split] = dict(zip(dataset.classes, images))

    def spread(values) -> dict:
        if not len(values):
            return {"min": 0, "median": 0, "mean": 0, "max": 0}
        a = np.asarray(values, dtype=float)
        return {
            "min": round(float(a.min()), 1),
            "median": round(float(np.median(a)), 1),
            "mean": round(float(a.mean()), 2),
            "max": round(float(a.max()), 1),
        }

    notes = []
    if negatives:
        shown = ", ".join(negatives[:5]) + (f" and {len(negatives) - 5} more" if len(negatives) > 5 else "")
        notes.append(
            f"{len(negatives)} image(s) have no boxes: they train as negatives (nothing to find), which "
            f"is allowed: {shown}"
        )
    return {
        "boxes_per_class": per_class,
        "images_per_class": images_per_class,
        "boxes": sum(per_image),
        "boxes_per_image": spread(per_image),
        "box_sizes": {
            "width": spread(widths),
            "height": spread(heights),
            "small": buckets[0],
            "medium": buckets[1],
            "large": buckets[2],
        },
        "negatives": {"count": len(negatives), "examples": negatives[:20]},
        "notes": notes,
    }
