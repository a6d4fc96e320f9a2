"""A split's inputs, read from the memory-mapped pixel cache or held on the device whole, batch alike."""

import numpy as np
import pytest
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


def _mapped_split(tmp_path, n=40):
    rng = np.random.default_rng(1)
    path = tmp_path / "pixels.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 8, 8, 3))
    arr[:] = rng.integers(0, 256, arr.shape, dtype=np.uint8)
    arr.flush()
    return SplitInputs("train", np.load(path, mmap_mode="r"), torch.arange(n) % 5, "pixels")


def test_batches_gathered_ahead_come_in_order_and_equal_batch(tmp_path):
    split = _mapped_split(tmp_path)
    order = list(torch.randperm(40, generator=torch.Generator().manual_seed(0)).split(6))
    got = list(split.batches(order))
    assert len(got) == len(order)
    for idx, (x, y) in zip(order, got):
        ex, ey = split.batch(idx)
        assert torch.equal(x, ex) and torch.equal(y, ey)
    features = SplitInputs("train", torch.randn(40, 4), torch.arange(40), "features")  # in memory: as asked
    assert all(torch.equal(x, features.x[idx]) for idx, (x, _) in zip(order, features.batches(order)))


def test_batches_pass_on_a_failed_read_and_stop_when_closed(tmp_path):
    import threading

    split = _mapped_split(tmp_path)
    bad = [torch.tensor([0, 1]), torch.tensor([2, 99]), torch.tensor([3])]  # 99: past the end of the cache
    it = split.batches(bad)
    assert next(it)[0].shape[0] == 2
    with pytest.raises(IndexError):
        next(it)
    it = split.batches([torch.tensor([i]) for i in range(40)])
    next(it)
    it.close()  # an epoch stopped early: the gathering thread ends
    assert not [t for t in threading.enumerate() if t.name.startswith("visiontune-train-batches")]
