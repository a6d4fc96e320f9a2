"""Segmentation masks: how a mask file becomes class indices, checked, and cached beside the pixels.

A mask is a PNG of the image's size.  Its pixels are read by a :class:`MaskCodec`:

* index masks (mode ``L`` or ``P``, or RGB with equal channels): the value is the class, optionally
  through SageMaker's label map (``{"scale": k}``: value // k; ``{"map": {"value": class}}``);
* colour masks (Ground Truth semantic segmentation): each colour of the manifest's ``internal-color-map``
  is one class.

255 means "ignore" (no loss, no metric) in every layout.  A mask whose size differs from its image, a
value outside the classes, an RGB mask without a colour map are :class:`DataError` naming the file.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from visiontune.data.dataset import Sample, read_bytes
from visiontune.errors import DataError

IGNORE = 255


@dataclass(frozen=True)
class MaskCodec:
    """How one layout's mask values become class indices (hashable: it is part of the mask cache's key)."""

    #: value -> class (SageMaker ``label_map``'s ``map``); None: the value is the class (after ``scale``)
    values: tuple[tuple[int, int], ...] | None = None
    scale: int = 1
    #: ``#rrggbb`` -> class (Ground Truth's ``internal-color-map``); None: masks hold indices
    colours: tuple[tuple[str, int], ...] | None = None

    @classmethod
    def from_label_map(cls, path: Path) -> "MaskCodec":
        """SageMaker's ``label_map/<split>_label_map.json``: ``{"scale": k}`` or ``{"map": {"3": 1, ...}}``."""
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(
                f'{path}: not a readable label map ({exc}); write {{"scale": 1}} or '
                '{"map": {"<mask value>": <class>, ...}}'
            ) from exc
        if not isinstance(doc, dict) or not ({"scale", "map"} & set(doc)):
            raise DataError(f'{path}: a label map is {{"scale": k}} or {{"map": {{"<mask value>": <class>}}}}')
        try:
            values = tuple(sorted((int(k), int(v)) for k, v in doc["map"].items())) if "map" in doc else None
            scale = int(doc.get("scale", 1))
        except (TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{path}: label map values must be whole numbers ({exc})") from exc
        bad = [(k, v) for k, v in values or () if not (0 <= k <= 255 and 0 <= v < IGNORE)]
        if bad:
            raise DataError(
                f"{path}: map entry {bad[0][0]} -> {bad[0][1]}: mask values are 0..255 and classes "
                "0..254 (255 = ignore)"
            )
        if scale < 1:
            raise DataError(f"{path}: scale {scale} must be 1 or more")
        return cls(values=values, scale=scale)

    def num_classes_hint(self) -> int | None:
        return max(c for _, c in self.values) + 1 if self.values else None

    def decode(self, img: Image.Image, name: str) -> np.ndarray:
        """The mask's class indices (uint8, 255 = ignore), before any check against the class count."""
        if self.colours is not None:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
            code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
            out = np.full(code.shape, IGNORE, dtype=np.uint8)
            known = np.zeros(code.shape, dtype=bool)
            for hex_colour, c in self.colours:
                hit = code == int(hex_colour.lstrip("#"), 16)
                out[hit] = c
                known |= hit
            if not known.all():
                ys, xs = np.nonzero(~known)
                v = rgb[ys[0], xs[0]]
                raise DataError(
                    f"{name}: the colour #{v[0]:02x}{v[1]:02x}{v[2]:02x} at x={xs[0]}, y={ys[0]} "
                    f"({int((~known).sum())} pixel(s)) is not in the manifest's internal-color-map; "
                    "add it, or repaint those pixels"
                )
            return out
        if img.mode in ("RGB", "RGBA"):
            arr = np.asarray(img.convert("RGB"))
            if not ((arr[..., 0] == arr[..., 1]) & (arr[..., 1] == arr[..., 2])).all():
                raise DataError(
                    f"{name}: an RGB colour mask where class indices were expected; save masks as "
                    "single-channel (mode L or P) PNGs whose values are the classes, or give the "
                    "colours with a Ground Truth manifest's internal-color-map"
                )
            arr = arr[..., 0]
        elif img.mode in ("L", "P"):
            arr = np.asarray(img)
        elif img.mode in ("I", "I;16", "I;16B", "I;16L"):
            arr = np.asarray(img).astype(np.int64)
            if arr.max(initial=0) > 255:
                raise DataError(
                    f"{name}: mask values up to {int(arr.max())}; class indices go up to 254 (255 = ignore)"
                )
        else:
            raise DataError(f"{name}: a mask of mode {img.mode}; save masks as single-channel PNGs")
        arr = np.asarray(arr, dtype=np.int64)
        ignore = arr == IGNORE
        if self.values is not None:
            table = np.full(256, -1, dtype=np.int64)
            for v, c in self.values:
                table[v] = c
            out = table[arr]
            bad = (out < 0) & ~ignore
            if bad.any():
                raise DataError(
                    f"{name}: mask value {int(arr[bad][0])} is not in the label map; add it to the "
                    'label map\'s "map", or set those pixels to 255 (ignore)'
                )
        else:
            out = arr // self.scale
        out[ignore] = IGNORE
        return out.astype(np.uint8)


INDEX_MASKS = MaskCodec()


def open_mask(source: str, image_source: str | None, codec: MaskCodec, num_classes: int | None) -> np.ndarray:
    """One mask, decoded and checked against its image's size and the class count."""
    try:
        img = Image.open(io.BytesIO(read_bytes(source)))
        img.load()
    except FileNotFoundError as exc:
        raise DataError(
            f"{source}: the mask file does not exist" + (f" (for {image_source})" if image_source else "")
        ) from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"{source}: not a mask image (Pillow cannot identify the file); masks are PNGs") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{source}: not a readable mask image ({exc})") from exc
    if image_source is not None:
        size = _image_size(image_source)
        if size is not None and size != img.size:
            raise DataError(
                f"{source}: the mask is {img.size[0]}x{img.size[1]} but its image {image_source} is "
                f"{size[0]}x{size[1]}; a mask must have its image's size"
            )
    mask = codec.decode(img, source)
    if num_classes is not None:
        bad = (mask >= num_classes) & (mask != IGNORE)
        if bad.any():
            raise DataError(
                f"{source}: class value {int(mask[bad].max())} is outside the {num_classes} classes "
                f"(0..{num_classes - 1}; 255 = ignore); fix the mask or the label map / class list"
            )
    return mask


