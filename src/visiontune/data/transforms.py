"""Tensor-side preprocessing and augmentation, batched on uint8 images.

Images are decoded and resized once (into a cache); these functions turn a
``(B, H, W, 3)`` uint8 batch into the network's normalised float input on the
training device, augmented there as whole-batch tensor ops (:class:`BatchAugment`),
with the SageMaker built-in algorithm's augmentation policies:

* ``none``: nothing;
* ``crop``: random resized crop (scale 0.5-1) and horizontal flip;
* ``crop_color``: ``crop`` + random brightness, contrast, saturation and hue;
* ``crop_color_transform``: ``crop_color`` + random rotation, shear and aspect change.

Randomness comes from the global torch generator, which the trainer seeds per
epoch, so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from visiontune.errors import ConfigError
from visiontune.zoo.weights import Preprocessing

from visiontune.choices import AUGMENTATIONS  # noqa: E402  (the CLI reads it without torch)


def build_augmentation(name: str, image_size: int, masks: bool = False) -> "BatchAugment | None":
    """The policy ``name`` as batched tensor ops (None for ``none``).  ``masks`` is accepted for callers that
    augment segmentation masks: the same policy moves them (:meth:`BatchAugment.pairs`)."""
    if name not in AUGMENTATIONS:
        raise ConfigError(f"augmentation={name!r}: choose one of {', '.join(AUGMENTATIONS)}")
    return None if name == "none" else BatchAugment(name, image_size)


#: RGB -> luma (ITU-R 601, as torchvision's grayscale) and the YIQ transform the hue rotation uses
_LUMA = (0.299, 0.587, 0.114)
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


class BatchAugment:
    """An augmentation policy applied to a whole float batch at once, on the batch's own device (the GPU when
    training runs there): one affine sampling grid per image does the random resized crop (area 0.5-1,
    aspect 3/4-4/3), the flip and, for ``crop_color_transform``, rotation (+-15 deg), shear (+-10 deg) and
    scale (0.9-1.1), so a single ``grid_sample`` moves every image (areas uncovered by the affine are
    black); colour jitter (brightness, contrast, saturation 0.7-1.3, hue +-0.05 turn as a rotation in YIQ)
    is one 3x3 matrix and an offset per image (:meth:`_apply_colour`).  No per-image Python.

    The random draws come from torch's global generator on the CPU (seeded per epoch by the trainer), so the
    same seed draws the same augmentations on any device, and a resumed run equals an uninterrupted one."""

    def __init__(self, name: str, image_size: int):
        self.name, self.size = name, int(image_size)
        self.color = name in ("crop_color", "crop_color_transform")
        self.affine = name == "crop_color_transform"

    def __repr__(self) -> str:
        return f"BatchAugment({self.name!r}, {self.size})"

    # ------------------------------------------------------------------ draws (CPU, global generator)
    def _theta(self, b: int) -> torch.Tensor:
        """``(b, 2, 3)``: output coordinates (-1..1) -> input coordinates, per image."""
        area = 0.5 + 0.5 * torch.rand(b)
        log_ratio = math.log(3 / 4) + math.log(16 / 9) * torch.rand(b)
        ratio = torch.exp(log_ratio)
        cw = torch.sqrt(area * ratio).clamp(max=1.0)  # half-widths in normalised units = shares of the side
        ch = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (torch.rand(b) * 2 - 1) * (1 - cw)  # the crop stays inside the image
        cy = (torch.rand(b) * 2 - 1) * (1 - ch)
        flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
        a = torch.zeros(b, 2, 2)
        a[:, 0, 0], a[:, 1, 1] = cw * flip, ch
        if self.affine:
            angle = torch.deg2rad((torch.rand(b) * 2 - 1) * 15)
            shear = torch.deg2rad((torch.rand(b) * 2 - 1) * 10)
            scale = 0.9 + 0.2 * torch.rand(b)
            cos, sin = torch.cos(angle), torch.sin(angle)
            rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
            shr = torch.eye(2).repeat(b, 1, 1)
            shr[:, 0, 1] = torch.tan(shear)
            a = a @ (rot @ shr / scale[:, None, None])
        return torch.cat([a, torch.stack([cx, cy], 1)[:, :, None]], 2)

    def _colour(self, b: int) -> tuple[torch.Tensor, ...]:
        brightness, contrast, saturation = (0.7 + 0.6 * torch.rand(b) for _ in range(3))
        hue = (torch.rand(b) * 2 - 1) * 0.05 * 2 * math.pi
        cos, sin = torch.cos(hue), torch.sin(hue)
        rot = torch.zeros(b, 3, 3)
        rot[:, 0, 0], rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = 1, cos, -sin, sin, cos
        hue_matrix = torch.linalg.inv(_YIQ) @ rot @ _YIQ
        return brightness, contrast, saturation, hue_matrix

    # ------------------------------------------------------------------ application
    def _grid(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        return F.affine_grid(theta.to(x.device, torch.float32), [b, 1, self.size, self.size], align_corners=False)

    def _apply_colour(self, x: torch.Tensor, draws) -> torch.Tensor:
        """Brightness b, contrast c (towards the image's mean grey m), saturation (towards each pixel's grey)
        and hue are all linear, and saturation and hue keep grey grey, so together they are one matrix and an
        offset per image: ``x' = c b H S x + (1 - c) b m``, clamped once (one pass over the pixels)."""
        brightness, contrast, saturation, hue_matrix = (d.to(x.device) for d in draws)
        luma = torch.tensor(_LUMA, device=x.device)
        eye = torch.eye(3, device=x.device)
        s = saturation.view(-1, 1, 1)
        sat_matrix = s * eye + (1 - s) * luma.view(1, 1, 3).expand(1, 3, 3)  # rows: s*e_i + (1-s)*luma
        gain = (contrast * brightness).view(-1, 1, 1)
        matrix = gain * (hue_matrix @ sat_matrix)
        mean = torch.einsum("c,bchw->b", luma, x) / (x.shape[2] * x.shape[3])
        offset = ((1 - contrast) * brightness * mean).view(-1, 1, 1, 1)
        return torch.einsum("bij,bjhw->bihw", matrix, x).add_(offset).clamp_(0, 255)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Float ``(B, 3, H, W)`` images with values 0-255 -> augmented, ``(B, 3, size, size)``."""
        return self.pairs(x, None)[0]

    def with_boxes(self, x: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their boxes (``(B, M, 5)``, :func:`move_boxes`) moved by the same crop, flip and affine;
        colour changes the images only."""
        b = x.shape[0]
        theta = self._theta(b)
        colour = self._colour(b) if self.color else None
        grid = self._grid(x, theta)
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if colour is not None:
            out = self._apply_colour(out, colour)
        if self.affine:  # what the affine uncovers is black, after the colour change too (as pairs())
            out = out * (grid.abs() <= 1).all(-1)[:, None]
        return out, move_boxes(theta, boxes)

    def pairs(self, x: torch.Tensor, masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images and their masks (``(B, H, W)`` class indices, 255 = ignore) moved by the same crop, flip and
        affine (masks by nearest neighbour; what the affine uncovers is 255); colour changes the images only."""
        b = x.shape[0]
        theta = self._theta(b)
        colour = self._colour(b) if self.color else None  # drawn before any work: the same draws on any device
        grid = self._grid(x, theta)
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if colour is not None:
            out = self._apply_colour(out, colour)
        if self.affine:  # what the affine uncovers is black, after the colour change too, exactly where
            out = out * (grid.abs() <= 1).all(-1)[:, None]  # the masks' nearest neighbour falls outside
        if masks is None:
            return out, None
        shifted = (masks.to(x.device).float() + 1)[:, None]  # 0 = outside the image
        moved = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0]
        return out, torch.where(moved == 0, 255.0, moved - 1).to(torch.uint8)


def move_boxes(theta: torch.Tensor, boxes: torch.Tensor, keep: float = 0.4, min_side: float = 0.01) -> torch.Tensor:
    """Boxes ``(B, M, 5)`` (class, xmin, ymin, xmax, ymax in [0, 1]; class -1: padding) where the affine
    ``theta`` (output -> input coordinates, as :meth:`BatchAugment.pairs` samples the pixels) puts them: each
    box's corners mapped back to the output, their enclosing box clipped to the image.  A box less than
    ``keep`` of which stays inside, or thinner than ``min_side``, becomes padding."""
    theta = theta.to(boxes.device, torch.float32)
    a, t = theta[:, :, :2], theta[:, :, 2]
    inv = torch.linalg.inv(a)  # (B, 2, 2)
    x0, y0, x1, y1 = (boxes[..., i] * 2 - 1 for i in range(1, 5))  # [0, 1] -> [-1, 1] (pixel edges)
    corners = torch.stack([torch.stack(c, -1) for c in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))], 2)  # (B, M, 4, 2)
    moved = torch.einsum("bij,bmkj->bmki", inv, corners - t[:, None, None, :])
    lo, hi = moved.min(2).values, moved.max(2).values  # (B, M, 2)
    area = (hi - lo).clamp(min=0).prod(-1)
    clo, chi = lo.clamp(-1, 1), hi.clamp(-1, 1)
    inside = (chi - clo).clamp(min=0).prod(-1)
    ok = (boxes[..., 0] >= 0) & (inside >= keep * area.clamp(min=1e-12)) & ((chi - clo) >= 2 * min_side).all(-1)
    out = torch.cat([boxes[..., :1], (clo + 1) / 2, (chi + 1) / 2], -1)
    return torch.where(ok[..., None], out, torch.full_like(out, -1.0))


def _to_device_float(batch_hwc_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float32 ``(B, 3, H, W)`` on ``device`` (channels-last strides: no copy to
    change layout; the copy to the device moves uint8, a quarter of the bytes)."""
    return batch_hwc_uint8.permute(0, 3, 1, 2).to(device, non_blocking=True).to(torch.float32)


def _scale_shift(x: torch.Tensor, prep: Preprocessing, channels_last: bool) -> torch.Tensor:
    scale = torch.tensor([1.0 / (255.0 * s) for s in prep.std], device=x.device).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(prep.mean, prep.std)], device=x.device).view(1, 3, 1, 1)
    x = x.mul_(scale).add_(shift)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def normalize(
    batch_hwc_uint8: torch.Tensor,
    prep: Preprocessing,
    device: torch.device,
    policy: BatchAugment | None = None,
    channels_last: bool = True,
) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` on ``device``, augmented there (``policy``) and
    normalised."""
    x = _to_device_float(batch_hwc_uint8, device)
    if policy is not None:
        x = policy(x)
    return _scale_shift(x, prep, channels_last)


def normalize_boxes(
    batch_hwc_uint8: torch.Tensor, boxes: torch.Tensor, prep: Preprocessing, device: torch.device, policy: BatchAugment
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`normalize` for images with boxes: both moved together on ``device`` (boxes ``(B, M, 5)``)."""
    x, boxes = policy.with_boxes(_to_device_float(batch_hwc_uint8, device), boxes.to(device, non_blocking=True))
    return _scale_shift(x, prep, True), boxes


def normalize_pairs(
    batch_hwc_uint8: torch.Tensor,
    masks: torch.Tensor,
    prep: Preprocessing,
    device: torch.device,
    policy: BatchAugment | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`normalize` for images with masks: both augmented together on ``device``; the masks come back
    ``(B, H, W)`` uint8 on ``device``."""
    x = _to_device_float(batch_hwc_uint8, device)
    masks = masks.to(device, non_blocking=True)
    if policy is not None:
        x, masks = policy.pairs(x, masks)
    return _scale_shift(x, prep, True), masks
