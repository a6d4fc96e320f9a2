"""Single-label classification: softmax + cross-entropy; accuracy, top-k, per-class P/R/F1, confusion
matrix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visiontune.tasks.base import Task

#: how many of the most confident mistakes ``misclassified.json`` keeps
MISCLASSIFIED_KEPT = 48


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor, classes: list[str], top_k: int = 5) -> dict:
    logits, labels = logits.float(), labels.long()
    n, c = logits.shape
    loss = float(torch.nn.functional.cross_entropy(logits, labels)) if n else float("nan")
    pred = logits.argmax(1)
    k = max(1, min(top_k, c))
    topk = logits.topk(k, dim=1).indices
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (labels.numpy(), pred.numpy()), 1)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=(precision + recall) > 0)
    present = support > 0
    return {
        "samples": int(n),
        "loss": loss,
        "accuracy": float((pred == labels).float().mean()) if n else float("nan"),
        f"top_{k}_accuracy": float((topk == labels[:, None]).any(1).float().mean()) if n else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }


class ClassificationTask(Task):
    name = "classification"
    headline = "accuracy"

    def targets(self, labels, num_classes):
        return torch.tensor([int(lab) for lab in labels], dtype=torch.long)

    def criterion(self, train_targets, num_classes, *, class_weights, label_smoothing, device, loss="bce"):
        weight = None
        if class_weights:
            counts = torch.bincount(train_targets, minlength=num_classes).float()
            weight = (counts.sum() / (num_classes * counts.clamp(min=1))).to(device)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

    def hits(self, logits, targets):
        return (logits.argmax(1) == targets).sum()

    def probabilities(self, logits):
        return logits.softmax(1)

    def evaluate(self, logits, targets, classes, top_k=5, extras=None):
        return evaluate_logits(logits, targets, classes, top_k)

    def summary(self, result, split):
        k = [key for key in result if key.startswith("top_")][0]
        return {f"{split}_accuracy": result["accuracy"], f"{split}_{k}": result[k], f"{split}_loss": result["loss"]}

    def debug_values(self, logits, targets):
        return targets, logits.argmax(1)

    def save_examples(self, out: Path, inputs, collected, classes: list[str]) -> None:
        """``misclassified.json``: the evaluated split's wrong answers, the most confident first (the studio's
        gallery of the worst mistakes; ``visiontune evaluate`` lists them all)."""
        sources = getattr(inputs, "sources", None)
        if not sources or len(sources) != len(collected):
            return
        probs = collected.float().softmax(1)
        confidence, predicted = probs.max(1)
        truth = inputs.y if isinstance(inputs.y, torch.Tensor) else torch.as_tensor(np.asarray(inputs.y))
        wrong = torch.nonzero(predicted != truth).flatten()
        order = wrong[torch.argsort(confidence[wrong], descending=True)][:MISCLASSIFIED_KEPT]
        rows = [
            {
                "source": sources[i],
                "label": classes[int(truth[i])],
                "predicted": classes[int(predicted[i])],
                "probability": round(float(confidence[i]), 4),
                "label_probability": round(float(probs[i, int(truth[i])]), 4),
            }
            for i in order.tolist()
        ]
        (out / "misclassified.json").write_text(
            json.dumps({"split": inputs.name, "wrong": len(wrong), "of": len(sources), "worst": rows}, indent=1)
        )

    def reports(self, out: Path, metrics: dict, classes: list[str]) -> None:
        (out / "confusion_matrix.json").write_text(
            json.dumps(
                {
                    "classes": classes,
                    "split": metrics["evaluated_on"],
                    "matrix": metrics["evaluation"]["confusion_matrix"],
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
            title=f"Confusion matrix ({metrics['evaluated_on']}, accuracy {ev['accuracy']:.3f})",
        )
