"""Object detection: boxes and their classes.

Targets are each image's boxes, padded to one tensor ``(N, M, 5)``: ``(class, xmin, ymin, xmax, ymax)``
normalised to [0, 1], class -1 for padding (an image without boxes, a negative, is all padding).  The loss
and the decoding are the detector's own (torchvision's FCOS: :mod:`visiontune.zoo.detection`), so the task
is bound to the model it trains (:meth:`bind`).  Metrics: COCO's mean average precision (torchmetrics on
pycocotools): ``mAP`` (IoU 0.50:0.95, the headline), ``mAP50`` (the history's ``val_acc``: detection has no
accuracy, and mAP at IoU 0.5 is what the Object Detection algorithm reports), ``mAP75``, mean average recall at
100 detections, and average precision per class.  Training reports no accuracy (``train_acc`` is absent).
A split's dense outputs are never held: each batch is decoded to its boxes as it is computed."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import nn

from visiontune.errors import ConfigError
from visiontune.tasks.base import Task

#: images drawn in the examples grid of a finished run
EXAMPLES = 6


@dataclass
class Found:
    """A split's batches: each image's detections ``(D, 6)`` and true boxes ``(M, 5)``, and the summed loss."""

    detections: list[torch.Tensor] = field(default_factory=list)
    truth: list[torch.Tensor] = field(default_factory=list)
    loss_sum: float = 0.0
    images: int = 0


class _Loss(nn.Module):
    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = [head]  # not a submodule: its parameters are the model's

    def forward(self, dense: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.head[0].loss(dense, targets)


def padded_boxes(samples, width: int | None = None) -> torch.Tensor:
    """Samples' boxes as ``(N, M, 5)`` float32, class -1 for padding (``M``: the most boxes any has, or ``width``)."""
    m = width or max([len(s.boxes) for s in samples] + [1])
    y = torch.full((len(samples), m, 5), -1.0)
    for i, s in enumerate(samples):
        if s.boxes:
            y[i, : len(s.boxes)] = torch.tensor(s.boxes, dtype=torch.float32)
    return y


class DetectionTask(Task):
    name = "detection"
    headline = "mAP"
    loss_name = "FCOSLoss_output_0"
    resize = "squash"  # the whole image, so normalised boxes stay where they were
    train_accuracy = False
    boxes = True
    head: nn.Module | None = None

    def bind(self, model: nn.Module) -> "DetectionTask":
        bound = copy.copy(self)
        bound.head = model.head
        return bound

    def _head(self) -> nn.Module:
        if self.head is None:
            raise ConfigError("the detection task needs its model: bind(model) first")
        return self.head

    def sample_targets(self, samples, num_classes):
        return padded_boxes(samples)

    def targets(self, labels, num_classes):  # the boxes are the targets: sample_targets reads them
        return torch.full((len(labels), 1, 5), -1.0)

    def criterion(self, train_targets, num_classes, *, class_weights, label_smoothing, device, loss="bce"):
        if class_weights or label_smoothing:
            raise ConfigError("detection's loss (focal loss) takes neither --class-weights nor --label-smoothing")
        return _Loss(self._head())

    def hits(self, logits, targets):
        return torch.zeros((), device=logits.device)

    def probabilities(self, logits):
        return logits

    def reduce(self, logits, targets) -> Found:
        head = self._head()
        targets = targets.to(logits.device)
        loss = float(head.loss(logits, targets)) * len(logits)
        truth = [t[t[:, 0] >= 0].cpu() for t in targets]
        return Found(head.decode(logits), truth, loss, len(logits))

    def collect(self, parts, num_classes):
        total = Found()
        for p in parts:
            total.detections += p.detections
            total.truth += p.truth
            total.loss_sum += p.loss_sum
            total.images += p.images
        return total

    def evaluate(self, logits, targets, classes, top_k=5, extras=None):
        found: Found = logits
        out = average_precision(found.detections, found.truth, classes)
        return {
            "samples": found.images,
            "loss": found.loss_sum / found.images if found.images else float("nan"),
            "accuracy": out["mAP50"],
            **out,
        }

    def summary(self, result, split):
        return {
            f"{split}_mAP": result["mAP"],
            f"{split}_mAP50": result["mAP50"],
            f"{split}_mAP75": result["mAP75"],
            f"{split}_loss": result["loss"],
        }

    def row_labels(self, probs, classes, extras):
        return None

    def save_examples(self, out, inputs, collected, classes):
        from visiontune import plots

        n = min(EXAMPLES, len(collected.detections), len(inputs))
        if n:
            plots.detection_examples(
                inputs.first_inputs(n),
                [t.numpy() for t in collected.truth[:n]],
                [d.numpy() for d in collected.detections[:n]],
                classes,
                out / "detection_examples.png",
            )


