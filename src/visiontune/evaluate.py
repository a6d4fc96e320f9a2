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
from visiontune.data.sources import open_dataset
from visiontune.errors import BadImageError, DataError, skip_hint
from visiontune.predictions import iter_predictions
from visiontune.progress import bar
from visiontune.train import plots
from visiontune.train.metrics import evaluate_logits

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
             label_attribute: str | None = None, on_bad_image: str = "error") -> EvaluationResult:
    """Evaluate ``model`` (folder, ``model.tar.gz`` or loaded model) on labelled ``data``.

    ``split``: ``auto`` = the data's test split if it has one, else every image; or one split, or ``all``.
    ``out``: a folder for ``metrics.json``, ``confusion_matrix.png`` and ``misclassified.csv``."""
    if split not in SPLIT_CHOICES:
        raise DataError(f"split={split!r}: choose one of {', '.join(SPLIT_CHOICES)}")
    m = model if isinstance(model, VisionModel) else load_model(model, device=device, precision=precision)
    ds = open_dataset(data, on_bad_image=on_bad_image, label_attribute=label_attribute)
    chosen = ("test" if ds.splits.get("test") else "all") if split == "auto" else split
    if chosen == "all":
        samples = [s for part in ds.splits.values() for s in part]
    elif ds.splits.get(chosen):
        samples = ds.splits[chosen]
    else:
        raise DataError(f"{data}: no {chosen} split; it has {', '.join(ds.splits)} (or use split='all')")
    unknown = sorted(set(ds.classes[s.label] for s in samples) - set(m.classes))
    if unknown:
        raise DataError(f"{data}: class(es) {', '.join(map(repr, unknown))} are not among the model's "
                        f"{len(m.classes)} classes ({', '.join(m.classes[:10])}{'...' if len(m.classes) > 10 else ''})")
    index = {c: i for i, c in enumerate(m.classes)}
    truth = [index[ds.classes[s.label]] for s in samples]
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
    metrics = evaluate_logits(p.clamp_min(1e-12).log(), torch.tensor(labels), m.classes, top_k)
    metrics.update({"model": str(m.path), "data": str(data), "split": chosen, "skipped_images": skipped})
    pred = p.argmax(1).tolist()
    wrong = [{"source": src, "true": m.classes[y], "predicted": m.classes[k], "probability": float(p[i, k]),
              "true_probability": float(p[i, y])}
             for i, (src, y, k) in enumerate(zip(sources, labels, pred)) if k != y]
    wrong.sort(key=lambda r: -r["probability"])
    result = EvaluationResult(metrics, wrong, skipped)
    if out is not None:
        result.out = _write(Path(out), metrics, wrong, m.classes)
    return result


def _write(out: Path, metrics: dict, wrong: list[dict], classes: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plots.confusion_matrix(metrics["confusion_matrix"], classes, out / "confusion_matrix.png",
                           title=f"Confusion matrix ({metrics['split']}, accuracy {metrics['accuracy']:.3f})")
    with open(out / "misclassified.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["source", "true", "predicted", "probability", "true_probability"])
        writer.writeheader()
        writer.writerows(wrong)
    return out


__all__ = ["EvaluationResult", "evaluate", "SPLIT_CHOICES"]
