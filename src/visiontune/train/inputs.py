"""Prepare each split for the loop: cached features (fast path) or cached pixels."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from visiontune.data.cache import cache_key, feature_cache, fingerprint, library_versions, pixel_cache
from visiontune.data.dataset import Dataset, Sample, check_no_leaks
from visiontune.progress import bar, note
from visiontune.zoo.optimize import inference_copy


@dataclass
class SplitInputs:
    """One split, ready for batching: ``x`` features (N, D) or uint8 pixels (N, S, S, 3); ``y`` the targets
    (segmentation: uint8 masks (N, S, S), memory-mapped like the pixels)."""

    name: str
    x: torch.Tensor | np.ndarray
    y: torch.Tensor | np.ndarray
    kind: str  # "features" | "pixels"
    #: where each row came from (the images left out as unreadable are not here)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the samples ``idx``, aligned."""
        if self.kind == "features":  # index_select: 5 us for 128 x 1280 where x[idx] took 27-108 us
            return self.x.index_select(0, idx.to(self.x.device)), self.y[idx]
        order = torch.sort(idx).values  # sequential reads from the memory map
        y = (
            self.y[order]
            if isinstance(self.y, torch.Tensor)
            else torch.from_numpy(np.ascontiguousarray(self.y[order.numpy()]))
        )
        if isinstance(self.x, torch.Tensor):  # held on the device whole (:meth:`hold_on`)
            return self.x[order.to(self.x.device)], y
        return torch.from_numpy(np.ascontiguousarray(self.x[order.numpy()])), y

    def batches(
        self, order: list[torch.Tensor], pin: bool = False, ahead: int = 2
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`batch` of each index tensor in ``order``, in order.  Pixels read from the memory-mapped
        cache are gathered ``ahead`` batches early on a thread (the reads from disk, and on a GPU the copy
        into pinned memory, overlap the step that runs), so the next batch's host-to-device copy can be
        asynchronous.  Inputs already in memory (features, or a split held on the device) are indexed as
        they are asked for."""
        if self.kind != "pixels" or isinstance(self.x, torch.Tensor):
            for idx in order:
                yield self.batch(idx)
            return

        def load(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = self.batch(idx)
            return (x.pin_memory(), y.pin_memory()) if pin else (x, y)

        pool = ThreadPoolExecutor(1, thread_name_prefix=f"visiontune-{self.name}-batches")
        pending: deque = deque()
        try:
            for idx in order:
                pending.append(pool.submit(load, idx))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # a stopped epoch: what was gathered for nothing is dropped
            pool.shutdown(wait=True, cancel_futures=True)

    def first_inputs(self, n: int) -> np.ndarray:
        """The first ``n`` rows of ``x`` as a host array, wherever ``x`` is held."""
        x = self.x[:n]
        return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

    def hold_on(self, device: torch.device, budget_bytes: int) -> int:
        """Move the split's inputs (uint8 pixels or features) onto ``device`` whole when they fit in
        ``budget_bytes``, so batches are indexed there instead of copied from the host one by one (the
        targets stay on the host: metrics read them there).  Returns the bytes it moved (0: it stayed)."""
        if isinstance(self.x, torch.Tensor) and self.x.device.type == device.type:
            return 0
        nbytes = self.x.nbytes
        if nbytes > budget_bytes:
            return 0
        # pixels: a copy of the memory map, which is read-only
        x = self.x if isinstance(self.x, torch.Tensor) else torch.from_numpy(np.array(self.x))
        self.x = x.to(device)
        return nbytes


def hash_images(dataset: Dataset, workers: int = 8) -> dict[str, str]:
    samples = [s for split in dataset.splits.values() for s in split]
    with bar(len(samples), "hashing images") as advance:
        hashes = fingerprint(samples, advance, workers=workers)
    check_no_leaks(dataset, hashes)
    return hashes


def feature_model_key(spec, wspec, seed: int = 0) -> str:
    """What a backbone's cached features depend on: its architecture, its weights, the libraries."""
    return cache_key(spec.library, spec.arch, wspec.identity() if wspec else f"random-{seed}", library_versions())


def prepare(
    dataset: Dataset,
    hashes: dict[str, str],
    *,
    kind: str,
    prep,
    on_bad_image: str,
    backbone=None,
    model_key: str = "",
    device=None,
    dtype=None,
    batch_size: int = 128,
    workers: int | None = None,
    cache_root: Path | None = None,
    task=None,
):
    """Inputs per split, and the list of images left out as (source, reason).  ``task`` turns labels into
    targets (default: single-label class indices)."""
    if task is None:
        from visiontune.tasks import get_task

        task = get_task("classification")
    inputs, skipped = {}, []
    extractor = inference_copy(backbone, device, dtype) if kind == "features" else None  # one for every split
    for name, samples in dataset.splits.items():
        with bar(len(samples), f"{'features' if kind == 'features' else 'decoding'} [{name}]") as advance:
            if kind == "features":
                x, ok, bad, hit = feature_cache(
                    backbone,
                    model_key,
                    samples,
                    hashes,
                    prep,
                    device=device,
                    dtype=dtype,
                    batch_size=batch_size,
                    on_bad_image=on_bad_image,
                    workers=workers,
                    progress=advance,
                    root=cache_root,
                    extractor=extractor,
                )
            else:
                x, ok, bad, hit = pixel_cache(
                    samples, hashes, prep, on_bad_image=on_bad_image, workers=workers, progress=advance, root=cache_root
                )
        note(
            f"{name}: {len(samples)} images, {'reused cached' if hit else 'cached'} {kind}"
            + (f", {len(bad)} bad image(s) skipped" if bad else "")
        )
        skipped += [(src, reason) for src, reason in bad]
        if getattr(task, "spatial", False):
            y = _masks(samples, hashes, prep, dataset.num_classes, name, workers, cache_root)
        else:
            y = task.sample_targets(samples, dataset.num_classes)
        keep = np.flatnonzero(ok)
        if len(keep) != len(samples):
            y = y[torch.from_numpy(keep)] if isinstance(y, torch.Tensor) else _subset(y, keep)
            x = x[torch.from_numpy(keep)] if kind == "features" else _subset(x, keep)
        inputs[name] = SplitInputs(name, x, y, kind, [samples[i].source for i in keep])
    return inputs, skipped


def _masks(
    samples: list[Sample], hashes: dict[str, str], prep, num_classes: int, split: str, workers, cache_root
) -> np.ndarray:
    """The split's masks as class indices at the pixel cache's size (checked: a bad mask stops the run).
    ``hashes``: the images' content hashes; the masks' are added."""
    from visiontune.data.segmentation import mask_cache

    hashes = {**hashes, **fingerprint([Sample(s.mask, ()) for s in samples])}
    with bar(len(samples), f"masks [{split}]") as advance:
        y, hit = mask_cache(
            samples,
            hashes,
            prep.image_size,
            num_classes,
            workers=workers,
            progress=advance,
            root=cache_root.parent / "masks" if cache_root is not None else None,
        )
    return y


def _subset(arr: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr[keep])


def samples_of(dataset: Dataset) -> list[Sample]:
    return [s for split in dataset.splits.values() for s in split]
