"""Multi-label classification: an image may show several classes (or none).

One sigmoid per class, trained with binary cross-entropy, or focal or asymmetric losses
(``class_weights`` -> a positive weight per class, ``label_smoothing`` -> targets pulled towards 0.5).
Metrics: mean average precision (macro over classes with positives), per-class AP, precision, recall and F1
at each class's threshold, micro and macro F1, and the exact-match ratio (every class right: the ``accuracy`` of the history rows).  Each class's
threshold is the one that maximises its F1 on the validation split; the artifact keeps them, and serving
names the classes above them (``predicted_labels``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visiontune.tasks.base import Task, label_set

#: thresholds tried per class on validation
GRID = np.round(np.arange(0.02, 0.99, 0.02), 2)
#: points kept per precision-recall curve in metrics.json
CURVE_POINTS = 60


LOSSES = ("bce", "focal", "asymmetric")


class MultiLabelLoss(nn.Module):
    """Per-class binary losses on logits, averaged over classes and images.

    ``bce``: binary cross-entropy.  ``focal``: each term scaled by (1 - p_true)^gamma (gamma 2), so the many
    easy negatives count less.  ``asymmetric``: positives as BCE, negatives focused harder (gamma 4) and
    their probability shifted down by a margin (0.05) first, so near-certain negatives cost nothing.
    ``pos_weight`` weighs each class's positive terms; ``smoothing`` pulls the targets towards 0.5."""

    def __init__(
        self,
        kind: str = "bce",
        pos_weight: torch.Tensor | None = None,
        smoothing: float = 0.0,
        gamma: float = 2.0,
        gamma_neg: float = 4.0,
        margin: float = 0.05,
    ):
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"multi-label loss {kind!r}: choose one of {', '.join(LOSSES)}")
        self.kind, self.smoothing = kind, smoothing
        self.gamma, self.gamma_neg, self.margin = gamma, gamma_neg, margin
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(0))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        if self.smoothing:
            targets = targets * (1 - self.smoothing) + 0.5 * self.smoothing
        weight = self.pos_weight if self.pos_weight.numel() else None
        if self.kind == "bce":
            return nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)
        p = logits.sigmoid()
        log_p = nn.functional.logsigmoid(logits)
        log_not_p = nn.functional.logsigmoid(-logits)
        if self.kind == "focal":
            pos_term = targets * (1 - p).pow(self.gamma) * log_p
            neg_term = (1 - targets) * p.pow(self.gamma) * log_not_p
        else:  # asymmetric
            shifted = (p - self.margin).clamp(min=0)
            pos_term = targets * log_p
            neg_term = (1 - targets) * shifted.pow(self.gamma_neg) * torch.log((1 - shifted).clamp(min=1e-8))
        if weight is not None:
            pos_term = pos_term * weight
        return -(pos_term + neg_term).mean()


