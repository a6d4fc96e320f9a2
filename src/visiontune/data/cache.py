"""Content-keyed caches shared by every run and trial.

* :func:`fingerprint` hashes each image's bytes, so caches follow content,
  not file names.
* :func:`pixel_cache`: every image decoded and resized once into a uint8
  array on disk, so epochs of partial/full training never decode files again.
* :func:`feature_cache`: a frozen backbone run once over every image (batched,
  inference mode, reduced precision where faster), the pooled features saved;
  head-mode training and every later run with the same key reuse them.

A cache entry is written under a temporary name and renamed when complete, so
an interrupted build never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from visiontune.data.dataset import Sample, content_hash, read_bytes
from visiontune.data.decode import load_pixels
from visiontune.data.transforms import normalize
from visiontune.errors import BadImageError, skip_hint
from visiontune.paths import atomic_write_text, cache_dir
from visiontune.zoo.optimize import inference_copy
from visiontune.zoo.weights import Preprocessing

#: 2: large JPEGs decoded at a reduced scale (data.decode.load_pixels); 3: the centre crop resized alone
#: (data.decode.resize_center_crop; pixels within a grey level or two of 2's)
CACHE_FORMAT = 3
Progress = Callable[[int], None]


#: Content hashes of local files already read by this process, by (path, size, mtime): a warm tuning worker
#: hashes a dataset once, not once per trial.  A changed file has another size or mtime and is read again.
_HASHES: dict[tuple[str, int, int], str] = {}


def fingerprint(samples: list[Sample], progress: Progress | None = None, workers: int = 8) -> dict[str, str]:
    """source -> content hash (unreadable files map to a hash of the error, decided later)."""

    def one(s: Sample) -> str:
        key = None
        try:
            if "://" not in s.source:
                st = os.stat(s.source)
                key = (s.source, st.st_size, st.st_mtime_ns)
                if key in _HASHES:
                    return _HASHES[key]
            digest = content_hash(read_bytes(s.source))
        except OSError as exc:
            return "unreadable:" + hashlib.blake2b(str(exc).encode(), digest_size=8).hexdigest()
        if key is not None:
            _HASHES[key] = digest
        return digest

    def chunk(part: list[Sample]) -> list[str]:
        return [one(s) for s in part]

    # chunks, not one task per file: submitting 14k tiny tasks cost more (2 s) than reading the files (0.3 s)
    parts = _chunks(samples, 256)
    out = {}

    def done(part, hashes):
        out.update(zip((s.source for s in part), hashes))
        if progress:
            progress(len(part))

    # files the OS has cached hash fastest on this thread (14k small PNGs: 0.15-0.19 s, against 0.31-0.36 s on
    # 8 threads that queue for the GIL); files read from a disk or a network wait on I/O, and threads overlap
    # that.  The first chunk's pace decides.
    started = time.perf_counter()
    if parts:
        done(parts[0], chunk(parts[0]))
    rest = parts[1:]
    cached = not rest or (time.perf_counter() - started) / len(parts[0]) < IO_BOUND_SECONDS_PER_FILE
    for part, hashes in zip(rest, map(chunk, rest) if cached or workers <= 1 else ordered_map(chunk, rest, workers)):
        done(part, hashes)
    return out


#: a file that takes longer than this to read and hash is waiting on a disk or a network (a cached
#: 3 KB PNG took 11-14 us here)
IO_BOUND_SECONDS_PER_FILE = 60e-6


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def ordered_map(fn: Callable, items: list, workers: int, initializer: Callable | None = None):
    """``map(fn, items)`` on ``workers`` threads, results in order; leaving early cancels the rest."""
    pool = ThreadPoolExecutor(max(1, workers), initializer=initializer)
    try:
        yield from pool.map(fn, items)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def cache_lock(root: Path, key: str):
    """An exclusive lock on one cache entry across processes (``fcntl.flock`` on ``<key>.lock``)."""
    import fcntl

    with open(root / f"{key}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cache_key(*parts: object) -> str:
    h = hashlib.blake2b(digest_size=20)
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _decode(s: Sample, prep: Preprocessing) -> tuple[torch.Tensor | None, str]:
    """One image as a uint8 tensor, or None and why it is unusable."""
    try:
        pix = load_pixels(read_bytes(s.source), prep.image_size, prep.interpolation, name=s.source, resize=prep.resize)
        return torch.from_numpy(pix.copy()), ""
    except BadImageError as exc:
        return None, exc.reason
    except OSError as exc:
        return None, f"cannot read the file ({exc})"


class _DecodeSet(TorchDataset):
    def __init__(self, samples: list[Sample], prep: Preprocessing):
        self.samples, self.prep = samples, prep

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return (i, *_decode(self.samples[i], self.prep))


def _collate(items):
    idx = [i for i, _, _ in items]
    errors = [(i, e) for i, x, e in items if x is None]
    arrays = [x for _, x, _ in items if x is not None]
    ok_idx = [i for i, x, _ in items if x is not None]
    return idx, ok_idx, (torch.stack(arrays) if arrays else None), errors


def _decode_batches(samples, prep, batch_size, workers):
    workers = max(0, int(workers))
    loader = DataLoader(
        _DecodeSet(samples, prep),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    yield from loader


class BadImages(list):
    """(source, reason) of images left out; raises on the first one unless skipping.

    Cache metadata stores sample indices, not paths: a cache follows content, so a
    copy of the dataset elsewhere must report its own file names.
    """

    def __init__(self, policy: str, samples: list[Sample]):
        super().__init__()
        self.policy, self.samples, self.indices = policy, samples, []

    def add(self, index: int, reason: str):
        if self.policy != "skip":
            raise BadImageError(self.samples[index].source, reason, skip_hint())
        self.append((self.samples[index].source, reason))
        self.indices.append((index, reason))

    @classmethod
    def from_meta(cls, policy: str, samples: list[Sample], meta: dict) -> "BadImages":
        """The bad images a cache entry recorded, named after this run's samples."""
        bad = cls(policy, samples)
        for i, reason in meta["bad"]:
            bad.add(i, reason)
        return bad