@lru_cache(maxsize=8)
def decoder(num_classes: int, image_size: int) -> nn.Module:
    """What turns a detector's dense outputs into boxes for any runtime (torch, ONNX, a model process): the
    decoding and the loss use no learnt weights, only the classes and the input size."""
    from visiontune.zoo.detection import STRIDES, DetectionHead

    return DetectionHead([32] * len(STRIDES), num_classes, image_size).eval()


def rows_of(dense, num_classes: int, image_size: int) -> list[list[list[float]]]:
    """Per image, its ``[class_id, score, xmin, ymin, xmax, ymax]`` rows, best first (SageMaker's answer)."""
    dense = torch.as_tensor(dense).float()
    return [
        [[int(r[0]), *(round(float(v), 5) for v in r[1:])] for r in d.tolist()]
        for d in decoder(num_classes, image_size).decode(dense)
    ]


def image_match(found: torch.Tensor, truth: torch.Tensor, score: float = 0.3, iou: float = 0.5) -> dict:
    """One image's boxes against its truth: how many true boxes a detection of their class found (score >=
    ``score``, IoU >= ``iou``, each detection used once, best first) and how many detections found none."""
    from torchvision.ops import box_iou

    d = found[found[:, 1] >= score]
    used, hit = set(), 0
    if len(d) and len(truth):
        overlap = box_iou(truth[:, 1:5], d[:, 2:6])
        for t in range(len(truth)):
            for k in torch.argsort(overlap[t], descending=True).tolist():
                if k not in used and overlap[t, k] >= iou and int(d[k, 0]) == int(truth[t, 0]):
                    used.add(k)
                    hit += 1
                    break
    return {"found": hit, "boxes": len(truth), "false_positives": len(d) - len(used)}


def average_precision(detections: list[torch.Tensor], truth: list[torch.Tensor], classes: list[str]) -> dict:
    """COCO mAP (torchmetrics' MeanAveragePrecision on pycocotools) of normalised detections
    ``(class, score, box)`` against true boxes ``(class, box)``; per class too."""
    try:
        from torchmetrics.detection import MeanAveragePrecision
    except ImportError as exc:  # pragma: no cover - a dependency of visiontune
        from visiontune.errors import MissingDependencyError

        raise MissingDependencyError("torchmetrics", "detection metrics") from exc
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True, backend="pycocotools")
    preds = [{"boxes": d[:, 2:6], "scores": d[:, 1], "labels": d[:, 0].long()} for d in detections]
    wanted = [{"boxes": t[:, 1:5], "labels": t[:, 0].long()} for t in truth]
    if preds:
        metric.update(preds, wanted)
        r = metric.compute()
    else:
        r = {}

    def num(key: str) -> float:
        v = r.get(key)
        return float(v) if v is not None and float(v) >= 0 else float("nan")

    per_class = {}
    ids = r.get("classes")
    if ids is not None:
        ap = torch.atleast_1d(r["map_per_class"])
        for i, c in enumerate(torch.atleast_1d(ids).tolist()):
            if 0 <= c < len(classes):
                per_class[classes[c]] = {"AP": float(ap[i]) if float(ap[i]) >= 0 else None}
    for t in truth:
        for c in t[:, 0].long().tolist():
            if 0 <= c < len(classes):
                per_class.setdefault(classes[c], {"AP": None})
                per_class[classes[c]]["boxes"] = per_class[classes[c]].get("boxes", 0) + 1
    return {
        "mAP": num("map"),
        "mAP50": num("map_50"),
        "mAP75": num("map_75"),
        "mAR100": num("mar_100"),
        "per_class": per_class,
    }
