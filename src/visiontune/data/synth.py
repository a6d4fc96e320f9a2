"""Fashion-scenes: real pixels, several labels per image, offline — for the multi-label and segmentation
tests and benchmarks.

Each scene pastes 1-4 Fashion-MNIST items (random scale, position and colour) on a crop of one of the
sample photos that ship inside scikit-image (no download). One build writes both tasks' data, sharing the
images:

    OUT/train/scene_000001.png              RGB scene
    OUT/train_annotation/scene_000001.png   mask, mode "P": 0 background, class index + 1 per item pixel
    OUT/validation/..., OUT/validation_annotation/...
    OUT/label_map/{train,validation}_label_map.json   SageMaker's default label map, {"scale": 1}:
                                                       mask values are the class indices themselves
    OUT/train.manifest, OUT/validation.manifest        Ground Truth multi-label lines (attribute
                                                       "fashion-scenes", images relative to the manifest)
    OUT/train.boxes.manifest, OUT/validation.boxes.manifest   Ground Truth object-detection lines (attribute
                                                       "fashion-scenes-boxes"): each placed item's box
    OUT/classes.json   {"segmentation": ["background", 10 names], "multi-label": [10 names]}

An item's pixels are those whose (normalised) intensity passes ``THRESHOLD``; later items cover earlier
ones. An item is only kept where at least ``MIN_VISIBLE`` of its pixels stay uncovered, so the labels
of a line are exactly the classes present in its mask. An item's box is the bounding box of all its
pixels where it was pasted (whole pixels: left, top, width, height), covered parts included (as a person
draws a partly hidden object's box); every placed item has one and stays at least ``MIN_VISIBLE`` uncovered,
so a box line's classes are its multi-label line's. Training scenes use Fashion-MNIST's training items,
validation scenes its test items. Scene ``i`` of a split depends only on (seed, split, i).
"""

from __future__ import annotations

import colorsys
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from visiontune.data import fashion_mnist
from visiontune.errors import ConfigError, DataError, MissingDependencyError, option
from visiontune.writes import writing

ATTRIBUTE = "fashion-scenes"
BOX_ATTRIBUTE = "fashion-scenes-boxes"
BOX_MANIFEST = "{split}.boxes.manifest"  # detection.BOXES_MANIFEST: open_dataset(OUT, task="detection") reads them
SPLITS = {"train": ("train-images", "train-labels"), "validation": ("test-images", "test-labels")}
#: Sample photos shipped inside scikit-image (colour ones as they are, grey textures tinted).
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "brick",
    "grass",
    "gravel",
    "camera",
    "moon",
    "coins",
    "text",
    "page",
    "cell",
    "clock",
)
THRESHOLD = 0.2  # an item pixel is "the item" above this share of the item's brightest pixel
MIN_VISIBLE = 0.5  # share of an item's pixels that must stay uncovered by later items
ITEM_SCALE = (0.3, 0.7)
ATTEMPTS = 30  # placements tried per item before it is left out
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
VERSION = 2  # bump when the drawing (or what is written) changes, so finished folders are rebuilt


