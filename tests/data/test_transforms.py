"""Augmentation as whole-batch tensor ops on the training device (BatchAugment)."""

from __future__ import annotations

import pytest
import torch

from visiontune.data.transforms import AUGMENTATIONS, BatchAugment, build_augmentation, normalize_pairs
from visiontune.errors import ConfigError
from visiontune.zoo.weights import Preprocessing


def _stripes(b=4, size=32):
    """Images whose left part (a different width each) is red, and masks saying where."""
    images = torch.zeros(b, 3, size, size)
    masks = torch.zeros(b, size, size, dtype=torch.uint8)
    for i in range(b):
        images[i, 0, :, : 8 + 4 * i] = 200
        masks[i, :, : 8 + 4 * i] = 1
    return images, masks


def test_policies_and_their_names():
    assert build_augmentation("none", 32) is None
    for name in AUGMENTATIONS[1:]:
        assert isinstance(build_augmentation(name, 32), BatchAugment)
    with pytest.raises(ConfigError, match="augmentation='zoom'"):
        build_augmentation("zoom", 32)


@pytest.mark.parametrize("name", ["crop", "crop_color", "crop_color_transform"])
def test_a_batch_is_augmented_at_once_and_reproducibly(name):
    aug = BatchAugment(name, 24)
    x = torch.rand(6, 3, 40, 40) * 255
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    b = aug(x)
    assert a.shape == (6, 3, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, b)  # the draws come from the seeded global generator
    assert 0 <= float(a.min()) and float(a.max()) <= 255
    torch.manual_seed(4)
    assert not torch.equal(aug(x), a)
    assert len({tuple(img.flatten()[:50].tolist()) for img in a}) == 6  # each image its own draw


def test_crops_stay_inside_and_colour_keeps_grey_grey():
    flat = torch.full((8, 3, 16, 16), 90.0)
    torch.manual_seed(0)
    assert torch.allclose(BatchAugment("crop", 16)(flat), flat, atol=1e-3)  # a crop never samples outside
    grey = BatchAugment("crop_color", 16)(flat)
    spread = grey.amax(1) - grey.amin(1)
    assert float(spread.max()) < 1e-2  # hue and saturation move colours, never greys
    assert len(set(grey[:, 0, 0, 0].round().tolist())) > 1  # brightness / contrast do change them


def test_images_and_masks_move_together_and_uncovered_pixels_are_ignored():
    images, masks = _stripes()
    torch.manual_seed(0)
    moved, moved_masks = BatchAugment("crop", 32).pairs(images, masks)
    agree = ((moved[:, 0] > 100).to(torch.uint8) == moved_masks).float().mean()
    assert agree > 0.97  # bilinear images, nearest masks: they differ only along the edge
    assert not torch.equal(moved_masks, masks)
    torch.manual_seed(1)
    moved, filled = BatchAugment("crop_color_transform", 32).pairs(images, masks)
    assert set(torch.unique(filled).tolist()) == {0, 1, 255}
    assert float(moved.permute(0, 2, 3, 1)[filled == 255].abs().max()) < 1e-3  # black where uncovered


def test_normalize_pairs_on_the_training_device(device):
    images, masks = _stripes()
    hwc = images.permute(0, 2, 3, 1).to(torch.uint8).contiguous()
    prep = Preprocessing(image_size=32)
    torch.manual_seed(0)
    x, m = normalize_pairs(hwc, masks, prep, device, BatchAugment("crop", 32))
    assert x.device.type == device.type and m.device.type == device.type and m.dtype == torch.uint8
    torch.manual_seed(0)
    x_cpu, m_cpu = normalize_pairs(hwc, masks, prep, torch.device("cpu"), BatchAugment("crop", 32))
    assert torch.allclose(x.cpu(), x_cpu, atol=1e-3) and torch.equal(m.cpu(), m_cpu)  # the same draws anywhere


def test_boxes_move_with_the_pixels():
    """Issue 29: a box goes where the crop, flip and affine put its pixels (the bright square's bounding box in
    the augmented image is the moved box, to 2 px), and one pushed out of the picture becomes padding."""
    from visiontune.data.transforms import BatchAugment, move_boxes

    size = 64
    x = torch.zeros(16, 3, size, size)
    x[:, :, 20:36, 8:30] = 255.0  # rows 20..35, columns 8..29
    boxes = torch.tensor([[[1, 8 / size, 20 / size, 30 / size, 36 / size], [-1, 0, 0, 0, 0]]]).repeat(16, 1, 1)
    for name in ("crop", "crop_color_transform"):
        torch.manual_seed(3)
        out, moved = BatchAugment(name, size).with_boxes(x, boxes)
        assert moved.shape == boxes.shape and (moved[:, 1, 0] == -1).all()  # padding stays padding
        for img, box in zip(out, moved[:, 0]):
            bright = (img[0] > 127).nonzero()
            if box[0] < 0:  # dropped: at most a sliver of the square is left in the picture
                assert len(bright) < 0.4 * 16 * 22
                continue
            ys, xs = bright[:, 0], bright[:, 1]
            seen = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float() / size
            slack = 2 / size if name == "crop" else 6 / size  # a rotated square's enclosing box is larger
            assert (seen[:2] >= box[1:3] - 2 / size).all() and (seen[2:] <= box[3:5] + 2 / size).all()
            assert (seen - box[1:]).abs().max() <= slack, (name, seen, box)
    identity = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]])
    flip = torch.tensor([[[-1.0, 0, 0], [0, 1.0, 0]]])
    one = torch.tensor([[[2, 0.1, 0.2, 0.3, 0.5]]])
    assert torch.allclose(move_boxes(identity, one), one)
    assert torch.allclose(move_boxes(flip, one), torch.tensor([[[2, 0.7, 0.2, 0.9, 0.5]]]))
    left_half = torch.tensor([[[0.5, 0, -0.5], [0, 1.0, 0]]])  # the output shows the input's left half, doubled
    two = torch.tensor([[[0, 0.1, 0.1, 0.2, 0.2], [1, 0.7, 0.1, 0.9, 0.2]]])
    got = move_boxes(left_half, two)
    assert torch.allclose(got[0, 0], torch.tensor([0, 0.2, 0.1, 0.4, 0.2])) and got[0, 1, 0] == -1