def average_precision(scores: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AP of one class: sum over the distinct scores, highest first, of (recall gained) x (precision there),
    so images with equal scores count together whatever their order; and the curve's precision and recall at
    those scores.  NaN without positives."""
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], positive[order].astype(np.float64)
    n_pos = pos.sum()
    if n_pos == 0:
        return float("nan"), np.zeros(0), np.zeros(0)
    last = np.r_[s[1:] != s[:-1], True]  # the last image of each run of equal scores
    tp = np.cumsum(pos)[last]
    seen = np.arange(1, len(s) + 1)[last]
    precision, recall = tp / seen, tp / n_pos
    gained = np.diff(np.r_[0.0, recall])
    return float((gained * precision).sum()), precision, recall


def _f1(tp, fp, fn):
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def best_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per class, the threshold of GRID with the highest F1 (0.5 for a class without positives)."""
    out = []
    for c in range(probs.shape[1]):
        y = targets[:, c] > 0.5
        if not y.any():
            out.append(0.5)
            continue
        pred = probs[:, c][None, :] >= GRID[:, None]
        tp = (pred & y).sum(1)
        fp = (pred & ~y).sum(1)
        fn = (~pred & y).sum(1)
        f1 = _f1(tp, fp, fn)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        # the middle of the equally good thresholds: the lowest would sit just above validation's highest
        # negative, and any test negative a little above it would become a false positive
        out.append(float(GRID[best[len(best) // 2]]))
    return out


class MultiLabelTask(Task):
    name = "multi-label"
    headline = "mAP"
    loss_name = "BCEWithLogitsLoss_output_0"

    def targets(self, labels, num_classes):
        y = torch.zeros(len(labels), num_classes)
        for i, lab in enumerate(labels):
            for c in label_set(lab):
                y[i, c] = 1.0
        return y

    def criterion(self, train_targets, num_classes, *, class_weights, label_smoothing, device, loss="bce"):
        pos_weight = None
        if class_weights:  # each class's negatives per positive: rare classes count as much as common ones
            pos = train_targets.sum(0)
            pos_weight = ((len(train_targets) - pos) / pos.clamp(min=1)).clamp(max=100.0)
        return MultiLabelLoss(loss, pos_weight, label_smoothing).to(device)

    def hits(self, logits, targets):
        return ((logits > 0) == (targets > 0.5)).all(1).sum()

    def probabilities(self, logits):
        return logits.sigmoid()

    def fit_extras(self, val_logits, val_targets):
        return {"thresholds": best_thresholds(val_logits.float().sigmoid().numpy(), val_targets.numpy())}

    def evaluate(self, logits, targets, classes, top_k=5, extras=None):
        logits, targets = logits.float(), targets.float()
        n, c = targets.shape if targets.ndim == 2 else (0, len(classes))
        probs = logits.sigmoid().numpy()
        y = targets.numpy() > 0.5
        thresholds = np.asarray((extras or {}).get("thresholds") or [0.5] * len(classes))
        pred = probs >= thresholds[None, :]
        tp, fp, fn = (pred & y).sum(0), (pred & ~y).sum(0), (~pred & y).sum(0)
        precision = np.divide(tp, tp + fp, out=np.zeros(c), where=(tp + fp) > 0)
        recall = np.divide(tp, tp + fn, out=np.zeros(c), where=(tp + fn) > 0)
        f1 = _f1(tp, fp, fn)
        per_class, curves, aps = {}, {}, []
        for i, name in enumerate(classes):
            ap, prec, rec = average_precision(probs[:, i], y[:, i]) if n else (float("nan"), [], [])
            if not np.isnan(ap):
                aps.append(ap)
                keep = np.unique(np.linspace(0, len(prec) - 1, min(CURVE_POINTS, len(prec))).astype(int))
                curves[name] = {
                    "precision": [round(float(v), 4) for v in prec[keep]],
                    "recall": [round(float(v), 4) for v in rec[keep]],
                    "ap": round(ap, 4),
                }
            per_class[name] = {
                "ap": None if np.isnan(ap) else ap,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(y[:, i].sum()),
                "threshold": float(thresholds[i]),
            }
        present = y.sum(0) > 0
        loss = float(nn.functional.binary_cross_entropy_with_logits(logits, targets)) if n else float("nan")
        micro = _f1(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))[0]
        return {
            "samples": int(n),
            "loss": loss,
            "accuracy": float(((pred == y).all(1)).mean()) if n else float("nan"),  # exact match
            "exact_match": float(((pred == y).all(1)).mean()) if n else float("nan"),
            "mAP": float(np.mean(aps)) if aps else float("nan"),
            "micro_f1": float(micro),
            "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
            "labels_per_image": float(y.sum(1).mean()) if n else float("nan"),
            "per_class": per_class,
            "pr_curves": curves,
        }

    def summary(self, result, split):
        return {
            f"{split}_mAP": result["mAP"],
            f"{split}_macro_f1": result["macro_f1"],
            f"{split}_micro_f1": result["micro_f1"],
            f"{split}_exact_match": result["exact_match"],
            f"{split}_loss": result["loss"],
        }

    def reports(self, out: Path, metrics: dict, classes: list[str]) -> None:
        ev = metrics["evaluation"]
        (out / "per_class.json").write_text(
            json.dumps({"split": metrics["evaluated_on"], "classes": classes, "per_class": ev["per_class"]}, indent=1)
        )

    def plots(self, out: Path, metrics: dict) -> None:
        from visiontune import plots

        ev = metrics["evaluation"]
        plots.pr_curves(
            ev["pr_curves"],
            out / "pr_curves.png",
            title=f"Precision-recall ({metrics['evaluated_on']}, mAP {ev['mAP']:.3f})",
        )

    def row_labels(self, probs, classes, extras):
        thresholds = np.asarray(extras.get("thresholds") or [0.5] * len(classes))
        return [[classes[i] for i in np.flatnonzero(np.asarray(p) >= thresholds)] for p in probs]