def library_versions() -> str:
    """Part of every cache key: a new torch, torchvision or timm may compute other features.  Read from the
    installed packages' metadata: importing timm to ask costs 0.4 s of a head-mode run that never uses it."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    return f"torch={torch.__version__} torchvision={installed('torchvision')} timm={installed('timm')}"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2)))


def pixel_cache(
    samples: list[Sample],
    hashes: dict[str, str],
    prep: Preprocessing,
    *,
    on_bad_image: str = "error",
    workers: int | None = None,
    progress: Progress | None = None,
    root: Path | None = None,
):
    """uint8 ``(N, S, S, 3)`` memory-mapped array, the ok mask, and the bad images."""
    root = root or cache_dir("pixels")
    key = cache_key(
        "pixels", CACHE_FORMAT, prep.image_size, prep.interpolation, prep.resize, [hashes[s.source] for s in samples]
    )
    with cache_lock(root, key):  # one process builds an entry; the others wait and reuse it
        data_path, meta_path = root / f"{key}.npy", root / f"{key}.json"
        if data_path.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            bad = BadImages.from_meta(on_bad_image, samples, meta)
            if progress:
                progress(len(samples))
            return np.load(data_path, mmap_mode="r"), np.array(meta["ok"], dtype=bool), bad, True
        size = prep.image_size
        tmp = root / f".{key}.{os.getpid()}.npy"
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(samples), size, size, 3))
        ok = np.zeros(len(samples), dtype=bool)
        bad = BadImages(on_bad_image, samples)
        try:
            for idx, ok_idx, x, errors in _decode_batches(
                samples, prep, 64, default_workers() if workers is None else workers
            ):
                for i, reason in errors:
                    bad.add(i, reason)
                if x is not None:
                    arr[ok_idx] = x.numpy()
                    ok[ok_idx] = True
                if progress:
                    progress(len(idx))
            arr.flush()
            del arr
            atomic_write_text(meta_path, json.dumps({"ok": ok.tolist(), "bad": bad.indices}))
            os.replace(tmp, data_path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return np.load(data_path, mmap_mode="r"), ok, bad, False


@contextmanager
def short_gil_turns(seconds: float = 0.0005):
    """Hand the GIL over every 0.5 ms instead of 5 ms while threads mix Python decoding
    with the network, whose every module call needs the GIL for a moment (about +10%
    img/s in paired runs).  Restored afterwards."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def one_core_each() -> None:
    """Thread initializer: ops on this thread use one core (the pool supplies the parallelism)."""
    torch.set_num_threads(1)


