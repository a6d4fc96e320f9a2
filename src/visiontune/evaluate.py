"""``visiontune evaluate MODEL DATA``: how a saved model does on labelled images.

Accuracy, top-k, per-class precision / recall / F1, the confusion matrix (JSON and PNG),
and every misclassified file with what it was taken for.  Any dataset layout ``train``
reads works; the data's class names are matched to the model's by name.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from visiontune.artifact import VisionModel, load_model
from visiontune.data.dataset import labels_of
from visiontune.data.sources import open_dataset
from visiontune.errors import BadImageError, DataError, skip_hint
from visiontune.predictions import iter_predictions
from visiontune.progress import bar

SPLIT_CHOICES = ("auto", "all", "train", "validation", "test")


@dataclass
class EvaluationResult:
    metrics: dict
    misclassified: list[dict]
    skipped: list[dict] = field(default_factory=list)
    out: Path | None = None

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]


def evaluate(model, data: str | Path, *, split: str = "auto", out: str | Path | None = None, top_k: int = 5,
             batch_size: int = 64, device: str = "auto", precision: str = "fp32",
             label_attribute: str | None = None, on_bad_image: str = "error",
             allow_empty_labels: bool = False) -> EvaluationResult:
    """Evaluate ``model`` (folder, ``model.tar.gz`` or loaded model) on labelled ``data``.

    ``split``: ``auto`` = the data's test split if it has one, else every image; or one split, or ``all``.
    ``out``: a folder for ``metrics.json``, ``confusion_matrix.png`` and ``misclassified.csv``."""
    if split not in SPLIT_CHOICES:
        raise DataError(f"split={split!r}: choose one of {', '.join(SPLIT_CHOICES)}")
    m = model if isinstance(model, VisionModel) else load_model(model, device=device, precision=precision)
    ds = open_dataset(data, on_bad_image=on_bad_image, label_attribute=label_attribute,
                      allow_empty_labels=allow_empty_labels)
    chosen = ("test" if ds.splits.get("test") else "all") if split == "auto" else split
    if chosen == "all":
        samples = [s for part in ds.splits.values() for s in part]
    elif ds.splits.get(chosen):
        samples = ds.splits[chosen]
    else:
        raise DataError(f"{data}: no {chosen} split; it has {', '.join(ds.splits)} (or use split='all')")
    multi = m.task.name == "multi-label"
    if ds.task == "multi-label" and not multi:
        raise DataError(f"{data}: multi-label data (label lists), and {m.path} predicts one class per image; "
                        "evaluate a multi-label model on it")
    unknown = sorted(set(ds.classes[c] for s in samples for c in labels_of(s.label)) - set(m.classes))
    if unknown:
        raise DataError(f"{data}: class(es) {', '.join(map(repr, unknown))} are not among the model's "
                        f"{len(m.classes)} classes ({', '.join(m.classes[:10])}{'...' if len(m.classes) > 10 else ''})")
    index = {c: i for i, c in enumerate(m.classes)}
    truth = [tuple(sorted(index[ds.classes[c]] for c in labels_of(s.label))) if multi else index[ds.classes[s.label]]
             for s in samples]
    probs, labels, sources, skipped = [], [], [], []
    with bar(len(samples), "evaluating") as advance:
        rows = iter_predictions(m, [s.source for s in samples], top_k=1, batch_size=batch_size, probabilities=True)
        for s, y, row in zip(samples, truth, rows):
            advance(1)
            if "error" in row:
                if on_bad_image != "skip":
                    raise BadImageError(s.source, row["error"], skip_hint())
                skipped.append({"source": s.source, "reason": row["error"]})
                continue
            probs.append(row["probabilities"])
            labels.append(y)
            sources.append(s.source)
    if not probs:
        raise DataError(f"{data}: no readable image to evaluate")
    p = torch.tensor(np.asarray(probs, dtype=np.float64))
    q = p.clamp(1e-12, 1 - 1e-12)
    logits = (q.log() - (1 - q).log()) if multi else q.log()  # what the task's probabilities came from
    metrics = m.task.evaluate(logits, m.task.targets(labels, len(m.classes)), m.classes, top_k, m.task_extras)
    metrics.update({"model": str(m.path), "data": str(data), "split": chosen, "skipped_images": skipped})
    if multi:
        named = m.predicted_labels(p.numpy())
        wrong = [{"source": src, "true": " ".join(m.classes[c] for c in y), "predicted": " ".join(got),
                  "probability": float(p[i].max()), "true_probability": float(min((p[i, c] for c in y), default=0))}
                 for i, (src, y, got) in enumerate(zip(sources, labels, named))
                 if set(got) != {m.classes[c] for c in y}]
    else:
        pred = p.argmax(1).tolist()
        wrong = [{"source": src, "true": m.classes[y], "predicted": m.classes[k], "probability": float(p[i, k]),
                  "true_probability": float(p[i, y])}
                 for i, (src, y, k) in enumerate(zip(sources, labels, pred)) if k != y]
    wrong.sort(key=lambda r: -r["probability"])
    result = EvaluationResult(metrics, wrong, skipped)
    if out is not None:
        result.out = _write(Path(out), metrics, wrong, m)
    return result


def _write(out: Path, metrics: dict, wrong: list[dict], m: VisionModel) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    # the task's pictures: a confusion matrix, or precision-recall curves
    m.task.plots(out, {"evaluation": metrics, "evaluated_on": metrics["split"], "classes": m.classes})
    with open(out / "misclassified.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["source", "true", "predicted", "probability", "true_probability"])
        writer.writeheader()
        writer.writerows(wrong)
    return out


__all__ = ["EvaluationResult", "evaluate", "SPLIT_CHOICES"]
