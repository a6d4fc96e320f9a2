"""Tensor-side preprocessing and augmentation, batched on uint8 images.

Images are decoded and resized once (into a cache); these functions turn a
``(B, H, W, 3)`` uint8 batch into the network's normalised float input, with
the SageMaker built-in algorithm's augmentation policies:

* ``none``: nothing;
* ``crop``: random resized crop (scale 0.5-1) and horizontal flip;
* ``crop_color``: ``crop`` + random brightness, contrast, saturation and hue;
* ``crop_color_transform``: ``crop_color`` + random rotation, shear and aspect change.

Randomness comes from the global torch generator, which the trainer seeds per
epoch, so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

from visiontune.errors import ConfigError
from visiontune.zoo.weights import Preprocessing

AUGMENTATIONS = ("none", "crop", "crop_color", "crop_color_transform")


def build_augmentation(name: str, image_size: int, masks: bool = False):
    """``masks``: the policy also moves segmentation masks (nearest neighbour; areas it uncovers are 255, ignored)."""
    if name not in AUGMENTATIONS:
        raise ConfigError(f"augmentation={name!r}: choose one of {', '.join(AUGMENTATIONS)}")
    if name == "none":
        return None
    steps = [T.RandomResizedCrop(image_size, scale=(0.5, 1.0), antialias=True), T.RandomHorizontalFlip()]
    if name in ("crop_color", "crop_color_transform"):
        steps.append(T.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05))
    if name == "crop_color_transform":
        fill = {tv_tensors.Image: 0, tv_tensors.Mask: 255} if masks else 0
        steps.append(T.RandomAffine(degrees=15, shear=10, scale=(0.9, 1.1), fill=fill))
    return T.Compose(steps)


def augment_pairs(batch_hwc_uint8: torch.Tensor, masks: torch.Tensor, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random crop, flip and affine for each image and its mask (colour changes the image only):
    ``(B, H, W, 3)`` uint8 and ``(B, H, W)`` masks in, the same shapes out."""
    if policy is None:
        return batch_hwc_uint8, masks
    images, out_masks = [], []
    for img, mask in zip(batch_hwc_uint8.permute(0, 3, 1, 2), masks):
        a, b = policy(tv_tensors.Image(img), tv_tensors.Mask(mask[None]))
        images.append(a)
        out_masks.append(b[0])
    return torch.stack(images).permute(0, 2, 3, 1), torch.stack(out_masks).as_subclass(torch.Tensor)


def augment(batch_chw_uint8: torch.Tensor, policy) -> torch.Tensor:
    """Apply ``policy`` to each image of a ``(B, 3, H, W)`` uint8 batch."""
    if policy is None:
        return batch_chw_uint8
    return torch.stack([policy(img) for img in batch_chw_uint8])


def normalize(batch_hwc_uint8: torch.Tensor, prep: Preprocessing, device: torch.device,
              policy=None, channels_last: bool = True) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` on ``device``, normalised (and augmented).

    An HWC batch seen as NCHW already has channels-last strides, so this is
    one conversion and two in-place passes, with no copy to change layout.
    """
    x = batch_hwc_uint8.permute(0, 3, 1, 2)
    if policy is not None:
        x = augment(x.contiguous(), policy).contiguous(memory_format=torch.channels_last)
    x = x.to(device, non_blocking=True).to(torch.float32)
    scale = torch.tensor([1.0 / (255.0 * s) for s in prep.std], device=device).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(prep.mean, prep.std)], device=device).view(1, 3, 1, 1)
    x = x.mul_(scale).add_(shift)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
