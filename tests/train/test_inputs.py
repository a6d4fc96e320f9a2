"""A split's inputs, read from the memory-mapped pixel cache or held on the device whole, batch alike."""

import numpy as np
import torch

from visiontune.train.inputs import SplitInputs


def test_held_pixels_batch_like_the_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "pixels.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(20, 8, 8, 3))
    arr[:] = rng.integers(0, 256, arr.shape, dtype=np.uint8)
    arr.flush()
    labels = torch.arange(20) % 3
    mapped = SplitInputs("train", np.load(path, mmap_mode="r"), labels, "pixels")
    held = SplitInputs("train", np.load(path, mmap_mode="r"), labels, "pixels")
    assert not held.hold_on(torch.device("cpu"), budget_bytes=20 * 8 * 8 * 3 - 1)  # one byte short: stays mapped
    assert held.hold_on(torch.device("cpu"), budget_bytes=20 * 8 * 8 * 3)
    assert isinstance(held.x, torch.Tensor) and not held.hold_on(torch.device("cpu"), 10**9)
    idx = torch.tensor([7, 2, 19, 0, 11])
    (xm, ym), (xh, yh) = mapped.batch(idx), held.batch(idx)
    assert torch.equal(xm, xh) and torch.equal(ym, yh) and torch.equal(ym, labels[torch.sort(idx).values])
    np.testing.assert_array_equal(held.first_inputs(4), mapped.first_inputs(4))
    masks = np.zeros((20, 8, 8), np.uint8)  # segmentation targets stay a host array
    seg = SplitInputs("train", np.load(path, mmap_mode="r"), masks + 1, "pixels")
    assert seg.hold_on(torch.device("cpu"), 10**9)
    assert seg.batch(idx)[1].shape == (5, 8, 8) and int(seg.batch(idx)[1].max()) == 1
