"""Object detectors: torchvision's FCOS (anchor-free, one stage) on the zoo's own backbones.

The encoder is the zoo model's feature extractor as an smp encoder (what segmentation uses, its pretrained
weights copied from the classifier the zoo loads offline); a feature pyramid over its last three feature
maps (strides 8, 16 and 32) feeds torchvision's FCOS head, whose loss (sigmoid focal loss, GIoU, centerness)
and decoding (score threshold, top-k, NMS) are torchvision's own.  ``backbone`` / ``head`` split the model as
:class:`ImageClassifier` does, so ``--mode head|partial|full`` freeze it the same way.

The model's forward gives one dense tensor ``(B, A, C + 5)`` (per anchor point: C class logits, 4 box
offsets, 1 centerness logit), so the training loop, its precision and its hooks treat it as any task's
logits; :meth:`DetectionHead.loss` and :meth:`DetectionHead.decode` turn it into the loss and into boxes.
Boxes in and out are normalised to [0, 1] of the (squashed) input image: ``(class, xmin, ymin, xmax, ymax)``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from visiontune.zoo.adapters import ImageClassifier
from visiontune.zoo.segmentation import EncoderModel, smp_encoder

#: the encoder levels the pyramid reads (strides 8, 16, 32) and each level's anchor size (FCOS: the stride;
#: a box is assigned to the level whose size range, 4-8x the anchor, holds its largest regression target)
STRIDES = (8, 16, 32)
#: the pyramid's channels (GroupNorm in the FCOS head needs a multiple of 32)
FPN_CHANNELS = 64
#: decoding: boxes below this score are dropped before NMS; at most this many per image
SCORE_THRESHOLD = 0.05
DETECTIONS_PER_IMAGE = 100


class _Pyramid(nn.Module):
    """torchvision's feature pyramid over the encoder's last three maps."""

    def __init__(self, in_channels: list[int], out_channels: int):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.fpn = FeaturePyramidNetwork(list(in_channels), out_channels)
        self.out_channels = out_channels

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps))).values())


class DetectionHead(nn.Module):
    """Pyramid + FCOS head over the encoder's feature maps; ``forward`` -> ``(B, A, C + 5)``."""

    def __init__(self, in_channels: list[int], num_classes: int, image_size: int):
        super().__init__()
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.anchor_utils import AnchorGenerator

        from visiontune.zoo.heads import HeadSpec

        self.num_classes, self.image_size = num_classes, image_size
        self.spec = HeadSpec(num_classes=num_classes)
        pyramid = _Pyramid(in_channels[-len(STRIDES) :], FPN_CHANNELS)
        anchors = AnchorGenerator(sizes=tuple((s,) for s in STRIDES), aspect_ratios=((1.0,),) * len(STRIDES))
        # torchvision's FCOS holds the pyramid (as its "backbone"), the head, the loss and the decoding; its own
        # resize/normalise transform is not used (inputs come resized and normalised, as for every task)
        self.fcos = FCOS(
            pyramid,
            num_classes,
            min_size=image_size,
            max_size=image_size,
            anchor_generator=anchors,
            score_thresh=SCORE_THRESHOLD,
            detections_per_img=DETECTIONS_PER_IMAGE,
        )
        self.set_image_size(image_size)

    def set_image_size(self, image_size: int) -> None:
        """The (square) input size the model is trained and answers at: its anchor points depend on it."""
        self.image_size = image_size
        self.fcos.transform.min_size, self.fcos.transform.max_size = (image_size,), image_size
        # each level's map size (stride-2 convolutions with padding round up)
        self._features = [(-(-image_size // s), -(-image_size // s)) for s in STRIDES]
        self._levels = [h * w for h, w in self._features]
        self._anchors: dict = {}

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        features = self.fcos.backbone(list(maps)[-len(STRIDES) :])
        out = self.fcos.head(features)
        return torch.cat([out["cls_logits"], out["bbox_regression"], out["bbox_ctrness"]], dim=2)

    def _split(self, dense: torch.Tensor) -> dict[str, torch.Tensor]:
        cls, reg, ctr = dense.float().split([self.num_classes, 4, 1], dim=2)
        return {"cls_logits": cls, "bbox_regression": reg, "bbox_ctrness": ctr}

    def anchors(self, n: int, device: torch.device) -> list[torch.Tensor]:
        """The anchor points of one image (the same for every image of the fixed input size), ``n`` times."""
        key = str(device)
        if key not in self._anchors:
            from torchvision.models.detection.image_list import ImageList

            size = self.image_size
            images = ImageList(torch.zeros(1, 1, size, size, device=device), [(size, size)])
            maps = [torch.zeros(1, 1, *s, device=device) for s in self._features]
            self._anchors[key] = self.fcos.anchor_generator(images, maps)[0]
        return [self._anchors[key]] * n

    def loss(self, dense: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """FCOS's loss (classification + box regression + centerness) of a batch; ``targets`` ``(B, M, 5)``:
        per image up to M boxes ``(class, xmin, ymin, xmax, ymax)`` normalised, class -1 for padding."""
        size = self.image_size
        wanted = [
            {"boxes": t[t[:, 0] >= 0, 1:].float() * size, "labels": t[t[:, 0] >= 0, 0].long()}
            for t in targets.to(dense.device)
        ]
        losses = self.fcos.compute_loss(
            wanted, self._split(dense), self.anchors(len(dense), dense.device), self._levels
        )
        return losses["classification"] + losses["bbox_regression"] + losses["bbox_ctrness"]

    @torch.no_grad()
    def decode(self, dense: torch.Tensor) -> list[torch.Tensor]:
        """Per image, its detections ``(D, 6)``: ``class, score, xmin, ymin, xmax, ymax`` (normalised), best
        first (torchvision's FCOS decoding: score threshold, top-k per level, class-wise NMS)."""
        outputs = self._split(dense)
        split = {k: list(v.split(self._levels, dim=1)) for k, v in outputs.items()}
        anchors = [list(a.split(self._levels)) for a in self.anchors(len(dense), dense.device)]
        size = self.image_size
        found = self.fcos.postprocess_detections(split, anchors, [(size, size)] * len(dense))
        rows = []
        for d in found:
            order = d["scores"].argsort(descending=True)
            boxes = (d["boxes"][order] / size).clamp(0, 1)
            rows.append(torch.cat([d["labels"][order, None].float(), d["scores"][order, None], boxes], 1).cpu())
        return rows


class DetectionModel(EncoderModel):
    """Encoder (``backbone``) + pyramid and FCOS head (``head``): ``(B, 3, S, S)`` -> ``(B, A, C + 5)``."""

    spatial = False
    detects = True

    def __init__(
        self, library: str, arch: str, num_classes: int, image_size: int, stage_prefixes: list[str] | None = None
    ):
        encoder = smp_encoder(library, arch)
        head = DetectionHead(list(encoder.out_channels), num_classes, image_size)
        super().__init__(library, arch, encoder, head, stage_prefixes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def describe(self) -> dict:
        """What ``config.json`` keeps to rebuild this model."""
        return {"detector": "fcos", "encoder": self.encoder_name, "image_size": self.head.image_size}


def detection_model(
    library: str,
    arch: str,
    num_classes: int,
    image_size: int,
    classifier: ImageClassifier | None = None,
    origin: str = "",
) -> DetectionModel:
    """A detector; ``classifier``: a zoo model whose (pretrained) backbone becomes the encoder."""
    prefixes = classifier.backbone.stage_prefixes if classifier is not None else None
    model = DetectionModel(library, arch, num_classes, image_size, stage_prefixes=prefixes)
    model.start_from(classifier, origin)
    return model