@torch.inference_mode()
def feature_cache(
    backbone: torch.nn.Module,
    model_key: str,
    samples: list[Sample],
    hashes: dict[str, str],
    prep: Preprocessing,
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    batch_size: int = 128,
    on_bad_image: str = "error",
    workers: int | None = None,
    progress: Progress | None = None,
    root: Path | None = None,
    extractor: tuple[torch.nn.Module, str] | None = None,
):
    """float32 ``(N, D)`` features, the ok mask, the bad images, and whether it was a cache hit.

    ``extractor`` is ``inference_copy(backbone, device, dtype)`` when the caller made one already
    (one copy serves every split).
    """
    from safetensors.torch import load_file, save_file

    root = root or cache_dir("features")
    fast, how = extractor or inference_copy(backbone, device, dtype)
    key = cache_key(
        "features", CACHE_FORMAT, model_key, prep.to_dict(), str(dtype), how, [hashes[s.source] for s in samples]
    )
    with cache_lock(root, key):  # parallel trials: one extracts, the others wait and reuse
        path = root / f"{key}.safetensors"
        if path.exists():
            data = load_file(str(path))
            bad = BadImages.from_meta(on_bad_image, samples, json.loads((root / f"{key}.json").read_text()))
            if progress:
                progress(len(samples))
            return data["features"], data["ok"].bool().numpy(), bad, True
        feats: torch.Tensor | None = None
        ok = np.zeros(len(samples), dtype=bool)
        bad = BadImages(on_bad_image, samples)
        with closing(_features(fast, samples, prep, device, batch_size, workers)) as batches:
            for idx, ok_idx, f, errors in batches:
                for i, reason in errors:
                    bad.add(i, reason)  # raises unless skipping; closing() then cancels the batches not started
                if f is not None:
                    if feats is None:
                        feats = torch.zeros(len(samples), f.shape[1])
                    feats[ok_idx] = f
                    ok[ok_idx] = True
                if progress:
                    progress(len(idx))
        if feats is None:
            feats = torch.zeros(len(samples), getattr(backbone, "num_features", 1))
        tmp = root / f".{key}.{os.getpid()}.safetensors"
        save_file({"features": feats.contiguous(), "ok": torch.from_numpy(ok.astype(np.uint8))}, str(tmp))
        atomic_write_text(root / f"{key}.json", json.dumps({"bad": bad.indices}))
        os.replace(tmp, path)
        return feats, ok, bad, False


def _features(
    fast, samples: list[Sample], prep: Preprocessing, device: torch.device, batch_size: int, workers: int | None
):
    """``(indices, ok indices, features or None, errors)`` per batch, in order.

    On a CPU each thread decodes and runs whole batches on one core.  Measured on
    2 shared cores (MobileNetV2, 96 px, bf16, decoding included): 527-687 img/s
    against 257-320 img/s for one batch at a time over both cores; over 14k images
    24.7 s against 33.0 s for a DataLoader process decoding while the network used
    both cores (OpenMP threads wait on a descheduled peer).  Decoding in processes
    and running per-core threads measured no faster than this (530-590 img/s either
    way).  On a GPU, ``workers`` processes decode while the GPU runs.
    """
    if device.type == "cpu":
        size = min(batch_size, 128)  # 128 beat 256 in 3 of 4 paired runs

        def one(start: int):
            items = [(i, *_decode(samples[i], prep)) for i in range(start, min(start + size, len(samples)))]
            idx, ok_idx, x, errors = _collate(items)
            with torch.inference_mode():
                f = fast(normalize(x, prep, device)) if x is not None else None
            return idx, ok_idx, f, errors

        with short_gil_turns():
            # every core, whatever this process's torch thread count (a tuning worker runs its trials on one)
            yield from ordered_map(
                one, list(range(0, len(samples), size)), available_cores(), initializer=one_core_each
            )
        return
    workers = max(1, default_workers() // 2) if workers is None else workers
    for idx, ok_idx, x, errors in _decode_batches(samples, prep, batch_size, workers):
        yield idx, ok_idx, (fast(normalize(x, prep, device)).cpu() if x is not None else None), errors