def fashion_scenes(
    out: str | Path,
    n_train: int = 8_000,
    n_validation: int = 2_000,
    size: int = 128,
    min_items: int = 1,
    max_items: int = 4,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Build (or find already built, for the same parameters) the scenes under ``out``; a summary back.

    ``progress(k)`` is told of every ``k`` scenes written. An interrupted build is redone from the start:
    ``out/.complete`` is written last and holds the parameters."""
    _check(n_train, n_validation, size, min_items, max_items, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option('out')} {out} is a file; name a folder (new or from an earlier build)")
    params = {
        "version": VERSION,
        "n_train": n_train,
        "n_validation": n_validation,
        "size": size,
        "min_items": min_items,
        "max_items": max_items,
        "seed": seed,
    }
    marker = out / ".complete"
    done = _read_marker(marker)
    if done is not None and done.get("params") == params:
        return _summary(out, params, done["stats"])
    try:
        src = fashion_mnist.locate(download=False)
    except DataError as exc:
        raise DataError(
            f"{exc}: the scene builder reads Fashion-MNIST from this machine. Install Debian's package "
            "(apt-get install dataset-fashion-mnist), put the four IDX .gz files in a folder named by "
            "FASHION_MNIST_DIR, or run `visiontune quickstart` once (it downloads them)"
        ) from exc
    photos = load_photos()
    marker.unlink(missing_ok=True)
    _clear(out)
    stats, created = {}, _now()
    for code, (split, (images_key, labels_key)) in enumerate(SPLITS.items()):
        items = fashion_mnist.read_idx(src / fashion_mnist.FILES[images_key])
        labels = fashion_mnist.read_idx(src / fashion_mnist.FILES[labels_key])
        n = n_train if split == "train" else n_validation
        with writing(out, shown=out / split):  # a full disk: one line naming the folder (a rerun starts over)
            stats[split] = _write_split(out, split, code, n, items, labels, photos, params, created, progress)
    (out / "label_map").mkdir(exist_ok=True)
    for split in SPLITS:
        (out / "label_map" / f"{split}_label_map.json").write_text(json.dumps({"scale": 1}) + "\n")
    (out / "classes.json").write_text(
        json.dumps(
            {"segmentation": ["background", *fashion_mnist.CLASSES], "multi-label": list(fashion_mnist.CLASSES)},
            indent=1,
        )
        + "\n"
    )
    marker.write_text(json.dumps({"params": params, "stats": stats}) + "\n")
    return _summary(out, params, stats)


def _check(n_train, n_validation, size, min_items, max_items, seed) -> None:
    for value, py, flag in ((n_train, "n_train", "--train"), (n_validation, "n_validation", "--validation")):
        if value < 1:
            raise ConfigError(f"{_name(py, flag)} must be at least 1 scene (got {value})")
    if size < 32:
        raise ConfigError(
            f"{option('size')} must be at least 32 pixels (got {size}): smaller scenes leave "
            "the items too few pixels to recognise"
        )
    for name, value in (("min_items", min_items), ("max_items", max_items)):
        if not 1 <= value <= 4:
            raise ConfigError(f"{option(name)} must be 1 to 4 items per scene (got {value})")
    if min_items > max_items:
        raise ConfigError(
            f"{option('min_items')} ({min_items}) is more than {option('max_items')} "
            f"({max_items}); lower the first or raise the second"
        )
    if seed < 0:
        raise ConfigError(f"{option('seed')} must be 0 or more (got {seed})")


def _name(python: str, flag: str) -> str:
    """An option whose flag is not its Python name spelled with dashes, as the caller spells it."""
    return flag if option(python).startswith("--") else python


def load_photos() -> list[tuple[Image.Image, bool]]:
    """``(photo, is_colour)`` for each sample photo scikit-image has on this machine (none is downloaded)."""
    try:
        import skimage.data
    except ImportError as exc:
        raise MissingDependencyError(
            "scikit-image", "the fashion-scenes backgrounds (its sample photos)", "synth"
        ) from exc
    photos = []
    for name in PHOTOS:
        try:  # a photo that would need pooch (a download) is simply not used
            arr = np.asarray(getattr(skimage.data, name)())
        except Exception:  # noqa: BLE001 - any reason a sample is unavailable means: use the others
            continue
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or min(arr.shape[:2]) < 64:
            continue
        colour = arr.ndim == 3
        photos.append((Image.fromarray(arr[..., :3] if colour else arr, "RGB" if colour else "L"), colour))
    if not photos:
        raise DataError(
            "none of scikit-image's sample photos could be loaded for the scene backgrounds; "
            "reinstall scikit-image (pip install --force-reinstall scikit-image)"
        )
    return photos


def _read_marker(marker: Path) -> dict | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def _clear(out: Path) -> None:
    """Remove what a build (this one, an interrupted one, or one with other parameters) writes."""
    for split in SPLITS:
        for folder in (out / split, out / f"{split}_annotation"):
            for stale in folder.glob("scene_*.png"):
                stale.unlink()
            folder.mkdir(parents=True, exist_ok=True)
        (out / f"{split}.manifest").unlink(missing_ok=True)
        (out / BOX_MANIFEST.format(split=split)).unlink(missing_ok=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime())


def _write_split(
    out: Path,
    split: str,
    code: int,
    n: int,
    items: np.ndarray,
    labels: np.ndarray,
    photos: list,
    params: dict,
    created: str,
    progress,
) -> dict:
    """Draw and write one split's scenes, masks and manifests; counts back."""
    per_class = [0] * len(fashion_mnist.CLASSES)
    n_items = 0
    tmp = out / f".{split}.manifest.part"
    box_tmp = out / f".{split}.boxes.manifest.part"
    with open(tmp, "w", encoding="utf-8") as fh, open(box_tmp, "w", encoding="utf-8") as box_fh:
        for i in range(1, n + 1):
            rng = np.random.default_rng([params["seed"], code, i])
            boxes: list[tuple[int, int, int, int, int]] = []
            image, mask, placed = draw_scene(
                rng, items, labels, photos, params["size"], params["min_items"], params["max_items"], boxes=boxes
            )
            name = f"scene_{i:06d}.png"
            Image.fromarray(image, "RGB").save(out / split / name)
            _mask_image(mask).save(out / f"{split}_annotation" / name)
            present = sorted(int(v) - 1 for v in np.unique(mask) if v)
            for c in present:
                per_class[c] += 1
            n_items += placed
            fh.write(json.dumps(_record(f"{split}/{name}", present, created)) + "\n")
            box_fh.write(json.dumps(_box_record(f"{split}/{name}", boxes, params["size"], created)) + "\n")
            if progress is not None:
                progress(1)
    tmp.replace(out / f"{split}.manifest")
    box_tmp.replace(out / BOX_MANIFEST.format(split=split))
    return {"images": n, "items": n_items, "per_class": dict(zip(fashion_mnist.CLASSES, per_class))}


def _record(ref: str, present: list[int], created: str) -> dict:
    """One Ground Truth multi-label line (the layout ``visiontune label export`` writes too)."""
    return {
        "source-ref": ref,
        ATTRIBUTE: present,
        f"{ATTRIBUTE}-metadata": {
            "class-map": {str(c): fashion_mnist.CLASSES[c] for c in present},
            "confidence-map": {str(c): 1.0 for c in present},
            "type": "groundtruth/image-classification-multilabel",
            "job-name": f"labeling-job/{ATTRIBUTE}",
            "human-annotated": "no",
            "creation-date": created,
        },
    }


def _box_record(ref: str, boxes: list[tuple[int, int, int, int, int]], size: int, created: str) -> dict:
    """One Ground Truth object-detection line (bounding-box output): ``(class, left, top, width, height)``
    per placed item, in paste order."""
    return {
        "source-ref": ref,
        BOX_ATTRIBUTE: {
            "image_size": [{"width": size, "height": size, "depth": 3}],
            "annotations": [{"class_id": c, "left": x, "top": y, "width": w, "height": h} for c, x, y, w, h in boxes],
        },
        f"{BOX_ATTRIBUTE}-metadata": {
            "objects": [{"confidence": 1.0} for _ in boxes],
            "class-map": {str(c): fashion_mnist.CLASSES[c] for c in sorted({b[0] for b in boxes})},
            "type": "groundtruth/object-detection",
            "job-name": f"labeling-job/{BOX_ATTRIBUTE}",
            "human-annotated": "no",
            "creation-date": created,
        },
    }


def item_box(own: np.ndarray, y: int, x: int) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` in whole pixels of the scene: the bounding box of an item's pixels
    ``own`` (its ``side`` x ``side`` square's, above ``THRESHOLD``) pasted with its square's corner at (y, x)."""
    ys, xs = np.nonzero(own)
    return x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1


def _mask_image(mask: np.ndarray) -> Image.Image:
    """Mode "P" (what SageMaker recommends): the values are class indices, the palette only helps eyes."""
    img = Image.fromarray(mask, "P")
    palette = [0, 0, 0]
    for c in range(len(fashion_mnist.CLASSES)):
        r, g, b = colorsys.hsv_to_rgb(c / len(fashion_mnist.CLASSES), 0.8, 1.0)
        palette += [int(r * 255), int(g * 255), int(b * 255)]
    img.putpalette(palette + [0, 0, 0] * (256 - len(palette) // 3))
    return img


def draw_scene(
    rng: np.random.Generator,
    items: np.ndarray,
    labels: np.ndarray,
    photos: list,
    size: int,
    min_items: int,
    max_items: int,
    boxes: list | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(RGB uint8 image, uint8 mask, items placed)``: a background and min..max items on it; ``boxes``, when
    given, gets each placed item's ``(class, left, top, width, height)`` (:func:`item_box`), in paste order."""
    for _ in range(20):  # a scene where items had to be left out below min_items is drawn again
        bg = _background(rng, photos, size)
        want = int(rng.integers(min_items, max_items + 1))
        layers = _place_items(rng, items, labels, size, want)
        if len(layers) >= min_items:
            break
    image, mask = bg, np.zeros((size, size), np.uint8)
    for cls, v, own, (y, x) in layers:
        h, w = own.shape
        region = image[y : y + h, x : x + w]
        colour = _item_colour(rng, region.reshape(-1, 3).mean(0))
        alpha = np.clip((v - 0.05) / 0.3, 0, 1)[..., None]  # half opaque at THRESHOLD, solid above 0.35
        shade = (0.6 + 0.4 * v)[..., None] * colour  # keeps the item's own folds and seams visible
        image[y : y + h, x : x + w] = region * (1 - alpha) + shade * alpha
        mask[y : y + h, x : x + w][own] = cls + 1
        if boxes is not None:
            boxes.append((cls, *item_box(own, y, x)))
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), mask, len(layers)


def _background(rng: np.random.Generator, photos: list, size: int) -> np.ndarray:
    """A random square crop (scale, position, flip) of a sample photo, grey ones tinted; float 0..1."""
    photo, colour = photos[int(rng.integers(len(photos)))]
    w, h = photo.size
    side = rng.uniform(0.25, 1.0) * min(w, h)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    crop = photo.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    arr = np.asarray(crop, dtype=np.float32) / 255
    tint = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.15, 0.6), 1.0), np.float32)
    if not colour:
        arr = arr[..., None] * tint
    elif rng.random() < 0.3:
        arr = 0.7 * arr + 0.3 * (arr @ LUMA)[..., None] * tint
    mean = arr.mean((0, 1))
    return mean + (arr - mean) * rng.uniform(0.6, 1.0)  # a little less contrast, so items stand out


def _place_items(
    rng: np.random.Generator, items: np.ndarray, labels: np.ndarray, size: int, want: int
) -> list[tuple[int, np.ndarray, np.ndarray, tuple[int, int]]]:
    """``(class, intensity, own pixels, (y, x))`` per item, in paste order, each left at least MIN_VISIBLE."""
    layers: list = []
    owns: list[np.ndarray] = []  # each placed item's pixels on the full canvas
    for _ in range(want):
        k = int(rng.integers(len(items)))
        for attempt in range(ATTEMPTS):
            hi = ITEM_SCALE[1] if attempt < ATTEMPTS // 2 else (ITEM_SCALE[0] + ITEM_SCALE[1]) / 2
            side = max(8, round(rng.uniform(ITEM_SCALE[0], hi) * size))
            y, x = (int(v) for v in rng.integers(0, size - side + 1, 2))
            v, own = _item_pixels(items[k], side)
            canvas = np.zeros((size, size), bool)
            canvas[y : y + side, x : x + side] = own
            if all((o & ~canvas).sum() >= MIN_VISIBLE * o.sum() for o in owns):
                layers.append((int(labels[k]), v, own, (y, x)))
                owns = [o & ~canvas for o in owns] + [canvas]
                break
    return layers


def _item_pixels(item: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``(intensity 0..1, own)`` of a 28x28 item resized to ``side``; own = above THRESHOLD."""
    v = np.asarray(Image.fromarray(item.astype(np.float32), "F").resize((side, side), Image.BILINEAR))
    v = v / max(float(v.max()), 1.0)
    return v, v > THRESHOLD


def _item_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour that stands out from the background's mean colour ``background``: a hue at least a quarter
    turn away from it, pushed brighter or darker until its luminance is 0.35 away from the background's."""
    hue, sat, _ = colorsys.rgb_to_hsv(*(float(v) for v in np.clip(background, 0, 1)))
    hue = (hue + rng.uniform(0.25, 0.75)) % 1.0 if sat > 0.1 else rng.random()
    c = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)), np.float32)
    luma, background_luma = float(c @ LUMA), float(np.clip(background, 0, 1) @ LUMA)
    if background_luma < 0.5:
        target = background_luma + 0.35
        if luma < target:  # mix towards white: luminance rises linearly with the share of white
            c = c + (1 - c) * (target - luma) / (1 - luma)
    else:
        target = background_luma - 0.35
        if luma > target:
            c = c * target / luma
    return c


def _summary(out: Path, params: dict, stats: dict) -> dict:
    return {
        "out": str(out),
        "size": params["size"],
        "seed": params["seed"],
        "classes": list(fashion_mnist.CLASSES),
        "segmentation_classes": ["background", *fashion_mnist.CLASSES],
        "classes_file": str(out / "classes.json"),
        "label_attribute": ATTRIBUTE,
        "box_attribute": BOX_ATTRIBUTE,
        "splits": {
            split: {
                **s,
                "manifest": str(out / f"{split}.manifest"),
                "images_dir": str(out / split),
                "box_manifest": str(out / BOX_MANIFEST.format(split=split)),
                "annotations_dir": str(out / f"{split}_annotation"),
                "label_map": str(out / "label_map" / f"{split}_label_map.json"),
            }
            for split, s in stats.items()
        },
    }
