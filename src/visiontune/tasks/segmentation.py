"""Semantic segmentation: a class per pixel.

Per-pixel softmax + cross-entropy, pixels marked 255 ignored (``class_weights``: classes weighed by how rare
their pixels are).  Metrics come from one confusion matrix over every labelled pixel of a split: mean IoU (over
classes present in the truth or the predictions), per-class IoU, precision and recall, pixel accuracy (the
``accuracy`` of the history rows), and the loss.  A split's logits (N x C x S x S) are never held: each batch
is reduced to its confusion matrix and loss as it is computed (:meth:`reduce`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visiontune.data.segmentation import IGNORE
from visiontune.tasks.base import Task

#: images drawn in the overlay grid of a finished run
EXAMPLES = 8


@dataclass
class Tally:
    """What a split's batches add up to: the confusion matrix of labelled pixels (truth x prediction), the
    summed loss, and the first images' predicted masks (for the overlay grid)."""

    confusion: torch.Tensor
    loss_sum: float = 0.0
    pixels: int = 0
    images: int = 0
    examples: list[np.ndarray] = field(default_factory=list)


def confusion(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` int64 counts of (true class, predicted class) over the pixels not marked 255."""
    keep = truth != IGNORE
    t, p = truth[keep].long(), pred[keep].long()
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(cm: np.ndarray, classes: list[str]) -> dict:
    """mIoU, pixel accuracy and per-class IoU / precision / recall of a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    truth, predicted = cm.sum(1), cm.sum(0)
    union = truth + predicted - tp
    iou = np.divide(tp, union, out=np.full(len(tp), np.nan), where=union > 0)
    precision = np.divide(tp, predicted, out=np.zeros(len(tp)), where=predicted > 0)
    recall = np.divide(tp, truth, out=np.zeros(len(tp)), where=truth > 0)
    total = cm.sum()
    seen = ~np.isnan(iou)
    return {
        "mIoU": float(iou[seen].mean()) if seen.any() else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_class_accuracy": float(recall[truth > 0].mean()) if (truth > 0).any() else float("nan"),
        "per_class": {
            name: {
                "iou": None if np.isnan(iou[i]) else float(iou[i]),
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "pixels": int(truth[i]),
            }
            for i, name in enumerate(classes)
        },
    }


class SegmentationTask(Task):
    name = "segmentation"
    headline = "mIoU"
    spatial = True
    resize = "squash"

    def targets(self, labels, num_classes):  # the masks are the targets; prepare() reads them
        return torch.zeros(len(labels), dtype=torch.uint8)

    def criterion(self, train_targets, num_classes, *, class_weights, label_smoothing, device, loss="bce"):
        weight = None
        if class_weights:
            counts = torch.zeros(num_classes, dtype=torch.float64)
            for start in range(0, len(train_targets), 256):  # a memory-mapped (N, S, S) array, in chunks
                m = torch.as_tensor(np.asarray(train_targets[start : start + 256])).long().flatten()
                counts += torch.bincount(m[m != IGNORE], minlength=num_classes)[:num_classes].double()
            weight = (counts.sum() / (num_classes * counts.clamp(min=1))).float().to(device)
        return nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE, label_smoothing=label_smoothing)

    def hits(self, logits, targets):
        """Per image, the share of its labelled pixels predicted right (a float count of images)."""
        keep = targets != IGNORE
        right = ((logits.argmax(1) == targets) & keep).flatten(1).sum(1).float()
        return (right / keep.flatten(1).sum(1).clamp(min=1)).sum()

    def probabilities(self, logits):
        return logits.softmax(1)

    def reduce(self, logits, targets) -> Tally:
        targets = targets.to(logits.device).long()
        n, c = logits.shape[:2]
        keep = int((targets != IGNORE).sum())
        loss = float(nn.functional.cross_entropy(logits.float(), targets, ignore_index=IGNORE, reduction="sum"))
        pred = logits.argmax(1)
        return Tally(
            confusion(pred, targets, c).cpu(),
            loss,
            keep,
            n,
            [m.cpu().numpy().astype(np.uint8) for m in pred[:EXAMPLES]],
        )

    def collect(self, parts, num_classes):
        total = Tally(torch.zeros(num_classes, num_classes, dtype=torch.int64))
        for t in parts:
            total.confusion += t.confusion
            total.loss_sum += t.loss_sum
            total.pixels += t.pixels
            total.images += t.images
            total.examples += t.examples[: max(0, EXAMPLES - len(total.examples))]
        return total

    def evaluate(self, logits, targets, classes, top_k=5, extras=None):
        tally: Tally = logits
        out = scores(tally.confusion.numpy(), classes)
        return {
            "samples": tally.images,
            "loss": tally.loss_sum / tally.pixels if tally.pixels else float("nan"),
            "accuracy": out["pixel_accuracy"],
            **out,
            "confusion_matrix": tally.confusion.tolist(),
        }

    def summary(self, result, split):
        return {
            f"{split}_mIoU": result["mIoU"],
            f"{split}_pixel_accuracy": result["pixel_accuracy"],
            f"{split}_loss": result["loss"],
        }

    def reports(self, out: Path, metrics: dict, classes: list[str]) -> None:
        ev = metrics["evaluation"]
        (out / "per_class.json").write_text(
            json.dumps(
                {
                    "split": metrics["evaluated_on"],
                    "classes": classes,
                    "per_class": ev["per_class"],
                    "confusion_matrix": ev["confusion_matrix"],
                },
                indent=1,
            )
        )

    def plots(self, out: Path, metrics: dict) -> None:
        from visiontune import plots

        ev = metrics["evaluation"]
        plots.confusion_matrix(
            ev["confusion_matrix"],
            metrics["classes"],
            out / "confusion_matrix.png",
            title=f"Pixels ({metrics['evaluated_on']}, mIoU {ev['mIoU']:.3f})",
        )

    def save_examples(self, out: Path, inputs, collected, classes: list[str]) -> None:
        from visiontune import plots

        n = min(len(collected.examples), len(inputs))
        if n:
            plots.segmentation_overlays(
                inputs.first_inputs(n),
                np.asarray(inputs.y[:n]),
                collected.examples[:n],
                classes,
                out / "segmentation_examples.png",
            )


def at_sizes(probs: torch.Tensor, sizes: list[tuple[int, int]]):
    """``(B, C, S, S)`` probabilities -> each image's ``(C, H, W)`` at its own size, one at a time (bilinear:
    the model saw the whole image squashed to S x S, so this maps every prediction back onto its pixel; a
    generator, so a batch of large photos never holds all their full-size maps at once)."""
    for p, (h, w) in zip(probs, sizes):
        if tuple(p.shape[-2:]) == (h, w):
            yield p
        else:
            yield nn.functional.interpolate(p[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