def _image_size(source: str) -> tuple[int, int] | None:
    """The image's upright (width, height) from its header (a local file is not read whole: the pixel cache
    decodes it); None when unreadable (the pixel cache reports it)."""
    from visiontune.data.decode import image_size_of
    from visiontune.errors import BadImageError

    try:
        h, w = image_size_of(read_bytes(source) if "://" in source else source, name=source)
        return w, h
    except (BadImageError, OSError):
        return None


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """``size x size`` by nearest neighbour (classes never blend), the image's ``squash`` resize."""
    if mask.shape == (size, size):
        return mask
    return np.asarray(Image.fromarray(mask, "L").resize((size, size), Image.Resampling.NEAREST))


def scan_num_classes(samples: list[Sample], workers: int = 8, strict: bool = True) -> int:
    """The class count of index masks without a class list: the largest class value + 1 (``strict=False``:
    unreadable masks are passed over here; ``data inspect`` reports each)."""
    from visiontune.data.cache import ordered_map

    def top(s: Sample) -> int:
        try:
            m = open_mask(s.mask, None, s.codec or INDEX_MASKS, None)
        except DataError:
            if strict:
                raise
            return 0
        m = m[m != IGNORE]
        return int(m.max()) if m.size else 0

    return max(ordered_map(top, samples, workers), default=0) + 1


def mask_cache(
    samples: list[Sample],
    hashes: dict[str, str],
    size: int,
    num_classes: int,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    root: Path | None = None,
) -> tuple[np.ndarray, bool]:
    """uint8 ``(N, size, size)`` class indices (memory-mapped) of every sample's mask, and whether it was a
    cache hit.  Keyed by the masks' and images' content, the codec and the size, like the pixel cache."""
    from visiontune.data.cache import CACHE_FORMAT, cache_key, cache_lock, default_workers, ordered_map
    from visiontune.paths import cache_dir

    root = root or cache_dir("masks")
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(
        "masks", CACHE_FORMAT, size, num_classes, [(hashes[s.mask], hashes[s.source], s.codec) for s in samples]
    )
    with cache_lock(root, key):
        path = root / f"{key}.npy"
        if path.exists():
            if progress:
                progress(len(samples))
            return np.load(path, mmap_mode="r"), True
        tmp = root / f".{key}.{os.getpid()}.npy"
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(samples), size, size))

        def one(i: int) -> int:
            s = samples[i]
            arr[i] = resize_mask(open_mask(s.mask, s.source, s.codec or INDEX_MASKS, num_classes), size)  # noqa: F821 (del below)
            return i

        try:
            for _ in ordered_map(
                one, list(range(len(samples))), default_workers() if workers is None else max(1, workers)
            ):
                if progress:
                    progress(1)
            arr.flush()
            del arr
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return np.load(path, mmap_mode="r"), False


def mask_png(mask: np.ndarray) -> bytes:
    """A class-index mask as the PNG SageMaker's segmentation endpoint answers (mode ``L``)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def run_length(mask: np.ndarray) -> dict:
    """A compact, exact encoding of a class-index mask: row-major runs of ``values[i]`` repeated
    ``counts[i]`` times (``np.repeat(values, counts).reshape(shape)`` gives the mask back)."""
    flat = np.ascontiguousarray(mask).ravel()
    if flat.size == 0:
        return {"shape": list(mask.shape), "values": [], "counts": []}
    starts = np.r_[0, np.flatnonzero(flat[1:] != flat[:-1]) + 1]
    counts = np.diff(np.r_[starts, flat.size])
    return {
        "shape": [int(d) for d in mask.shape],
        "values": flat[starts].astype(int).tolist(),
        "counts": counts.astype(int).tolist(),
    }


def from_run_length(doc: dict) -> np.ndarray:
    return np.repeat(np.asarray(doc["values"], dtype=np.uint8), doc["counts"]).reshape(doc["shape"])
