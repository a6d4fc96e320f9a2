"""Classification metrics from logits: accuracy, top-k, per-class P/R/F1, confusion matrix."""

from __future__ import annotations

import numpy as np
import torch


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
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }
